"""pgdata.common.cache.cache_dir: one rule for every tool's cache folder. pgmetrics honoured XDG_CACHE_HOME and
pgdata did not; both now follow pgmetrics' rule (override variable, XDG_CACHE_HOME, ~/.cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgdata.common.cache import cache_dir, cache_variable
from tests.common.copies import current_copy

SETTINGS = [{}, {"XDG_CACHE_HOME": "/x/cache"}, {"XDG_CACHE_HOME": ""}, {"OVERRIDE": "~/mine"},
            {"OVERRIDE": "/abs/c", "XDG_CACHE_HOME": "/x/cache"}, {"OVERRIDE": "", "XDG_CACHE_HOME": "/x/cache"}]


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


@pytest.mark.parametrize("setting", SETTINGS)
def test_the_rule_is_that_of_pgmetrics(monkeypatch, setting) -> None:
    default_cache_dir = current_copy("default_cache_dir", "pgmetrics.inception")
    set_environment(monkeypatch, "pgmetrics", setting)
    assert cache_dir("pgmetrics") == default_cache_dir()


@pytest.mark.parametrize("setting", [s for s in SETTINGS if "XDG_CACHE_HOME" not in s and s.get("OVERRIDE") != ""])
def test_pgdata_keeps_its_folder_where_xdg_is_not_set(monkeypatch, setting) -> None:
    native_cache_dir = current_copy("cache_dir", "pgdata.native_build")
    set_environment(monkeypatch, "pgdata", setting)
    assert cache_dir("pgdata") / "native" == native_cache_dir()
