"""The official TrainingSchedule: lod, resolution, minibatch, learning rates and tick length as functions of kimg.

Pure functions of the images shown so far; the loop asks for a new point once per minibatch group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def _default_tick_kimg_dict() -> dict[int, float]:
    return {4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 20, 1024: 10}


@dataclass
class ScheduleConfig:
    """The knobs of the official train.TrainingSchedule, with its defaults."""

    lod_initial_resolution: int = 4  # resolution trained first
    lod_training_kimg: float = 600  # kimg of stabilisation at each resolution
    lod_transition_kimg: float = 600  # kimg of fade-in for each new resolution
    minibatch_base: int = 16  # global minibatch where minibatch_dict is silent
    minibatch_dict: dict[int, int] = field(default_factory=dict)
    max_minibatch_per_gpu: dict[int, int] = field(default_factory=dict)
    G_lrate_base: float = 0.001
    G_lrate_dict: dict[int, float] = field(default_factory=dict)
    D_lrate_base: float = 0.001
    D_lrate_dict: dict[int, float] = field(default_factory=dict)
    tick_kimg_base: float = 160
    tick_kimg_dict: dict[int, float] = field(default_factory=_default_tick_kimg_dict)


@dataclass(frozen=True)
class SchedulePoint:
    """Training parameters at one moment (what the official TrainingSchedule object holds)."""

    kimg: float
    lod: float
    resolution: int
    minibatch: int
    G_lrate: float
    D_lrate: float
    tick_kimg: float

    @property
    def level(self) -> int:
        """floor(lod): how many doublings below full resolution the networks currently work."""
        return int(math.floor(self.lod))


def schedule_at(cur_nimg: int, resolution_log2: int, config: ScheduleConfig, num_gpus: int = 1) -> SchedulePoint:
    """Evaluate the schedule after `cur_nimg` real images.

    Matches the official train.TrainingSchedule: a phase is training + transition kimg; inside phase p at
    position t, lod = R - floor(log2(initial)) - p - max(t - training, 0) / transition, clamped at 0. The
    new (higher) resolution's minibatch and learning rate apply during its fade-in. The minibatch is
    rounded down to a multiple of the GPU count, then capped at max_minibatch_per_gpu * GPUs.
    """
    kimg = cur_nimg / 1000.0
    phase_kimg_total = config.lod_training_kimg + config.lod_transition_kimg
    phase = int(math.floor(kimg / phase_kimg_total)) if phase_kimg_total > 0 else 0
    phase_kimg = kimg - phase * phase_kimg_total

    lod = float(resolution_log2) - math.floor(math.log2(config.lod_initial_resolution)) - phase
    if config.lod_transition_kimg > 0:
        lod -= max(phase_kimg - config.lod_training_kimg, 0.0) / config.lod_transition_kimg
    lod = max(lod, 0.0)
    resolution = 2 ** (resolution_log2 - int(math.floor(lod)))

    return SchedulePoint(
        kimg=kimg,
        lod=lod,
        resolution=resolution,
        minibatch=minibatch_at(resolution, config, num_gpus),
        G_lrate=float(config.G_lrate_dict.get(resolution, config.G_lrate_base)),
        D_lrate=float(config.D_lrate_dict.get(resolution, config.D_lrate_base)),
        tick_kimg=float(config.tick_kimg_dict.get(resolution, config.tick_kimg_base)),
    )


def minibatch_at(resolution: int, config: ScheduleConfig, num_gpus: int = 1) -> int:
    """The global minibatch while `resolution` trains (and fades in): the dict's value or the base, rounded down
    to a multiple of the GPU count, then capped at max_minibatch_per_gpu * GPUs (the official rule)."""
    minibatch = int(config.minibatch_dict.get(resolution, config.minibatch_base))
    minibatch -= minibatch % num_gpus
    if resolution in config.max_minibatch_per_gpu:
        minibatch = min(minibatch, int(config.max_minibatch_per_gpu[resolution]) * num_gpus)
    return minibatch


def trained_resolutions(config: ScheduleConfig, resolution_log2: int) -> list[int]:
    """Every level resolution the schedule trains, from lod_initial_resolution up to the full resolution."""
    first = min(max(2, int(math.log2(config.lod_initial_resolution))), resolution_log2)
    return [2**k for k in range(first, resolution_log2 + 1)]


def lod_level_changed(previous_lod: float | None, lod: float) -> bool:
    """True when floor(lod) or ceil(lod) differs from the previous point's.

    Matches the official reset_opt_for_new_lod rule: Adam state is reset at step 0, when a fade-in starts
    (lod leaves an integer) and when stabilisation starts (lod reaches the next integer).
    """
    if previous_lod is None:
        return True
    return math.floor(lod) != math.floor(previous_lod) or math.ceil(lod) != math.ceil(previous_lod)
