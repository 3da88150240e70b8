"""Sliced Wasserstein distance on Laplacian-pyramid patches, as the Progressive GAN paper defines it.

Every constant and step follows the official `metrics/sliced_wasserstein.py` (tkarras/progressive_growing_of_gans):
a Laplacian pyramid built with the 5x5 binomial kernel and mirror borders from full resolution down to a 16x16
low-pass level, 128 random 7x7 neighbourhoods per image and level (stored transposed: width offset before height
offset), per-set per-channel normalisation, 4 repeats of 128 random unit directions, values x 1e3 per level and
their plain mean as `avg`.

Two random-number sources:
- `ReferenceRng`: numpy's legacy RandomState(seed) drawn in the official order (per fed minibatch and level: x then
  y; at each `end`: 4 direction matrices per level), so results equal the official code's to float32 rounding.
- `FastRng`: torch generators, one stream each for real positions, fake positions and directions; the same
  distribution, independent of how the images are batched, and real descriptors can be cached.

Modules: constants (the official settings), pyramid, descriptors, torch_path (GPU), rng, sets (one set's feed and
finish), distance, parallel (thread pool and BLAS threads).

On the CPU (measured faster than torch here, tools/bench_metrics.py), image slices and direction blocks run in a
thread pool (numpy, OpenCV and ctypes release the GIL):
- the Gaussian chain: numpy integer-weight shifted-slice sums in reference mode (exact in float32 for the first
  levels, float64 from the third level on), OpenCV's pyrDown otherwise;
- the band-pass descriptors at the patches only, straight from two Gaussian levels, with the column statistics
  for the normalisation (compiled kernel, pgmetrics.native; numpy fallback: polyphase pyr_up + fancy-index
  gather, or pyr_up at the patches for large levels);
- the projections of all 512 directions as row-major blocks of 128, sorted in place by numpy's SIMD sort.
On a GPU the same steps run in torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pgmetrics.swd.constants import (
    CHANNELS,
    DESCRIPTOR_SIZE,
    DIRECTION_REPEATS,
    DIRECTIONS_PER_REPEAT,
    LOWEST_RESOLUTION,
    OFFICIAL_NUM_IMAGES,
    PATCH_RADIUS,
    PATCH_SIZE,
    PATCHES_PER_IMAGE,
    official_minibatch,
    swd_resolutions,
)
from pgmetrics.swd.descriptors import (
    batch_descriptors,
    channel_mean_std,
    descriptor_stats,
    gather_descriptors,
    normalize_descriptors,
    patchwise_level_descriptors,
)
from pgmetrics.swd.distance import sliced_wasserstein, swd_levels, swd_metrics
from pgmetrics.swd.pyramid import laplacian_pyramid, pyr_down, pyr_up
from pgmetrics.swd.rng import FastRng, ReferenceRng, make_rng
from pgmetrics.swd.sets import DescriptorSet, threaded_batch_descriptors
from pgmetrics.swd.torch_path import (
    torch_gather_descriptors,
    torch_laplacian_pyramid,
    torch_normalize_descriptors,
)

__all__ = [
    "CHANNELS", "DESCRIPTOR_SIZE", "DIRECTION_REPEATS", "DIRECTIONS_PER_REPEAT", "LOWEST_RESOLUTION",
    "OFFICIAL_NUM_IMAGES", "PATCH_RADIUS", "PATCH_SIZE", "PATCHES_PER_IMAGE", "DescriptorSet", "FastRng",
    "ReferenceRng", "SwdResult", "batch_descriptors", "channel_mean_std", "compute_swd", "descriptor_stats",
    "feed_all", "gather_descriptors", "laplacian_pyramid", "make_rng", "normalize_descriptors",
    "official_minibatch", "patchwise_level_descriptors", "pyr_down", "pyr_up", "sliced_wasserstein",
    "swd_levels", "swd_metrics", "swd_resolutions", "threaded_batch_descriptors", "torch_gather_descriptors",
    "torch_laplacian_pyramid", "torch_normalize_descriptors",
]


@dataclass
class SwdResult:
    metrics: dict[str, float]
    real_descriptors: list[torch.Tensor]


def feed_all(target: DescriptorSet, batches: Iterable[np.ndarray], progress=None) -> DescriptorSet:
    for batch in batches:
        target.feed(batch)
        if progress is not None:
            progress.update(len(batch))
    return target


def compute_swd(real_batches: Iterable[np.ndarray] | None, fake_batches: Iterable[np.ndarray], resolution: int, *,
                seed: int = 0, reference_rng: bool = False, device: torch.device | str = "cpu",
                real_descriptors: list[torch.Tensor] | None = None, real_batch_sizes: Sequence[int] = (),
                official_warmup: int | None = None, progress=None) -> SwdResult:
    """SWD of a fake set against a real set, fed in the given minibatches (reals first, as the official run).

    With `real_descriptors` (a cache hit) the reals are not fed again; in reference mode their position draws
    are replayed from `real_batch_sizes` so the fakes see the same random stream. `official_warmup` (reference
    mode): the minibatch size of evaluate_metrics' noise warm-up, whose draws come first.
    """
    device = torch.device(device)
    rng = make_rng(seed, reference_rng)
    sizes = swd_resolutions(resolution)
    if official_warmup:
        if not reference_rng:
            raise ValueError("the official warm-up only changes the reference random stream")
        rng.official_warmup(official_warmup, sizes)
    if real_descriptors is None:
        if real_batches is None:
            raise ValueError("either real_batches or real_descriptors")
        real_descriptors = feed_all(DescriptorSet(resolution, rng, "reals", device), real_batches, progress).finish()
    elif reference_rng:
        for n in real_batch_sizes:
            for size in sizes:
                rng.positions(n * PATCHES_PER_IMAGE, size, "reals")
    rng.end_pass(len(sizes))
    fake_descriptors = feed_all(DescriptorSet(resolution, rng, "fakes", device), fake_batches, progress).finish()
    distances = swd_levels(real_descriptors, fake_descriptors, rng)
    return SwdResult(swd_metrics(distances, resolution), real_descriptors)
