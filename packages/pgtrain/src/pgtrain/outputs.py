"""Output files of the generation commands: checked before any work, written under a temporary name in the same
folder and renamed when complete (pgdata.common.atomic), so no half-written file ever carries a final name."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from pgdata.common.atomic import atomic_path
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


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path to write (its folder created first); it becomes `path` when the block ends without an
    error, else it is removed. File system refusals (full disk, no permission) become one line,
    "<path>: cannot write (<reason>)". Not synced to disk: grids, strips and reports, not training state."""
    make_folder(Path(path).parent)
    with atomic_path(path, error_type=PgtrainError) as temporary:
        yield temporary
