"""One D step's and one G step's losses, as functions of their random draws.

Random draws are made for the whole global minibatch on every rank (all ranks share one random state) and each
rank keeps its own share: the numbers a sample gets do not depend on how many processes share the work, so a run
on 2 processes equals a run on 1 process that computes the same two shares in turn (`train.accumulation_steps`).

The official step draws, in this order: the real minibatch and its labels (the dataset), a mirror flag per real
(mirror augment), G's latents and the penalty's mixing factors (D step); then G's latents and labels drawn from
the dataset's label table (G step). The trainer draws them (`draw_*`) and hands them to `*_step_loss`; a test
can hand the same functions the draws of the original code and compare every loss term and gradient
(tests/pgtrain/test_train_step_oracle.py), so the trainer and the oracle test run the same code.

Everything runs at the current level's resolution r (the level the dataset delivers): G stops at r, D starts
there, and the gradient penalty's norm is rescaled to the official full-resolution one (see pgtrain.loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pgtrain.config import LossConfig
from pgtrain.data import process_reals
from pgtrain.loss import LossTerms, discriminator_loss, generator_loss
from pgtrain.precision import autocast


@dataclass
class DiscriminatorDraws:
    """Everything random in one D step."""

    reals: torch.Tensor  # uint8 [n, C, r, r]: the level's images as the dataset stores them
    labels: torch.Tensor  # float32 [n, L] (L may be 0): their labels; G's fakes are conditioned on them too
    latents: torch.Tensor  # float32 [n, latent_size]
    mixing_factors: torch.Tensor  # float32 [n, 1, 1, 1]: mixed = real + (fake - real) u
    mirror: torch.Tensor | None = None  # bool [n]: reals flipped left-right (mirror augment), None = off

    def part(self, index: int, count: int) -> DiscriminatorDraws:
        """Share `index` of `count` equal shares (gradient accumulation computes them in turn)."""
        return DiscriminatorDraws(*(None if t is None else _share(t, index, count) for t in
                                    (self.reals, self.labels, self.latents, self.mixing_factors, self.mirror)))


@dataclass
class GeneratorDraws:
    """Everything random in one G step."""

    latents: torch.Tensor  # float32 [n, latent_size]
    labels: torch.Tensor  # float32 [n, L]: rows of the dataset's label table, uniformly at random

    def part(self, index: int, count: int) -> GeneratorDraws:
        return GeneratorDraws(_share(self.latents, index, count), _share(self.labels, index, count))


def _share(values: torch.Tensor, index: int, count: int) -> torch.Tensor:
    """Rows index·n … (index+1)·n − 1 of `count` equal shares of n rows."""
    size = len(values) // count
    return values[index * size:(index + 1) * size]


def draw_discriminator_inputs(images: np.ndarray, labels: np.ndarray, latent_size: int, mirror_augment: bool,
                              rng: torch.Generator, device: torch.device, *, rank: int = 0,
                              world_size: int = 1) -> DiscriminatorDraws:
    """The D step's draws for this rank's share of a real minibatch (uint8 images and their labels, as the data
    stage gives them): drawn for the global minibatch, this rank's rows kept."""
    n = len(images)
    total = n * world_size
    reals = torch.from_numpy(images).to(device, non_blocking=True)
    real_labels = torch.from_numpy(labels).to(device, non_blocking=True)
    mirror = torch.rand(total, generator=rng, device=device) >= 0.5 if mirror_augment else None
    latents = torch.randn(total, latent_size, generator=rng, device=device)
    mixing = torch.rand(total, 1, 1, 1, generator=rng, device=device)
    mine = [None if t is None else _share(t, rank, world_size) for t in (latents, mixing, mirror)]
    return DiscriminatorDraws(reals, real_labels, mine[0], mine[1], mine[2])


def draw_generator_inputs(minibatch: int, latent_size: int, label_table: torch.Tensor, rng: torch.Generator,
                          device: torch.device, *, rank: int = 0, world_size: int = 1) -> GeneratorDraws:
    """The G step's draws for this rank's share of the global `minibatch`: fresh latents, and labels as random rows
    of the label table (empty without labels)."""
    latents = torch.randn(minibatch, latent_size, generator=rng, device=device)
    if label_table.shape[1] == 0:
        labels = torch.zeros(minibatch, 0, device=device)
    else:
        labels = label_table[torch.randint(len(label_table), (minibatch,), generator=rng, device=device)]
    return GeneratorDraws(latents, labels).part(rank, world_size)


def discriminator_step_loss(G: torch.nn.Module, D: torch.nn.Module, draws: DiscriminatorDraws, lod: float,
                            config: LossConfig, *, full_resolution: int, precision: str = "fp32",
                            loss_scale: float = 1.0) -> LossTerms:
    """The D loss of one step: processed reals, fakes from G (no graph to G), D_wgangp_acgan."""
    reals = process_reals(draws.reals, lod, draws.mirror)
    with autocast(precision, reals.device):
        with torch.no_grad():
            fakes = G(draws.latents, draws.labels, lod, output_resolution=reals.shape[-1])
        return discriminator_loss(D, reals, fakes, draws.labels, draws.mixing_factors, lod, config, loss_scale,
                                  full_resolution=full_resolution)


def generator_step_loss(G: torch.nn.Module, D: torch.nn.Module, draws: GeneratorDraws, lod: float,
                        config: LossConfig, *, level_resolution: int, precision: str = "fp32") -> LossTerms:
    """The G loss of one step: fakes at the level's resolution, scored by D (G_wgan_acgan).

    D's parameters receive gradients too unless the caller turned them off (the trainer does).
    """
    with autocast(precision, draws.latents.device):
        fakes = G(draws.latents, draws.labels, lod, output_resolution=level_resolution)
        return generator_loss(D, fakes, draws.labels, lod, config)
