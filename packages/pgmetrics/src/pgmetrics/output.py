"""Output files: checked before any work (a missing folder must not surface after an hour of metrics) and written
under a temporary name, then renamed, so a reader never sees half a file and a failed run leaves the old one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pgdata.atomic import reserve_temporary
from pgmetrics.errors import PgmetricsError


def check_writable(path: str | Path) -> Path:
    """The output path, or a one-line error when it could not be written at the end: its folder is missing or
    not writable, or a directory stands in its place."""
    path = Path(path).expanduser()
    folder = path.parent
    if not folder.is_dir():
        raise PgmetricsError(f"cannot write {path.name}: no such folder", folder)
    if path.is_dir():
        raise PgmetricsError("is a directory, not an output file", path)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PgmetricsError(f"cannot write {path.name}: the folder is not writable", folder)
    return path


def check_folder_writable(folder: str | Path) -> Path:
    """A folder that outputs will be written into (e.g. a run directory), or a one-line error."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise PgmetricsError("no such folder", folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PgmetricsError("the folder is not writable", folder)
    return folder


@contextlib.contextmanager
def atomic_output(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """An open file whose content appears at `path` only when the block ends without an error (fsync, rename).

    The temporary name is unique and created exclusively, so no file of anyone else is ever overwritten; it takes
    the umask's permissions like any new file. A write error (disk full) becomes a one-line error."""
    path = Path(path)
    try:
        temporary = reserve_temporary(path)
    except OSError as error:
        raise PgmetricsError(f"cannot write: {error.strerror}", path) from None
    try:
        with open(temporary, mode, encoding=None if "b" in mode else "utf-8") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise PgmetricsError(f"cannot write: {error.strerror or error}", path) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    with atomic_output(path, "w") as file:
        file.write(text)
    return Path(path)
