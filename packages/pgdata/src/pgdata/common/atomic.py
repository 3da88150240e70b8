"""Atomic output files for the three tools: written under a temporary name in the same folder, renamed into
place when complete, so a reader never sees half a file and a failed write leaves the old one.

The temporary name is unique and created exclusively (nobody else's file is ever opened or replaced), with the
umask's permissions like any new file. OSError propagates as is unless `error_type` is given: then it becomes
`error_type("cannot write (<reason>)", path)`, one line naming the output, with the OSError as its cause.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pgdata.common.errors import ToolkitError


def reserve_temporary(path: Path) -> Path:
    """A new, empty, uniquely named file beside `path`, created exclusively. Rename it over `path` when
    complete (publish). OSError as is: each caller words it."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return temporary


def publish(temporary: Path, path: Path) -> None:
    """Rename a complete temporary file to its final name; on failure the temporary is removed."""
    try:
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def os_error_reason(error: OSError) -> str:
    """The system's words for an OSError ("No space left on device"), without errno and file name."""
    return error.strerror or str(error)


def _fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def _worded(path: Path, error_type: type[ToolkitError] | None) -> Iterator[None]:
    """OSError inside becomes `error_type` naming `path` (cause kept for --debug), when one is given."""
    try:
        yield
    except OSError as error:
        if error_type is None:
            raise
        raise error_type(f"cannot write ({os_error_reason(error)})", path) from error


@contextlib.contextmanager
def atomic_path(path: str | Path, *, fsync: bool = False,
                error_type: type[ToolkitError] | None = None) -> Iterator[Path]:
    """A temporary path for the block to write (by name: PIL, a compiler, torch.save); it becomes `path` when
    the block ends without an error, else it is removed. `fsync`: flushed to disk before the rename."""
    path = Path(path)
    with _worded(path, error_type):
        temporary = reserve_temporary(path)
        try:
            yield temporary
            if fsync:
                _fsync_path(temporary)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        publish(temporary, path)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb", *, fsync: bool = True,
                error_type: type[ToolkitError] | None = None) -> Iterator[IO[Any]]:
    """An open file (text modes: UTF-8) whose content appears at `path` only when the block ends without an
    error; flushed and, with `fsync`, synced to disk before the rename."""
    with atomic_path(path, error_type=error_type) as temporary:
        with open(temporary, mode, encoding=None if "b" in mode else "utf-8") as file:
            yield file
            file.flush()
            if fsync:
                os.fsync(file.fileno())


def write_bytes(path: str | Path, data: bytes, *, fsync: bool = True,
                error_type: type[ToolkitError] | None = None) -> Path:
    with atomic_file(path, "wb", fsync=fsync, error_type=error_type) as file:
        file.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, *, fsync: bool = True,
               error_type: type[ToolkitError] | None = None) -> Path:
    with atomic_file(path, "w", fsync=fsync, error_type=error_type) as file:
        file.write(text)
    return Path(path)


def json_text(content: Any) -> str:
    """The toolkit's JSON files: one-space indent, sorted keys, a final newline (stable bytes: manifests)."""
    return json.dumps(content, indent=1, sort_keys=True) + "\n"


def write_json(path: str | Path, content: Any, *, fsync: bool = True,
               error_type: type[ToolkitError] | None = None) -> Path:
    return write_text(path, json_text(content), fsync=fsync, error_type=error_type)
