"""Video frames from Gs: the images of several frames run in shared batches, each frame assembled into an
H x W x 3 uint8 grid. Frames come out one by one (a generator): a long 4k video holds one batch of images."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import scipy.ndimage
import torch

from pgdata.common.images import chw_to_hwc, tile_grid
from pgtrain.generate import grouped_outputs, gs_output_to_uint8
from pgtrain.networks import Generator


def grid_frame(images: np.ndarray, columns: int, rows: int, zoom: float = 1.0) -> np.ndarray:
    """uint8 [N, C, H, W] -> one H x W x 3 frame as the official interpolation video builds it.

    Official facts: create_image_grid (row-major cells), then for a zoom above 1
    `scipy.ndimage.zoom(grid, [zoom, zoom, 1], order=0)` (nearest, corner-aligned: an exact pixel repeat for 2),
    then a one-channel grid repeated to RGB.
    """
    frame = chw_to_hwc(tile_grid(images, columns, rows))  # H x W for one channel
    if zoom > 1:
        frame = scipy.ndimage.zoom(frame, [zoom, zoom, 1][:frame.ndim], order=0)
    if frame.ndim == 2:
        frame = frame[..., None].repeat(3, axis=2)
    return np.ascontiguousarray(frame)


def gs_frames(Gs: Generator, groups: Iterable[tuple[np.ndarray, np.ndarray | None]], *, lod: float,
              columns: int, rows: int, shrink: int = 1, zoom: float = 1.0, batch_size: int = 16,
              device: str | torch.device = "cpu") -> Iterator[np.ndarray]:
    """One H x W x 3 uint8 frame per (latents [columns x rows, latent_size], labels or None) group."""
    for images in grouped_outputs(Gs, groups, lod=lod, batch_size=batch_size, device=device):
        yield grid_frame(gs_output_to_uint8(images, shrink), columns, rows, zoom)
