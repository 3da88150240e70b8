"""create_lsun: an LSUN category's LMDB of encoded images, centre-cropped and resized."""

from __future__ import annotations

import functools
import io
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from pgdata.common.resolution import LOWEST_RESOLUTION, is_power_of_two
from pgdata.errors import PgdataError
from pgdata.parallel import ordered_map
from pgdata.sources.base import Source, SourceInfo
from pgdata.sources.common import FILES_PER_TASK

GIF_MAGICS = (b"GIF87a", b"GIF89a")


class SkippedValue(Exception):
    """A value the original tool could not turn into an image; it printed the message and went on."""


def decode_opencv(value: bytes, notes: list[str] | None = None) -> np.ndarray | None:
    """OpenCV imdecode with the colour flag, BGR -> RGB; None where OpenCV 3.4.0 (the original's) fails.

    OpenCV 3.4 had no GIF decoder (current OpenCV has one, which would add records the original skipped),
    so GIF values are treated as undecodable here. What OpenCV's libjpeg prints on stderr about a damaged
    value that still decodes (e.g. "Corrupt JPEG data: ...") goes to `notes` instead.
    """
    import cv2

    from pgdata.jpeg import captured_stderr

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # failures are reported as skips
    if not value or value.startswith(GIF_MAGICS):
        return None
    with captured_stderr() as messages:
        try:
            image = cv2.imdecode(np.frombuffer(value, dtype=np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as error:
            raise SkippedValue(str(error).strip()) from error
    if image is None:
        return None
    if notes is not None:
        notes.extend(messages)
    return image[:, :, ::-1]


def decode_pillow(value: bytes) -> np.ndarray:
    """The original's fallback: the Pillow image as an array, as it comes (palette images are 2-D)."""
    import PIL.Image

    try:
        with PIL.Image.open(io.BytesIO(value)) as image:
            return np.asarray(image)
    except Exception as error:  # UnidentifiedImageError: "cannot identify image file <_io.BytesIO ...>"
        raise SkippedValue(str(error)) from error


def as_rgb_like_pillow311(image: np.ndarray) -> np.ndarray:
    """What PIL.Image.fromarray(image, 'RGB') made of an array in Pillow 3.1.1: its bytes read as packed
    RGB rows. A 2-D array (palette, grey) has too few bytes: "not enough image data", as the original
    printed for GIF values."""
    if image.ndim > 3:
        raise SkippedValue(f"Too many dimensions: {image.ndim} > 3.")
    if image.ndim < 2:
        raise SkippedValue(f"tuple index out of range (array of {image.ndim} dimension)")
    height, width = image.shape[:2]
    raw = np.ascontiguousarray(image).tobytes()
    if len(raw) < height * width * 3:
        raise SkippedValue("not enough image data")
    return np.frombuffer(raw, np.uint8, count=height * width * 3).reshape(height, width, 3)


def decode_value(value: bytes, resolution: int, notes: list[str] | None = None) -> np.ndarray:
    """One LMDB value -> uint8 3 x R x R, or SkippedValue. Matches the official create_lsun: OpenCV first,
    Pillow if OpenCV returns nothing; centre square crop; Pillow 3.1.1 ANTIALIAS resize."""
    from pgdata.celebahq.kernels import resize_antialias
    from pgdata.sources.images import centre_crop

    image = decode_opencv(value, notes)
    if image is None:
        image = decode_pillow(value)
    if image.ndim < 2 or min(image.shape[:2]) == 0:
        raise SkippedValue(f"empty image of shape {image.shape}")
    square = as_rgb_like_pillow311(centre_crop(image))
    try:
        resized = resize_antialias(np.ascontiguousarray(square), (resolution, resolution))
    except Exception as error:
        raise SkippedValue(str(error)) from error
    return np.ascontiguousarray(resized.transpose(2, 0, 1))


def decode_values(items: Sequence[tuple[int, str, bytes]], resolution: int) -> list:
    """Worker task: (value number, key, outcome, decoder notes) with outcome an array or the skip message."""
    results = []
    for number, key, value in items:
        notes: list[str] = []
        try:
            results.append((number, key, decode_value(value, resolution, notes), notes))
        except SkippedValue as skipped:
            results.append((number, key, str(skipped), []))
    return results


# LMDB's meta pages (pages 0 and 1, lmdb.h's MDB_meta after a 16-byte page header, 64-bit little-endian):
# magic and version at 16, the page size (mm_dbs[FREE_DBI].md_pad) at 40, the last used page number and the
# transaction id at 136.
_LMDB_MAGIC = 0xBEEFC0DE
_LMDB_META = struct.Struct("<II")
_LMDB_PAGE_SIZE = struct.Struct("<I")
_LMDB_LAST_PAGE = struct.Struct("<QQ")


def lmdb_pages_needed(header: bytes) -> tuple[int, int] | None:
    """(pages in use, page size) from the current meta page (the higher transaction id, as LMDB picks
    it), or None where the bytes are not a 64-bit little-endian LMDB header (LMDB then refuses the file)."""
    if len(header) < 152:
        return None
    page_size = _LMDB_PAGE_SIZE.unpack_from(header, 40)[0]
    if not is_power_of_two(page_size, 512) or len(header) < page_size + 152:
        return None
    metas = []
    for offset in (0, page_size):
        magic, version = _LMDB_META.unpack_from(header, offset + 16)
        if magic != _LMDB_MAGIC or version != 1:
            return None
        last_page, transaction = _LMDB_LAST_PAGE.unpack_from(header, offset + 136)
        metas.append((transaction, last_page))
    return max(metas)[1] + 1, page_size


def check_lmdb_size(data_file: Path) -> None:
    """Refuse a data.mdb shorter than its meta page says: LMDB memory-maps the file, and reading a page
    past the end of a truncated copy kills the process with SIGBUS instead of raising an error."""
    try:
        with open(data_file, "rb") as file:
            header = file.read(2 * 65536 + 152)
            size = os.fstat(file.fileno()).st_size
    except OSError as error:
        raise PgdataError(f"cannot read LMDB data file: {error.strerror or error}", data_file) from error
    if len(header) < 152:
        raise PgdataError(f"not an LMDB data file: {size} bytes, too short for LMDB's meta pages", data_file)
    needed = lmdb_pages_needed(header)
    if needed is not None and size < needed[0] * needed[1]:
        pages, page_size = needed
        raise PgdataError(f"truncated LMDB: the file has {size} bytes but its meta page says it uses {pages} "
                          f"pages of {page_size} bytes ({pages * page_size}); copy or download it again",
                          data_file)


def open_lmdb(lmdb_dir: Path):
    """Read-only and without a lock file: works on read-only copies (the lock is only for writers).
    The data file is checked against its meta page first (a truncated copy would crash the process)."""
    import lmdb

    if not lmdb_dir.exists():
        raise PgdataError("no such LMDB folder", lmdb_dir)
    if lmdb_dir.is_dir() and not (lmdb_dir / "data.mdb").is_file():
        raise PgdataError("not an LMDB environment: data.mdb missing", lmdb_dir)
    check_lmdb_size(lmdb_dir / "data.mdb" if lmdb_dir.is_dir() else lmdb_dir)
    try:
        return lmdb.open(str(lmdb_dir), readonly=True, lock=False, readahead=False,
                         subdir=lmdb_dir.is_dir(), max_readers=1)
    except lmdb.Error as error:
        raise PgdataError(f"cannot open LMDB: {error}", lmdb_dir) from error


class LsunSource(Source):
    """Records in LMDB cursor (key) order; undecodable values are skipped with a warning each.

    `max_images` counts stored records, not values read (as the original). The number of records is known
    only at the end, so `info.num_images` is None.
    """

    def __init__(self, lmdb_dir: str | Path, resolution: int = 256, max_images: int | None = None,
                 workers: int | None = None):
        if not is_power_of_two(resolution, LOWEST_RESOLUTION):
            raise PgdataError(f"--resolution must be a power of two >= 4, got {resolution}")
        if max_images is not None and max_images < 1:
            raise PgdataError(f"--max_images must be at least 1, got {max_images}")
        import pgdata.celebahq.kernels  # noqa: F401  (fail now, not inside a worker)

        self.path = Path(lmdb_dir)
        with open_lmdb(self.path) as environment:
            self.entries = environment.stat()["entries"]
        self.resolution = resolution
        self.max_images = max_images
        self.workers = workers
        self.skipped: list[str] = []
        self.decoder_notes: list[str] = []
        self.record_order = "LMDB cursor (key) order, undecodable values skipped"
        self.info = SourceInfo(self.path.name or "lsun", 3, resolution, None)

    def _values(self, environment) -> Iterator[tuple[int, str, bytes]]:
        import lmdb

        try:
            with environment.begin(write=False) as transaction:
                for number, (key, value) in enumerate(transaction.cursor()):
                    yield number, bytes(key).decode("ascii", "replace"), bytes(value)
        except lmdb.Error as error:
            raise PgdataError(f"cannot read LMDB: {error}", self.path) from error

    def iter_chunks(self, start: int = 0) -> Iterator[np.ndarray]:
        self.skipped = []
        self.decoder_notes = []
        stored = 0
        task = functools.partial(decode_values, resolution=self.resolution)
        with open_lmdb(self.path) as environment:
            results = ordered_map(task, chunks_of_iter(self._values(environment), FILES_PER_TASK),
                                  workers=self.workers)
            for chunk in results:
                images = []
                for number, key, outcome, notes in chunk:
                    if isinstance(outcome, str):
                        self.skipped.append(f"{self.path}: value {number} (key {key}): skipped: {outcome}")
                        continue
                    self.decoder_notes.extend(f"{self.path}: value {number} (key {key}): libjpeg: {note} (stored, "
                                              "as the original tool did)" for note in notes)
                    if stored >= start:
                        images.append(outcome)
                    stored += 1
                    if stored == self.max_images:
                        break
                if images:
                    yield np.stack(images)
                if stored == self.max_images:
                    return

    def warnings(self) -> list[str]:
        summary = [f"{self.path}: skipped {len(self.skipped)} undecodable value(s), as the original tool "
                   "did"] if self.skipped else []
        return self.skipped + self.decoder_notes + summary


def chunks_of_iter(items, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

