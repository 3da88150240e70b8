"""Pieces every raw-dataset source shares: the original's record order, one-hot labels, count checks,
safe pickle loading, and a source over an in-memory array."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pgdata.errors import PgdataError
from pgdata.parallel import ordered_map
from pgdata.sources.base import Source, SourceInfo

#: Records per chunk for sources whose images are already in memory (MNIST, CIFAR, SVHN).
ARRAY_CHUNK = 4096
#: Files per parallel decoding task (image folders, CelebA).
FILES_PER_TASK = 64

T = TypeVar("T")

#: How records are ordered, as recorded in the manifest.
SHUFFLED = "numpy.random.RandomState(123).shuffle(numpy.arange(N)) of the input order"
INPUT_ORDER = "input order"


def shuffled_order(num_images: int) -> np.ndarray:
    """Record k is input image order[k]; matches the official exporter's choose_shuffled_order
    (numpy.random.RandomState(123).shuffle of arange(N))."""
    order = np.arange(num_images)
    np.random.RandomState(123).shuffle(order)
    return order


def one_hot(labels: np.ndarray, num_classes: int, path: str | Path) -> np.ndarray:
    """float32 [N, max(label)+1] one-hot rows, as the original builds them; labels outside
    0..num_classes-1 are refused (the original asserts the range)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise PgdataError(f"labels must be a non-empty list of integers, got {labels.dtype} {labels.shape}", path)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise PgdataError(f"labels must lie in 0..{num_classes - 1}, found {low}..{high}", path)
    rows = np.zeros((labels.size, high + 1), dtype=np.float32)
    rows[np.arange(labels.size), labels] = 1.0
    return rows


def check_count(actual: int, expected: int, what: str, path: str | Path, subset: bool) -> list[str]:
    """The original refuses anything but the full dataset; with --subset that becomes a warning."""
    if actual == expected:
        return []
    message = f"found {actual} images, the full {what} has {expected}"
    if not subset:
        raise PgdataError(f"{message}; pass --subset to build from a partial copy", path)
    return [f"{path}: {message} (--subset: building from what is there)"]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a downloaded pickle cannot run code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are expected)")
        return super().find_class(module, name)


def load_pickle(path: Path) -> Any:
    """Read a dataset pickle as the original does (encoding='latin1'), refusing anything but numpy data."""
    if not path.is_file():
        raise PgdataError("file missing", path)
    try:
        with open(path, "rb") as file:
            return _NumpyOnlyUnpickler(file, encoding="latin1").load()
    except PgdataError:
        raise
    except MemoryError as error:  # an opcode claiming an absurd length (a damaged file), or a machine too small
        raise PgdataError(f"cannot read pickle: it asks for more memory than this machine has (the file has "
                          f"{path.stat().st_size} bytes: damaged?)", path) from error
    except Exception as error:  # truncated or corrupt pickles raise many types
        raise PgdataError(f"cannot read pickle: {type(error).__name__}: {error}", path) from error


def chunks_of(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for begin in range(0, len(items), size):
        yield items[begin : begin + size]


def parallel_chunks(decode_chunk: Callable[[Sequence[T]], np.ndarray], items: Sequence[T],
                    size: int = FILES_PER_TASK, workers: int | None = None) -> Iterator[np.ndarray]:
    """decode_chunk over consecutive slices of items, in worker processes, in order (small jobs inline)."""
    if workers is None and len(items) <= size:
        workers = 1
    yield from ordered_map(decode_chunk, chunks_of(items, size), workers=workers)


class ArraySource(Source):
    """Records taken from an in-memory uint8 [N, C, R, R] array in a given order (MNIST, CIFAR, SVHN)."""

    def __init__(self, name: str, images: np.ndarray, order: np.ndarray, labels: np.ndarray | None,
                 warnings: Iterable[str] = (), record_order: str = SHUFFLED):
        self.record_order = record_order
        self.images = images
        self.order = order
        self._labels = None if labels is None else np.ascontiguousarray(labels[order], dtype=np.float32)
        self._warnings = list(warnings)
        self.info = SourceInfo(name, images.shape[1], images.shape[2], len(order))

    def iter_chunks(self, start: int = 0) -> Iterator[np.ndarray]:
        for begin in range(start, len(self.order), ARRAY_CHUNK):
            yield np.ascontiguousarray(self.images[self.order[begin : begin + ARRAY_CHUNK]])

    @property
    def labels(self) -> np.ndarray | None:
        return self._labels

    def warnings(self) -> list[str]:
        return list(self._warnings)
