"""MNIST (create_mnist) and MNIST-RGB (create_mnistrgb) from the gzip IDX files."""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pgdata.errors import PgdataError
from pgdata.sources.base import Source, SourceInfo
from pgdata.sources.common import ArraySource, check_count, one_hot, shuffled_order

IMAGES_FILE = "train-images-idx3-ubyte.gz"
LABELS_FILE = "train-labels-idx1-ubyte.gz"
FULL_SIZE = 60000
#: MNIST-RGB images generated per chunk (3 x 32 x 32 bytes each: 12 MiB per chunk).
RGB_CHUNK = 4096


def _read_gzip(path: Path) -> bytes:
    if not path.is_file():
        raise PgdataError("file missing (expected the gzip IDX file of the MNIST training set)", path)
    try:
        with gzip.open(path, "rb") as file:
            return file.read()
    except (OSError, EOFError, zlib.error) as error:
        raise PgdataError(f"cannot read gzip data: {error}", path) from error


def _idx_payload(path: Path, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    """The bytes after the IDX header. Matches the official code, which skips the header (images from
    byte 16, labels from byte 8) instead of parsing it; we read the header only to refuse a file whose
    header does not describe its data (a truncated or foreign file, or images of another size)."""
    data = _read_gzip(path)
    header_size = 4 * (2 + len(item_shape))
    if len(data) < header_size:
        raise PgdataError(f"too short for an IDX file ({len(data)} bytes)", path)
    header = [int(value) for value in np.frombuffer(data, ">u4", count=header_size // 4)]
    if header[0] != magic:
        raise PgdataError(f"not an IDX file of the expected kind (magic {header[0]:#010x}, "
                          f"expected {magic:#010x})", path)
    if tuple(header[2:]) != item_shape:
        raise PgdataError(f"holds items of shape {header[2:]}, expected {list(item_shape)} (not the MNIST "
                          f"training set)", path)
    payload = np.frombuffer(data, np.uint8, offset=header_size)
    count, item_size = header[1], math.prod(item_shape)
    if payload.size != count * item_size:
        raise PgdataError(f"header says {count} items of {item_size} bytes but the file holds "
                          f"{payload.size} bytes of data (truncated?)", path)
    return payload


def load_digits(mnist_dir: str | Path) -> np.ndarray:
    """uint8 [N, 32, 32]: the 28x28 digits padded with 2 zero pixels on every side, as the original does."""
    path = Path(mnist_dir) / IMAGES_FILE
    digits = _idx_payload(path, 0x00000803, (28, 28)).reshape(-1, 28, 28)
    if len(digits) == 0:
        raise PgdataError("holds no images", path)
    return np.pad(digits, [(0, 0), (2, 2), (2, 2)], mode="constant", constant_values=0)


def load_labels(mnist_dir: str | Path) -> np.ndarray:
    return _idx_payload(Path(mnist_dir) / LABELS_FILE, 0x00000801, ())


class MnistSource(ArraySource):
    """create_mnist: 1 x 32 x 32 digits with one-hot labels, in the shuffled order."""

    def __init__(self, mnist_dir: str | Path, subset: bool = False):
        mnist_dir = Path(mnist_dir)
        digits = load_digits(mnist_dir)
        labels = load_labels(mnist_dir)
        if labels.size != len(digits):
            raise PgdataError(f"holds {labels.size} labels for {len(digits)} images", mnist_dir / LABELS_FILE)
        warnings = check_count(len(digits), FULL_SIZE, "MNIST training set", mnist_dir / IMAGES_FILE, subset)
        onehot = one_hot(labels, 10, mnist_dir / LABELS_FILE)
        super().__init__("mnist", digits[:, None], shuffled_order(len(digits)), onehot, warnings)


class MnistRgbSource(Source):
    """create_mnistrgb: each image stacks three random digits as its R, G, B planes; no labels.

    Matches the official code: one RandomState(random_seed).randint(N, size=3) call per image, in order.
    We draw randint(N, size=(k, 3)) per chunk, which gives the same stream (checked for several N and
    seeds in tests), and generate images lazily so a million of them never sit in memory.
    """

    def __init__(self, mnist_dir: str | Path, num_images: int = 1000000, random_seed: int = 123,
                 subset: bool = False):
        if num_images < 1:
            raise PgdataError(f"--num_images must be at least 1, got {num_images}")
        self.digits = load_digits(mnist_dir)
        self._warnings = check_count(len(self.digits), FULL_SIZE, "MNIST training set",
                                     Path(mnist_dir) / IMAGES_FILE, subset)
        self.random_seed = random_seed
        self.record_order = f"generated: RandomState({random_seed}).randint(N, size=3) digits per image"
        self.info = SourceInfo("mnistrgb", 3, 32, num_images)

    def iter_chunks(self, start: int = 0) -> Iterator[np.ndarray]:
        random = np.random.RandomState(self.random_seed)
        total = self.info.num_images
        done = 0
        while done < total:
            count = min(RGB_CHUNK, total - done)
            picks = random.randint(len(self.digits), size=(count, 3))
            if done + count > start:
                skip = max(0, start - done)
                yield self.digits[picks[skip:]]
            done += count

    def warnings(self) -> list[str]:
        return list(self._warnings)
