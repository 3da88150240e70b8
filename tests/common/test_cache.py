"""pgdata.common.cache.cache_dir: one rule for every tool's cache folder. pgmetrics honoured XDG_CACHE_HOME and
pgdata did not; both now follow pgmetrics' rule (override variable, XDG_CACHE_HOME, ~/.cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgdata.common.cache import cache_dir, cache_variable

# the setting, then the folder expected for package "pkg" with HOME=/home/u
SETTINGS = [({}, "/home/u/.cache/pkg"), ({"XDG_CACHE_HOME": "/x/cache"}, "/x/cache/pkg"),
            ({"XDG_CACHE_HOME": ""}, "/home/u/.cache/pkg"), ({"OVERRIDE": "~/mine"}, "/home/u/mine"),
            ({"OVERRIDE": "/abs/c", "XDG_CACHE_HOME": "/x/cache"}, "/abs/c"),
            ({"OVERRIDE": "", "XDG_CACHE_HOME": "/x/cache"}, "/x/cache/pkg")]


def set_environment(monkeypatch, package: str, setting: dict) -> None:
    monkeypatch.setenv("HOME", "/home/u")
    for name in ("XDG_CACHE_HOME", cache_variable(package)):
        monkeypatch.delenv(name, raising=False)
    for name, value in setting.items():
        monkeypatch.setenv(cache_variable(package) if name == "OVERRIDE" else name, value)


def test_by_hand(monkeypatch) -> None:
    set_environment(monkeypatch, "pgdata", {})
    assert cache_dir("pgdata") == Path("/home/u/.cache/pgdata")
    set_environment(monkeypatch, "pgdata", {"XDG_CACHE_HOME": "/x/cache"})
    assert cache_dir("pgdata") == Path("/x/cache/pgdata")
    set_environment(monkeypatch, "pgdata", {"OVERRIDE": "~/mine", "XDG_CACHE_HOME": "/x/cache"})
    assert cache_dir("pgdata") == Path("/home/u/mine") and cache_variable("pgmetrics") == "PGMETRICS_CACHE"


@pytest.mark.parametrize("package", ["pgdata", "pgmetrics", "pgtrain"])
@pytest.mark.parametrize("setting,expected", SETTINGS)
def test_one_rule_for_every_package(monkeypatch, package, setting, expected) -> None:
    set_environment(monkeypatch, package, setting)
    assert cache_dir(package) == Path(expected.replace("pkg", package))


@pytest.mark.parametrize("setting,expected", SETTINGS)
def test_the_users_of_the_rule(monkeypatch, setting, expected) -> None:
    """pgdata's compiled kernels and pgmetrics' Inception weights live in their package's folder."""
    from pgdata.native_build import cache_dir as native_cache_dir
    from pgmetrics.errors import PgmetricsError
    from pgmetrics.inception import WEIGHTS_ENV, WEIGHTS_FILENAMES, find_weights

    set_environment(monkeypatch, "pgdata", setting)
    assert native_cache_dir() == Path(expected.replace("pkg", "pgdata")) / "native"
    set_environment(monkeypatch, "pgmetrics", setting)
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(PgmetricsError) as info:  # nothing is at these made-up places
        find_weights()
    assert str(Path(expected.replace("pkg", "pgmetrics")) / WEIGHTS_FILENAMES[0]) in str(info.value)
