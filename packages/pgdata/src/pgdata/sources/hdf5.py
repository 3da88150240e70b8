"""create_from_hdf5: the legacy multi-resolution HDF5 of the Theano-era h5tool.py, as a Source.

The h5py details (opening, members, the labels file's name) live in pgdata.formats.hdf5, next to the reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pgdata.common.resolution import LOWEST_RESOLUTION, is_power_of_two
from pgdata.errors import PgdataError
from pgdata.formats.base import open_regular_file, read_npy
from pgdata.formats.hdf5 import labels_path, open_hdf5_file, open_member
from pgdata.sources.base import Source, SourceInfo
from pgdata.sources.common import INPUT_ORDER, SHUFFLED, shuffled_order

#: Records read per h5py call.
HDF5_CHUNK = 256


def _largest_dataset_name(hdf5_file, path: Path) -> str:
    """Matches the official code: of the datasets whose names start with 'data', the one with the largest
    last dimension (the first such in the file's key order on ties)."""
    best_name, best_size = None, -1
    for name in hdf5_file:
        if not name.startswith("data"):
            continue
        shape = getattr(open_member(hdf5_file, name, path), "shape", None)
        if shape is None or len(shape) != 4:
            raise PgdataError(f"dataset '{name}' must be [N, C, r, r], got shape {shape}", path)
        if shape[3] > best_size:
            best_name, best_size = name, shape[3]
    if best_name is None:
        raise PgdataError("no dataset named data<r>x<r> (expected h5tool.py's data4x4 .. dataNxN)", path)
    return best_name


class Hdf5Source(Source):
    """Records from the largest-resolution `data*` dataset, shuffled (--shuffle 1) or in file order;
    labels from the `-labels.npy` file next to it, taken as they are (reordered, cast to float32)."""

    def __init__(self, hdf5_filename: str | Path, shuffle: bool = True):
        self.path = Path(hdf5_filename)
        with open_hdf5_file(self.path) as file:
            self.dataset = _largest_dataset_name(file, self.path)
            shape = file[self.dataset].shape
            dtype = file[self.dataset].dtype
        num_images, channels, height, width = shape
        if dtype != np.uint8 or channels not in (1, 3) or height != width or num_images == 0:
            raise PgdataError(f"dataset '{self.dataset}' must be uint8 [N>0, 1 or 3, r, r], got {dtype} "
                              f"{list(shape)}", self.path)
        if not is_power_of_two(width, LOWEST_RESOLUTION):
            raise PgdataError(f"dataset '{self.dataset}': resolution {width} is not a power of two >= 4",
                              self.path)
        self.order = shuffled_order(num_images) if shuffle else np.arange(num_images)
        self.record_order = SHUFFLED if shuffle else INPUT_ORDER
        self._labels = self._read_labels(num_images)
        self.info = SourceInfo(self.path.stem, channels, width, num_images)

    def _read_labels(self, num_images: int) -> np.ndarray | None:
        path = labels_path(self.path)
        if not path.is_file():
            return None
        with open_regular_file(path) as file:
            labels = read_npy(file, path)  # refuses a header that claims more than the file holds
        if labels.ndim < 1 or labels.shape[0] != num_images:
            raise PgdataError(f"holds labels of shape {list(labels.shape)} for {num_images} images", path)
        if labels.ndim == 1:
            raise PgdataError("labels must be [N, label_size] rows (one-hot), got a 1-D array", path)
        return np.ascontiguousarray(labels[self.order].astype(np.float32))

    @property
    def labels(self) -> np.ndarray | None:
        return self._labels

    def iter_chunks(self, start: int = 0) -> Iterator[np.ndarray]:
        """h5py reads increasing index lists only: read each chunk sorted, then put it in record order."""
        with open_hdf5_file(self.path) as file:
            data = file[self.dataset]
            for begin in range(start, len(self.order), HDF5_CHUNK):
                wanted = self.order[begin : begin + HDF5_CHUNK]
                ascending = np.sort(wanted)
                try:
                    block = data[ascending]
                except Exception as error:
                    raise PgdataError(f"cannot read dataset '{self.dataset}': {error}", self.path) from error
                yield np.ascontiguousarray(block[np.searchsorted(ascending, wanted)])
