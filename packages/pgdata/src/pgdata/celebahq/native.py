"""Optional compiled inner loops (_ckernels.c) for the Pillow 3.1.1 kernels, built on first use.

Why: measured on the same machine in the same run (tools/bench_celebahq.py), the numpy kernels are 4-8x
slower than Pillow 3.1.1's C code on the 4096 x 4096 quad transform and the resizes, too slow for a
30,000-image rebuild. The C file is compiled once with the system C compiler into a cache folder and loaded
with ctypes (pgdata.native_build); without a compiler, pgdata falls back to numpy with a warning.

Environment: PGDATA_NATIVE=0 disables it; the library lives in the native/ folder of pgdata's cache
($PGDATA_CACHE, else $XDG_CACHE_HOME/pgdata, else ~/.cache/pgdata); CC picks the compiler.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from pgdata import native_build

SOURCE = Path(__file__).with_name("_ckernels.c")
_state: dict = {}


def library() -> ctypes.CDLL | None:
    """The loaded library, or None when disabled or not buildable (then numpy kernels run)."""
    if "lib" not in _state:
        _state["lib"] = native_build.load(SOURCE, "pgdata_ckernels", _declare, "PGDATA_NATIVE")
    return _state["lib"]


def _declare(lib: ctypes.CDLL) -> None:
    p = ctypes.c_void_p
    i = ctypes.c_int
    lib.pg_resample_x.argtypes = [p, i, i, i, p, i, p, p, p, i, p]
    lib.pg_resample_x.restype = None
    lib.pg_resample_y.argtypes = [p, i, ctypes.c_int64, p, i, p, p, p, i, p]
    lib.pg_resample_y.restype = None
    lib.pg_quad_bilinear.argtypes = [p, i, i, i, p, i, i, p]
    lib.pg_quad_bilinear.restype = None
    lib.pg_gauss_axis0.argtypes = [p, i, ctypes.c_int64, p, p, i, p, p, i, i, i, i]
    lib.pg_gauss_axis0.restype = i
    lib.pg_gauss_axis1.argtypes = [p, i, i, i, p, p, i, p, p, i, i, i, i]
    lib.pg_gauss_axis1.restype = i
    lib.pg_select_channels.argtypes = [p, ctypes.c_int64, i, ctypes.c_int64, p]
    lib.pg_select_channels.restype = i


def _ptr(array: np.ndarray) -> int:
    return array.ctypes.data


def resample_x(lib, image: np.ndarray, out_width: int, starts: np.ndarray, counts: np.ndarray,
               weights: np.ndarray) -> np.ndarray:
    image = np.ascontiguousarray(image)
    h, w, c = image.shape
    if c > 8:
        raise ValueError("at most 8 channels")
    out = np.empty((h, out_width, c), dtype=np.uint8)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    counts = np.ascontiguousarray(counts, dtype=np.int32)
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    scratch = np.empty(w * 16 * c, dtype=np.float32)  # 16 rows, column-major (see _ckernels.c)
    lib.pg_resample_x(_ptr(image), h, w, c, _ptr(out), out_width, _ptr(starts), _ptr(counts), _ptr(weights),
                      weights.shape[1], _ptr(scratch))
    return out


def resample_y(lib, image: np.ndarray, out_height: int, starts: np.ndarray, counts: np.ndarray,
               weights: np.ndarray) -> np.ndarray:
    image = np.ascontiguousarray(image)
    h = image.shape[0]
    n = int(np.prod(image.shape[1:]))
    out = np.empty((out_height,) + image.shape[1:], dtype=np.uint8)
    scratch = np.empty(n, dtype=np.float32)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    counts = np.ascontiguousarray(counts, dtype=np.int32)
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    lib.pg_resample_y(_ptr(image), h, n, _ptr(out), out_height, _ptr(starts), _ptr(counts), _ptr(weights),
                      weights.shape[1], _ptr(scratch))
    return out


def quad_bilinear(lib, image: np.ndarray, size: tuple[int, int], coefficients) -> np.ndarray:
    image = np.ascontiguousarray(image)
    h, w, c = image.shape
    out = np.empty((size[1], size[0], c), dtype=np.uint8)
    a = np.ascontiguousarray(coefficients, dtype=np.float64)
    lib.pg_quad_bilinear(_ptr(image), h, w, c, _ptr(out), size[0], size[1], _ptr(a))
    return out


def mirror_extent(image: np.ndarray, center: int, radius: int, axis: int = 0) -> int:
    """How many positions beside `center` along `axis` can be copied from their mirror image (see
    pg_gauss_axis0 in _ckernels.c).

    Output center - k equals output center + k when the input is symmetric about `center` over both
    filter windows, which are also clear of the array's edges.
    """
    view = image if axis == 0 else np.swapaxes(image, 0, axis)
    h = view.shape[0]
    if not 0 <= center < h:
        return 0
    limit = min(center, h - 1 - center)  # symmetric extent that fits in the array
    k = limit - radius
    if k <= 0:
        return 0
    span = k + radius
    if not np.array_equal(view[center - span:center][::-1], view[center + 1:center + 1 + span]):
        return 0
    return k


def mirror_zones(image: np.ndarray, axis: int, radius: int, mirrors: tuple[int, int] | None
                 ) -> tuple[int, int, int, int]:
    """(c0, k0, c1, k1) for the C passes: checked mirror extents about the two centres (0 = none)."""
    size = image.shape[axis]
    if mirrors is None:
        return 0, 0, size - 1, 0
    c0, c1 = int(mirrors[0]), int(mirrors[1])
    k0 = mirror_extent(image, c0, radius, axis)
    k1 = mirror_extent(image, c1, radius, axis)
    # copied positions must come from computed ones
    k0 = min(k0, max(c1 - c0, 0))
    k1 = min(k1, max(c1 - c0, 0))
    if c1 - k1 <= c0:  # overlapping mirror zones (tiny image): compute everything
        k0 = k1 = 0
    return c0, k0, c1, k1


def _flags(mask: np.ndarray | None, size: int) -> np.ndarray:
    if mask is None:
        return np.ones(size, dtype=np.uint8)
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    if mask.shape != (size,):
        raise ValueError(f"need mask of shape ({size},), got {mask.shape}")
    return mask


def gauss_axis(lib, image: np.ndarray, out: np.ndarray, axis: int, half_weights: np.ndarray,
               zones: tuple[int, int, int, int], need_pos: np.ndarray | None = None,
               need_other: np.ndarray | None = None) -> None:
    """scipy.ndimage.correlate1d(image, symmetric kernel, axis, mode="reflect") for float32 H x W x C,
    written into `out` where need_pos[position along axis] or need_other[the other spatial index] (None:
    everywhere; other elements of `out` are left alone). half_weights = kernel[center:] (float64); zones
    from mirror_zones."""
    if image.dtype != np.float32 or not image.flags.c_contiguous or image.ndim != 3:
        raise ValueError("expected a C-contiguous float32 H x W x C array")
    if out.shape != image.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous float32 array shaped like the image")
    w = np.ascontiguousarray(half_weights, dtype=np.float64)
    radius = len(w) - 1
    h, width, channels = image.shape
    c0, k0, c1, k1 = zones
    # the flag arrays are named so that they outlive the C call
    if axis == 0:
        n = width * channels
        positions = _flags(need_pos, h)
        other = np.repeat(_flags(need_other, width), channels)
        status = lib.pg_gauss_axis0(_ptr(image), h, n, _ptr(out), _ptr(w), radius, _ptr(positions),
                                    _ptr(other), c0, k0, c1, k1)
    else:
        positions = _flags(need_pos, width)
        other = _flags(need_other, h)
        status = lib.pg_gauss_axis1(_ptr(image), h, width, channels, _ptr(out), _ptr(w), radius,
                                    _ptr(positions), _ptr(other), c0, k0, c1, k1)
    if status != 0:
        raise MemoryError("pgdata: the compiled Gaussian pass could not allocate its work strips")


def channel_median(lib, image: np.ndarray) -> np.ndarray:
    """np.median(image, axis=(0, 1)) for float32 H x W x C without NaN: the same middle elements
    (radix select in C instead of a partition of a copy), averaged by np.mean as np.median does."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    n = image.shape[0] * image.shape[1]
    channels = image.shape[2]
    k = (n - 1) // 2 if n % 2 else n // 2 - 1
    middle = np.empty((channels, 2), dtype=np.float32)
    if lib.pg_select_channels(_ptr(image), n, channels, k, _ptr(middle)) != 0:
        raise MemoryError("pgdata: the compiled median could not allocate its histograms")
    return np.mean(middle[:, :1] if n % 2 else middle, axis=1)
