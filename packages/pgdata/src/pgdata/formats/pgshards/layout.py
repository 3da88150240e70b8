"""pgshards v1 layout: where everything lives in a dataset and how a sample is encoded (docs/pgshards.md).

A dataset directory holds manifest.json (written last: its presence means complete), rNN/NNNNNN.tar
webdataset shards per resolution (2**NN pixels) and an optional labels.npy. Shard names, sample sizes and
member names follow from the manifest's numbers alone, so that the writer, the reader and `pgdata verify`
agree on them by calling the same functions.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pgdata.common.images import chw_to_hwc, hwc_to_chw
from pgdata.errors import PgdataError
from pgdata.formats import tarblocks
from pgdata.formats.base import open_regular_file

FORMAT_NAME = "pgshards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LABELS = "labels.npy"
ENCODINGS = ("npy", "png")
MAX_SHARD_BYTES = 256 * 2**20
MAX_SAMPLES_PER_SHARD = 65536
MAX_IMAGES = 10**tarblocks.KEY_DIGITS  # sample keys are "%08d"
PLAIN_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")  # no separators, no "..", not hidden
LEVEL_DIR_NAME = re.compile(r"r[0-9]{2,}")


def level_dir(resolution: int) -> str:
    return "r%02d" % (resolution.bit_length() - 1)


def npy_sample_bytes(channels: int, resolution: int, with_class: bool) -> int:
    """Bytes one sample takes in an npy-encoded shard: fixed, which makes random access arithmetic."""
    npy_size = len(tarblocks.npy_header((channels, resolution, resolution))) + channels * resolution**2
    return (2 * tarblocks.BLOCK if with_class else 0) + tarblocks.BLOCK + tarblocks.padded(npy_size)


def samples_per_shard(channels: int, resolution: int, with_class: bool) -> int:
    """Fixed per resolution so that a shard stays under 256 MiB (for png too: png is never larger)."""
    per_sample = npy_sample_bytes(channels, resolution, with_class)
    return int(max(1, min(MAX_SAMPLES_PER_SHARD, MAX_SHARD_BYTES // per_sample)))


def npy_shard_bytes(samples: int, channels: int, resolution: int, with_class: bool) -> int:
    """Exact size of an npy-encoded shard: the samples, then the end-of-archive padding the writer adds."""
    body = samples * npy_sample_bytes(channels, resolution, with_class)
    return body + len(tarblocks.end_of_archive(body))


def shard_name(resolution: int, number: int) -> str:
    """The only name a shard can have: its level's folder and its position, e.g. "r05/000003.tar"."""
    return f"{level_dir(resolution)}/{number:06d}.tar"


def member_names(first_key: int, samples: int, suffix: str, with_class: bool) -> list[str]:
    """The member names a shard holds, in order: [<key>.cls,] <key><suffix> for each key."""
    suffixes = [".cls", suffix] if with_class else [suffix]
    return ["%08d%s" % (key, ending) for key in range(first_key, first_key + samples) for ending in suffixes]


def encode_png(image: np.ndarray) -> bytes:
    """Deterministic PNG of a C x H x W uint8 image (fixed zlib level, no metadata)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(chw_to_hwc(image)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def decode_png(data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """C x H x W uint8 pixels of a shard's PNG, or ValueError saying what is wrong.

    Format, mode (L or RGB, the two encode_png writes) and size are checked before any pixel is decoded, so a
    forged header cannot make us decode a huge or 16-bit image.
    """
    from PIL import Image

    mode = "L" if shape[0] == 1 else "RGB"
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            found = (image.mode, image.size)
            pixels = np.asarray(image) if found == (mode, (shape[2], shape[1])) else None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise ValueError(f"undecodable PNG ({error})") from error
    if pixels is None:
        raise ValueError(f"{found[0]} {found[1][0]}x{found[1][1]} PNG, expected {mode} {shape[2]}x{shape[1]}")
    return hwc_to_chw(pixels)


@dataclass
class ShardRecord:
    name: str  # relative to the dataset, e.g. "r05/000000.tar"
    samples: int
    bytes: int
    sha256: str

    def as_json(self) -> dict:
        return {"name": self.name, "samples": self.samples, "bytes": self.bytes, "sha256": self.sha256}


def class_indices(labels: np.ndarray) -> np.ndarray | None:
    """Class index per row when every row is one-hot (then shards carry .cls members), else None."""
    if labels.ndim != 2 or labels.shape[0] == 0:
        return None
    ones = labels == 1
    if np.all(ones.sum(axis=1) == 1) and np.all((labels == 0) | ones):
        return labels.argmax(axis=1)
    return None


def open_in_dataset(root: Path, name: str) -> BinaryIO:
    """`root/name` opened for reading: only a regular file that lies inside the dataset directory once symbolic
    links are resolved, so neither a manifest entry nor a link leads the reader elsewhere or into a FIFO."""
    path = root / name
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real == real_root or os.path.commonpath([real_root, real]) != real_root:
        raise PgdataError("leads outside the dataset directory", path)
    try:
        return open_regular_file(Path(real))
    except PgdataError as error:
        raise PgdataError(error.message, path) from error


def first_unexpected_member(names: list[str], expected: list[str]) -> str | None:
    """Where a shard's members differ from the ones its keys call for, or None."""
    for position, (name, wanted) in enumerate(zip(names, expected, strict=False)):
        if name != wanted:
            return f"member {position} is {name!r}, expected {wanted!r}"
    if len(names) != len(expected):
        return f"{len(names)} members, but the manifest's samples make {len(expected)}"
    return None
