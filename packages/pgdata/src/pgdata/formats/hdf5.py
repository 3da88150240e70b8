"""Legacy Theano-era HDF5 datasets (the official h5tool.py): the reader, and the one owner of h5py details.

pgdata imports h5py here only: opening a file (open_hdf5_file), one member (open_member) and where the labels
lie (labels_path) are shared with pgdata.sources.hdf5 (create_from_hdf5), so that the reader that inspection
and training use and the source agree on them.

Layout (matches h5tool.HDF5Exporter): one dataset per resolution, `data4x4` ... `dataNxN` (h5tool also
writes `data1x1` and `data2x2`, which are ignored here), each uint8 [N, C, r, r]; optional labels in
`<file without extension>-labels.npy` (the file the official create_from_hdf5 looks for). Images are read
in slices through h5py, never the whole file.

Levels are found when the file is opened: `resolutions` lists the ones present (4x4 and up) and
`missing_resolutions()` the ones h5tool writes that the file lacks, so that a user (pgtrain's start-up
check, `pgdata info`) can refuse or report a file with a gap before reading it; a `dataNxN` name that
cannot be opened (a dangling link) is refused at once. A file whose creation was interrupted can hold
different counts per resolution (h5tool's `inspect` warns about it); `num_images` is then the count that
every level from 4x4 up holds, and `num_images_at` gives each level's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pgdata.common.resolution import is_power_of_two
from pgdata.errors import PgdataError
from pgdata.formats.base import LabelFileReader

_NAME = re.compile(r"^data(\d+)x(\d+)$")


def labels_path(hdf5_file: str | Path) -> Path:
    """`<file without extension>-labels.npy`, where h5tool.py put the labels (os.path.splitext, as the
    official create_from_hdf5 derives it)."""
    return Path(os.path.splitext(str(hdf5_file))[0] + "-labels.npy")


def open_hdf5_file(path: Path):
    """The h5py.File at `path`, read-only, or PgdataError naming it (missing, damaged or not HDF5)."""
    import h5py

    if not path.is_file():
        raise PgdataError("file missing", path)
    try:
        return h5py.File(path, "r")
    except Exception as error:  # OSError with HDF5's message for damaged or foreign files
        raise PgdataError(f"cannot open HDF5 file: {error}", path) from error


def open_member(hdf5_file, name: str, path: Path):
    """One member of an open HDF5 file, or PgdataError naming it. h5py's items() silently skips a name it
    cannot open (a dangling soft or external link), which would pass a damaged level for a missing one."""
    try:
        return hdf5_file[name]
    except (KeyError, OSError, RuntimeError, ValueError) as error:
        reason = error.args[0] if error.args else type(error).__name__
        raise PgdataError(f"dataset {name} cannot be opened ({reason}): a damaged file, or a link to a missing "
                          "one", path) from error


class Hdf5Reader(LabelFileReader):
    """A legacy multi-resolution HDF5 file (`data4x4` ... `dataNxN`)."""

    format_name = "hdf5"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = open_hdf5_file(self.path)
        try:
            self._datasets = self._find_datasets()
        except PgdataError:
            self._file.close()
            raise
        self.all_resolutions = tuple(sorted(self._datasets))  # including 1x1 and 2x2 where present
        self._resolutions = tuple(r for r in self.all_resolutions if r >= 4)
        if not self._resolutions:
            self._file.close()
            raise PgdataError("no dataNxN dataset of 4x4 or more", self.path)
        self._channels = int(self._datasets[self._resolutions[-1]].shape[1])
        self.label_file = labels_path(self.path) if labels_path(self.path).is_file() else None

    def _find_datasets(self) -> dict:
        datasets = {}
        channels = set()
        for name in self._file:
            match = _NAME.match(name)
            if match is None:
                continue
            dataset = open_member(self._file, name, self.path)
            if not hasattr(dataset, "shape"):
                continue
            height, width = int(match[1]), int(match[2])
            resolution = width
            if height != width or not is_power_of_two(resolution):
                raise PgdataError(f"dataset {name}: not a square power-of-two resolution", self.path)
            shape = dataset.shape
            if len(shape) != 4 or shape[2:] != (resolution, resolution) or dataset.dtype != np.uint8:
                raise PgdataError(f"dataset {name}: expected uint8 [N, C, {resolution}, {resolution}], "
                                  f"got {dataset.dtype} {list(shape)}", self.path)
            if shape[1] not in (1, 3):
                raise PgdataError(f"dataset {name}: {shape[1]} channels (expected 1 or 3)", self.path)
            channels.add(shape[1])
            datasets[resolution] = dataset
        if len(channels) > 1:
            raise PgdataError(f"datasets disagree on the channel count: {sorted(channels)}", self.path)
        if not datasets:
            raise PgdataError("no dataNxN datasets (not a legacy h5tool file)", self.path)
        return datasets

    @property
    def num_images(self) -> int:
        """The images that every level from 4x4 up holds: each image of the dataset exists at each resolution
        (an interrupted h5tool run leaves some levels longer than others)."""
        return min(int(self._datasets[resolution].shape[0]) for resolution in self._resolutions)

    def num_images_at(self, resolution: int) -> int:
        return int(self._datasets[self.check_resolution(resolution)].shape[0])

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def resolutions(self) -> tuple[int, ...]:
        return self._resolutions

    def missing_resolutions(self) -> list[int]:
        """Levels h5tool writes (1x1 up to the full one) that this file lacks; those from 4x4 up are
        absent from `resolutions`, and check_resolution refuses them naming the file."""
        expected = [2**k for k in range(self.resolution.bit_length())]
        return [r for r in expected if r not in self._datasets]

    def image(self, index: int, resolution: int | None = None) -> np.ndarray:
        resolution = self.check_resolution(resolution)
        self.check_index(index, resolution)
        return self._read(resolution, index, index + 1)[0]

    def iter_batches(
        self, resolution: int | None = None, batch_size: int = 256, start: int = 0, stop: int | None = None
    ) -> Iterator[np.ndarray]:
        resolution = self.check_resolution(resolution)
        start, stop = self.check_range(start, stop, resolution)
        for first in range(start, stop, batch_size):
            yield self._read(resolution, first, min(first + batch_size, stop))

    def _read(self, resolution: int, start: int, stop: int) -> np.ndarray:
        try:
            return np.asarray(self._datasets[resolution][start:stop], dtype=np.uint8)
        except (OSError, RuntimeError, ValueError) as error:
            raise PgdataError(f"cannot read images {start} .. {stop - 1} of data{resolution}x{resolution}: "
                              f"{error}", self.path) from error

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()
