"""One image set's descriptors, fed minibatch by minibatch (the official feed/end), on the CPU or a GPU."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pgmetrics.errors import PgmetricsError
from pgmetrics.swd import parallel
from pgmetrics.swd.constants import CHANNELS, DESCRIPTOR_SIZE, PATCHES_PER_IMAGE, swd_resolutions
from pgmetrics.swd.descriptors import batch_descriptors, channel_mean_std, normalize_into
from pgmetrics.swd.pyramid import as_array
from pgmetrics.swd.rng import FastRng, ReferenceRng
from pgmetrics.swd.torch_path import (
    torch_gather_descriptors,
    torch_laplacian_pyramid,
    torch_normalize_descriptors,
)


class DescriptorSet:
    """Descriptors of one image set, fed minibatch by minibatch (the official API's feed/end, one pass).

    `backend`: "numpy" (threads and compiled kernels; the default on the CPU) or "torch" (the default on a GPU;
    also runs on the CPU, which is how the GPU steps are tested without one)."""

    def __init__(self, resolution: int, rng: ReferenceRng | FastRng, stream: str, device: torch.device | str,
                 backend: str | None = None):
        self.sizes = swd_resolutions(resolution)
        self.resolution = resolution
        self.rng = rng
        self.stream = stream
        self.device = torch.device(device)
        self.backend = backend or ("numpy" if self.device.type == "cpu" else "torch")
        if self.backend not in ("numpy", "torch") or (self.backend == "numpy" and self.device.type != "cpu"):
            raise ValueError(f"SWD backend {self.backend!r} cannot run on {self.device}")
        self.parts: list[list] = [[] for _ in self.sizes]
        self.stats = np.zeros((len(self.sizes), 2, DESCRIPTOR_SIZE))  # numpy backend: descriptor_stats per level
        self.num_images = 0

    def feed(self, images: np.ndarray | torch.Tensor) -> None:
        n, c, h, w = images.shape
        if c != CHANNELS or h != self.resolution or w != self.resolution:
            raise PgmetricsError(f"SWD expects {CHANNELS}x{self.resolution}x{self.resolution} images, "
                                 f"got {c}x{h}x{w}")
        if self.backend == "numpy":
            positions = [self.rng.positions(n * PATCHES_PER_IMAGE, size, self.stream) for size in self.sizes]
            pieces, stats = threaded_batch_descriptors(as_array(images), self.sizes, positions, self.rng.exact)
            for index, level_pieces in enumerate(pieces):
                self.parts[index].extend(level_pieces)
            self.stats += stats
            self.num_images += n
            return
        levels = torch_laplacian_pyramid(torch.as_tensor(images).to(self.device), len(self.sizes),
                                         exact=self.rng.exact)
        for index, (level, size) in enumerate(zip(levels, self.sizes, strict=True)):
            x, y = self.rng.positions(n * PATCHES_PER_IMAGE, size, self.stream)
            self.parts[index].append(torch_gather_descriptors(level, torch.from_numpy(x), torch.from_numpy(y)))
        self.num_images += n

    def finish(self) -> list[torch.Tensor]:
        """Normalised descriptors per level, [num_images * 128, 147] float32 each (the official `end`)."""
        if self.num_images == 0:
            raise PgmetricsError("SWD got no images")
        out = []
        for index in range(len(self.sizes)):
            parts, self.parts[index] = self.parts[index], []
            if self.backend == "numpy":
                out.append(torch.from_numpy(normalize_parts(parts, self.stats[index])))
            else:
                out.append(torch_normalize_descriptors(torch.cat(parts)))
        return out


def threaded_batch_descriptors(images: np.ndarray, sizes: Sequence[int],
                                positions: Sequence[tuple[np.ndarray, np.ndarray]], exact: bool
                                ) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """batch_descriptors over image slices in the thread pool (numpy, OpenCV and the compiled kernels release
    the GIL): per level the slices' descriptors in order, and the summed descriptor_stats [levels, 2, 147]."""
    pieces = max(1, min(parallel.workers(), len(images)))
    bounds = np.linspace(0, len(images), pieces + 1).astype(int)
    stats = np.zeros((pieces, len(sizes), 2, DESCRIPTOR_SIZE))

    def run(piece: int) -> list[np.ndarray]:
        a, b = bounds[piece] * PATCHES_PER_IMAGE, bounds[piece + 1] * PATCHES_PER_IMAGE
        return batch_descriptors(images[bounds[piece]:bounds[piece + 1]], sizes,
                                 [(x[a:b], y[a:b]) for x, y in positions], exact, stats[piece])

    if pieces == 1:
        results = [run(0)]
    else:
        with parallel.blas_single_threaded():
            results = list(parallel.pool().map(run, range(pieces)))
    return [[result[level] for result in results] for level in range(len(sizes))], stats.sum(axis=0)


def normalize_parts(parts: Sequence[np.ndarray], stats: np.ndarray) -> np.ndarray:
    """One [M, 147] array of the parts normalised by the statistics of all of them (one pass, in threads)."""
    count = sum(len(part) for part in parts)
    mean, std = channel_mean_std(stats, count)
    out = np.empty((count, DESCRIPTOR_SIZE), np.float32)
    offsets = np.concatenate([[0], np.cumsum([len(part) for part in parts])])

    def run(index: int) -> None:
        normalize_into(parts[index], mean, std, out[offsets[index]:offsets[index + 1]])

    list(parallel.pool().map(run, range(len(parts))))
    return out
