"""A small line plot (metric over kimg) drawn with Pillow's ImageDraw: matplotlib is not a dependency."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from pgdata.common.atomic import atomic_file
from pgmetrics.errors import PgmetricsError

WIDTH, HEIGHT, MARGIN = 640, 400, 60
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127)]


def plot_series(path: str | Path, title: str, kimg: Sequence[float], series: dict[str, Sequence[float]]) -> Path:
    """PNG with one polyline per series against kimg, axes labelled with their ranges, and a legend."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    values = [v for vs in series.values() for v in vs if math.isfinite(v)]
    x_low, x_high = (min(kimg), max(kimg)) if kimg else (0.0, 1.0)
    y_low, y_high = (min(values), max(values)) if values else (0.0, 1.0)
    x_high = x_high if x_high > x_low else x_low + 1.0
    y_high = y_high if y_high > y_low else y_low + 1.0

    def point(x: float, y: float) -> tuple[float, float]:
        px = MARGIN + (x - x_low) / (x_high - x_low) * (WIDTH - 2 * MARGIN)
        py = HEIGHT - MARGIN - (y - y_low) / (y_high - y_low) * (HEIGHT - 2 * MARGIN)
        return px, py

    draw.rectangle([MARGIN, MARGIN, WIDTH - MARGIN, HEIGHT - MARGIN], outline="black")
    draw.text((MARGIN, 20), title, fill="black")
    draw.text((MARGIN, HEIGHT - MARGIN + 8), f"{x_low:g}", fill="black")
    draw.text((WIDTH - MARGIN - 40, HEIGHT - MARGIN + 8), f"{x_high:g} kimg", fill="black")
    draw.text((4, HEIGHT - MARGIN - 6), f"{y_low:.4g}", fill="black")
    draw.text((4, MARGIN - 6), f"{y_high:.4g}", fill="black")
    for index, (name, ys) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        points = [point(x, y) for x, y in zip(kimg, ys, strict=True) if math.isfinite(y)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for px, py in points:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        draw.text((WIDTH - MARGIN - 150, MARGIN + 6 + 14 * index), name, fill=colour)
    path = Path(path)
    with atomic_file(path, error_type=PgmetricsError) as file:
        image.save(file, format="PNG")
    return path
