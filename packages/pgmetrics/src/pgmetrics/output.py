"""Output files are checked before any work: a missing folder must not surface after an hour of metrics. They are
then written with pgdata.common.atomic (a temporary name, renamed when complete) and `error_type=PgmetricsError`,
so a reader never sees half a file, a failed write leaves the old one and says so in one line."""

from __future__ import annotations

import os
from pathlib import Path

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
