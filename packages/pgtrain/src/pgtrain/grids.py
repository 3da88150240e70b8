"""Snapshot image grids as the official setup_snapshot_image_grid / save_image_grid. The tiling (row-major,
missing cells black) and the float -> uint8 conversion are the toolkit's shared ones (pgdata.common.images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pgdata.common.images import chw_to_hwc, tile_grid, to_uint8
from pgtrain.outputs import atomic_output


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


def save_image_grid(images: np.ndarray, path: str | Path, columns: int, rows: int,
                    drange: tuple[float, float] = (0, 255)) -> None:
    """Write a PNG grid of [N, C, H, W] images whose values span `drange` (grey as mode L). It appears under its
    name only when complete: training-video and the generation commands' users read grids while a run goes on."""
    grid = to_uint8(tile_grid(images, columns, rows), drange)
    picture = Image.fromarray(chw_to_hwc(grid), "L" if grid.shape[0] == 1 else "RGB")
    with atomic_output(Path(path)) as temporary:
        picture.save(temporary, "PNG")
