"""Readers for the three dataset formats behind one interface; `open_dataset` picks the right one."""

from __future__ import annotations

import os
from pathlib import Path

from pgdata.errors import PgdataError
from pgdata.formats.base import DatasetReader, open_regular_file


def detect_format(path: str | Path) -> str:
    """'pgshards' (directory with manifest.json), 'tfrecords' (directory of *.tfrecords), 'hdf5' (file).

    A manifest.json that is not a regular file still means pgshards: its reader then says what is wrong with it.
    """
    path = Path(path)
    if path.is_dir():
        if os.path.lexists(path / "manifest.json"):
            return "pgshards"
        if any(path.glob("*.tfrecords")):
            return "tfrecords"
        if any(path.glob("r[0-9][0-9]")) or any(path.glob("*.partial")):
            raise PgdataError("not a complete pgshards dataset (manifest.json missing: an interrupted "
                              "build? finish it with --resume)", path)
        raise PgdataError("not a dataset: no manifest.json (pgshards) and no *.tfrecords", path)
    if path.is_file():
        with open_regular_file(path) as file:
            if file.read(8) == b"\x89HDF\r\n\x1a\n":
                return "hdf5"
        raise PgdataError("not a dataset: expected a pgshards or TFRecords directory, or an HDF5 file", path)
    if path.exists():
        raise PgdataError("not a dataset: neither a directory nor a regular file", path)
    raise PgdataError("no such file or directory", path)


def open_dataset(path: str | Path) -> DatasetReader:
    """Open any supported dataset for reading."""
    kind = detect_format(path)
    if kind == "pgshards":
        from pgdata.formats.pgshards.reader import PgshardsReader

        return PgshardsReader(path)
    if kind == "tfrecords":
        from pgdata.formats.tfrecords import TfrecordsReader

        return TfrecordsReader(path)
    from pgdata.formats.hdf5 import Hdf5Reader

    return Hdf5Reader(path)


__all__ = ["DatasetReader", "detect_format", "open_dataset"]
