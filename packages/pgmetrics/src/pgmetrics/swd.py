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

import concurrent.futures
import contextlib
import ctypes
import glob
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pgmetrics import native
from pgmetrics.errors import PgmetricsError

PATCH_SIZE = 7
PATCH_RADIUS = PATCH_SIZE // 2
PATCHES_PER_IMAGE = 128
DIRECTION_REPEATS = 4
DIRECTIONS_PER_REPEAT = 128
LOWEST_RESOLUTION = 16
OFFICIAL_NUM_IMAGES = 16384
CHANNELS = 3
DESCRIPTOR_SIZE = CHANNELS * PATCH_SIZE * PATCH_SIZE

# 1-D factor of the official 5x5 kernel outer([1,4,6,4,1], [1,4,6,4,1]) / 256.
_BINOMIAL = (1.0 / 16, 4.0 / 16, 6.0 / 16, 4.0 / 16, 1.0 / 16)
# Bytes of projections (both sets) per thread-pool task.
_BLOCK_BYTES = 1 << 30


def swd_resolutions(resolution: int) -> list[int]:
    """Pyramid level sizes, finest first: R, R/2, ..., 16 (matches the official level count log2(R) - 3)."""
    if resolution < LOWEST_RESOLUTION or resolution & (resolution - 1):
        raise PgmetricsError(f"SWD needs square power-of-two images of at least {LOWEST_RESOLUTION}x"
                             f"{LOWEST_RESOLUTION}, got {resolution}x{resolution} (use --resize)")
    sizes = []
    while resolution >= LOWEST_RESOLUTION:
        sizes.append(resolution)
        resolution //= 2
    return sizes


def official_minibatch(resolution: int) -> int:
    """Minibatch of the official evaluate_metrics: clip(8192 // H, 4, 256)."""
    return int(np.clip(8192 // resolution, 4, 256))


# --- Laplacian pyramid (numpy, CPU) -------------------------------------------------------------------------
#
# Exactness: the official code convolves float32 arrays in double (scipy.ndimage) and stores float32. With the
# integer weights [1,4,6,4,1] (and [1,6,1], [4,4] for the two pyr_up phases) and one power-of-two scale at the
# end, every partial sum of G1 = down(G0), G2 = down(G1) and up(G1) fits float32's 24-bit significand (G0 is
# 0..255 integers, G1 multiples of 2^-8, G2 of 2^-16), so those are bit-exact in float32; deeper levels and
# up(G2...) need float64 (`exact`), whose sums of these products are exact and round once like scipy's.


def _axis(axis: int, index: slice) -> tuple:
    return (slice(None),) * axis + (index,)


def _down_axis(x: np.ndarray, axis: int, dtype: type) -> np.ndarray:
    """Unscaled [1,4,6,4,1] filter along `axis` at the even positions (x 16), mirror borders."""
    even = x[_axis(axis, slice(0, None, 2))]
    odd = x[_axis(axis, slice(1, None, 2))]
    h = even.shape[axis]

    def part(array, start, stop):
        return array[_axis(axis, slice(start, stop))]

    out = np.multiply(even, 6, dtype=dtype)
    np.add(part(out, 1, None), part(even, 0, h - 1), out=part(out, 1, None), dtype=dtype)
    np.add(part(out, 0, 1), part(even, 1, 2), out=part(out, 0, 1), dtype=dtype)          # x[-2] = x[2]
    np.add(part(out, 0, h - 1), part(even, 1, None), out=part(out, 0, h - 1), dtype=dtype)
    np.add(part(out, h - 1, h), part(even, h - 1, h), out=part(out, h - 1, h), dtype=dtype)  # x[S] = x[S-2]
    pairs = np.add(part(odd, 0, h - 1), part(odd, 1, None), dtype=dtype)
    pairs *= 4
    part(out, 1, None)[...] += pairs
    np.add(part(out, 0, 1), np.multiply(part(odd, 0, 1), 8, dtype=dtype), out=part(out, 0, 1))  # x[-1] = x[1]
    return out


def _up_axis(g: np.ndarray, axis: int, dtype: type) -> np.ndarray:
    """Unscaled polyphase pyr_up along `axis` (x 8): even outputs [1,6,1], odd outputs [4,4] of the input.

    Same as zero insertion + [1,4,6,4,1] with scipy's mirror border on the zero-inserted array, which acts on
    the input as a reflected left edge (g[-1] = g[1]) and a repeated right edge (g[h] = g[h-1]).
    """
    h = g.shape[axis]
    shape = list(g.shape)
    shape[axis] = 2 * h
    out = np.empty(shape, dtype)
    even = out[_axis(axis, slice(0, None, 2))]
    odd = out[_axis(axis, slice(1, None, 2))]

    def part(array, start, stop):
        return array[_axis(axis, slice(start, stop))]

    np.multiply(g, 6, out=even, dtype=dtype)
    np.add(part(even, 1, None), part(g, 0, h - 1), out=part(even, 1, None), dtype=dtype)
    np.add(part(even, 0, 1), part(g, 1, 2), out=part(even, 0, 1), dtype=dtype)
    np.add(part(even, 0, h - 1), part(g, 1, None), out=part(even, 0, h - 1), dtype=dtype)
    np.add(part(even, h - 1, h), part(g, h - 1, h), out=part(even, h - 1, h), dtype=dtype)
    np.add(part(g, 0, h - 1), part(g, 1, None), out=part(odd, 0, h - 1), dtype=dtype)
    np.multiply(part(g, h - 1, h), 2, out=part(odd, h - 1, h), dtype=dtype)
    odd *= 4
    return out


def _as_array(images) -> np.ndarray:
    return images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)


def pyr_down(images, dtype: type = np.float64) -> np.ndarray:
    """Blur with the binomial kernel and keep even rows/columns (the official pyr_down, cv2.pyrDown), float32
    result of a `dtype` computation."""
    out = _down_axis(_down_axis(_as_array(images), 2, dtype), 3, dtype)
    out *= 1.0 / 256
    return out.astype(np.float32, copy=False)


def pyr_up(images, dtype: type = np.float64) -> np.ndarray:
    """Zero-insert to twice the size, blur with 4x the kernel (the official pyr_up, cv2.pyrUp), float32 result."""
    out = _up_axis(_up_axis(_as_array(images), 3, dtype), 2, dtype)
    out *= 1.0 / 64
    return out.astype(np.float32, copy=False)


def _level_dtype(level: int, exact: bool, up: bool) -> type:
    """float32 where it is exact (see above) or where `exact` is off, else float64."""
    return np.float64 if exact and level >= (1 if up else 2) else np.float32


def laplacian_pyramid(images, num_levels: int, exact: bool = False) -> list[np.ndarray]:
    """Band-pass levels, float32, finest first; the last level is the Gaussian low-pass itself (official order).

    `exact` reproduces the official float32 arrays bit for bit; otherwise the deeper levels are computed in
    float32 (differences ~1e-5).
    """
    gauss = [_as_array(images)]
    if gauss[0].dtype not in (np.uint8, np.float32):
        gauss[0] = gauss[0].astype(np.float32)
    for level in range(num_levels - 1):
        gauss.append(pyr_down(gauss[-1], _level_dtype(level, exact, up=False)))
    levels = []
    for level in range(num_levels - 1):
        upsampled = pyr_up(gauss[level + 1], _level_dtype(level, exact, up=True))
        levels.append(np.subtract(gauss[level], upsampled, out=upsampled, dtype=np.float32))
    levels.append(gauss[-1])
    return levels


# --- descriptors (numpy, CPU) -------------------------------------------------------------------------------


def gather_descriptors(level: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """7x7 neighbourhoods, flattened to [K, C*49], around (x, y); patch k belongs to image k // 128.

    Layout matches the official code: desc[k, c, i, j] = level[k // 128, c, y_k + j - 3, x_k + i - 3]
    (axis 2 runs along the width), which fixes the order of the 147 components that directions multiply.
    One fancy index into a window view (no per-patch loop, one copy).
    """
    count = x.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(level, (PATCH_SIZE, PATCH_SIZE), axis=(2, 3))
    windows = windows.swapaxes(-1, -2)  # [N, C, rows, cols, width offset, height offset]
    image = np.arange(count) // PATCHES_PER_IMAGE
    patches = windows[image, :, np.asarray(y) - PATCH_RADIUS, np.asarray(x) - PATCH_RADIUS]
    return patches.reshape(count, -1)


def descriptor_stats(descriptors: np.ndarray) -> np.ndarray:
    """[2, width] float64: column sums and column sums of squares (row chunks that stay in cache)."""
    stats = np.zeros((2, descriptors.shape[1]), np.float64)
    chunk = max(1, (1 << 16) // max(1, descriptors.shape[1]))
    for start in range(0, descriptors.shape[0], chunk):
        block = descriptors[start:start + chunk].astype(np.float64)
        stats[0] += block.sum(axis=0)
        stats[1] += np.square(block).sum(axis=0)
    return stats


def channel_mean_std(stats: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column float32 mean and std, each channel's population statistics over all its patches and
    positions (the official finalize_descriptors axes), from descriptor_stats of `count` descriptors."""
    per_channel = stats.shape[1] // CHANNELS
    size = count * per_channel
    sums = stats.reshape(2, CHANNELS, per_channel).sum(axis=2)
    mean = sums[0] / size
    std = np.sqrt(np.maximum(sums[1] / size - np.square(mean), 0.0))
    return np.repeat(mean.astype(np.float32), per_channel), np.repeat(std.astype(np.float32), per_channel)


def normalize_into(descriptors: np.ndarray, mean: np.ndarray, std: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = (descriptors - mean) / std in float32, the official order of operations."""
    if native.library() is not None:
        native.normalize(descriptors, mean, std, out)
        return out
    np.subtract(descriptors, mean, out=out, dtype=np.float32)
    out /= std
    return out


def normalize_descriptors(descriptors: np.ndarray, stats: np.ndarray | None = None) -> np.ndarray:
    """Normalise [M, C*49] descriptors per channel by their own mean and population std (the official
    finalize_descriptors: each set by its own statistics; ours accumulated in float64)."""
    stats = descriptor_stats(descriptors) if stats is None else stats
    mean, std = channel_mean_std(stats, descriptors.shape[0])
    return normalize_into(descriptors, mean, std, np.empty(descriptors.shape, np.float32))


# Levels of at least this size are only evaluated at the patches (pyr_up of the 6x6 coarse neighbourhood of
# each patch): from 256x256 on that is cheaper than the whole level (measured; at 128x128 the small einsums
# cost more than the full polyphase pass).
PATCHWISE_MIN_SIZE = 256


def _up_matrices() -> np.ndarray:
    """[2, 7, 6] integer weights (x 8) of pyr_up along one axis for a 7-wide patch, by the parity of its first
    row, over the 6 padded coarse samples starting at (first row) // 2 (see _up_axis for the borders)."""
    out = np.zeros((2, PATCH_SIZE, 6))
    for parity in range(2):
        for a in range(PATCH_SIZE):
            row = parity + a  # fine row relative to 2 * start
            if row % 2 == 0:
                out[parity, a, row // 2: row // 2 + 3] = (1, 6, 1)
            else:
                out[parity, a, row // 2 + 1: row // 2 + 3] = (4, 4)
    return out


_UP_MATRICES = _up_matrices()


def patchwise_level_descriptors(fine: np.ndarray, coarse: np.ndarray, x: np.ndarray, y: np.ndarray,
                                dtype: type) -> np.ndarray:
    """gather_descriptors(fine - pyr_up(coarse), x, y) without building the level: the same float32 values
    (pyr_up evaluated in `dtype` at the 7x7 patch pixels only and rounded to float32, as the official stores
    it, then subtracted in float32)."""
    count = x.shape[0]
    h = coarse.shape[-1]
    padded = np.concatenate([coarse[:, :, 1:2], coarse, coarse[:, :, h - 1:h]], axis=2)
    padded = np.concatenate([padded[:, :, :, 1:2], padded, padded[:, :, :, h - 1:h]], axis=3)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (6, 6), axis=(2, 3))
    image = np.arange(count) // PATCHES_PER_IMAGE
    top, left = np.asarray(y) - PATCH_RADIUS, np.asarray(x) - PATCH_RADIUS
    coarse_patches = windows[image, :, top // 2, left // 2]  # [K, C, 6 (rows), 6 (columns)]
    upsampled = np.empty((count, CHANNELS, PATCH_SIZE, PATCH_SIZE), np.float32)  # [K, C, width, height]
    for row_parity in range(2):
        for column_parity in range(2):
            chosen = np.flatnonzero((top % 2 == row_parity) & (left % 2 == column_parity))
            if chosen.size == 0:
                continue
            rows = _UP_MATRICES[row_parity].astype(dtype)
            columns = _UP_MATRICES[column_parity].astype(dtype)
            block = np.einsum("au,kcuv,bv->kcba", rows, coarse_patches[chosen].astype(dtype), columns,
                              optimize=True)
            block *= 1.0 / 64
            upsampled[chosen] = block
    out = gather_descriptors(fine, x, y).astype(np.float32, copy=False)
    out -= upsampled.reshape(count, -1)
    return out


def _opencv_planes(function, images: np.ndarray, size: int) -> np.ndarray:
    """Apply cv2.pyrDown/pyrUp to every [H, W] plane of an [N, C, H, W] batch, each converted to float32."""
    n, c = images.shape[:2]
    out = np.empty((n * c, size, size), np.float32)
    for index, plane in enumerate(images.reshape(n * c, *images.shape[2:])):
        out[index] = function(plane.astype(np.float32, copy=False))
    return out.reshape(n, c, size, size)


def _fast_pyr_down(images: np.ndarray) -> np.ndarray:
    """cv2.pyrDown in float32: the official filter and borders (equal to pyr_down on the first two levels,
    within float32 rounding below), 3-5x faster than the numpy passes (measured)."""
    import cv2

    return _opencv_planes(cv2.pyrDown, images, images.shape[-1] // 2)


def _fast_pyr_up(images: np.ndarray) -> np.ndarray:
    import cv2

    return _opencv_planes(cv2.pyrUp, images, images.shape[-1] * 2)


def batch_descriptors(images: np.ndarray, sizes: Sequence[int], positions: Sequence[tuple[np.ndarray, np.ndarray]],
                      exact: bool, stats: np.ndarray | None = None) -> list[np.ndarray]:
    """Descriptors [n * 128, 147] per level of one batch, finest first (= gather_descriptors of each
    laplacian_pyramid level, bit for bit when `exact`), building only the Gaussian chain: the band-pass values
    are computed at the patches only (compiled kernel; in numpy for the levels from PATCHWISE_MIN_SIZE on).
    Without `exact` the Gaussian chain uses OpenCV's float32 filters. `stats` ([levels, 2, 147] float64), when
    given, gets each level's descriptor_stats added."""
    gauss = [images if images.dtype in (np.uint8, np.float32) else images.astype(np.float32)]
    for level in range(len(sizes) - 1):
        gauss.append(pyr_down(gauss[-1], _level_dtype(level, exact, up=False)) if exact
                     else _fast_pyr_down(gauss[-1]))
    compiled = native.library() is not None
    out = []
    for level, (x, y) in enumerate(positions):
        coarse = gauss[level + 1] if level < len(sizes) - 1 else None
        if compiled:
            scratch = np.zeros((2, DESCRIPTOR_SIZE)) if stats is None else stats[level]
            out.append(native.patch_descriptors(gauss[level], coarse, x, y, scratch))
            continue
        if coarse is None:
            descriptors = gather_descriptors(gauss[level], x, y)
        elif sizes[level] >= PATCHWISE_MIN_SIZE:
            descriptors = patchwise_level_descriptors(gauss[level], coarse, x, y,
                                                      _level_dtype(level, exact, up=True))
        else:
            upsampled = (pyr_up(coarse, _level_dtype(level, exact, up=True)) if exact
                         else _fast_pyr_up(coarse))
            band = np.subtract(gauss[level], upsampled, out=upsampled, dtype=np.float32)
            descriptors = gather_descriptors(band, x, y)
        if stats is not None:
            stats[level] += descriptor_stats(descriptors)
        out.append(descriptors)
    return out


# --- the same steps in torch (GPU) --------------------------------------------------------------------------


def _torch_blur_axis(values: torch.Tensor, taps: Sequence[float], stride: int, dim: int) -> torch.Tensor:
    """5-tap filter along one axis as a sum of shifted slices, mirror borders, optional stride."""
    size = values.shape[dim]
    padded = torch.cat([values.narrow(dim, 2, 1), values.narrow(dim, 1, 1), values,
                        values.narrow(dim, size - 2, 1), values.narrow(dim, size - 3, 1)], dim=dim)
    count = (size - 1) // stride + 1
    out = None
    for tap, weight in enumerate(taps):
        part = padded.narrow(dim, tap, (count - 1) * stride + 1)
        if stride > 1:
            part = part.unfold(dim, 1, stride).squeeze(-1)
        out = part * weight if out is None else out.add_(part, alpha=weight)
    return out


def _torch_blur(images: torch.Tensor, taps: Sequence[float], stride: int) -> torch.Tensor:
    return _torch_blur_axis(_torch_blur_axis(images, taps, stride, dim=3), taps, stride, dim=2)


def torch_laplacian_pyramid(images: torch.Tensor, num_levels: int, exact: bool = False) -> list[torch.Tensor]:
    """`laplacian_pyramid` in torch for GPUs (`exact`: float64 filtering, rounded to float32 per level)."""
    compute = torch.float64 if exact else torch.float32
    gauss = [images.to(torch.float32)]
    for _ in range(num_levels - 1):
        gauss.append(_torch_blur(gauss[-1].to(compute), _BINOMIAL, stride=2).to(torch.float32))
    levels = []
    for level in range(num_levels - 1):
        low = gauss[level + 1].to(compute)
        n, c, h, w = low.shape
        spread = low.new_zeros((n, c, 2 * h, 2 * w))
        spread[:, :, ::2, ::2] = low
        upsampled = _torch_blur(spread, tuple(2 * t for t in _BINOMIAL), stride=1).to(torch.float32)
        levels.append(gauss[level] - upsampled)
    levels.append(gauss[-1])
    return levels


def torch_gather_descriptors(level: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`gather_descriptors` in torch: [K, C*49] in the official (width offset first) layout."""
    count = x.shape[0]
    offsets = torch.arange(-PATCH_RADIUS, PATCH_RADIUS + 1, device=level.device)
    image_index = (torch.arange(count, device=level.device) // PATCHES_PER_IMAGE).view(count, 1, 1)
    columns = x.to(level.device).view(count, 1, 1) + offsets.view(1, PATCH_SIZE, 1)
    rows = y.to(level.device).view(count, 1, 1) + offsets.view(1, 1, PATCH_SIZE)
    patches = level.permute(0, 2, 3, 1)[image_index, rows, columns]  # [K, 7 (width), 7 (height), C]
    return patches.permute(0, 3, 1, 2).reshape(count, -1)


def torch_normalize_descriptors(descriptors: torch.Tensor) -> torch.Tensor:
    grouped = descriptors.reshape(descriptors.shape[0], CHANNELS, -1)
    var, mean = torch.var_mean(grouped.double(), dim=(0, 2), correction=0, keepdim=True)
    out = (grouped - mean.to(torch.float32)) / var.sqrt().to(torch.float32)
    return out.reshape(descriptors.shape[0], -1)


# --- random numbers -----------------------------------------------------------------------------------------


def _unit_directions(gaussian: np.ndarray) -> np.ndarray:
    """Columns divided by their L2 norm in float64, then cast to float32 (the official order of operations)."""
    return (gaussian / np.sqrt(np.sum(np.square(gaussian), axis=0, keepdims=True))).astype(np.float32)


class ReferenceRng:
    """numpy legacy RandomState(seed), drawn exactly as the official code draws from np.random."""

    exact = True

    def __init__(self, seed: int):
        self.state = np.random.RandomState(seed)

    def positions(self, count: int, size: int, stream: str) -> tuple[np.ndarray, np.ndarray]:
        x = self.state.randint(PATCH_RADIUS, size - PATCH_RADIUS, size=(count, 1, 1, 1))
        y = self.state.randint(PATCH_RADIUS, size - PATCH_RADIUS, size=(count, 1, 1, 1))
        return x.reshape(-1), y.reshape(-1)

    def directions(self) -> np.ndarray:
        return _unit_directions(self.state.randn(DESCRIPTOR_SIZE, DIRECTIONS_PER_REPEAT))

    def end_pass(self, num_levels: int) -> None:
        """The official `end` of a reals pass draws (and wastes) 4 direction matrices per level."""
        for _ in range(num_levels * DIRECTION_REPEATS):
            self.state.randn(DESCRIPTOR_SIZE, DIRECTIONS_PER_REPEAT)


class FastRng:
    """torch generators: one per (stream, level) for positions and one for directions. CPU generators give the
    same numbers on every device; separate streams keep cached real descriptors valid whatever the fakes are,
    and make the values independent of how a set is split into minibatches."""

    exact = False

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.generators: dict[tuple[str, int], torch.Generator] = {}

    def _generator(self, stream: str, size: int) -> torch.Generator:
        key = (stream, size)
        if key not in self.generators:
            index = {"reals": 1, "fakes": 2, "directions": 3}[stream]
            self.generators[key] = torch.Generator().manual_seed(self.seed * 1_000_003 + index * 65_537 + size)
        return self.generators[key]

    def positions(self, count: int, size: int, stream: str) -> tuple[np.ndarray, np.ndarray]:
        xy = torch.randint(PATCH_RADIUS, size - PATCH_RADIUS, (count, 2), generator=self._generator(stream, size))
        xy = xy.numpy()
        return xy[:, 0], xy[:, 1]

    def directions(self) -> np.ndarray:
        gaussian = torch.randn(DESCRIPTOR_SIZE, DIRECTIONS_PER_REPEAT, generator=self._generator("directions", 0),
                               dtype=torch.float64)
        return _unit_directions(gaussian.numpy())

    def end_pass(self, num_levels: int) -> None:
        pass


def make_rng(seed: int, reference: bool) -> ReferenceRng | FastRng:
    return ReferenceRng(seed) if reference else FastRng(seed)


# --- accumulation of one set --------------------------------------------------------------------------------


class DescriptorSet:
    """Descriptors of one image set, fed minibatch by minibatch (the official API's feed/end, one pass)."""

    def __init__(self, resolution: int, rng: ReferenceRng | FastRng, stream: str, device: torch.device | str):
        self.sizes = swd_resolutions(resolution)
        self.resolution = resolution
        self.rng = rng
        self.stream = stream
        self.device = torch.device(device)
        self.parts: list[list] = [[] for _ in self.sizes]
        self.stats = np.zeros((len(self.sizes), 2, DESCRIPTOR_SIZE))  # CPU: descriptor_stats per level
        self.num_images = 0

    def feed(self, images: np.ndarray | torch.Tensor) -> None:
        n, c, h, w = images.shape
        if c != CHANNELS or h != self.resolution or w != self.resolution:
            raise PgmetricsError(f"SWD expects {CHANNELS}x{self.resolution}x{self.resolution} images, "
                                 f"got {c}x{h}x{w}")
        if self.device.type == "cpu":
            positions = [self.rng.positions(n * PATCHES_PER_IMAGE, size, self.stream) for size in self.sizes]
            pieces, stats = _threaded_batch_descriptors(_as_array(images), self.sizes, positions, self.rng.exact)
            for index, level_pieces in enumerate(pieces):
                self.parts[index].extend(level_pieces)
            self.stats += stats
            self.num_images += n
            return
        else:
            levels = torch_laplacian_pyramid(torch.as_tensor(images).to(self.device), len(self.sizes),
                                             exact=self.rng.exact)

            def gather(level, x, y):
                return torch_gather_descriptors(level, torch.from_numpy(x), torch.from_numpy(y))
        for index, (level, size) in enumerate(zip(levels, self.sizes, strict=True)):
            x, y = self.rng.positions(n * PATCHES_PER_IMAGE, size, self.stream)
            self.parts[index].append(gather(level, x, y))
        self.num_images += n

    def finish(self) -> list[torch.Tensor]:
        """Normalised descriptors per level, [num_images * 128, 147] float32 each (the official `end`)."""
        if self.num_images == 0:
            raise PgmetricsError("SWD got no images")
        out = []
        for index in range(len(self.sizes)):
            parts, self.parts[index] = self.parts[index], []
            if self.device.type == "cpu":
                out.append(torch.from_numpy(_normalize_parts(parts, self.stats[index])))
            else:
                out.append(torch_normalize_descriptors(torch.cat(parts)))
        return out


def _threaded_batch_descriptors(images: np.ndarray, sizes: Sequence[int],
                                positions: Sequence[tuple[np.ndarray, np.ndarray]], exact: bool
                                ) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """batch_descriptors over image slices in the thread pool (numpy, OpenCV and the compiled kernels release
    the GIL): per level the slices' descriptors in order, and the summed descriptor_stats [levels, 2, 147]."""
    pieces = max(1, min(_workers(), len(images)))
    bounds = np.linspace(0, len(images), pieces + 1).astype(int)
    stats = np.zeros((pieces, len(sizes), 2, DESCRIPTOR_SIZE))

    def run(piece: int) -> list[np.ndarray]:
        a, b = bounds[piece] * PATCHES_PER_IMAGE, bounds[piece + 1] * PATCHES_PER_IMAGE
        return batch_descriptors(images[bounds[piece]:bounds[piece + 1]], sizes,
                                 [(x[a:b], y[a:b]) for x, y in positions], exact, stats[piece])

    if pieces == 1:
        results = [run(0)]
    else:
        with _blas_single_threaded():
            results = list(_pool().map(run, range(pieces)))
    return [[result[level] for result in results] for level in range(len(sizes))], stats.sum(axis=0)


def _normalize_parts(parts: Sequence[np.ndarray], stats: np.ndarray) -> np.ndarray:
    """One [M, 147] array of the parts normalised by the statistics of all of them (one pass, in threads)."""
    count = sum(len(part) for part in parts)
    mean, std = channel_mean_std(stats, count)
    out = np.empty((count, DESCRIPTOR_SIZE), np.float32)
    offsets = np.concatenate([[0], np.cumsum([len(part) for part in parts])])

    def run(index: int) -> None:
        normalize_into(parts[index], mean, std, out[offsets[index]:offsets[index + 1]])

    list(_pool().map(run, range(len(parts))))
    return out


# --- the distance -------------------------------------------------------------------------------------------


_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_BLAS_LOCK = threading.Lock()
_BLAS: dict = {}


def _workers() -> int:
    return max(1, torch.get_num_threads())


def _openblas_threads():
    """numpy's bundled OpenBLAS thread setter/getter (ctypes), or None. Needed because each pool thread runs
    its own matmul: with OpenBLAS's threads on top, 2 cores ran 2x slower than one thread (measured)."""
    if "functions" not in _BLAS:
        functions = None
        for path in glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in ("scipy_openblas_", "openblas_"):
                for suffix in ("64_", ""):
                    setter = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                    getter = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                    if setter is not None and getter is not None and functions is None:
                        functions = (setter, getter)
        _BLAS["functions"] = functions
    return _BLAS["functions"]


@contextlib.contextmanager
def _blas_single_threaded():
    """Yield True when numpy's BLAS now runs one thread per call (restored afterwards), False if unknown."""
    functions = _openblas_threads()
    if functions is None:
        yield False
        return
    setter, getter = functions
    with _BLAS_LOCK:
        before = getter()
        setter(1)
        try:
            yield True
        finally:
            setter(before)


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL._max_workers != _workers():
        _POOL = concurrent.futures.ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="pgmetrics-swd")
    return _POOL


def _block_distance(a: np.ndarray, b: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Sum over patches of |sort(a.d) - sort(b.d)| for each column d: projections as C-contiguous rows
    (directions.T @ desc.T) so numpy's SIMD sort runs in place along rows (several times faster than
    np.sort(axis=0); a compiled LSD radix sort measured no faster here)."""
    projected_a = np.matmul(directions.T, a.T)
    projected_a.sort(axis=1)
    projected_b = np.matmul(directions.T, b.T)
    projected_b.sort(axis=1)
    np.subtract(projected_a, projected_b, out=projected_a)
    np.abs(projected_a, out=projected_a)
    return projected_a.sum(axis=1).astype(np.float64)


def _numpy_sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: Sequence[np.ndarray]) -> float:
    matrix = np.ascontiguousarray(np.concatenate(directions, axis=1), dtype=np.float32)
    total = matrix.shape[1]
    # 128 directions per task keep the matmul efficient (single-thread sgemm: 24 GFLOP/s at 16 rows, 68 at 128,
    # measured); fewer only where the two [block, M] projection arrays would pass _BLOCK_BYTES.
    block = int(np.clip(_BLOCK_BYTES // (8 * a.shape[0]), 16, DIRECTIONS_PER_REPEAT))
    starts = range(0, total, block)
    with _blas_single_threaded() as single:
        if _workers() == 1 or len(starts) == 1 or not single:
            sums = [_block_distance(a, b, matrix[:, s:s + block]) for s in starts]
        else:
            sums = list(_pool().map(lambda s: _block_distance(a, b, matrix[:, s:s + block]), starts))
    per_direction = np.concatenate(sums).reshape(len(directions), -1)
    per_repeat = per_direction.sum(axis=1) / (a.shape[0] * per_direction.shape[1])
    return float(np.mean(per_repeat))


def _torch_sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: Sequence[np.ndarray]) -> float:
    per_repeat = []
    for matrix in directions:
        matrix = torch.from_numpy(matrix).to(a.device)
        sorted_a = torch.sort(a @ matrix, dim=0).values
        sorted_b = torch.sort(b @ matrix, dim=0).values
        per_repeat.append(float((sorted_a - sorted_b).abs_().sum(dtype=torch.float64)) / sorted_a.numel())
    return float(np.mean(per_repeat))


def sliced_wasserstein(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray,
                       directions: Sequence[np.ndarray]) -> float:
    """Mean over repeats of mean |sort(a.d) - sort(b.d)| over patches and directions (official
    sliced_wasserstein: equal set sizes, float32 projections); numpy on the CPU, torch on a GPU."""
    if a.shape != b.shape:
        raise PgmetricsError(f"SWD needs equally many descriptors in both sets, got {a.shape[0]} and {b.shape[0]}"
                             " (use the same number of real and fake images)")
    if isinstance(a, torch.Tensor) and a.device.type != "cpu":
        return _torch_sliced_wasserstein(a, b.to(a.device), directions)
    return _numpy_sliced_wasserstein(_as_array(a), _as_array(b), directions)


def swd_levels(real: Sequence, fake: Sequence, rng: ReferenceRng | FastRng) -> list[float]:
    """Per-level distances (not scaled); draws 4 direction matrices per level, finest level first."""
    return [sliced_wasserstein(a, b, [rng.directions() for _ in range(DIRECTION_REPEATS)])
            for a, b in zip(real, fake, strict=True)]


def swd_metrics(distances: Sequence[float], resolution: int) -> dict[str, float]:
    """Official names and scale: SWDx1e3_<res> per level (finest first), SWDx1e3_avg = their plain mean."""
    scaled = [1e3 * d for d in distances]
    out = {f"SWDx1e3_{size}": value for size, value in zip(swd_resolutions(resolution), scaled, strict=True)}
    out["SWDx1e3_avg"] = float(np.mean(scaled))
    return out


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
                progress=None) -> SwdResult:
    """SWD of a fake set against a real set, fed in the given minibatches (reals first, as the official run).

    With `real_descriptors` (a cache hit) the reals are not fed again; in reference mode their position draws
    are replayed from `real_batch_sizes` so the fakes see the same random stream.
    """
    device = torch.device(device)
    rng = make_rng(seed, reference_rng)
    sizes = swd_resolutions(resolution)
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
