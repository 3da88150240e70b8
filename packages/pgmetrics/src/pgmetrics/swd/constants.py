"""The official SWD settings: patch geometry, counts, levels and the evaluation minibatch."""

from __future__ import annotations

import numpy as np

from pgdata.common.resolution import is_power_of_two
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
    if not is_power_of_two(resolution, LOWEST_RESOLUTION):
        raise PgmetricsError(f"SWD needs square power-of-two images of at least {LOWEST_RESOLUTION}x"
                             f"{LOWEST_RESOLUTION}, got {resolution}x{resolution} (use --resize)")
    sizes = [int(resolution)]
    while sizes[-1] > LOWEST_RESOLUTION:
        sizes.append(sizes[-1] // 2)
    return sizes


def official_minibatch(resolution: int) -> int:
    """Minibatch of the official evaluate_metrics: clip(8192 // H, 4, 256)."""
    return int(np.clip(8192 // resolution, 4, 256))
