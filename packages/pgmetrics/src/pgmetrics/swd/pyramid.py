"""The Laplacian pyramid in numpy: the official pyr_down/pyr_up with mirror borders, exactly or through OpenCV.

Exactness: the official code convolves float32 arrays in double (scipy.ndimage) and stores float32. With the
integer weights [1,4,6,4,1] (and [1,6,1], [4,4] for the two pyr_up phases) and one power-of-two scale at the
end, every partial sum of G1 = down(G0), G2 = down(G1) and up(G1) fits float32's 24-bit significand (G0 is
0..255 integers, G1 multiples of 2^-8, G2 of 2^-16), so those are bit-exact in float32; deeper levels and
up(G2...) need float64 (`exact`), whose sums of these products are exact and round once like scipy's.
"""

from __future__ import annotations

import numpy as np
import torch


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


def as_array(images) -> np.ndarray:
    return images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)


def pyr_down(images, dtype: type = np.float64) -> np.ndarray:
    """Blur with the binomial kernel and keep even rows/columns (the official pyr_down, cv2.pyrDown), float32
    result of a `dtype` computation."""
    out = _down_axis(_down_axis(as_array(images), 2, dtype), 3, dtype)
    out *= 1.0 / 256
    return out.astype(np.float32, copy=False)


def pyr_up(images, dtype: type = np.float64) -> np.ndarray:
    """Zero-insert to twice the size, blur with 4x the kernel (the official pyr_up, cv2.pyrUp), float32 result."""
    out = _up_axis(_up_axis(as_array(images), 3, dtype), 2, dtype)
    out *= 1.0 / 64
    return out.astype(np.float32, copy=False)


def level_dtype(level: int, exact: bool, up: bool) -> type:
    """float32 where it is exact (see above) or where `exact` is off, else float64."""
    return np.float64 if exact and level >= (1 if up else 2) else np.float32


def laplacian_pyramid(images, num_levels: int, exact: bool = False) -> list[np.ndarray]:
    """Band-pass levels, float32, finest first; the last level is the Gaussian low-pass itself (official order).

    `exact` reproduces the official float32 arrays bit for bit; otherwise the deeper levels are computed in
    float32 (differences ~1e-5).
    """
    gauss = [as_array(images)]
    if gauss[0].dtype not in (np.uint8, np.float32):
        gauss[0] = gauss[0].astype(np.float32)
    for level in range(num_levels - 1):
        gauss.append(pyr_down(gauss[-1], level_dtype(level, exact, up=False)))
    levels = []
    for level in range(num_levels - 1):
        upsampled = pyr_up(gauss[level + 1], level_dtype(level, exact, up=True))
        levels.append(np.subtract(gauss[level], upsampled, out=upsampled, dtype=np.float32))
    levels.append(gauss[-1])
    return levels


def _opencv_planes(function, images: np.ndarray, size: int) -> np.ndarray:
    """Apply cv2.pyrDown/pyrUp to every [H, W] plane of an [N, C, H, W] batch, each converted to float32."""
    n, c = images.shape[:2]
    out = np.empty((n * c, size, size), np.float32)
    for index, plane in enumerate(images.reshape(n * c, *images.shape[2:])):
        out[index] = function(plane.astype(np.float32, copy=False))
    return out.reshape(n, c, size, size)


def fast_pyr_down(images: np.ndarray) -> np.ndarray:
    """cv2.pyrDown in float32: the official filter and borders (equal to pyr_down on the first two levels,
    within float32 rounding below), 3-5x faster than the numpy passes (measured)."""
    import cv2

    return _opencv_planes(cv2.pyrDown, images, images.shape[-1] // 2)


def fast_pyr_up(images: np.ndarray) -> np.ndarray:
    import cv2

    return _opencv_planes(cv2.pyrUp, images, images.shape[-1] * 2)
