"""Image layout and conversion shared by the tools: C x H x W <-> PIL's H x W (x C), the official float -> uint8
conversion, and tiling a batch into one grid image. Pure numpy, no I/O."""

from __future__ import annotations

import math

import numpy as np


def chw_to_hwc(image: np.ndarray) -> np.ndarray:
    """C x H x W -> H x W x C for RGB, H x W for greyscale (what PIL.Image.fromarray takes); an H x W image is
    returned as is. Contiguous, as PIL needs."""
    if image.ndim == 2:
        return image
    if image.shape[0] == 1:
        return image[0]
    return np.ascontiguousarray(image.transpose(1, 2, 0))


def hwc_to_chw(pixels: np.ndarray) -> np.ndarray:
    """H x W (greyscale) or H x W x C (what PIL decodes) -> contiguous C x H x W, the toolkit's layout."""
    return np.ascontiguousarray(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))


def to_uint8(images: np.ndarray, drange: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Map float images from `drange` to uint8 [0, 255] exactly as the official misc.convert_to_pil_image.

    Official facts: scale = (255 - 0) / (hi - lo) and bias = 0 - lo * scale, both float32; x * scale + bias,
    then numpy.rint (half to even), clip to [0, 255], cast to uint8. uint8 images with drange (0, 255) are
    returned as they are (the same values, without the float pass).
    """
    if tuple(drange) == (0, 255) and images.dtype == np.uint8:
        return images
    low, high = np.float32(drange[0]), np.float32(drange[1])
    scale = (np.float32(255) - np.float32(0)) / (high - low)
    bias = np.float32(0) - low * scale
    data = np.asarray(images, dtype=np.float32) * scale + bias
    return np.rint(data).clip(0, 255).astype(np.uint8)


def grid_size(count: int, columns: int | None = None) -> tuple[int, int]:
    """(columns, rows) for `count` tiles; columns default to ceil(sqrt(count)) like the official grids."""
    if columns is None:
        columns = max(math.ceil(math.sqrt(count)), 1)
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    return columns, max(-(-count // columns), 1)


def tile_grid(images: np.ndarray, columns: int | None = None, rows: int | None = None, spacing: int = 0,
              background: int | float = 0) -> np.ndarray:
    """images N x C x H x W (or N x H x W) -> one C x H' x W' (or H' x W') grid, same dtype.

    As the official misc.create_image_grid: row-major cells, missing cells filled with `background`. Columns
    default to ceil(sqrt(N)), rows to as many as needed; with `rows` given, images past columns x rows are left
    out. `spacing` pixels of background separate the tiles and frame the sheet.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"expected images N x C x H x W or N x H x W, got shape {images.shape}")
    if spacing < 0:
        raise ValueError(f"spacing must be >= 0, got {spacing}")
    squeeze = images.ndim == 3
    if squeeze:
        images = images[:, None]
    columns, needed_rows = grid_size(len(images), columns)
    rows = needed_rows if rows is None else rows
    count = min(len(images), columns * rows)
    _, channels, height, width = images.shape
    cells = np.full((rows * columns, channels, height + spacing, width + spacing), background, dtype=images.dtype)
    cells[:count, :, spacing:, spacing:] = images[:count]
    sheet = cells.reshape(rows, columns, channels, height + spacing, width + spacing)
    sheet = sheet.transpose(2, 0, 3, 1, 4).reshape(channels, rows * (height + spacing), columns * (width + spacing))
    if spacing:
        framed = np.full((channels, sheet.shape[1] + spacing, sheet.shape[2] + spacing), background, images.dtype)
        framed[:, :-spacing, :-spacing] = sheet
        sheet = framed
    return sheet[0] if squeeze else sheet
