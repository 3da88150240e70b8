"""SWD's compiled inner loops (_swd_kernels.c), built on first use through pgdata.native_build: the
descriptors of a Laplacian level straight from the Gaussian levels at the patches, and their normalisation.

Environment: PGMETRICS_NATIVE=0 uses the numpy code instead (same values, slower).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from pgdata import native_build

SOURCE = Path(__file__).with_name("_swd_kernels.c")
_state: dict = {}


def _declare(lib: ctypes.CDLL) -> None:
    p, i = ctypes.c_void_p, ctypes.c_int
    lib.pg_patch_descriptors.argtypes = [p, i, p, i, i, p, p, ctypes.c_int64, i, p, p, p, p]
    lib.pg_patch_descriptors.restype = None
    lib.pg_normalize.argtypes = [p, ctypes.c_int64, i, p, p, p]
    lib.pg_normalize.restype = None


def library() -> ctypes.CDLL | None:
    if "lib" not in _state:
        _state["lib"] = native_build.load(SOURCE, "pgmetrics_swd", _declare, "PGMETRICS_NATIVE")
    return _state["lib"]


def patch_descriptors(fine: np.ndarray, coarse: np.ndarray | None, x: np.ndarray, y: np.ndarray,
                      stats: np.ndarray, up_weights: np.ndarray) -> np.ndarray:
    """[K, C*49] descriptors of the Laplacian level fine - pyr_up(coarse) (or of `fine` itself when `coarse` is
    None) at patch centres (x, y), patch k in image k // 128; `fine` float32 or uint8. Adds column sums and
    sums of squares to stats[0] and stats[1] (float64 [2, C*49]). `up_weights`: pyr_up's [2, 7, 6] patch
    weights (x 8). Needs library()."""
    from pgmetrics.swd import PATCH_SIZE, PATCHES_PER_IMAGE

    fine = np.ascontiguousarray(fine, dtype=np.uint8 if fine.dtype == np.uint8 else np.float32)
    n, channels, size = fine.shape[0], fine.shape[1], fine.shape[2]
    if coarse is not None:
        coarse = np.ascontiguousarray(coarse, dtype=np.float32)
        if coarse.shape != (n, channels, size // 2, size // 2):
            raise ValueError(f"coarse level {coarse.shape} does not match fine level {fine.shape}")
    x = np.ascontiguousarray(x, dtype=np.int64)
    y = np.ascontiguousarray(y, dtype=np.int64)
    count = x.shape[0]
    if count > n * PATCHES_PER_IMAGE or y.shape != x.shape or stats.shape != (2, channels * PATCH_SIZE ** 2) \
            or stats.dtype != np.float64 or not stats.flags.c_contiguous:
        raise ValueError("positions or stats do not match the level")
    up_weights = np.ascontiguousarray(up_weights, dtype=np.float64)
    if up_weights.shape != (2, PATCH_SIZE, PATCH_SIZE - 1):
        raise ValueError(f"pyr_up patch weights must be [2, 7, 6], got {up_weights.shape}")
    low, high = PATCH_SIZE // 2, size - PATCH_SIZE // 2
    if count and (x.min() < low or y.min() < low or x.max() >= high or y.max() >= high):
        raise ValueError("patch centres outside the level")
    out = np.empty((count, channels * PATCH_SIZE ** 2), np.float32)
    library().pg_patch_descriptors(fine.ctypes.data, int(fine.dtype == np.uint8),
                                   None if coarse is None else coarse.ctypes.data, channels, size, x.ctypes.data,
                                   y.ctypes.data, count, PATCHES_PER_IMAGE, up_weights.ctypes.data,
                                   out.ctypes.data, stats[0].ctypes.data, stats[1].ctypes.data)
    return out


def normalize(values: np.ndarray, mean: np.ndarray, std: np.ndarray, out: np.ndarray) -> None:
    """out = (values - mean) / std per column, float32 (out may be values). Needs library()."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    mean = np.ascontiguousarray(mean, dtype=np.float32)
    std = np.ascontiguousarray(std, dtype=np.float32)
    if out.shape != values.shape or not out.flags.c_contiguous or out.dtype != np.float32 \
            or mean.shape != (values.shape[1],) or std.shape != mean.shape:
        raise ValueError("normalize: shapes or layout do not match")
    library().pg_normalize(values.ctypes.data, values.shape[0], values.shape[1], mean.ctypes.data,
                           std.ctypes.data, out.ctypes.data)
