"""Shared arithmetic of G_paper / D_paper: feature-map widths and the decomposition of a lod."""

from __future__ import annotations

import math


def feature_maps(stage: int, fmap_base: int, fmap_decay: float, fmap_max: int) -> int:
    """Channels at a stage: min(int(fmap_base / 2^(stage * fmap_decay)), fmap_max), as the official nf()."""
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def check_feature_maps(resolution_log2: int, fmap_base: int, fmap_decay: float, fmap_max: int) -> None:
    """Every stage a network of this resolution builds (0 .. resolution_log2 - 1) has at least one channel: the
    official nf() rounds down, so a small fmap_base gives empty layers that fail deep inside torch."""
    for stage in range(resolution_log2):
        if feature_maps(stage, fmap_base, fmap_decay, fmap_max) < 1:
            raise ValueError(f"fmap_base={fmap_base}, fmap_decay={fmap_decay}, fmap_max={fmap_max} give 0 feature "
                             f"maps at stage {stage} of a {2**resolution_log2}x{2**resolution_log2} network; "
                             f"raise fmap_base (>= {2**resolution_log2 // 2} with fmap_decay=1)")


def split_lod(lod: float, max_lod: int) -> tuple[int, float]:
    """(k, t) with l = clip(lod, 0, max_lod), k = floor(l), t = l - k: the level and the fade weight.

    Matches the official recursive structure: a lod above the maximum acts as the maximum, below 0 as 0.
    """
    clipped = min(max(float(lod), 0.0), float(max_lod))
    level_lod = int(math.floor(clipped))
    return level_lod, clipped - level_lod
