"""Latent vectors as the official generation scripts draw them, plus interpolation paths. Pure functions, no I/O.

Every draw comes from numpy's legacy `RandomState`, whose normal stream does not depend on how it is cut into
calls: drawing png by png, frame by frame or all at once gives the same numbers, so image i of a seed is the same
whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.ndimage


def check_seed(seed: int) -> int:
    """numpy's RandomState takes seeds in [0, 2**32 - 1]; anything else is a user error (ValueError)."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32 - 1], got {seed}")
    return seed


def png_latents(seed: int, num_pngs: int, cells: int, latent_size: int) -> Iterator[np.ndarray]:
    """float32 [cells, latent_size] per PNG from one RandomState(seed), as the official generate_fake_images.

    Official fact: one `randn(prod(grid_size), *latent_shape)` per PNG, in PNG order, from RandomState(random_seed)
    (default 1000), cast to float32. With a 1x1 grid PNG i gets row i of `random_latents`.
    """
    state = np.random.RandomState(check_seed(seed))
    for _ in range(num_pngs):
        yield state.randn(cells, latent_size).astype(np.float32)


def seed_latent(seed: int, latent_size: int) -> np.ndarray:
    """float32 [latent_size]: the first latent of a seed, i.e. the one `pgtrain generate --seed S` gives PNG 0."""
    return np.random.RandomState(check_seed(seed)).randn(1, latent_size).astype(np.float32)[0]


def num_video_frames(duration_sec: float, fps: int) -> int:
    """The official frame count: rint(duration x fps)."""
    return int(np.rint(duration_sec * fps))


def smoothed_latents(seed: int, num_frames: int, cells: int, latent_size: int, sigma_frames: float) -> np.ndarray:
    """float32 [frames, cells, latent_size]: the official generate_interpolation_video random walk.

    Official facts: all latents come from one `RandomState(seed).randn(frames, cells, latent)` (float32), are
    smoothed over time only by `scipy.ndimage.gaussian_filter` with sigma smoothing_sec x fps frames and
    mode 'wrap' (so the video loops), then divided by their root mean square over the whole array.
    Drawn frame by frame into one float32 array (same stream) to hold only the float32 copy.
    """
    state = np.random.RandomState(check_seed(seed))
    latents = np.empty((num_frames, cells, latent_size), np.float32)
    for frame in range(num_frames):
        latents[frame] = state.randn(cells, latent_size)
    latents = scipy.ndimage.gaussian_filter(latents, [sigma_frames, 0, 0], mode="wrap")
    latents /= np.sqrt(np.mean(np.square(latents)))
    return latents


def lerp(start: np.ndarray, end: np.ndarray, t: float) -> np.ndarray:
    """Linear interpolation (float64 arithmetic, float32 result)."""
    start64, end64 = np.asarray(start, np.float64), np.asarray(end, np.float64)
    return (start64 + (end64 - start64) * t).astype(np.float32)


def slerp(start: np.ndarray, end: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985) with the angle between the two vectors' directions, applied to
    the vectors themselves, as White (2016, "Sampling generative networks") does for GAN latents: two latents
    of equal norm stay on their sphere. Parallel or opposite vectors have no unique great circle: lerp then."""
    start64, end64 = np.asarray(start, np.float64), np.asarray(end, np.float64)
    norms = np.linalg.norm(start64) * np.linalg.norm(end64)
    if norms == 0.0:
        return lerp(start64, end64, t)
    angle = np.arccos(np.clip(np.dot(start64, end64) / norms, -1.0, 1.0))
    if np.sin(angle) < 1e-6:
        return lerp(start64, end64, t)
    mixed = (np.sin((1.0 - t) * angle) * start64 + np.sin(t * angle) * end64) / np.sin(angle)
    return mixed.astype(np.float32)


def interpolation_path(start: np.ndarray, end: np.ndarray, steps: int, spherical: bool = False) -> np.ndarray:
    """float32 [steps, latent_size] from `start` to `end`, both included, at evenly spaced t = i / (steps - 1)."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (both ends are included), got {steps}")
    if start.shape != end.shape:
        raise ValueError(f"the two latents differ in shape: {list(start.shape)} and {list(end.shape)}")
    blend = slerp if spherical else lerp
    return np.stack([blend(start, end, index / (steps - 1)) for index in range(steps)])
