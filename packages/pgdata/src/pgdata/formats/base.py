"""One reading interface for every dataset format (pgshards, original TFRecords, legacy HDF5)."""

from __future__ import annotations

import math
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np


class DatasetReader(ABC):
    """Random access and fast sequential reading of a multi-resolution dataset.

    Resolutions are given in pixels (4, 8, ..., full). Images are uint8 C x H x W; batches N x C x H x W.
    """

    path: Path
    format_name: str  # "pgshards", "tfrecords", "hdf5"

    @property
    @abstractmethod
    def num_images(self) -> int: ...

    @property
    @abstractmethod
    def channels(self) -> int: ...

    @property
    @abstractmethod
    def resolutions(self) -> tuple[int, ...]:
        """Available resolutions, ascending."""

    @property
    def resolution(self) -> int:
        """The full (largest) resolution."""
        return self.resolutions[-1]

    @abstractmethod
    def labels(self) -> np.ndarray | None:
        """float32 [N, label_size] in dataset order, or None."""

    @property
    def label_size(self) -> int:
        labels = self.labels()
        return 0 if labels is None else int(labels.shape[1])

    def storage_problems(self) -> list[str]:
        """Problems with the dataset's files found without reading them (pgshards: listed files missing, not
        regular or of another size than listed); one line each, for `pgdata info`."""
        return []

    def num_images_at(self, resolution: int) -> int:
        """Image count at one resolution (differs from num_images only in inconsistent legacy files)."""
        return self.num_images

    @abstractmethod
    def image(self, index: int, resolution: int | None = None) -> np.ndarray:
        """One image, uint8 C x H x W."""

    @abstractmethod
    def iter_batches(
        self, resolution: int | None = None, batch_size: int = 256, start: int = 0, stop: int | None = None
    ) -> Iterator[np.ndarray]:
        """Consecutive images [start, stop) as uint8 batches N x C x H x W, in dataset order."""

    def iter_images(self, resolution: int | None = None, start: int = 0, stop: int | None = None):
        for batch in self.iter_batches(resolution, start=start, stop=stop):
            yield from batch

    def check_resolution(self, resolution: int | None) -> int:
        from pgdata.errors import PgdataError

        if resolution is None:
            return self.resolution
        if resolution not in self.resolutions:
            available = ", ".join(str(r) for r in self.resolutions)
            raise PgdataError(f"no {resolution}x{resolution} images (available: {available})", self.path)
        return resolution

    def check_index(self, index: int, resolution: int) -> int:
        """The index itself, or a PgdataError naming the valid range."""
        from pgdata.errors import PgdataError

        count = self.num_images_at(resolution)
        if not 0 <= index < count:
            raise PgdataError(f"image index {index} out of range (0 .. {count - 1})", self.path)
        return index

    def check_range(self, start: int, stop: int | None, resolution: int) -> tuple[int, int]:
        """[start, stop) with stop defaulting to the count, or a PgdataError."""
        from pgdata.errors import PgdataError

        count = self.num_images_at(resolution)
        stop = count if stop is None else stop
        if not 0 <= start <= stop <= count:
            raise PgdataError(f"image range [{start}, {stop}) outside 0 .. {count}", self.path)
        return start, stop

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_regular_file(path: Path) -> BinaryIO:
    """`path` opened for reading, refused (PgdataError) unless it is a regular file.

    Opened with O_NONBLOCK and checked with fstat on the open descriptor: a FIFO or device put where a data
    file belongs is refused at once instead of blocking forever, and nothing can swap the file in between.
    """
    from pgdata.errors import PgdataError

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError as error:
        raise PgdataError("missing", path) from error
    except OSError as error:
        raise PgdataError(f"cannot open: {error.strerror}", path) from error
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise PgdataError("not a regular file", path)
    return os.fdopen(descriptor, "rb")


def read_npy(file: BinaryIO, path: Path) -> np.ndarray:
    """The array in an open .npy file: header first, then exactly the bytes it promises.

    Never loads pickled objects, and allocates no more than the file holds: a forged header cannot ask for
    terabytes, and a file longer or shorter than its header says is refused.
    """
    from numpy.lib import format as npy_format

    from pgdata.errors import PgdataError

    try:
        version = npy_format.read_magic(file)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy version {version[0]}.{version[1]}")
        read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(file)
    except (OSError, ValueError, SyntaxError) as error:
        raise PgdataError(f"not a readable .npy file ({error})", path) from error
    if dtype.hasobject:
        raise PgdataError("the .npy file holds Python objects (pickles are never loaded)", path)
    count = math.prod(shape)
    size = count * dtype.itemsize
    remaining = os.fstat(file.fileno()).st_size - file.tell()
    if remaining != size:
        raise PgdataError(f"the .npy file holds {remaining} bytes of data, its header ({dtype} {shape}) promises "
                          f"{size}", path)
    data = bytearray(size)
    if file.readinto(data) != size:
        raise PgdataError("the .npy file changed while it was read", path)
    array = np.frombuffer(data, dtype=dtype, count=count)
    return array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)


def load_labels_file(path: Path, num_images: int) -> np.ndarray:
    """A legacy `.labels` / `-labels.npy` file as float32 [N, L], checked against the image count."""
    from pgdata.errors import PgdataError

    with open_regular_file(path) as file:
        labels = read_npy(file, path)
    if labels.ndim != 2:
        raise PgdataError(f"labels must be [N, L], got shape {labels.shape}", path)
    if labels.shape[0] != num_images:
        raise PgdataError(f"{labels.shape[0]} label rows for {num_images} images", path)
    return labels.astype(np.float32, copy=False)


class LabelFileReader(DatasetReader):
    """A reader whose labels sit in a legacy side file (`label_file`, or None), loaded on first use."""

    label_file: Path | None = None
    _labels_cache: tuple[np.ndarray | None] | None = None

    def labels(self) -> np.ndarray | None:
        if self._labels_cache is None:
            labels = None if self.label_file is None else load_labels_file(self.label_file, self.num_images)
            self._labels_cache = (labels,)
        return self._labels_cache[0]
