"""MP4 writing through PyAV (FFmpeg's libraries, shipped inside the `av` wheel): frames are encoded as they come.

H.264 in yuv420p by default, as the official scripts wrote (moviepy with codec libx264, bitrate 16M): every
browser and player opens it. yuv420p halves the chroma resolution, so frames of odd width or height get one black
column or row. The file is written to a temporary name in the same folder and renamed when complete
(pgdata.common.atomic's reserve_temporary and publish: the encoder writes the file by name over many calls).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from pgdata.common.atomic import os_error_reason, publish, reserve_temporary
from pgtrain.errors import PgtrainError
from pgtrain.outputs import make_folder

INSTALL_HINT = "pip install av"
# MP4 players look for these sample-entry tags: H.265 as 'hvc1' is what Apple's players require.
CODEC_TAGS = {"libx265": "hvc1", "hevc": "hvc1"}
# x265's CTU is 64 x 64; the libx265 of the PyAV wheels (x265 4.2) corrupts memory and aborts the process on
# some smaller frames (e.g. 48 x 32), so smaller frames are refused before the encoder sees them.
MIN_FRAME_SIZE = {"libx265": 64, "hevc": 64}
# x265 prints its settings to stderr by default, which would break the progress bar.
ENCODER_OPTIONS = {"libx265": {"x265-params": "log-level=error"}, "hevc": {"x265-params": "log-level=error"}}


@dataclass(frozen=True)
class VideoInfo:
    """What was written: frame count and the encoded frame size."""

    path: Path
    frames: int
    width: int
    height: int


def import_av() -> Any:
    """PyAV, or a one-line error naming the package to install."""
    try:
        import av
    except ImportError as error:
        raise PgtrainError(f"writing MP4 needs PyAV, which is not installed: {INSTALL_HINT}") from error
    return av


def require_encoder(codec: str) -> None:
    """Refuse, in one line, a codec name that this PyAV build cannot encode video with."""
    av = import_av()
    try:
        found = av.codec.Codec(codec, "w")
    except Exception as error:  # PyAV raises UnknownCodecError (a ValueError) or an FFmpeg error, by version
        raise PgtrainError(f"unknown video encoder {codec!r} (this PyAV build encodes e.g. libx264, libx265, "
                           f"mpeg4; a newer build may have more: pip install -U av)") from error
    if found.type != "video":
        raise PgtrainError(f"{codec!r} is a {found.type} encoder, not a video encoder (use libx264 or libx265)")


def parse_bitrate(text: str) -> int:
    """'16M' -> 16000000 bits/s: FFmpeg's SI suffixes k, M, G (the official scripts passed '16M' to FFmpeg)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", text)
    if not match:
        raise ValueError(f"bitrate must be a number with an optional k/M/G suffix (e.g. 16M), got {text!r}")
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[match.group(2).lower()]
    bits = int(float(match.group(1)) * scale)
    if bits <= 0:
        raise ValueError(f"bitrate must be positive, got {text!r}")
    return bits


def pad_to_even(frame: np.ndarray) -> np.ndarray:
    """H x W x 3 with one black row/column added where H/W is odd (4:2:0 chroma needs even sizes)."""
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)))


class Mp4Writer:
    """Encode H x W x 3 uint8 frames into an MP4, streaming; the file appears under its name only when complete.

    Use as a context manager: leaving it with an exception removes the temporary file.
    """

    def __init__(self, path: str | os.PathLike, fps: int, codec: str = "libx264", bitrate: str = "16M") -> None:
        self.path, self.fps, self.codec = Path(path), fps, codec
        self.bit_rate = parse_bitrate(bitrate)
        self.av = import_av()
        require_encoder(codec)
        self.container: Any = None
        self.stream: Any = None
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (height, width) of the incoming frames
        self.info: VideoInfo | None = None  # set when the file is complete
        make_folder(self.path.parent)
        self.temp_path = self._guard(lambda: reserve_temporary(self.path))

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is not None:
            self.discard()
        elif self.info is None:
            self.close()

    def _open(self, height: int, width: int) -> None:
        smallest = MIN_FRAME_SIZE.get(self.codec, 1)
        if min(height, width) < smallest:
            raise PgtrainError(f"{self.path}: {self.codec} needs frames of at least {smallest}x{smallest}, these are "
                               f"{width}x{height} (use --zoom, a larger grid, or --codec libx264)")
        # faststart: the index goes before the frames, so browsers start playing before the whole file has loaded
        self.container = self.av.open(str(self.temp_path), "w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream(self.codec, rate=Fraction(self.fps))
        context = self.stream.codec_context
        context.width, context.height = width + width % 2, height + height % 2
        context.pix_fmt = "yuv420p"
        context.bit_rate = self.bit_rate
        if self.codec in CODEC_TAGS:
            context.codec_tag = CODEC_TAGS[self.codec]
        context.options = dict(ENCODER_OPTIONS.get(self.codec, {}))

    def write(self, frame: np.ndarray) -> None:
        """Append one H x W x 3 uint8 frame; every frame must have the first one's size."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be H x W x 3 uint8, got {frame.shape} {frame.dtype}")
        if self.size is None:
            self.size = frame.shape[:2]
            self._guard(lambda: self._open(*self.size))
        elif frame.shape[:2] != self.size:
            raise ValueError(f"frame {self.frames} is {frame.shape[1]}x{frame.shape[0]}, the video "
                             f"{self.size[1]}x{self.size[0]}")
        picture = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(pad_to_even(frame)), format="rgb24")
        picture.pts = self.frames
        self._guard(lambda: self.container.mux(self.stream.encode(picture)))
        self.frames += 1

    def _guard(self, action: Callable[[], Any]) -> Any:
        """Run an encoder call; FFmpeg's and the file system's refusals become one-line user errors."""
        try:
            return action()
        except self.av.error.FFmpegError as error:
            raise PgtrainError(f"{self.path}: the {self.codec} encoder failed ({error})") from error
        except OSError as error:
            raise PgtrainError(f"{self.path}: cannot write ({os_error_reason(error)})") from error

    def close(self) -> VideoInfo:
        """Flush the encoder, close the file and rename it into place."""
        if self.info is not None:
            return self.info
        if self.container is None:
            self.discard()
            raise PgtrainError(f"{self.path}: no frames to write")
        try:
            self._guard(lambda: self.container.mux(self.stream.encode(None)))
            self._guard(self.container.close)
            self.container = None
            self._guard(lambda: publish(self.temp_path, self.path))
        except BaseException:
            self.discard()
            raise
        height, width = self.size
        self.info = VideoInfo(self.path, self.frames, width + width % 2, height + height % 2)
        return self.info

    def discard(self) -> None:
        """Drop the unfinished file."""
        if self.container is not None:
            try:
                self.container.close()
            except Exception:  # the file is being thrown away; its close errors say nothing new
                pass
            self.container = None
        self.temp_path.unlink(missing_ok=True)


def write_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], *, fps: int, codec: str = "libx264",
              bitrate: str = "16M", on_frame: Callable[[], None] | None = None) -> VideoInfo:
    """Encode every frame of the iterable (consumed lazily) into `path`; `on_frame` ticks a progress bar."""
    with Mp4Writer(path, fps, codec, bitrate) as writer:
        for frame in frames:
            writer.write(frame)
            if on_frame is not None:
                on_frame()
    return writer.close()
