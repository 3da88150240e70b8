"""Patch descriptors of the Laplacian levels (numpy and the compiled kernel) and their normalisation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pgmetrics import native
from pgmetrics.swd.constants import CHANNELS, DESCRIPTOR_SIZE, PATCH_RADIUS, PATCH_SIZE, PATCHES_PER_IMAGE
from pgmetrics.swd.pyramid import fast_pyr_down, fast_pyr_up, level_dtype, pyr_down, pyr_up


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
    row, over the 6 padded coarse samples starting at (first row) // 2 (see _up_axis for the borders); the
    numpy and the compiled patch paths both use it."""
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


def batch_descriptors(images: np.ndarray, sizes: Sequence[int], positions: Sequence[tuple[np.ndarray, np.ndarray]],
                      exact: bool, stats: np.ndarray | None = None) -> list[np.ndarray]:
    """Descriptors [n * 128, 147] per level of one batch, finest first (= gather_descriptors of each
    laplacian_pyramid level, bit for bit when `exact`), building only the Gaussian chain: the band-pass values
    are computed at the patches only (compiled kernel; in numpy for the levels from PATCHWISE_MIN_SIZE on).
    Without `exact` the Gaussian chain uses OpenCV's float32 filters. `stats` ([levels, 2, 147] float64), when
    given, gets each level's descriptor_stats added."""
    gauss = [images if images.dtype in (np.uint8, np.float32) else images.astype(np.float32)]
    for level in range(len(sizes) - 1):
        gauss.append(pyr_down(gauss[-1], level_dtype(level, exact, up=False)) if exact
                     else fast_pyr_down(gauss[-1]))
    compiled = native.library() is not None
    out = []
    for level, (x, y) in enumerate(positions):
        coarse = gauss[level + 1] if level < len(sizes) - 1 else None
        if compiled:
            scratch = np.zeros((2, DESCRIPTOR_SIZE)) if stats is None else stats[level]
            out.append(native.patch_descriptors(gauss[level], coarse, x, y, scratch, _UP_MATRICES))
            continue
        if coarse is None:
            descriptors = gather_descriptors(gauss[level], x, y)
        elif sizes[level] >= PATCHWISE_MIN_SIZE:
            descriptors = patchwise_level_descriptors(gauss[level], coarse, x, y,
                                                      level_dtype(level, exact, up=True))
        else:
            upsampled = (pyr_up(coarse, level_dtype(level, exact, up=True)) if exact
                         else fast_pyr_up(coarse))
            band = np.subtract(gauss[level], upsampled, out=upsampled, dtype=np.float32)
            descriptors = gather_descriptors(band, x, y)
        if stats is not None:
            stats[level] += descriptor_stats(descriptors)
        out.append(descriptors)
    return out
