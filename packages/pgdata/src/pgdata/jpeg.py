"""JPEG decoding as the original's reference environment did it: IJG libjpeg 8d, islow DCT, fancy upsampling.

Current Pillow and OpenCV wheels bundle libjpeg-turbo, whose chroma upsampling differs from libjpeg 8d by
up to 68 levels on 4:2:0 files; the `jpeglib` package bundles libjpeg 8d itself. Its defaults (islow DCT,
fancy upsampling, no block smoothing changes) equal the libjpeg defaults Pillow 3.1.1 used; we pass islow
explicitly so that a change of jpeglib's defaults cannot change our pixels.

Damaged files are judged as the original's decoder (Pillow 3.1.1 over libjpeg 8d) judged them. Pillow
raised "image file is truncated" whenever libjpeg needed bytes past the end of the file; jpeglib's stdio
source instead pads the file with a fake end-of-image marker, fills the missing rows with grey and prints
"Premature end of JPEG file" on stderr. So a file that ends before its end-of-image marker is refused
before decoding (`truncation`), and whatever libjpeg prints while decoding is captured instead of reaching
stderr without a file name: its end-of-file warning is refused too, its other warnings (corrupt entropy
data, which Pillow decoded without a word) are handed to the caller, naming the file.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pgdata.errors import PgdataError

JPEG_MAGIC = b"\xff\xd8\xff"

#: A marker: 0xFF, fill bytes 0xFF, then a code other than 0x00 (0xFF 0x00 is a stuffed data byte).
_MARKER = re.compile(rb"\xff+([^\x00\xff])", re.DOTALL)
_END_OF_IMAGE = 0xD9
#: Markers without a length field that libjpeg steps over: TEM and the restart markers RST0..RST7.
_PARAMETERLESS = frozenset([0x01, *range(0xD0, 0xD8)])
#: Markers whose segment libjpeg reads or skips by its length field: SOFn, DHT, DAC, SOS, DQT, DNL, DRI,
#: APPn, COM. After SOS the entropy-coded data runs to the next marker other than RSTn.
_SEGMENTS = frozenset([*range(0xC0, 0xC8), *range(0xC9, 0xD0), 0xDA, 0xDB, 0xDC, 0xDD, *range(0xE0, 0xF0), 0xFE])
#: libjpeg's JWRN_JPEG_EOF: the data ran out, and the decoder invented the rest of the image.
_PREMATURE_END = "Premature end of JPEG file"
_TRUNCATED = "cannot decode JPEG: truncated or damaged, the data ends before its end-of-image marker"

# Redirecting file descriptor 2 is process-wide: one capture at a time, into one file per process.
_CAPTURE_LOCK = threading.Lock()
_capture_file: tuple[int, BinaryIO] | None = None


def is_jpeg(path: str | Path) -> bool:
    with open(path, "rb") as file:
        return file.read(3) == JPEG_MAGIC


def truncation(data: bytes) -> str | None:
    """Why the JPEG data ends before its end-of-image marker, or None where it does not.

    Data that ends with an end-of-image marker passes at once (the odd file cut right after an FF D9 inside
    a segment is still caught by libjpeg's end-of-file warning while decoding). Otherwise the markers are
    walked as libjpeg reads them: segments by their length fields, entropy-coded data up to the next marker;
    that tells trailing bytes after the end-of-image marker from a cut. Data that is not a JPEG, or holds a
    marker libjpeg refuses, is left to the decoder's own error (None).
    """
    if not data.startswith(b"\xff\xd8") or data.endswith(b"\xff\xd9"):
        return None
    position = 2
    while True:
        match = _MARKER.search(data, position)
        if match is None:
            return f"{_TRUNCATED} ({len(data)} bytes, no marker after byte {position})"
        code, position = match[1][0], match.end()
        if code == _END_OF_IMAGE:
            return None
        if code in _PARAMETERLESS:
            continue
        if code not in _SEGMENTS:
            return None
        length = int.from_bytes(data[position : position + 2], "big") if position + 2 <= len(data) else 2
        if length < 2:
            return None
        if position + length > len(data):
            return (f"{_TRUNCATED} (the segment of marker 0xff{code:02x} at byte {position - 2} needs {length} "
                    f"bytes, {len(data) - position} remain)")
        position += length


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """The lines written to file descriptor 2 inside the block, kept from the terminal; filled on exit.

    libjpeg's default error manager prints its messages there (without a file name) and jpeglib offers no
    hook to receive them; where descriptor 2 cannot be redirected, nothing is captured.
    """
    lines: list[str] = []
    with _CAPTURE_LOCK:
        sink = _capture_sink()
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:
            yield lines
            return
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            lines.extend(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


def _capture_sink() -> BinaryIO:
    """This process's empty capture file (a forked worker must not share its parent's file offset)."""
    global _capture_file
    if _capture_file is None or _capture_file[0] != os.getpid():
        _capture_file = (os.getpid(), tempfile.TemporaryFile(buffering=0))
    sink = _capture_file[1]
    sink.seek(0)
    sink.truncate()
    return sink


def decode_jpeg_libjpeg8d(path: str | Path, warnings: list[str] | None = None) -> np.ndarray:
    """Decode with IJG libjpeg 8d into uint8 H x W x C (C = 1 for greyscale, 3 for colour).

    PgdataError where the original's Pillow raised (unreadable or truncated files); libjpeg's other
    warnings, one line naming the file, are appended to `warnings` (dropped when it is None).
    """
    import jpeglib

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise PgdataError(f"cannot read JPEG: {error.strerror or error}", path) from error
    problem = truncation(data)
    if problem is not None:
        raise PgdataError(problem, path)
    failure = None
    with captured_stderr() as messages:
        try:
            with jpeglib.version("8d"):
                image = jpeglib.read_spatial(str(path), dct_method=jpeglib.JDCT_ISLOW)
                pixels = np.array(image.spatial, dtype=np.uint8, copy=True)
        except Exception as error:  # jpeglib raises plain IOError/Exception; libjpeg's reason went to stderr
            failure = error
    if failure is not None:
        raise PgdataError(f"cannot decode JPEG: {'; '.join(messages) or failure}", path) from failure
    if _PREMATURE_END in messages:
        raise PgdataError(f"{_TRUNCATED} (libjpeg: {_PREMATURE_END})", path)
    if messages and warnings is not None:
        warnings.append(f"{path}: libjpeg: {'; '.join(messages)} (decoded anyway, as the original's Pillow did)")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return pixels


def decode_jpeg_bytes_libjpeg8d(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """As decode_jpeg_libjpeg8d, for JPEG bytes in memory (jpeglib reads only files)."""
    handle, temporary = tempfile.mkstemp(suffix=".jpg")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        try:
            return decode_jpeg_libjpeg8d(temporary)
        except PgdataError as error:
            raise PgdataError(error.message, name) from error
    finally:
        os.unlink(temporary)
