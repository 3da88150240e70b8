"""The official SWD settings: patch geometry, counts, levels and the evaluation minibatch."""

from __future__ import annotations

import numpy as np

from pgdata.common.resolution import resolution_log2
from pgmetrics.errors import PgmetricsError

PATCH_SIZE = 7
PATCH_RADIUS = PATCH_SIZE // 2
PATCHES_PER_IMAGE = 128
DIRECTION_REPEATS = 4
DIRECTIONS_PER_REPEAT = 128
LOWEST_RESOLUTION = 16  # SWD's coarsest level (the toolkit's LOWEST_RESOLUTION, 4, is the networks')
OFFICIAL_NUM_IMAGES = 16384
CHANNELS = 3
DESCRIPTOR_SIZE = CHANNELS * PATCH_SIZE * PATCH_SIZE


def swd_resolutions(resolution: int) -> list[int]:
    """Pyramid level sizes, finest first: R, R/2, ..., 16 (matches the official level count log2(R) - 3)."""
    try:
        levels = resolution_log2(resolution, LOWEST_RESOLUTION) - resolution_log2(LOWEST_RESOLUTION) + 1
    except ValueError as error:
        raise PgmetricsError(f"SWD needs square power-of-two images of at least {LOWEST_RESOLUTION}x"
                             f"{LOWEST_RESOLUTION}, got {resolution}x{resolution} (use --resize)") from error
    return [int(resolution) >> level for level in range(levels)]


def official_minibatch(resolution: int) -> int:
    """Minibatch of the official evaluate_metrics: clip(8192 // H, 4, 256)."""
    return int(np.clip(8192 // resolution, 4, 256))
