"""SWD's random numbers: the official numpy stream (reference mode) or independent torch streams (fast mode)."""

from __future__ import annotations

import numpy as np
import torch

from pgmetrics.swd.constants import (
    CHANNELS,
    DESCRIPTOR_SIZE,
    DIRECTION_REPEATS,
    DIRECTIONS_PER_REPEAT,
    PATCH_RADIUS,
    PATCHES_PER_IMAGE,
)

WARMUP_MINIBATCHES = 10  # the official evaluate_metrics feeds this many noise minibatches first


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

    def official_warmup(self, minibatch: int, sizes: list[int]) -> None:
        """The draws of util_scripts.evaluate_metrics' warm-up before the reals: 10 minibatches of uint8 noise
        images, each fed (positions per level), then `end('warmup')`. Only the random stream matters: its
        values are never reported."""
        for _ in range(WARMUP_MINIBATCHES):
            self.state.randint(0, 256, size=[minibatch, CHANNELS, sizes[0], sizes[0]], dtype=np.uint8)
            for size in sizes:
                self.positions(minibatch * PATCHES_PER_IMAGE, size, "warmup")
        self.end_pass(len(sizes))


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
