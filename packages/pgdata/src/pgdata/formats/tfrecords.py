"""Reader for the original Progressive GAN TFRecords datasets, without TensorFlow or protobuf.

Layout (matches the official dataset_tool.TFRecordExporter): `<dir>/<name>-rNN.tfrecords`, one file per
resolution 2**NN (r02 = 4x4 up to the full one), every file holding the same images in the same order;
optional labels in `<name>-rxx.labels` (numpy .npy, float32 [N, L]). Each record is a serialized
tf.train.Example with the features `shape` (int64 C, H, W) and `data` (bytes, uint8 C x H x W), decoded by
pgdata.formats.tf_example.

TFRecord framing: uint64 LE length, masked CRC32C of the 8 length bytes, the record, masked CRC32C of the
record. Both CRCs are checked (pgdata.formats.crc32c). Random access uses a per-file offset index built on
first use by one scan of the framing (no decoding) and kept in memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pgdata.errors import PgdataError
from pgdata.formats.base import LabelFileReader
from pgdata.formats.crc32c import crc32c_rows
from pgdata.formats.tf_example import WireError, decode_example

_MASK_DELTA = 0xA282EAD8


def masked_crc(crc: np.ndarray | int) -> np.ndarray | int:
    """TFRecord's masked CRC: rotate right by 15 bits, add 0xa282ead8 (mod 2**32)."""
    if isinstance(crc, (int, np.integer)):
        crc = int(crc)
        return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF
    crc = np.asarray(crc, dtype=np.uint32)
    return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(_MASK_DELTA)


_FILE_PATTERN = re.compile(r"^(?P<name>.*)-r(?P<log2>\d\d)\.tfrecords$")
_HEADER = 12  # uint64 length + uint32 masked CRC of the length
_FOOTER = 4  # uint32 masked CRC of the record
_SCAN_BLOCK = 1 << 20
_READ_BYTES = 64 << 20  # bytes of records read and CRC-checked at a time


class _RecordIndex:
    """Start offset (of the framing) and record length of every record of one file."""

    def __init__(self, offsets: np.ndarray, lengths: np.ndarray):
        self.offsets = offsets
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self.offsets)


def max_record_length(resolution: int) -> int:
    """The longest record a 3 x R x R image's Example can take: its data plus the few dozen bytes of keys,
    shape and field headers, with ample room. A longer length (even with a valid CRC) is refused when the
    file is indexed, before anything is read or allocated for it."""
    return 3 * resolution * resolution + 1024


def scan_records(path: Path, max_length: int | None = None) -> _RecordIndex:
    """One pass over the framing (the records are not decoded); checks each length's CRC and, given
    `max_length`, refuses a record that claims more."""
    offsets: list[int] = []
    lengths: list[int] = []
    headers: list[bytes] = []
    size = path.stat().st_size
    truncated_at: int | None = None
    too_long_at: int | None = None
    with open(path, "rb", buffering=_SCAN_BLOCK) as file:
        position = 0
        while position < size:
            header = file.read(_HEADER)
            if len(header) < _HEADER:
                truncated_at = len(offsets)
                break
            length = int.from_bytes(header[:8], "little")
            offsets.append(position)
            lengths.append(length)
            headers.append(header)
            if max_length is not None and length > max_length:
                too_long_at = len(offsets) - 1
                break
            position += _HEADER + length + _FOOTER
            if position > size:
                truncated_at = len(offsets) - 1
                break
            file.seek(position)
    if headers:
        framing = np.frombuffer(b"".join(headers), dtype=np.uint8).reshape(-1, _HEADER)
        expected = framing[:, 8:12].copy().view("<u4")[:, 0]
        bad = np.nonzero(masked_crc(crc32c_rows(framing[:, :8])) != expected)[0]
        if len(bad):
            raise PgdataError(f"record {bad[0]}: length CRC mismatch (corrupt file)", path)
    if too_long_at is not None:
        raise PgdataError(f"record {too_long_at}: length {lengths[too_long_at]} bytes, more than an image of this "
                          f"resolution can need ({max_length}): not an original dataset file", path)
    if truncated_at is not None:
        raise PgdataError(f"truncated file: record {truncated_at} is incomplete "
                          f"({size} bytes in the file)", path)
    return _RecordIndex(np.asarray(offsets, dtype=np.int64), np.asarray(lengths, dtype=np.int64))


def _read_at(file, offset: int, size: int) -> bytes:
    """Read without moving a shared file position (os.pread), so forked data-loader workers that inherit
    the open file do not disturb each other."""
    if not hasattr(os, "pread"):
        file.seek(offset)
        return file.read(size)
    parts = []
    while size > 0:
        part = os.pread(file.fileno(), size, offset)
        if not part:
            break
        parts.append(part)
        offset += len(part)
        size -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class TfrecordsReader(LabelFileReader):
    """The original TFRecords dataset directory (one `<name>-rNN.tfrecords` per resolution)."""

    format_name = "tfrecords"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise PgdataError("not a TFRecords dataset directory", self.path)
        files: dict[int, Path] = {}
        names: set[str] = set()
        for file in sorted(self.path.glob("*.tfrecords")):
            match = _FILE_PATTERN.match(file.name)
            if match is None:
                raise PgdataError(f"unexpected file name {file.name!r} (expected <name>-rNN.tfrecords)", file)
            names.add(match["name"])
            files[2 ** int(match["log2"])] = file
        if not files:
            raise PgdataError("no *.tfrecords files", self.path)
        if len(names) > 1:
            raise PgdataError(f"several datasets in one directory: {', '.join(sorted(names))}", self.path)
        self.name = names.pop()
        self.files = dict(sorted(files.items()))
        if min(self.files) < 4:
            raise PgdataError(f"resolution {min(self.files)} below 4x4", self.files[min(self.files)])
        self._indexes: dict[int, _RecordIndex] = {}
        self._handles: dict[int, object] = {}
        self._layouts: dict[int, list[tuple[np.ndarray, np.ndarray, int]]] = {}
        self.label_file = self._find_label_file()
        shape = self._first_shape(self.resolution)
        self._channels = shape[0]

    # -- metadata ------------------------------------------------------------------------------------------
    def _find_label_file(self) -> Path | None:
        """`<name>-rxx.labels`, else the first *.labels by name (as the official dataset.py guesses)."""
        preferred = self.path / f"{self.name}-rxx.labels"
        if preferred.is_file():
            return preferred
        guesses = sorted(self.path.glob("*.labels"))
        return guesses[0] if guesses else None

    def _first_shape(self, resolution: int) -> tuple[int, ...]:
        index = self.index(resolution)
        if len(index) == 0:
            raise PgdataError("no records", self.files[resolution])
        shape, _, _ = self._decode(resolution, 0, self._read_record(resolution, 0))
        if shape[1:] != (resolution, resolution) or shape[0] not in (1, 3):
            raise PgdataError(f"record 0 has shape {shape}, expected C x {resolution} x {resolution}",
                              self.files[resolution])
        return shape

    @property
    def num_images(self) -> int:
        return len(self.index(self.resolution))

    def num_images_at(self, resolution: int) -> int:
        return len(self.index(self.check_resolution(resolution)))

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(self.files)

    def index(self, resolution: int) -> _RecordIndex:
        """The offset index of one resolution's file (built by one scan on first use, then cached)."""
        if resolution not in self._indexes:
            self._indexes[resolution] = scan_records(self.files[resolution], max_record_length(resolution))
        return self._indexes[resolution]

    # -- reading -------------------------------------------------------------------------------------------
    def _file(self, resolution: int):
        if resolution not in self._handles:
            self._handles[resolution] = open(self.files[resolution], "rb", buffering=0)  # noqa: SIM115 - closed in close()
        return self._handles[resolution]

    def _read_span(self, resolution: int, start: int, stop: int) -> bytes:
        index = self.index(resolution)
        first = int(index.offsets[start])
        last = int(index.offsets[stop - 1] + _HEADER + index.lengths[stop - 1] + _FOOTER)
        blob = _read_at(self._file(resolution), first, last - first)
        if len(blob) != last - first:
            raise PgdataError(f"truncated file: record {stop - 1} is incomplete", self.files[resolution])
        return blob

    def _check_crcs(self, resolution: int, start: int, records: np.ndarray, expected: np.ndarray) -> None:
        """records: uint8 [B, n], records start .. start + B - 1; expected: their stored masked CRCs."""
        bad = np.nonzero(masked_crc(crc32c_rows(records)) != expected)[0]
        if len(bad):
            raise PgdataError(f"record {start + int(bad[0])}: data CRC mismatch (corrupt file)",
                              self.files[resolution])

    def _decode(self, resolution: int, number: int, record: bytes) -> tuple[tuple[int, ...], int, int]:
        try:
            return decode_example(record)
        except WireError as error:
            raise PgdataError(f"record {number}: not a valid tf.train.Example ({error})",
                              self.files[resolution]) from error

    def _read_record(self, resolution: int, number: int) -> bytes:
        blob = self._read_span(resolution, number, number + 1)
        record = blob[_HEADER:-_FOOTER]
        expected = np.frombuffer(blob[-_FOOTER:], dtype="<u4")
        self._check_crcs(resolution, number, np.frombuffer(record, dtype=np.uint8)[None, :], expected)
        return record

    def _image_from_record(self, resolution: int, number: int, record: bytes) -> np.ndarray:
        shape, begin, end = self._decode(resolution, number, record)
        expected = (self._channels, resolution, resolution)
        if shape != expected:
            raise PgdataError(f"record {number} has shape {shape}, expected {expected}", self.files[resolution])
        return np.frombuffer(record, dtype=np.uint8, count=end - begin, offset=begin).reshape(shape)

    def image(self, index: int, resolution: int | None = None) -> np.ndarray:
        resolution = self.check_resolution(resolution)
        self.check_index(index, resolution)
        return self._image_from_record(resolution, index, self._read_record(resolution, index)).copy()

    def iter_batches(
        self, resolution: int | None = None, batch_size: int = 256, start: int = 0, stop: int | None = None
    ) -> Iterator[np.ndarray]:
        resolution = self.check_resolution(resolution)
        start, stop = self.check_range(start, stop, resolution)
        # Large batches are read in spans of about _READ_BYTES, bounding the temporary copies.
        frame_bytes = int(self.index(resolution).lengths[start:stop].max(initial=0)) + _HEADER + _FOOTER
        span = max(1, _READ_BYTES // frame_bytes)
        for first in range(start, stop, batch_size):
            last = min(first + batch_size, stop)
            if last - first <= span:
                yield self._read_batch(resolution, first, last)
                continue
            batch = np.empty((last - first, self._channels, resolution, resolution), dtype=np.uint8)
            for part in range(first, last, span):
                batch[part - first:min(part + span, last) - first] = self._read_batch(
                    resolution, part, min(part + span, last))
            yield batch

    def _read_batch(self, resolution: int, start: int, stop: int) -> np.ndarray:
        blob = self._read_span(resolution, start, stop)
        lengths = self.index(resolution).lengths[start:stop]
        if np.all(lengths == lengths[0]):
            # Every record of a resolution has the same length (both feature orders encode to the same
            # size), so the whole span is one [B, frame] array: no per-record Python work for the CRCs.
            frames = np.frombuffer(blob, dtype=np.uint8).reshape(stop - start, -1)
            records = frames[:, _HEADER:-_FOOTER]
            expected = frames[:, -_FOOTER:].copy().view("<u4")[:, 0]
            self._check_crcs(resolution, start, records, expected)
            return self._images_from_uniform(resolution, start, records)
        images = []
        position = 0
        for number, length in zip(range(start, stop), lengths.tolist(), strict=True):
            record = blob[position + _HEADER:position + _HEADER + length]
            expected = np.frombuffer(blob, dtype="<u4", count=1, offset=position + _HEADER + length)
            self._check_crcs(resolution, number, np.frombuffer(record, dtype=np.uint8)[None, :], expected)
            images.append(self._image_from_record(resolution, number, record))
            position += _HEADER + length + _FOOTER
        return np.stack(images)

    def _images_from_uniform(self, resolution: int, start: int, records: np.ndarray) -> np.ndarray:
        """Decode equal-length records by matching each against known byte layouts (one per feature order).

        A layout is the bytes around the image data of a fully decoded record; a record whose non-image
        bytes equal a layout's has its image at the same offset. Unmatched records are decoded one by one
        and add their layout.
        """
        count, length = records.shape
        size = self._channels * resolution * resolution
        images = np.empty((count, self._channels, resolution, resolution), dtype=np.uint8)
        pending = np.ones(count, dtype=bool)
        layouts = self._layouts.setdefault(resolution, [])
        while pending.any():
            for columns, template, begin in layouts:
                if len(template) != length - size:
                    continue
                match = pending & np.all(records[:, columns] == template, axis=1)
                if match.any():
                    images[match] = records[match, begin:begin + size].reshape(-1, *images.shape[1:])
                    pending &= ~match
            if not pending.any():
                break
            number = int(np.argmax(pending))
            record = records[number].tobytes()
            self._image_from_record(resolution, start + number, record)  # validates the shape
            _, begin, _ = self._decode(resolution, start + number, record)
            columns = np.r_[0:begin, begin + size:length]
            layouts.append((columns, records[number, columns].copy(), begin))
        return images

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
