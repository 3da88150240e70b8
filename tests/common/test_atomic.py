"""pgdata.common.atomic: outputs appear whole under their final name or not at all, nobody else's file is
touched, and the JSON bytes are stable (manifests hash them)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from pgdata.common import atomic
from pgdata.common.errors import ToolkitError


class DemoError(ToolkitError):
    pass


def test_a_file_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("previous\n")
    with pytest.raises(RuntimeError), atomic.atomic_file(target, "w") as file:
        file.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "previous\n" and os.listdir(tmp_path) == ["out.json"]
    atomic.write_text(target, "new\n")
    assert target.read_text() == "new\n" and os.listdir(tmp_path) == ["out.json"]


def test_a_path_written_by_name_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "grid.png"
    with pytest.raises(KeyboardInterrupt), atomic.atomic_path(target) as temporary:
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    with atomic.atomic_path(target, fsync=True) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".grid.png.")
        temporary.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and os.listdir(tmp_path) == ["grid.png"]


def test_the_temporary_is_reserved_exclusively_with_umask_permissions(tmp_path: Path) -> None:
    names = {atomic.reserve_temporary(tmp_path / "x.pt").name for _ in range(20)}
    assert len(names) == 20 and all(name.startswith(".x.pt.") and name.endswith(".tmp") for name in names)
    mode = (tmp_path / sorted(names)[0]).stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_a_write_error_is_one_line_naming_the_output_with_its_cause(tmp_path: Path) -> None:
    target = tmp_path / "out.npy"
    with pytest.raises(DemoError, match=r"out.npy: cannot write \(No space left on device\)$") as info:
        with atomic.atomic_path(target, error_type=DemoError) as temporary:
            temporary.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert isinstance(info.value.__cause__, OSError) and info.value.path == str(target)
    assert os.listdir(tmp_path) == []
    with pytest.raises(OSError):  # without an error type: as is, for the caller to word
        with atomic.atomic_file(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(DemoError, match="missing/out.npy: cannot write"):
        atomic.write_bytes(tmp_path / "missing" / "out.npy", b"x", error_type=DemoError)


def test_a_failed_rename_removes_the_temporary_and_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "s.pt"
    target.write_bytes(b"old")

    def refuse(source, destination):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(DemoError, match="s.pt: cannot write"):
        atomic.write_bytes(target, b"new", error_type=DemoError)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["s.pt"]


def test_file_contents_are_synced_before_the_rename(tmp_path: Path, monkeypatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic.write_json(tmp_path / "manifest.json", {"b": 1})
    with atomic.atomic_path(tmp_path / "x.so", fsync=True) as temporary:
        temporary.write_bytes(b"x")
    assert events == ["fsync", "replace", "fsync", "replace"]
    events.clear()
    atomic.write_text(tmp_path / "log.txt", "x", fsync=False)
    assert events == ["replace"]


def test_json_bytes_are_those_of_the_manifests(tmp_path: Path) -> None:
    """One-space indent, sorted keys, ASCII escapes, a final newline: the bytes of every shipped manifest."""
    content = {"name": "mnist", "resolutions": {"r03": {"shards": [1, 2]}, "r02": {}}, "labels": None,
               "num_images": 70000, "ratio": 0.25, "text": "é"}
    atomic.write_json(tmp_path / "ours.json", content)
    assert json.loads((tmp_path / "ours.json").read_text()) == content
    assert (tmp_path / "ours.json").read_bytes() == (
        b'{\n "labels": null,\n "name": "mnist",\n "num_images": 70000,\n "ratio": 0.25,\n "resolutions": {\n'
        b'  "r02": {},\n  "r03": {\n   "shards": [\n    1,\n    2\n   ]\n  }\n },\n "text": "\\u00e9"\n}\n')


def test_a_failed_write_is_one_line_of_the_callers_error(tmp_path: Path) -> None:
    """Worded "cannot write (reason)" in every tool: names the output, removes the temporary, keeps the old file."""
    from pgmetrics.errors import PgmetricsError

    target = tmp_path / "scores.json"
    target.write_text("old")
    with pytest.raises(PgmetricsError, match=r"scores.json: cannot write \(") as info, \
            atomic.atomic_file(target, "w", error_type=PgmetricsError) as file:
        file.write("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert "No space left on device" in str(info.value) and "\n" not in str(info.value)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["scores.json"]
