"""pgmetrics on the shared layer (pgdata.common, issue 15): what the migration changed for users, each test able
to fail on the code before it, and what it had to keep (the one-line errors, OSError tracebacks, the cache rule)."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pgdata.common import atomic
from pgdata.common.errors import ToolkitError
from pgmetrics import cache, inception
from pgmetrics.compare import to_rgb
from pgmetrics.errors import PgmetricsError
from pgmetrics.plot import plot_series
from pgmetrics.record import MetricRecord, write_record
from pgmetrics.sources import FolderSource, read_run_config
from tests.pgmetrics.test_evaluate_e2e import pgmetrics as run  # the CLI's exit code, stdout and stderr

DEBUG_VARIABLES = ("PG_DEBUG", "PGMETRICS_DEBUG")


@pytest.fixture()
def no_debug(monkeypatch) -> None:
    for name in DEBUG_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_pgmetrics_errors_are_toolkit_errors_and_read_as_before() -> None:
    assert issubclass(PgmetricsError, ToolkitError) and PgmetricsError.__init__ is ToolkitError.__init__
    located = PgmetricsError("holds no images", Path("sets/a.npy"))
    assert (str(located), located.path, located.message) == ("sets/a.npy: holds no images", "sets/a.npy",
                                                              "holds no images")
    plain = PgmetricsError("--num must be at least 1, got 0")
    assert (str(plain), plain.path, plain.message) == ("--num must be at least 1, got 0", None, plain.args[0])


def damaged_array(tmp_path: Path) -> Path:
    path = tmp_path / "damaged.npy"
    path.write_bytes(b"not an array")
    return path


def test_a_user_error_is_one_line_and_debug_shows_its_cause(tmp_path, no_debug, monkeypatch, capsys) -> None:
    damaged = damaged_array(tmp_path)
    code, _, err = run(monkeypatch, capsys, "compare", damaged, damaged, "--quiet")
    assert code == 1 and err.startswith(f"pgmetrics: error: {damaged}: not a readable .npy array (")
    assert err.count("\n") == 1
    code, _, err = run(monkeypatch, capsys, "--debug", "compare", damaged, damaged, "--quiet")
    assert code == 1 and err.startswith("Traceback (most recent call last):") and "ValueError" in err
    assert "The above exception was the direct cause of the following exception" in err


@pytest.mark.parametrize("variable", DEBUG_VARIABLES)
def test_debug_variables_show_the_traceback(tmp_path, no_debug, monkeypatch, capsys, variable) -> None:
    monkeypatch.setenv(variable, "1")
    code, _, err = run(monkeypatch, capsys, "compare", tmp_path / "nowhere", tmp_path / "nowhere")
    assert code == 1 and err.startswith("Traceback (most recent call last):") and "PgmetricsError" in err


def test_an_oserror_that_reaches_the_cli_stays_a_traceback(fakes, no_debug, monkeypatch, capsys) -> None:
    """As before the shared entry: pgmetrics words the OSErrors it expects; any other is a bug to see whole."""
    from pgmetrics import sources

    def full_disk(*arguments, **options):
        raise OSError(errno.ENOSPC, "No space left on device", "somewhere")

    monkeypatch.setattr(sources, "open_source", full_disk)
    monkeypatch.setattr(sys, "argv", ["pgmetrics", "compare", str(fakes), str(fakes), "--quiet"])
    from pgmetrics import cli

    with pytest.raises(OSError, match="No space left on device"):
        cli.main()


def test_a_bad_device_is_the_shared_one_line(fakes, no_debug, monkeypatch, capsys) -> None:
    for command in (["compare", fakes, fakes, "--metrics", "msssim"], ["features", fakes, "--out", fakes.parent / "f"]):
        code, _, err = run(monkeypatch, capsys, *command, "--device", "gpu0", "--quiet")
        assert code == 1 and err.startswith("pgmetrics: error: --device 'gpu0': not a torch device (")
        assert err.count("\n") == 1


def test_user_errors_keep_their_cause(tmp_path: Path) -> None:
    """Representative sites that used `raise ... from None`: the cause is kept for --debug."""
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(PgmetricsError, match="not valid JSON") as info:
        read_run_config(tmp_path)
    assert isinstance(info.value.__cause__, json.JSONDecodeError)
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    (pictures / "0.png").write_bytes(b"not a png")
    with pytest.raises(PgmetricsError, match="cannot decode the image") as info:
        FolderSource(pictures)
    assert isinstance(info.value.__cause__, OSError)


def full_disk(monkeypatch) -> None:
    def refuse(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", refuse)


def test_a_failed_output_is_one_line_naming_it_and_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    """The record, the plot: written through pgdata.common.atomic, worded as pgdata and pgtrain word it."""
    record = MetricRecord("swd", {"num": 16}, ["SWDx1e3_avg"])
    outputs = {"metric-swd-16.json": lambda path: write_record(path, record, None),
               "metric-swd-16.png": lambda path: plot_series(path, "swd", [0.0, 1.0], {"avg": [2.0, 1.0]})}
    for name in outputs:
        (tmp_path / name).write_text("old")
    full_disk(monkeypatch)
    for name, write in outputs.items():
        with pytest.raises(PgmetricsError, match=rf"{name}: cannot write \(No space left on device\)$") as info:
            write(tmp_path / name)
        assert isinstance(info.value.__cause__, OSError)
    assert sorted(os.listdir(tmp_path)) == sorted(outputs)
    assert all((tmp_path / name).read_text() == "old" for name in outputs)


def test_a_cache_that_cannot_be_written_costs_only_the_reuse(tmp_path: Path, monkeypatch) -> None:
    full_disk(monkeypatch)
    assert cache.save("swd-key", {"a": np.zeros(3)}, tmp_path) is None
    assert os.listdir(tmp_path) == []


def clear_cache_variables(monkeypatch) -> None:
    for name in ("PGMETRICS_CACHE", "XDG_CACHE_HOME", "PGMETRICS_INCEPTION_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)


def test_the_cache_folder_honours_xdg_cache_home_and_pgmetrics_cache_overrides_it(tmp_path, monkeypatch) -> None:
    clear_cache_variables(monkeypatch)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.stats_dir() == tmp_path / "home" / ".cache" / "pgmetrics" / "stats"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.stats_dir() == tmp_path / "xdg" / "pgmetrics" / "stats"
    weights = tmp_path / "xdg" / "pgmetrics" / inception.WEIGHTS_FILENAMES[0]
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    assert inception.find_weights() == weights
    monkeypatch.setenv("PGMETRICS_CACHE", str(tmp_path / "mine"))
    assert cache.stats_dir() == tmp_path / "mine" / "stats"
    with pytest.raises(PgmetricsError, match=f"put it in {tmp_path / 'mine'}$"):
        inception.find_weights()


def test_the_weights_help_names_the_whole_cache_rule() -> None:
    from pgmetrics import cli

    assert "$PGMETRICS_CACHE, else $XDG_CACHE_HOME/pgmetrics, else ~/.cache/pgmetrics" in cli.WEIGHTS_HELP


def test_resized_images_are_rounded_as_before() -> None:
    """to_rgb's resize now ends in pgdata.common.images.to_uint8: the same values as torch's round (half to
    even), clamp and cast that it replaced."""
    batch = np.random.default_rng(0).integers(0, 256, (4, 3, 24, 24), dtype=np.uint8)
    resized = torch.from_numpy(batch).float()
    values = F.interpolate(resized, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    assert np.array_equal(to_rgb(batch, 32, resize=True), values.round().clamp(0, 255).to(torch.uint8).numpy())

