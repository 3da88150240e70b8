"""pgdata on its shared layer (pgdata.common): what the migration changed for users, each able to fail on the
code before it (issue 15). Proposed for tests/pgdata/test_common_migration.py."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pgdata import native_build
from pgdata.common import atomic
from pgdata.common.errors import ToolkitError
from pgdata.errors import PgdataError
from pgdata.sources.celebahq import CelebAHQSource, Failure
from tests.conftest import REPO_ROOT, load_module


def run_pgdata(*arguments: str, **environment: str) -> subprocess.CompletedProcess:
    variables = {name: value for name, value in os.environ.items() if name not in ("PG_DEBUG", "PGDATA_DEBUG")}
    return subprocess.run([sys.executable, "-c", "from pgdata.cli import main; main()", *arguments],
                          capture_output=True, text=True, env={**variables, **environment})


def damaged_dataset(tmp_path: Path) -> Path:
    dataset = tmp_path / "data"
    dataset.mkdir()
    (dataset / "manifest.json").write_text("{")
    return dataset


def test_pgdata_errors_are_toolkit_errors() -> None:
    assert issubclass(PgdataError, ToolkitError) and PgdataError.__init__ is ToolkitError.__init__


def test_debug_shows_the_cause_of_a_user_error_and_the_line_stays_the_same(tmp_path: Path) -> None:
    dataset = damaged_dataset(tmp_path)
    plain = run_pgdata("info", str(dataset))
    assert plain.returncode == 1 and plain.stderr.count("\n") == 1
    assert plain.stderr.startswith(f"pgdata: error: {dataset / 'manifest.json'}: unreadable manifest: ")
    debug = run_pgdata("--debug", "info", str(dataset))
    assert debug.returncode == 1 and "JSONDecodeError" in debug.stderr
    assert "The above exception was the direct cause of the following exception" in debug.stderr


def test_pg_debug_turns_on_pgdata_tracebacks(tmp_path: Path) -> None:
    result = run_pgdata("info", str(damaged_dataset(tmp_path)), PG_DEBUG="1")
    assert result.returncode == 1 and result.stderr.startswith("Traceback (most recent call last):")


def test_readers_keep_the_cause(tmp_path: Path) -> None:
    from pgdata.formats.base import open_regular_file

    with pytest.raises(PgdataError, match="missing$") as info:
        open_regular_file(tmp_path / "nowhere.npy")
    assert isinstance(info.value.__cause__, FileNotFoundError)


def report_source(report_path: Path) -> CelebAHQSource:
    source = object.__new__(CelebAHQSource)
    source.report_path = report_path
    source.inputs = SimpleNamespace(celeba_dir=Path("celeba"), delta_dir=Path("deltas"))
    source.failures = [Failure(3, 17, "000017.jpg", "zip", "deltas00000.zip is missing", "deltas/deltas00000.zip")]
    return source


def test_celebahq_report_is_written_whole_or_not_at_all(tmp_path: Path, monkeypatch) -> None:
    report = tmp_path / "failures.json"
    source = report_source(report)
    source._write_report()
    written = report.read_text()
    assert json.loads(written)["failures"][0]["idx"] == 17 and written == json.dumps(
        {"failures": [source.failures[0].__dict__], "celeba_dir": "celeba", "delta_dir": "deltas"}, indent=1) + "\n"
    source.failures[0].idx = 18

    def full_disk(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(PgdataError, match=r"failures.json: cannot write \(No space left on device\)$"):
        source._write_report()
    assert report.read_text() == written and os.listdir(tmp_path) == ["failures.json"]


def clear_cache_variables(monkeypatch) -> None:
    for name in ("PGDATA_CACHE", "XDG_CACHE_HOME", "PGDATA_PILLOW311_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_native_libraries_follow_the_cache_rule(tmp_path: Path, monkeypatch) -> None:
    clear_cache_variables(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert native_build.cache_dir() == tmp_path / "xdg" / "pgdata" / "native"
    monkeypatch.setenv("PGDATA_CACHE", str(tmp_path / "mine"))
    assert native_build.cache_dir() == tmp_path / "mine" / "native"


def test_a_native_build_is_written_beside_its_target_and_renamed(tmp_path: Path, monkeypatch) -> None:
    """The compiler writes a reserved temporary beside the library; a failed compile leaves nothing."""
    clear_cache_variables(monkeypatch)
    monkeypatch.setenv("PGDATA_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "cc")
    source = tmp_path / "one.c"
    source.write_text("int one(void) { return 1; }\n")
    outputs: list[str] = []

    def compiler(command, **options):
        output = command[command.index("-o") + 1]
        outputs.append(output)
        Path(output).write_bytes(b"library")
        return SimpleNamespace(returncode=0 if len(outputs) == 1 else 1, stderr=b"error: no")

    monkeypatch.setattr(native_build.subprocess, "run", compiler)
    target = native_build.build(source, "one")
    assert target is not None and target.read_bytes() == b"library" and target.parent == tmp_path / "native"
    assert Path(outputs[0]).parent == target.parent and Path(outputs[0]).name.startswith(f".{target.name}.")
    source.write_text("int one(void) { return 2; }\n")
    with pytest.warns(UserWarning, match="compiling one.c failed"):
        assert native_build.build(source, "one") is None
    assert os.listdir(tmp_path / "native") == [target.name]


def test_the_pillow_oracle_lives_in_pgdata_cache(tmp_path: Path, monkeypatch) -> None:
    """tools/pillow311.py's build (CI) and the tests find the oracle through one rule: pgdata's cache."""
    tool = load_module(REPO_ROOT / "tools" / "pillow311.py", "pillow311_tool")
    clear_cache_variables(monkeypatch)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tool.cache_dir() == tmp_path / "home" / ".cache" / "pgdata" / "pillow311"
    monkeypatch.setenv("PGDATA_CACHE", str(tmp_path / "cache"))
    assert tool.cache_dir() == tmp_path / "cache" / "pillow311"
    monkeypatch.setenv("PGDATA_PILLOW311_DIR", str(tmp_path / "explicit"))
    assert tool.cache_dir() == tmp_path / "explicit"
