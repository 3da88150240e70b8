"""Output files of the generation commands: checked before any work, written under a temporary name in the same
folder and renamed when complete, so no half-written file ever carries a final name."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from pgdata import atomic
from pgtrain.errors import PgtrainError


def check_output(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing file unless asked, and anything that is not a file at all."""
    if path.is_dir():
        raise PgtrainError(f"{path}: is a directory, not an output file")
    if path.exists() and not overwrite:
        raise PgtrainError(f"{path}: already exists (use --overwrite to replace it)")


def make_folder(folder: Path) -> Path:
    """Create an output folder (and its parents), or say in one line why not."""
    for existing in (folder, *folder.parents):
        if existing.exists():
            if not existing.is_dir():
                within = "" if existing == folder else f" (cannot hold {folder})"
                raise PgtrainError(f"{existing}: not a folder{within}")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PgtrainError(f"{folder}: cannot create the output folder ({error.strerror or error})") from error
    return folder


def reserve_temporary(path: Path) -> Path:
    """A new, empty, uniquely named file beside `path` (created exclusively, so nobody else's file is touched;
    permissions from the umask like any new file)."""
    make_folder(path.parent)
    try:
        return atomic.reserve_temporary(path)
    except OSError as error:
        raise PgtrainError(f"{path}: cannot write ({error.strerror or error})") from error


def publish(temporary: Path, path: Path) -> None:
    """Rename a complete temporary file to its final name."""
    try:
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise PgtrainError(f"{path}: cannot write ({error.strerror or error})") from error


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path to write; it becomes `path` when the block ends without an error, else it is removed.
    File system refusals (full disk, no permission) become one-line errors."""
    temporary = reserve_temporary(path)
    try:
        yield temporary
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise PgtrainError(f"{path}: cannot write ({error.strerror or error})") from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    publish(temporary, path)
