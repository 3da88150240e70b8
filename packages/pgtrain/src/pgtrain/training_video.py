"""The training video of a run directory, as the official generate_training_video: the fakes grids over time.

Official facts:
- the run's times come from log.txt's tick lines (`... kimg K ... lod L ... time T ...`, T as misc.format_time
  prints it); a line counts when `fakes%06d.png % floor(K)` exists;
- the frame at video time t shows the last grid logged at or before wall-clock (t / duration)^time_warp x the
  run's last logged time (the start is slowed down: early training changes fastest);
- a grid larger than 1920 x 1080 is halved (2 x 2 mean) until it fits; moviepy then cast the float frame to uint8,
  which truncates;
- three labels along the bottom: "lod %.2f" at the left, the wall-clock time (format_time) in the middle,
  "%.0f kimg" at the right.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pgdata.progress import format_time
from pgtrain.errors import PgtrainError
from pgtrain.run_dir import fakes_name

MAX_WIDTH, MAX_HEIGHT = 1920, 1080
LABEL_MARGIN_X, LABEL_MARGIN_BOTTOM = 16, 4  # the official label positions: 16 px in, 4 px above the bottom
TIME_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
KIMG = re.compile(r"\bkimg\s+(\d+(?:\.\d*)?)\s")
LOD = re.compile(r"\blod\s+(\d+(?:\.\d*)?)\s")
TIME = re.compile(r"\btime\s+((?:\d+[dhms]\s*)+)")


@dataclass(frozen=True)
class Tick:
    """One logged tick that has a fakes grid: seconds since the start, kimg, lod and the grid's file."""

    seconds: int
    kimg: float
    lod: float
    png: Path


def parse_tick_line(line: str) -> tuple[int, float, float] | None:
    """(seconds, kimg, lod) of an official-style tick line, or None for any other line."""
    kimg, lod, time = KIMG.search(line), LOD.search(line), TIME.search(line)
    if not (kimg and lod and time):
        return None
    seconds = sum(int(value) * TIME_UNITS[unit] for value, unit in re.findall(r"(\d+)([dhms])", time.group(1)))
    return seconds, float(kimg.group(1)), float(lod.group(1))


def read_ticks(run_dir: Path) -> list[Tick]:
    """The run's ticks that have a fakes grid, in log order; a one-line error when there are none."""
    log = run_dir / "log.txt"
    if not run_dir.is_dir():
        raise PgtrainError(f"{run_dir}: no such run directory")
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        raise PgtrainError(f"{log}: cannot read the run's log ({error.strerror or error})") from error
    ticks = []
    for line in lines:
        parsed = parse_tick_line(line)
        if parsed is None:
            continue
        seconds, kimg, lod = parsed
        png = run_dir / fakes_name(math.floor(kimg))
        if png.is_file():
            ticks.append(Tick(seconds, kimg, lod, png))
    if not ticks:
        raise PgtrainError(f"{run_dir}: no tick line of log.txt has its fakesNNNNNN.png (kimg) in the folder")
    return ticks


def frame_ticks(ticks: list[Tick], duration_sec: float, time_warp: float, fps: int) -> Iterator[tuple[Tick, float]]:
    """(tick shown, wall-clock seconds) for each of the rint(duration x fps) frames, frame i at t = i / fps."""
    times = [tick.seconds for tick in ticks]
    for frame in range(int(np.rint(duration_sec * fps))):
        wallclock = ((frame / fps) / duration_sec) ** time_warp * times[-1]
        yield ticks[max(bisect.bisect_right(times, wallclock) - 1, 0)], wallclock


def fit_1080p(image: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8, halved by 2 x 2 means (float32) until it fits 1920 x 1080, cast back by truncation."""
    if image.shape[1] <= MAX_WIDTH and image.shape[0] <= MAX_HEIGHT:
        return image
    data = image.astype(np.float32)
    while data.shape[1] > MAX_WIDTH or data.shape[0] > MAX_HEIGHT:
        height, width = data.shape[0] // 2, data.shape[1] // 2
        data = data[:height * 2, :width * 2].reshape(height, 2, width, 2, -1).mean(axis=(1, 3), dtype=np.float32)
    return data.astype(np.uint8)


def load_grid(png: Path) -> np.ndarray:
    """A fakes PNG as H x W x 3 uint8 (grey repeated to RGB), fitted to 1080p; one-line error if unreadable."""
    try:
        with Image.open(png) as image:
            array = np.asarray(image.convert("RGB"))
    except OSError as error:
        raise PgtrainError(f"{png}: cannot read the fakes grid ({error})") from error
    return fit_1080p(array)


def label_texts(tick: Tick, wallclock: float) -> tuple[str, str, str]:
    """The official three labels: lod, wall-clock time, kimg."""
    return f"lod {tick.lod:.2f}", format_time(wallclock), f"{tick.kimg:.0f} kimg"


def label_font(height: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's own font at the official 32 px, smaller on frames under 384 px so the labels fit."""
    size = 32 if height >= 384 else max(8, height // 12)
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size only
        return ImageFont.load_default()


def draw_labels(frame: np.ndarray, texts: tuple[str, str, str]) -> np.ndarray:
    """White text with a dark outline (the official drew a glow), bottom-aligned 4 px above the frame's bottom:
    left-aligned 16 px in, centred, right-aligned 16 px in (the official positions and alignments)."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    font = label_font(frame.shape[0])
    bottom = frame.shape[0] - LABEL_MARGIN_BOTTOM
    placements = ((LABEL_MARGIN_X, 0.0), (frame.shape[1] // 2, 0.5), (frame.shape[1] - LABEL_MARGIN_X, 1.0))
    for text, (x, align) in zip(texts, placements, strict=True):
        left, _, right, lower = draw.textbbox((0, 0), text, font=font, stroke_width=2)
        origin = (round(x - left - (right - left) * align), bottom - lower)
        draw.text(origin, text, fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(image)


def training_frames(choices: Iterable[tuple[Tick, float]]) -> Iterator[np.ndarray]:
    """H x W x 3 uint8 frames; one grid is held at a time (consecutive frames mostly show the same one)."""
    cached: tuple[Path, np.ndarray] | None = None
    for tick, wallclock in choices:
        if cached is None or cached[0] != tick.png:
            grid = load_grid(tick.png)
            if cached is not None and grid.shape != cached[1].shape:
                raise PgtrainError(f"{tick.png}: {grid.shape[1]}x{grid.shape[0]} after fitting, but the video is "
                                   f"{cached[1].shape[1]}x{cached[1].shape[0]} (the grids of a run must have one "
                                   "size)")
            cached = (tick.png, grid)
        yield draw_labels(cached[1], label_texts(tick, wallclock))
