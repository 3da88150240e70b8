"""Image sources for the metrics: arrays (.npy/.npz), image folders, pgdata datasets (pgshards, TFRecords, HDF5)
and pgtrain snapshots. Each yields uint8 N x C x H x W batches in a fixed order and has a content fingerprint
(sha256) of exactly the images it yields, for the real-set statistics cache: what keys the cache is what was read,
and every part of it is checked (a damaged copy must neither be scored nor be served a clean copy's statistics).
A content key (`content_key`, the fingerprint or a cheaper statement of the same content) tells evaluate whether
its stored rows are still those of this real set without decoding any image."""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from pgdata.common.images import hwc_to_chw, to_uint8
from pgdata.hashing import file_sha256
from pgmetrics.errors import PgmetricsError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
HASH_BATCH_BYTES = 64 * 2**20  # pixels hashed per batch when a fingerprint reads the images
READ_CHUNK_BYTES = 16 * 2**20  # bytes skipped per read in a compressed .npz member


def pixel_digest(channels: int, resolution: int):
    """A sha256 to feed uint8 C x H x W images into, in order (the value does not depend on the batching)."""
    return hashlib.sha256(f"pixels:{channels}x{resolution}x{resolution}:".encode())


def update_pixels(digest, batch: np.ndarray) -> None:
    digest.update(np.ascontiguousarray(batch))


class ImageSource:
    """Base: name, num_images (None = unbounded), channels, resolution, batches, fingerprint."""

    name: str
    num_images: int | None
    channels: int
    resolution: int
    # True: fingerprint() is the sha256 of the pixels iter_batches yields (the statistics pass re-checks it)
    fingerprint_of_pixels: bool = True

    def iter_batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def fingerprint(self, stop: int) -> str:
        """Content key of images 0 .. stop-1, exactly as iter_batches yields them. By default the sha256 of their
        pixels: what was read, whatever the container (the cache then saves the decoding and the metric work,
        not the reading)."""
        digest = pixel_digest(self.channels, self.resolution)
        batch_size = max(1, HASH_BATCH_BYTES // (self.channels * self.resolution**2))
        for batch in self.iter_batches(batch_size, 0, stop):
            update_pixels(digest, batch)
        return digest.hexdigest()

    def content_key(self, stop: int) -> str:
        """What identifies images 0 .. stop-1 for deciding whether scores made from them are still current: the
        fingerprint, unless a cheaper statement of the same content exists (a pgshards manifest's hashes)."""
        return self.fingerprint(stop)

    def describe(self) -> dict:
        return {"name": self.name, "kind": type(self).__name__, "num_images": self.num_images,
                "channels": self.channels, "resolution": self.resolution}

    def close(self) -> None:
        pass


# --- arrays -------------------------------------------------------------------------------------------------


def read_npy_header(stream: IO[bytes], total_bytes: int, where: Path | str) -> tuple[tuple[int, ...], bool, int]:
    """(shape, fortran_order, header_bytes) of a .npy stream, checked before anything is allocated: uint8, no
    negative dimension, and no more data than the `total_bytes` of the file (or .npz member) can hold."""
    from numpy.lib import format as npy_format

    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = npy_format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = npy_format.read_array_header_2_0(stream)
        else:
            raise PgmetricsError(f"unsupported .npy format version {version[0]}.{version[1]}", where)
    except (ValueError, SyntaxError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as error:
        raise PgmetricsError(f"not a readable .npy array ({error})", where) from error
    header_bytes = stream.tell()
    if dtype != np.uint8:
        raise PgmetricsError(f"expected uint8 images (0..255), got {dtype}", where)
    if any(size < 0 for size in shape):
        raise PgmetricsError(f"impossible shape {list(shape)} in the .npy header", where)
    available = total_bytes - header_bytes
    if math.prod(shape) > available:
        raise PgmetricsError(f"the .npy header says shape {list(shape)} ({math.prod(shape)} bytes), but only "
                             f"{max(available, 0)} bytes follow it (truncated file or damaged header)", where)
    return tuple(shape), bool(fortran_order), header_bytes


@dataclass(frozen=True)
class ImageLayout:
    """How stored rows map to N x C x H x W: N x C x H x W as is, N x H x W x C (C in 1, 3, 4; alpha dropped)
    or N x H x W (grey)."""

    shape: tuple[int, ...]
    channels_last: bool

    @property
    def num_images(self) -> int:
        return self.shape[0]

    @property
    def channels(self) -> int:
        if len(self.shape) == 3:
            return 1
        return min(3, self.shape[3] if self.channels_last else self.shape[1])

    @property
    def resolution(self) -> int:
        return self.shape[1] if len(self.shape) == 3 or self.channels_last else self.shape[2]

    @property
    def row_bytes(self) -> int:
        return math.prod(self.shape[1:])

    def to_nchw(self, rows: np.ndarray) -> np.ndarray:
        """Stored rows [k, ...] as a contiguous uint8 k x C x H x W batch."""
        if len(self.shape) == 3:
            return np.ascontiguousarray(rows[:, None])
        if self.channels_last:  # a batch: pgdata.common.images.hwc_to_chw takes one image
            rows = rows.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(rows[:, :3])


def image_layout(shape: tuple[int, ...], where: Path | str) -> ImageLayout:
    """The layout of an image array's shape, or a one-line error (not images, not square, no images)."""
    if len(shape) == 3:
        layout = ImageLayout(shape, channels_last=False)
    elif len(shape) != 4:
        raise PgmetricsError(f"expected images N x C x H x W or N x H x W x C, got shape {list(shape)}", where)
    elif shape[1] in (1, 3) and shape[1] < shape[2]:
        layout = ImageLayout(shape, channels_last=False)
    elif shape[3] in (1, 3, 4):
        layout = ImageLayout(shape, channels_last=True)
    else:
        raise PgmetricsError(f"cannot tell the channel axis of shape {list(shape)}", where)
    height, width = (shape[1], shape[2]) if len(shape) == 3 or layout.channels_last else (shape[2], shape[3])
    if height != width:
        raise PgmetricsError(f"expected square images, got {height}x{width}", where)
    if layout.num_images == 0 or height == 0:
        raise PgmetricsError(f"holds no images (shape {list(shape)})", where)
    return layout


def _read_into(stream: IO[bytes], buffer: memoryview) -> int:
    """Fill `buffer` from the stream; the number of bytes read (less only at the end of the stream)."""
    filled = 0
    while filled < len(buffer):
        count = stream.readinto(buffer[filled:])
        if not count:
            break
        filled += count
    return filled


def _skip(stream: IO[bytes], count: int) -> None:
    """Read past `count` bytes of a compressed stream in bounded chunks (it cannot seek without decompressing)."""
    scratch = memoryview(bytearray(min(count, READ_CHUNK_BYTES)))
    while count > 0:
        step = _read_into(stream, scratch[:min(count, len(scratch))])
        if not step:
            raise EOFError("member ends early")
        count -= step


class ArraySource(ImageSource):
    """An .npy array or one array of an .npz (the only one, or 'images'/'arr_0'); uint8 0..255.

    Only the images asked for are read: an .npy is memory-mapped, an .npz member (compressed, so it cannot be
    mapped) is decompressed as a stream up to the last image needed. The .npy header is parsed and checked
    against the file's (or member's) size before anything is allocated: a 4 MB .npz must not ask for 4 GB."""

    def __init__(self, path: Path, key: str | None = None):
        self.path = path
        self.name = str(path)
        self.key = key
        self._memmap: np.memmap | None = None
        if path.suffix == ".npz":
            shape = self._open_npz(key)
        else:
            shape, fortran_order, header_bytes = self._npy_header()
        self.layout = image_layout(shape, self.name)
        if path.suffix != ".npz":
            self._memmap = np.memmap(path, dtype=np.uint8, mode="r", offset=header_bytes, shape=shape,
                                     order="F" if fortran_order else "C")
        self.num_images, self.channels = self.layout.num_images, self.layout.channels
        self.resolution = self.layout.resolution

    def _npy_header(self) -> tuple[tuple[int, ...], bool, int]:
        try:
            with open(self.path, "rb") as file:
                return read_npy_header(file, self.path.stat().st_size, self.path)
        except OSError as error:
            raise PgmetricsError(f"cannot read the array ({error.strerror or error})", self.path) from error

    def _open_npz(self, key: str | None) -> tuple[int, ...]:
        """Choose the member and read its header (nothing else yet); its shape."""
        self._member, total_bytes = self._choose_member(key)
        self.key = self._member.removesuffix(".npy")
        self.name = f"{self.path}:{self.key}"
        with self._open_member() as stream:
            shape, fortran_order, self._header_bytes = read_npy_header(stream, total_bytes, self.name)
        if fortran_order:
            raise PgmetricsError("the array is stored in Fortran order, which cannot be read image by image from "
                                 "an .npz: save np.ascontiguousarray(images)", self.name)
        return shape

    def _choose_member(self, key: str | None) -> tuple[str, int]:
        """(member name, uncompressed size) of the array asked for."""
        try:
            with zipfile.ZipFile(self.path) as archive:
                members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()
                           if not info.is_dir()}
        except (OSError, zipfile.BadZipFile) as error:
            raise PgmetricsError(f"cannot read the array ({error})", self.path) from error
        if not members:
            raise PgmetricsError("the .npz holds no arrays", self.path)
        keys = list(members)
        if key is None:
            key = keys[0] if len(keys) == 1 else next((k for k in ("images", "arr_0") if k in keys), None)
        if key is None or key not in members:
            raise PgmetricsError(f"which array? it holds {', '.join(keys)} (use FILE.npz:KEY)", self.path)
        return members[key].filename, members[key].file_size

    def _open_member(self) -> IO[bytes]:
        archive = None
        try:
            archive = zipfile.ZipFile(self.path)
            return _ClosingMember(archive, archive.open(self._member))
        except (OSError, zipfile.BadZipFile, KeyError, NotImplementedError, RuntimeError) as error:  # encrypted
            if archive is not None:
                archive.close()
            raise PgmetricsError(f"cannot read the array ({error})", self.name) from error

    def iter_batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        stop = self.num_images if stop is None else min(stop, self.num_images)
        if self._memmap is not None:
            for begin in range(start, stop, batch_size):
                yield self.layout.to_nchw(np.array(self._memmap[begin:min(begin + batch_size, stop)]))
            return
        yield from self._stream_batches(batch_size, start, stop)

    def _stream_batches(self, batch_size: int, start: int, stop: int) -> Iterator[np.ndarray]:
        """Decompress the member up to image `stop` only, one batch in memory at a time."""
        if start >= stop:
            return
        row_bytes = self.layout.row_bytes
        try:
            with self._open_member() as stream:
                _skip(stream, self._header_bytes + start * row_bytes)
                for begin in range(start, stop, batch_size):
                    count = min(batch_size, stop - begin)
                    rows = bytearray(count * row_bytes)
                    if _read_into(stream, memoryview(rows)) != len(rows):
                        raise EOFError(f"member ends before image {begin + count - 1}")
                    stored = np.frombuffer(rows, dtype=np.uint8).reshape(count, *self.layout.shape[1:])
                    yield self.layout.to_nchw(stored)
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            raise PgmetricsError(f"cannot read the array ({error})", self.name) from error

    def content_key(self, stop: int) -> str:
        """The sha256 of the whole file (and the member chosen), read without decoding any image."""
        try:
            return file_sha256(self.path, hashlib.sha256(f"array:{self.key}:".encode()))
        except OSError as error:
            raise PgmetricsError(f"cannot read ({error.strerror or error})", self.path) from error


class _ClosingMember(io.BufferedIOBase):
    """An .npz member's stream that also closes its archive."""

    def __init__(self, archive: zipfile.ZipFile, member: IO[bytes]):
        self._archive, self._member = archive, member

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._member.read(size)

    def readinto(self, buffer) -> int:
        return self._member.readinto(buffer)

    def tell(self) -> int:
        return self._member.tell()

    def close(self) -> None:
        self._member.close()
        self._archive.close()
        super().close()


# --- image folders ------------------------------------------------------------------------------------------


class FolderSource(ImageSource):
    """Every image file under a folder (recursive, sorted by relative path), decoded with Pillow.

    Fingerprint: the relative names and sha256 of the files read; each file is checked against its hash again
    when it is decoded, so the statistics are those of the files that were hashed."""

    fingerprint_of_pixels = False

    def __init__(self, path: Path):
        self.path = path
        self.name = str(path)
        self.files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise PgmetricsError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder", path)
        self._hashes: dict[Path, str] = {}
        first = self._load(self.files[0])
        self.channels, self.resolution = first.shape[0], first.shape[1]
        self.num_images = len(self.files)

    def _read(self, file: Path) -> bytes:
        try:
            data = file.read_bytes()
        except OSError as error:
            raise PgmetricsError(f"cannot read the image ({error.strerror or error})", file) from error
        if file in self._hashes and hashlib.sha256(data).hexdigest() != self._hashes[file]:
            raise PgmetricsError("changed while pgmetrics was reading the folder (its sha256 differs from the "
                                 "one taken first); run again", file)
        return data

    def _load(self, file: Path) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        data = self._read(file)
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.mode not in ("L", "RGB"):
                    image = image.convert("L" if image.mode in ("1", "I", "I;16", "F", "LA") else "RGB")
                array = np.asarray(image)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
            raise PgmetricsError(f"cannot decode the image ({error})", file) from error
        array = hwc_to_chw(array)
        if array.shape[1] != array.shape[2]:
            raise PgmetricsError(f"expected square images, got {array.shape[1]}x{array.shape[2]}", file)
        return array

    def iter_batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        stop = self.num_images if stop is None else min(stop, self.num_images)
        for begin in range(start, stop, batch_size):
            images = []
            for file in self.files[begin:min(begin + batch_size, stop)]:
                image = self._load(file)
                if image.shape != (self.channels, self.resolution, self.resolution):
                    raise PgmetricsError(f"image is {'x'.join(map(str, image.shape))}, the folder's first image "
                                         f"is {self.channels}x{self.resolution}x{self.resolution}", file)
                images.append(image)
            yield np.stack(images)

    def fingerprint(self, stop: int) -> str:
        digest = hashlib.sha256(b"folder:")
        for file in self.files[:stop]:
            if file not in self._hashes:
                try:
                    self._hashes[file] = file_sha256(file)
                except OSError as error:
                    raise PgmetricsError(f"cannot read the image ({error.strerror or error})", file) from error
            digest.update(str(file.relative_to(self.path)).encode() + b"\0")
            digest.update(self._hashes[file].encode())
        return digest.hexdigest()


# --- datasets -----------------------------------------------------------------------------------------------


class DatasetSource(ImageSource):
    """A pgdata dataset (pgshards directory, original TFRecords directory, legacy HDF5) at one resolution.

    pgshards: every shard is checked against the manifest (size, then sha256, streamed) before its first image is
    read, cache or not, and the fingerprint is the manifest's sha256 of the shards read. TFRecords (both CRCs
    checked by the reader as it reads) and HDF5: the sha256 of the pixels read."""

    def __init__(self, path: Path, resolution: int | None = None):
        from pgdata.formats import open_dataset

        self.path = path
        self.reader = open_dataset(path)
        self.resolution = self.reader.check_resolution(resolution)
        self.num_images = self.reader.num_images_at(self.resolution)
        self.channels = self.reader.channels
        self.name = str(path) if resolution is None else f"{path}@{self.resolution}"
        if self.num_images < 1:
            raise PgmetricsError(f"the dataset holds no {self.resolution}x{self.resolution} images", path)
        self.fingerprint_of_pixels = self.reader.format_name != "pgshards"
        self._checked_shards: set[int] = set()

    def iter_batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        stop = self.num_images if stop is None else min(stop, self.num_images)
        if not self.fingerprint_of_pixels:
            self._check_shards(start, stop)
        yield from self.reader.iter_batches(self.resolution, batch_size=batch_size, start=start, stop=stop)

    def fingerprint(self, stop: int) -> str:
        """pgshards: the manifest's sha256 of every shard that holds images 0 .. stop-1, each checked against
        its file; other formats: the pixels read."""
        if self.fingerprint_of_pixels:
            return super().fingerprint(stop)
        return self._listed_digest(self._check_shards(0, stop))

    def content_key(self, stop: int) -> str:
        """pgshards: the fingerprint from the manifest's hashes alone, without reading the shards (they are
        checked when images are read); other formats: the fingerprint."""
        if self.fingerprint_of_pixels:
            return super().content_key(stop)
        return self._listed_digest(self._shard_entries(0, stop))

    def _listed_digest(self, entries: list[tuple[int, dict]]) -> str:
        digest = hashlib.sha256(f"pgshards:{self.channels}x{self.resolution}:".encode())
        for _, entry in entries:
            digest.update(f"{entry['sha256']}\0".encode())
        return digest.hexdigest()

    def _shard_entries(self, start: int, stop: int) -> list[tuple[int, dict]]:
        """(number, manifest entry) of the shards that hold images start .. stop-1 at this resolution."""
        manifest_path = self.path / "manifest.json"
        try:
            level = next(level for level in self.reader.manifest["resolutions"].values()
                         if int(level["resolution"]) == self.resolution)
            per_shard, shards = int(level["samples_per_shard"]), level["shards"]
            if per_shard < 1 or stop <= start:
                return []
            numbers = range(start // per_shard, (stop - 1) // per_shard + 1)
            if numbers[-1] >= len(shards):
                raise PgmetricsError(f"the manifest lists {len(shards)} shards at {self.resolution}x{self.resolution}"
                                     f", too few for {self.num_images} images", manifest_path)
            entries = [(number, _shard_entry(shards[number])) for number in numbers]
        except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as error:
            raise PgmetricsError(f"malformed manifest ({type(error).__name__}: {error})", manifest_path) from error
        return entries

    def _check_shards(self, start: int, stop: int) -> list[tuple[int, dict]]:
        """The shards of images start .. stop-1, each checked once against the manifest before it is read."""
        entries = self._shard_entries(start, stop)
        for number, entry in entries:
            if number not in self._checked_shards:
                check_shard(self.path / entry["name"], entry["bytes"], entry["sha256"])
                self._checked_shards.add(number)
        return entries

    def close(self) -> None:
        self.reader.close()


def _shard_entry(entry: dict) -> dict:
    """A manifest's shard entry with the fields the check needs, typed (KeyError/TypeError/ValueError if not)."""
    return {"name": str(entry["name"]), "bytes": int(entry["bytes"]), "sha256": str(entry["sha256"])}


def check_shard(path: Path, size: int, sha256: str) -> None:
    """A shard's file against its manifest entry: present, the listed size, the listed sha256 (streamed)."""
    advice = "a damaged or incomplete copy? `pgdata verify` lists every bad shard"
    if not path.is_file():
        raise PgmetricsError(f"missing shard listed in the manifest ({advice})", path)
    actual_size = path.stat().st_size
    if actual_size != size:
        raise PgmetricsError(f"{actual_size} bytes, the manifest says {size} ({advice})", path)
    actual = file_sha256(path)
    if actual != sha256:
        raise PgmetricsError(f"sha256 {actual[:16]}... differs from the manifest's {sha256[:16]}... ({advice})",
                             path)


class SnapshotSource(ImageSource):
    """Images generated by a pgtrain snapshot's Gs at its stored lod (as the official tools run Gs with its `lod`
    variable: a snapshot taken mid-fade is evaluated as it was, nearest-upscaled to full size): latents
    RandomState(seed).randn, the official x*127.5+127.5, round, clip to uint8 conversion; unbounded (take as
    many as the metric needs)."""

    def __init__(self, path: Path, seed: int = 0, device: str = "cpu", labels: np.ndarray | None = None):
        try:
            from pgtrain.checkpoint import build_networks, load_snapshot, snapshot_lod
            from pgtrain.errors import PgtrainError
            from pgtrain.generate import generate_images, random_latents
        except ImportError as error:
            raise PgmetricsError(f"pgtrain snapshots are not available in this install ({error})", path) from error
        self._generate, self._to_uint8, self._latents = generate_images, to_uint8, random_latents
        try:
            snapshot = load_snapshot(path)
            _, _, self.Gs = build_networks(snapshot, device)
            self.lod = snapshot_lod(snapshot)
        except PgtrainError as error:
            raise PgmetricsError(str(error).removeprefix(f"{path}: "), path) from error
        self.path, self.seed, self.device, self.labels = path, seed, device, labels
        self.name = f"{path}#seed={seed}"
        self.num_images = None
        self.fingerprint_of_pixels = False
        self.channels = int(self.Gs.num_channels)
        self.resolution = int(self.Gs.resolution)
        self._sha = None

    def iter_batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        if stop is None:
            raise PgmetricsError("a snapshot generates as many images as asked: give --num", self.path)
        latents = self._latents(stop, self.Gs.latent_size, self.seed)[start:stop]
        for begin in range(0, len(latents), batch_size):
            part = latents[begin:begin + batch_size]
            labels = None
            if self.Gs.label_size:
                if self.labels is None:
                    raise PgmetricsError("this generator is conditioned on labels; the real set has none",
                                         self.path)
                labels = self.labels[start + begin:start + begin + len(part)]
            images = self._generate(self.Gs, part, labels, lod=self.lod, batch_size=batch_size,
                                    device=self.device)
            yield self._to_uint8(images)

    def fingerprint(self, stop: int) -> str:
        """The snapshot file and the seed (the images are those of latents 0 .. stop-1)."""
        if self._sha is None:
            self._sha = file_sha256(self.path, hashlib.sha256(f"snapshot:{self.seed}:".encode()))
        return self._sha


def open_source(spec: str | Path, *, resolution: int | None = None, seed: int = 0, device: str = "cpu",
                labels: np.ndarray | None = None) -> ImageSource:
    """Pick the source type from the path: FILE.npy, FILE.npz[:KEY], *.pt snapshot, image folder, dataset."""
    text = str(spec)
    key = None
    if ".npz:" in text:
        text, key = text.split(".npz:", 1)
        text += ".npz"
    path = Path(text).expanduser()
    if not path.exists():
        raise PgmetricsError("no such file or directory", path)
    if path.is_file() and path.suffix in (".npy", ".npz"):
        return ArraySource(path, key)
    if path.is_file() and path.suffix in (".pt", ".pth"):
        return SnapshotSource(path, seed=seed, device=device, labels=labels)
    if path.is_dir() and ((path / "manifest.json").is_file() or any(path.glob("*.tfrecords"))):
        return DatasetSource(path, resolution)
    if path.is_file():
        return DatasetSource(path, resolution)
    return FolderSource(path)


def read_run_config(run_dir: Path) -> dict:
    """The run's config.json as a dict ({} when absent), or a one-line error when it is not one."""
    config = run_dir / "config.json"
    if not config.is_file():
        return {}
    try:
        content = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PgmetricsError(f"not valid JSON ({error})", config) from error
    if not isinstance(content, dict):
        raise PgmetricsError(f"expected a JSON object, got {type(content).__name__}", config)
    return content
