"""The multi-resolution pyramid exactly as the original exporter builds it.

Matches dataset_tool.TFRecordExporter.add_image: the full resolution is stored as is; each lower level is
the 2x2 block mean (sum of four, times 0.25) of the previous level's *unquantized* float32 values, and every
level is quantized on its own with numpy.rint (half to even), clipped to [0, 255] and cast to uint8.
The clip is kept implicit: a mean of values in [0, 255] lies in [0, 255], and so does its rint.
"""

from __future__ import annotations

import numpy as np

from pgdata.common.resolution import resolution_log2


def pyramid_levels(batch: np.ndarray) -> list[np.ndarray]:
    """uint8 [N, C, R, R] -> uint8 arrays for resolutions R, R/2, ..., 4 (full resolution first)."""
    if batch.ndim != 4 or batch.shape[2] != batch.shape[3]:
        raise ValueError(f"expected a batch N x C x R x R, got shape {batch.shape}")
    resolution_log2(batch.shape[2])
    levels = [np.ascontiguousarray(batch, dtype=np.uint8)]
    values = None
    while levels[-1].shape[2] > 4:
        if values is None:
            # First level: integer sums of four uint8 values are exact in float32 whatever the order,
            # so summing in uint16 gives the original's float32 sums without a full-size float copy.
            wide = batch.astype(np.uint16)
            n, c, h, w = wide.shape
            blocks = wide.reshape(n, c, h // 2, 2, w // 2, 2)
            values = (blocks[:, :, :, 0, :, 0] + blocks[:, :, :, 1, :, 0] + blocks[:, :, :, 0, :, 1]
                      + blocks[:, :, :, 1, :, 1]).astype(np.float32)
        else:
            n, c, h, w = values.shape
            blocks = values.reshape(n, c, h // 2, 2, w // 2, 2)
            # The original's summation order (it matters once float32 runs out of exact bits, deep in a
            # 1024 pyramid): (row 0, col 0) + (row 1, col 0) + (row 0, col 1) + (row 1, col 1).
            values = ((blocks[:, :, :, 0, :, 0] + blocks[:, :, :, 1, :, 0]) + blocks[:, :, :, 0, :, 1]
                      ) + blocks[:, :, :, 1, :, 1]
        values *= np.float32(0.25)
        levels.append(np.rint(values).astype(np.uint8))
    return levels


def pyramid_levels_threaded(batch: np.ndarray, executor, parts: int) -> list[np.ndarray]:
    """pyramid_levels over `parts` slices of the batch on a thread pool (numpy releases the GIL)."""
    if parts <= 1 or len(batch) < 2 * parts:
        return pyramid_levels(batch)
    bounds = np.linspace(0, len(batch), parts + 1).astype(int)
    pieces = list(executor.map(pyramid_levels, [batch[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]))
    return [np.concatenate(level) for level in zip(*pieces, strict=True)]
