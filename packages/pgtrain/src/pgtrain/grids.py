"""Snapshot image grids as the official setup_snapshot_image_grid / save_image_grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def grid_shape(resolution: int, size: str = "1080p") -> tuple[int, int]:
    """(columns, rows) of a grid of resolution² images.

    Matches the official: 1080p -> clip(1920 // W, 3, 32) x clip(1080 // H, 2, 32); 4k -> clip(3840 // W, 7, 32)
    x clip(2160 // H, 4, 32).
    """
    if size == "4k":
        return int(np.clip(3840 // resolution, 7, 32)), int(np.clip(2160 // resolution, 4, 32))
    return int(np.clip(1920 // resolution, 3, 32)), int(np.clip(1080 // resolution, 2, 32))


def choose_grid_indices(labels: np.ndarray, columns: int, rows: int, layout: str,
                        rng: np.random.Generator) -> np.ndarray:
    """Dataset indices of the grid's reals: random, or with row y showing class y mod label_size ('row_per_class')."""
    num_images = labels.shape[0]
    count = columns * rows
    if layout != "row_per_class" or labels.shape[1] == 0:
        return rng.integers(0, num_images, size=count)
    out = np.empty(count, np.int64)
    for y in range(rows):
        members = np.flatnonzero(labels[:, y % labels.shape[1]] != 0)
        if members.size == 0:
            members = np.arange(num_images)
        out[y * columns:(y + 1) * columns] = rng.choice(members, size=columns)
    return out


def image_grid(images: np.ndarray, columns: int, rows: int) -> np.ndarray:
    """[N, C, H, W] -> [C, rows·H, columns·W], row-major, missing cells black."""
    num, channels, height, width = images.shape
    grid = np.zeros((channels, rows * height, columns * width), images.dtype)
    for index in range(min(num, columns * rows)):
        y, x = divmod(index, columns)
        grid[:, y * height:(y + 1) * height, x * width:(x + 1) * width] = images[index]
    return grid


def to_uint8(images: np.ndarray, drange: tuple[float, float]) -> np.ndarray:
    """Map drange to [0, 255], round half to even and clip (the official convert_to_pil_image)."""
    if drange == (0, 255) and images.dtype == np.uint8:
        return images
    scale = np.float32(255) / (np.float32(drange[1]) - np.float32(drange[0]))
    out = images.astype(np.float32) * scale - np.float32(drange[0]) * scale
    return np.rint(out).clip(0, 255).astype(np.uint8)


def save_image_grid(images: np.ndarray, path: str | Path, columns: int, rows: int,
                    drange: tuple[float, float] = (0, 255), image_format: str | None = None) -> None:
    """Write a PNG grid of [N, C, H, W] images whose values span `drange`; `image_format` names the format when
    the path's extension does not (a temporary name)."""
    grid = to_uint8(image_grid(images, columns, rows), drange)
    array = grid[0] if grid.shape[0] == 1 else grid.transpose(1, 2, 0)
    Image.fromarray(np.ascontiguousarray(array), "L" if grid.shape[0] == 1 else "RGB").save(path, image_format)
