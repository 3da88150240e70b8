"""pgshards v1: the layout, the manifest, the shard writer and the reader.

A dataset directory holds manifest.json (written last: its presence means complete), rNN/NNNNNN.tar
webdataset shards per resolution (2**NN pixels) and an optional labels.npy. See docs/pgshards.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NoReturn

import numpy as np

from pgdata import __version__
from pgdata.errors import PgdataError
from pgdata.formats import tarblocks
from pgdata.formats.base import DatasetReader, open_regular_file, read_npy
from pgdata.hashing import CHUNK_BYTES

FORMAT_NAME = "pgshards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LABELS = "labels.npy"
ENCODINGS = ("npy", "png")
MAX_SHARD_BYTES = 256 * 2**20
MAX_SAMPLES_PER_SHARD = 65536
LARGE_IMAGE_BYTES = 256 * 1024  # from here on the reader preads images instead of copying from the memmap
MAX_IMAGES = 10**tarblocks.KEY_DIGITS  # sample keys are "%08d"
MAX_MANIFEST_BYTES = 256 * 2**20  # a manifest of 10**8 images at 1024x1024 is about 100 MiB
PLAIN_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")  # no separators, no "..", not hidden
LEVEL_DIR_NAME = re.compile(r"r[0-9]{2,}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


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

    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=6)
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
        raise ValueError(f"undecodable PNG ({error})") from None
    if pixels is None:
        raise ValueError(f"{found[0]} {found[1][0]}x{found[1][1]} PNG, expected {mode} {shape[2]}x{shape[1]}")
    return np.ascontiguousarray(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))


@dataclass
class ShardRecord:
    name: str  # relative to the dataset, e.g. "r05/000000.tar"
    samples: int
    bytes: int
    sha256: str

    def as_json(self) -> dict:
        return {"name": self.name, "samples": self.samples, "bytes": self.bytes, "sha256": self.sha256}


@dataclass
class ShardSetWriter:
    """Writes one resolution's samples into fixed-size shards; a shard is renamed from .tmp when full.

    `skip_below`: samples with a smaller index are already on disk in complete shards (resume) and are
    dropped here, so a resumed build writes exactly the bytes of an uninterrupted one.
    `on_shard`: called with each shard's record (name, samples, bytes, sha256) right after the shard is renamed
    into place, on the thread that writes it; e.g. to log the sha256 so that --resume can check kept shards.
    """

    root: Path
    resolution: int
    channels: int
    encoding: str
    with_class: bool
    skip_below: int = 0
    shards: list[ShardRecord] = field(default_factory=list)
    on_shard: Callable[[ShardRecord], None] | None = None

    def __post_init__(self) -> None:
        self.per_shard = samples_per_shard(self.channels, self.resolution, self.with_class)
        self.directory = self.root / level_dir(self.resolution)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._npy_header = tarblocks.npy_header((self.channels, self.resolution, self.resolution))
        self._npy_size = len(self._npy_header) + self.channels * self.resolution**2
        self._file = None
        self._digest = None
        self._written = 0
        self._in_shard = 0
        self._next_index = self.skip_below

    def shard_name(self, number: int) -> str:
        return shard_name(self.resolution, number)

    def add(self, first_index: int, images: np.ndarray, digits: np.ndarray, class_blocks: np.ndarray | None):
        """Append samples first_index .. first_index + len(images) - 1 (consecutive, in order)."""
        begin = max(0, self.skip_below - first_index)
        if begin >= len(images):
            return
        if first_index + begin != self._next_index:
            raise RuntimeError("samples must arrive consecutively")
        position = begin
        while position < len(images):
            if self._file is None:
                self._open(self._next_index // self.per_shard)
            take = min(len(images) - position, self.per_shard - self._in_shard)
            part = slice(position, position + take)
            self._write(self._encode(images[part], digits[part], None if class_blocks is None else class_blocks[part]))
            self._in_shard += take
            self._next_index += take
            position += take
            if self._in_shard == self.per_shard:
                self._close()

    def _encode(self, images: np.ndarray, digits: np.ndarray, class_blocks: np.ndarray | None) -> bytes:
        n = len(images)
        if self.encoding == "npy":
            stride = npy_sample_bytes(self.channels, self.resolution, self.with_class)
            rows = np.zeros((n, stride), dtype=np.uint8)
            offset = 0
            if class_blocks is not None:
                rows[:, :2 * tarblocks.BLOCK] = class_blocks
                offset = 2 * tarblocks.BLOCK
            rows[:, offset:offset + tarblocks.BLOCK] = tarblocks.member_headers(digits, b".npy", self._npy_size)
            offset += tarblocks.BLOCK
            rows[:, offset:offset + len(self._npy_header)] = np.frombuffer(self._npy_header, dtype=np.uint8)
            offset += len(self._npy_header)
            rows[:, offset:offset + images[0].size] = images.reshape(n, -1)
            return rows.tobytes()
        parts = []
        for i in range(n):
            if class_blocks is not None:
                parts.append(class_blocks[i].tobytes())
            png = encode_png(images[i])
            parts.append(tarblocks.member_headers(digits[i:i + 1], b".png", len(png)).tobytes())
            parts.append(png + bytes(tarblocks.padded(len(png)) - len(png)))
        return b"".join(parts)

    def _open(self, number: int) -> None:
        self._number = number
        self._path = self.root / (self.shard_name(number) + ".tmp")
        self._file = open(self._path, "wb")
        self._digest = hashlib.sha256()
        self._written = 0
        self._in_shard = 0

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._digest.update(data)
        self._written += len(data)

    def _close(self) -> None:
        self._write(tarblocks.end_of_archive(self._written))
        # No fsync per shard: on this class of disk it costs more than building (a CIFAR-10 build waits
        # 1.6 s on it and computes for 1 s). The rename keeps the build atomic against the process dying;
        # after a power failure `pgdata verify` finds damaged shards and --resume keeps only full ones.
        self._file.close()
        self._file = None
        final = self.root / self.shard_name(self._number)
        os.replace(self._path, final)
        record = ShardRecord(self.shard_name(self._number), self._in_shard, self._written, self._digest.hexdigest())
        self.shards.append(record)
        if self.on_shard is not None:
            self.on_shard(record)

    def finish(self) -> None:
        if self._file is not None:
            self._close()

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def complete_shards(root: Path, resolution: int, channels: int, with_class: bool) -> list[ShardRecord]:
    """Consecutive full (renamed) shards of one resolution in a partial build, for --resume.

    Only full shards are kept: a shard that holds fewer samples or does not parse (e.g. after a power
    failure) is removed, and everything from it on is written again.
    """
    per_shard = samples_per_shard(channels, resolution, with_class)
    records = []
    number = 0
    while True:
        name = shard_name(resolution, number)
        path = root / name
        if not path.is_file():
            break
        with open(path, "rb") as file:
            data = file.read()
        try:
            members = tarblocks.scan_members(data)
        except ValueError:
            path.unlink()
            break
        samples = len({member[0].split(".", 1)[0] for member in members})
        if samples != per_shard:
            path.unlink()  # a short shard can only be a resolution's last: cheap to write again
            break
        records.append(ShardRecord(name, samples, len(data), hashlib.sha256(data).hexdigest()))
        number += 1
    return records


def write_json_atomically(path: Path, content: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(content, file, indent=1, sort_keys=True)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def build_manifest(*, name: str, num_images: int, channels: int, resolution: int, encoding: str,
                   labels: dict | None, levels: dict[int, list[ShardRecord]], command: str,
                   arguments: dict, record_order: str) -> dict:
    """The manifest: everything needed to read and verify, nothing that varies between rebuilds."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "name": name,
        "num_images": num_images,
        "channels": channels,
        "resolution": resolution,
        "encoding": encoding,
        "label_size": 0 if labels is None else labels["shape"][1],
        "record_order": record_order,
        "labels": labels,
        "resolutions": {
            level_dir(r): {
                "resolution": r,
                "samples_per_shard": samples_per_shard(channels, r, labels is not None and labels["classes"]),
                "shards": [shard.as_json() for shard in shards],
            }
            for r, shards in sorted(levels.items())
        },
        "producer": {"tool": "pgdata", "version": __version__, "command": command, "arguments": arguments},
    }


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
        raise PgdataError(error.message, path) from None


def load_manifest(path: Path) -> dict:
    """The manifest of the dataset at `path`, refused in one line unless it is sound (see check_manifest)."""
    manifest_path = path / MANIFEST
    if not os.path.lexists(manifest_path):
        raise PgdataError("not a complete pgshards dataset (manifest.json missing)", path)
    with open_in_dataset(path, MANIFEST) as file:
        size = os.fstat(file.fileno()).st_size
        if size > MAX_MANIFEST_BYTES:
            raise PgdataError(f"unreadable manifest: {size} bytes, far more than a manifest holds", manifest_path)
        try:
            manifest = json.loads(file.read().decode("utf-8"))
        except (OSError, ValueError, RecursionError) as error:
            raise PgdataError(f"unreadable manifest: {error}", manifest_path) from None
    return check_manifest(manifest, manifest_path)


# --- the manifest's structure ---------------------------------------------------------------------------

_KIND_NAMES = {int: "an integer", str: "a string", bool: "true or false", list: "a list", dict: "an object"}


def _shown(value: object, limit: int = 200) -> str:
    """A manifest value for an error line: its repr (one line), shortened when long."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _Fields:
    """One JSON object of a manifest, read field by field; each failure names the manifest and the field."""

    def __init__(self, value: object, where: str, manifest_path: Path):
        self.where = where
        self.manifest_path = manifest_path
        if not isinstance(value, dict):
            raise PgdataError(f"{where}: must be an object, not {_shown(value)}", manifest_path)
        self.value = value

    def fail(self, key: str, problem: str) -> NoReturn:
        where = f"{self.where}.{key}" if self.where else key
        raise PgdataError(f"{where}: {problem}", self.manifest_path)

    def get(self, key: str, kind: type):
        """The field, of type `kind` (JSON true/false is not an integer here)."""
        if key not in self.value:
            self.fail(key, "missing")
        value = self.value[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.fail(key, f"must be {_KIND_NAMES[kind]}, not {_shown(value)}")
        return value

    def count(self, key: str, low: int, high: int | None = None) -> int:
        value = self.get(key, int)
        if value < low or (high is not None and value > high):
            self.fail(key, f"{value} is outside {low} .. {'' if high is None else high}".rstrip())
        return value

    def child(self, key: str) -> _Fields:
        return _Fields(self.get(key, dict), f"{self.where}.{key}" if self.where else key, self.manifest_path)


def check_manifest(manifest: object, manifest_path: Path) -> dict:
    """`manifest` once it is sound enough to read by; PgdataError names the first bad field.

    Cheap (no file is opened): every field present and of its type; every resolution from 4x4 up to the full one
    and no other; in each, as many shards as num_images and samples_per_shard make, named rNN/NNNNNN.tar in order
    (plain files inside the dataset), each with its sample count, a sha256 and, for npy, the exact size its
    samples take; labels named by a plain file name and shaped [num_images, label_size].
    """
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME or \
            manifest.get("version") != FORMAT_VERSION:
        raise PgdataError(f"not a pgshards v{FORMAT_VERSION} manifest", manifest_path)
    top = _Fields(manifest, "", manifest_path)
    for key in ("name", "record_order", "encoding"):
        top.get(key, str)
    top.get("producer", dict)
    if manifest["encoding"] not in ENCODINGS:
        top.fail("encoding", f"{_shown(manifest['encoding'])} is not one of {', '.join(ENCODINGS)}")
    num_images = top.count("num_images", 0, MAX_IMAGES - 1)
    if top.get("channels", int) not in (1, 3):
        top.fail("channels", f"{manifest['channels']}, expected 1 or 3")
    resolution = top.count("resolution", 4)
    if resolution & (resolution - 1):
        top.fail("resolution", f"{resolution} is not a power of two")
    with_class = _check_labels_entry(top, num_images, top.count("label_size", 0))
    levels = top.child("resolutions")
    expected = {level_dir(4 << k): 4 << k for k in range(resolution.bit_length() - 2)}
    for name in levels.value:
        if name not in expected:
            levels.fail(name, f"not a resolution of a {resolution}x{resolution} dataset")
    for name, level_resolution in expected.items():
        if name not in levels.value:
            levels.fail(name, f"missing (every resolution from 4x4 to {resolution}x{resolution} is needed)")
        _check_level(levels.child(name), level_resolution, manifest, with_class)
    return manifest


def _check_labels_entry(top: _Fields, num_images: int, label_size: int) -> bool:
    """The labels entry (null, or file, shape, sha256, classes); returns whether shards hold .cls members."""
    if "labels" not in top.value:
        top.fail("labels", "missing")
    if top.value["labels"] is None:
        if label_size:
            top.fail("label_size", f"{label_size}, but no labels file is listed")
        return False
    labels = top.child("labels")
    name = labels.get("file", str)
    if not PLAIN_FILE_NAME.fullmatch(name) or name == MANIFEST or LEVEL_DIR_NAME.fullmatch(name):
        labels.fail("file", f"{_shown(name)} is not a plain file name inside the dataset")
    shape = labels.get("shape", list)
    if len(shape) != 2 or any(type(size) is not int for size in shape) or shape != [num_images, label_size]:
        labels.fail("shape", f"{_shown(shape)}, expected [num_images, label_size] = [{num_images}, {label_size}]")
    digest = labels.value.get("sha256")
    if digest is not None and not (isinstance(digest, str) and SHA256_HEX.fullmatch(digest)):
        labels.fail("sha256", f"{_shown(digest)} is not a sha256 (64 lowercase hex digits)")
    classes = labels.get("classes", bool)
    if classes and not label_size:
        labels.fail("classes", "true, but label_size is 0")
    return classes


def _check_level(level: _Fields, resolution: int, manifest: dict, with_class: bool) -> None:
    if level.get("resolution", int) != resolution:
        level.fail("resolution", f"{level.value['resolution']}, expected {resolution}")
    per_shard = level.count("samples_per_shard", 1, MAX_IMAGES)
    shards = level.get("shards", list)
    num_images = manifest["num_images"]
    count = -(-num_images // per_shard)
    if len(shards) != count:
        level.fail("shards", f"{len(shards)} listed, but {num_images} images at {per_shard} per shard make {count}")
    for number, shard in enumerate(shards):
        entry = _Fields(shard, f"{level.where}.shards[{number}]", level.manifest_path)
        _check_shard_entry(entry, resolution, number, min(per_shard, num_images - number * per_shard), manifest,
                           with_class)


def _check_shard_entry(entry: _Fields, resolution: int, number: int, samples: int, manifest: dict,
                       with_class: bool) -> None:
    name = entry.get("name", str)
    if name != shard_name(resolution, number):
        entry.fail("name", f"{_shown(name)} is not {shard_name(resolution, number)} (shards are plain files inside "
                           "the dataset, named in order)")
    if entry.get("samples", int) != samples:
        entry.fail("samples", f"{entry.value['samples']}, but num_images and samples_per_shard make {samples}")
    size = entry.count("bytes", 1)
    channels = manifest["channels"]
    if manifest["encoding"] == "npy" and size != npy_shard_bytes(samples, channels, resolution, with_class):
        entry.fail("bytes", f"{size}, but {samples} npy samples of {channels}x{resolution}x{resolution}"
                            f"{' with classes' if with_class else ''} take "
                            f"{npy_shard_bytes(samples, channels, resolution, with_class)}")
    if not SHA256_HEX.fullmatch(entry.get("sha256", str)):
        entry.fail("sha256", f"{_shown(entry.value['sha256'])} is not a sha256 (64 lowercase hex digits)")


# --- reading --------------------------------------------------------------------------------------------


def _first_unexpected(names: list[str], expected: list[str]) -> str | None:
    """Where a shard's members differ from the ones its keys call for, or None."""
    for position, (name, wanted) in enumerate(zip(names, expected, strict=False)):
        if name != wanted:
            return f"member {position} is {name!r}, expected {wanted!r}"
    if len(names) != len(expected):
        return f"{len(names)} members, but the manifest's samples make {len(expected)}"
    return None


def read_labels(file: BinaryIO, entry: dict, path: Path) -> np.ndarray:
    """float32 labels from an open labels file, shaped as the manifest's entry says."""
    labels = read_npy(file, path)
    if labels.dtype != np.float32 or list(labels.shape) != entry["shape"]:
        raise PgdataError(f"labels are {labels.dtype} {list(labels.shape)}, the manifest says float32 "
                          f"{entry['shape']}", path)
    return labels


class _Shard:
    """One shard opened for reading: memory-mapped once its size matches the manifest, with every sample's offset."""

    def __init__(self, root: Path, entry: dict, encoding: str, shape: tuple[int, int, int], first_key: int,
                 with_class: bool):
        self.root = root
        self.name = entry["name"]
        self.path = root / self.name
        self.samples = entry["samples"]
        self.encoding = encoding
        self.shape = shape
        self.first_key = first_key
        with open_in_dataset(root, self.name) as file:
            size = os.fstat(file.fileno()).st_size
            if size != entry["bytes"]:
                raise PgdataError(f"shard holds {size} bytes, the manifest says {entry['bytes']}", self.path)
            try:
                self.data = np.memmap(file, dtype=np.uint8, mode="r")
            except (OSError, ValueError) as error:
                raise PgdataError(f"cannot open shard: {error}", self.path) from None
        if encoding == "npy":
            self._index_npy(with_class)
        else:
            self._index_scan(with_class)

    def _index_npy(self, with_class: bool) -> None:
        """Fixed-size samples: validate the first and last sample's members, then index by arithmetic."""
        channels, height, width = self.shape
        header = tarblocks.npy_header(self.shape)
        self.stride = npy_sample_bytes(channels, height, with_class)
        self.base = (2 * tarblocks.BLOCK if with_class else 0) + tarblocks.BLOCK + len(header)
        if len(self.data) < self.samples * self.stride:
            raise PgdataError("shard is truncated", self.path)
        for sample in {0, self.samples - 1}:
            key = self.first_key + sample
            start = sample * self.stride
            if with_class:
                self._expect_member(start, "%08d.cls" % key)
                start += 2 * tarblocks.BLOCK
            self._expect_member(start, "%08d.npy" % key)
            if bytes(self.data[start + tarblocks.BLOCK:start + tarblocks.BLOCK + len(header)]) != header:
                raise PgdataError(f"corrupt shard: {key:08d}.npy is not a uint8 {channels}x{height}x{width} array",
                                  self.path)

    def _expect_member(self, offset: int, expected: str) -> None:
        try:
            name, _ = tarblocks.parse_header(bytes(self.data[offset:offset + tarblocks.BLOCK]))
        except ValueError as error:
            raise PgdataError(f"corrupt shard: {error}", self.path) from None
        if name != expected:
            raise PgdataError(f"corrupt shard: unexpected member {name!r} where {expected!r} belongs", self.path)

    def _index_scan(self, with_class: bool) -> None:
        try:
            members = tarblocks.scan_members(memoryview(self.data))
        except ValueError as error:
            raise PgdataError(f"corrupt shard: {error}", self.path) from None
        expected = member_names(self.first_key, self.samples, "." + self.encoding, with_class)
        problem = _first_unexpected([name for name, _, _ in members], expected)
        if problem is not None:
            raise PgdataError(f"corrupt shard: {problem}", self.path)
        self.offsets = [(offset, size) for name, offset, size in members if name.endswith("." + self.encoding)]

    def images(self, start: int, stop: int) -> np.ndarray:
        if self.encoding == "npy" and self.shape[0] * self.shape[1] * self.shape[2] >= LARGE_IMAGE_BYTES:
            return self._read_large(start, stop)
        if self.encoding == "npy":
            view = np.ndarray((self.samples, *self.shape), dtype=np.uint8, buffer=self.data, offset=self.base,
                              strides=(self.stride, self.shape[1] * self.shape[2], self.shape[2], 1))
            return np.array(view[start:stop])
        return np.stack([self.png_image(i) for i in range(start, stop)]) if stop > start else \
            np.zeros((0, *self.shape), np.uint8)

    def _read_large(self, start: int, stop: int) -> np.ndarray:
        """Large images: one pread straight into the result per image, instead of faulting in the memmap's
        pages one by one (4x faster at 1024^2)."""
        out = np.empty((max(0, stop - start), *self.shape), dtype=np.uint8)
        with open_in_dataset(self.root, self.name) as file:
            for position, sample in enumerate(range(start, stop)):
                target = memoryview(out[position]).cast("B")
                if os.preadv(file.fileno(), [target], sample * self.stride + self.base) != len(target):
                    raise PgdataError(f"shard is truncated at sample {sample}", self.path)
        return out

    def png_image(self, sample: int) -> np.ndarray:
        offset, size = self.offsets[sample]
        try:
            return decode_png(bytes(self.data[offset:offset + size]), self.shape)
        except ValueError as error:
            raise PgdataError(f"sample {self.first_key + sample:08d}: {error}", self.path) from None


class PgshardsReader(DatasetReader):
    """Reads a pgshards dataset: O(1) random access for npy shards, strided copies for sequential reads.

    The manifest is checked when the reader opens (check_manifest), each shard when it is first used (a
    regular file inside the dataset, of the listed size, with the members its keys call for).
    """

    format_name = FORMAT_NAME

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.manifest = load_manifest(self.path)
        self._levels = {level["resolution"]: level for level in self.manifest["resolutions"].values()}
        self._with_class = self.manifest["labels"] is not None and self.manifest["labels"]["classes"]
        self._shards: dict[tuple[int, int], _Shard] = {}
        self._labels: np.ndarray | None = None

    @property
    def num_images(self) -> int:
        return self.manifest["num_images"]

    @property
    def channels(self) -> int:
        return self.manifest["channels"]

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(sorted(self._levels))

    @property
    def label_size(self) -> int:
        return self.manifest["label_size"]

    def labels(self) -> np.ndarray | None:
        entry = self.manifest["labels"]
        if entry is None:
            return None
        if self._labels is None:
            with open_in_dataset(self.path, entry["file"]) as file:
                self._labels = read_labels(file, entry, self.path / entry["file"])
        return self._labels

    def listed_files(self) -> list[tuple[str, int | None]]:
        """(name, bytes) of every file the manifest lists: the shards, then the labels (size not listed)."""
        files = [(shard["name"], shard["bytes"]) for level in self.manifest["resolutions"].values()
                 for shard in level["shards"]]
        if self.manifest["labels"] is not None:
            files.append((self.manifest["labels"]["file"], None))
        return files

    def storage_problems(self) -> list[str]:
        """Listed files that are missing, not regular files, outside the dataset or of another size than
        listed; one line each. Cheap: every file is opened, none is read."""
        problems = []
        for name, listed_size in self.listed_files():
            try:
                with open_in_dataset(self.path, name) as file:
                    size = os.fstat(file.fileno()).st_size
            except PgdataError as error:
                problems.append(str(error))
                continue
            if listed_size is not None and size != listed_size:
                problems.append(f"{self.path / name}: {size} bytes, the manifest says {listed_size}")
        return problems

    def _shard(self, resolution: int, number: int) -> _Shard:
        key = (resolution, number)
        if key not in self._shards:
            level = self._levels[resolution]
            self._shards[key] = _Shard(self.path, level["shards"][number], self.manifest["encoding"],
                                       (self.channels, resolution, resolution),
                                       number * level["samples_per_shard"], self._with_class)
        return self._shards[key]

    def image(self, index: int, resolution: int | None = None) -> np.ndarray:
        resolution = self.check_resolution(resolution)
        index = self.check_index(index, resolution)
        per_shard = self._levels[resolution]["samples_per_shard"]
        shard = self._shard(resolution, index // per_shard)
        return shard.images(index % per_shard, index % per_shard + 1)[0]

    def images(self, indices: np.ndarray, resolution: int | None = None) -> np.ndarray:
        """Gather arbitrary indices (random minibatches) into one batch N x C x H x W."""
        resolution = self.check_resolution(resolution)
        out = np.empty((len(indices), self.channels, resolution, resolution), dtype=np.uint8)
        for position, index in enumerate(indices):
            out[position] = self.image(int(index), resolution)
        return out

    def iter_batches(self, resolution: int | None = None, batch_size: int = 256, start: int = 0,
                     stop: int | None = None) -> Iterator[np.ndarray]:
        resolution = self.check_resolution(resolution)
        start, stop = self.check_range(start, stop, resolution)
        per_shard = self._levels[resolution]["samples_per_shard"]
        index = start
        while index < stop:
            shard = self._shard(resolution, index // per_shard)
            first = index % per_shard
            last = min(shard.samples, first + batch_size, first + stop - index)
            yield shard.images(first, last)
            index += last - first

    def close(self) -> None:
        self._shards.clear()


# --- verify ---------------------------------------------------------------------------------------------


def verify_pgshards(path: str | Path, progress: Callable[[int], None] | None = None) -> list[str]:
    """Everything about a dataset that can be checked; one line per problem, none when it is sound.

    The manifest's structure (check_manifest); every listed file a regular file inside the dataset with its
    size and sha256; every sample decoded and checked against the manifest (check_samples); the labels' shape,
    dtype and sha256, one-hot exactly when shards hold classes; no unlisted file where shards live.
    `progress` is called with each shard's sample count once it is checked.
    """
    path = Path(path)
    try:
        manifest = load_manifest(path)
    except PgdataError as error:
        return [str(error)]
    labels, problems = _verify_labels(path, manifest)
    classes = labels.argmax(axis=1) if labels is not None and manifest["labels"]["classes"] else None
    for level in manifest["resolutions"].values():
        for number, entry in enumerate(level["shards"]):
            problem = _verify_shard(path, manifest, level, number, classes)
            if problem is not None:
                problems.append(problem)
            if progress is not None:
                progress(entry["samples"])
    return problems + _unlisted_files(path, manifest)


def _file_sha256(file: BinaryIO) -> str:
    """sha256 of an open file from its start. (pgdata.hashing.file_sha256 opens a path itself, which would give up
    the regular-file check made on this descriptor.)"""
    digest = hashlib.sha256()
    file.seek(0)
    while block := file.read(CHUNK_BYTES):
        digest.update(block)
    return digest.hexdigest()


def _sha256_problem(path: Path, actual: str, listed: str) -> str:
    return f"{path}: sha256 {actual[:16]}… differs from the manifest's {listed[:16]}…"


def _verify_labels(root: Path, manifest: dict) -> tuple[np.ndarray | None, list[str]]:
    """The labels (None when absent or faulty) and the problems found with them."""
    from pgdata.exporter import class_indices

    entry = manifest["labels"]
    if entry is None:
        return None, []
    path = root / entry["file"]
    try:
        with open_in_dataset(root, entry["file"]) as file:
            if entry.get("sha256") is not None:
                actual = _file_sha256(file)
                if actual != entry["sha256"]:
                    return None, [_sha256_problem(path, actual, entry["sha256"])]
                file.seek(0)
            labels = read_labels(file, entry, path)
    except PgdataError as error:
        return None, [str(error)]
    one_hot = class_indices(labels) is not None
    if one_hot != entry["classes"]:
        return None, [f"{path}: the rows are {'' if one_hot else 'not '}one-hot, but the manifest's labels.classes "
                      f"is {str(entry['classes']).lower()} (shards hold .cls members exactly when every row is one-hot)"]
    return labels, []


def _verify_shard(root: Path, manifest: dict, level: dict, number: int, classes: np.ndarray | None) -> str | None:
    entry = level["shards"][number]
    path = root / entry["name"]
    try:
        with open_in_dataset(root, entry["name"]) as file:
            size = os.fstat(file.fileno()).st_size
            if size != entry["bytes"]:
                return f"{path}: {size} bytes, the manifest says {entry['bytes']}"
            actual = _file_sha256(file)
            if actual != entry["sha256"]:
                return _sha256_problem(path, actual, entry["sha256"])
            data = np.memmap(file, dtype=np.uint8, mode="r")
    except PgdataError as error:
        return str(error)
    except (OSError, ValueError) as error:
        return f"{path}: cannot read: {error}"
    shape = (manifest["channels"], level["resolution"], level["resolution"])
    with_class = manifest["labels"] is not None and manifest["labels"]["classes"]
    try:
        check_samples(data, manifest["encoding"], shape, number * level["samples_per_shard"], entry["samples"],
                      with_class, classes)
    except ValueError as error:
        return f"{path}: {error}"
    return None


def check_samples(data, encoding: str, shape: tuple[int, int, int], first_key: int, samples: int, with_class: bool,
                  classes: np.ndarray | None) -> None:
    """Every sample of a shard decoded and checked against the manifest; ValueError names the first bad one.

    The members are exactly [<key>.cls,] <key>.<encoding> for the shard's keys, in order; an .npy member is a
    uint8 C x H x W array with the header pgdata writes; a .png decodes to that mode and size; a .cls holds the
    decimal class of the labels' row (`classes`, when known); padding is zero, and after the last member come
    only the zero blocks that end a tar archive, up to a whole 10240-byte record.
    """
    view = memoryview(data)  # slicing a memmap costs microseconds per member, a memoryview next to nothing
    try:
        members = tarblocks.scan_members(view)
    except ValueError as error:
        raise ValueError(f"not a readable tar file ({error})") from None
    problem = _first_unexpected([name for name, _, _ in members],
                                member_names(first_key, samples, "." + encoding, with_class))
    if problem is not None:
        raise ValueError(problem)
    header = tarblocks.npy_header(shape)
    npy_size = len(header) + shape[0] * shape[1] * shape[2]
    class_list = None if classes is None else classes.tolist()
    for name, offset, size in members:
        try:
            if name.endswith(".cls"):
                _check_class(bytes(view[offset:offset + size]), class_list, int(name[:tarblocks.KEY_DIGITS]))
            elif encoding == "npy" and (size != npy_size or bytes(view[offset:offset + len(header)]) != header):
                raise ValueError("not a uint8 %dx%dx%d .npy array" % shape)
            elif encoding == "png":
                decode_png(bytes(view[offset:offset + size]), shape)
            padding = tarblocks.padded(size) - size
            if padding and bytes(view[offset + size:offset + size + padding]) != bytes(padding):
                raise ValueError("nonzero bytes in the padding after it")
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    end = members[-1][1] + tarblocks.padded(members[-1][2]) if members else 0
    if len(data) - end < 2 * tarblocks.BLOCK or len(data) % tarblocks.RECORD or np.any(data[end:]):
        raise ValueError("does not end with the zero blocks of a tar archive, padded to whole 10240-byte records")


def _check_class(text: bytes, classes: list[int] | None, key: int) -> None:
    if not text.isdigit() or (len(text) > 1 and text.startswith(b"0")):
        raise ValueError(f"class {_shown(text)} is not a decimal number")
    if classes is not None and int(text) != classes[key]:
        raise ValueError(f"class {int(text)}, but row {key} of the labels is one-hot at {classes[key]}")


def _unlisted_files(root: Path, manifest: dict) -> list[str]:
    """What claims to be part of the dataset without being listed: folders of other resolutions, other files
    among a level's shards, a labels file the manifest does not name."""
    listed = {shard["name"] for level in manifest["resolutions"].values() for shard in level["shards"]}
    problems = []
    for name in _folder_names(root, problems):
        if (LEVEL_DIR_NAME.fullmatch(name) and name not in manifest["resolutions"]) or \
                (name == LABELS and manifest["labels"] is None):
            problems.append(f"{root / name}: not listed in the manifest")
    for level in manifest["resolutions"]:
        if (root / level).is_dir():
            problems.extend(f"{root / level / name}: not listed in the manifest"
                            for name in _folder_names(root / level, problems) if f"{level}/{name}" not in listed)
    return problems


def _folder_names(folder: Path, problems: list[str]) -> list[str]:
    """The sorted names in `folder`; none, and one problem, when it cannot be listed."""
    try:
        return sorted(os.listdir(folder))
    except OSError as error:
        problems.append(f"{folder}: cannot list: {error.strerror}")
        return []
