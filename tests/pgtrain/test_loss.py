"""WGAN-GP + drift + AC-GAN terms, checked against hand-derived values and per-sample autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pgtrain.config import LossConfig
from pgtrain.loss import (
    discriminator_loss,
    generator_loss,
    gradient_penalty_norms,
    label_cross_entropy,
    penalty_norm_scale,
)
from pgtrain.networks.layers import upscale2d


class QuadraticD(torch.nn.Module):
    """score = w · Σ x² + b; logits = x summed per channel (label_size = C). ∇x score = 2 w x."""

    def __init__(self, w=0.7, b=0.3, labels=False):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(float(w), dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.tensor(float(b), dtype=torch.float64))
        self.labels = labels

    def forward(self, x, lod):
        scores = (self.w * x.square().sum(dim=(1, 2, 3)) + self.b)[:, None]
        logits = x.sum(dim=(2, 3)) * self.w if self.labels else x.new_zeros(x.shape[0], 0)
        return scores, logits


def _batch(n=5, c=3, r=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    reals = torch.randn(n, c, r, r, generator=g, dtype=torch.float64)
    fakes = torch.randn(n, c, r, r, generator=g, dtype=torch.float64)
    u = torch.rand(n, 1, 1, 1, generator=g, dtype=torch.float64)
    return reals, fakes, u


def test_gradient_penalty_norms_match_hand_derivation_and_per_sample_autograd():
    D = QuadraticD()
    reals, fakes, u = _batch()
    norms, mixed_scores = gradient_penalty_norms(D, reals, fakes, u, lod=0.0)
    mixed = reals + (fakes - reals) * u
    expected = 2 * 0.7 * mixed.flatten(1).norm(dim=1)  # ‖2 w x̂‖
    torch.testing.assert_close(norms.double(), expected, rtol=1e-6, atol=0)  # loss arithmetic is float32
    for i in range(len(reals)):  # each sample's gradient alone
        x = mixed[i:i + 1].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x, 0.0)[0].sum(), x)
        torch.testing.assert_close(norms[i].double(), grad.flatten().norm(), rtol=1e-6, atol=0)
    torch.testing.assert_close(mixed_scores.double(), D(mixed, 0.0)[0][:, 0], rtol=1e-6, atol=0)


def test_penalty_gradient_reaches_d_parameters_through_double_backprop():
    D = QuadraticD(w=0.7)
    reals, fakes, u = _batch()
    norms, _ = gradient_penalty_norms(D, reals, fakes, u, lod=0.0)
    ((norms - 1.0).square().mean()).backward()
    mixed_norm = (reals + (fakes - reals) * u).flatten(1).norm(dim=1)
    # d/dw (2 w ‖x̂‖ − 1)² = 2 (2 w ‖x̂‖ − 1) · 2 ‖x̂‖ (w > 0)
    expected = (2 * (2 * 0.7 * mixed_norm - 1) * 2 * mixed_norm).mean()
    torch.testing.assert_close(D.w.grad, expected, rtol=1e-5, atol=0)


def test_loss_scale_is_undone_inside_the_penalty():
    D = QuadraticD()
    reals, fakes, u = _batch()
    plain, _ = gradient_penalty_norms(D, reals, fakes, u, 0.0)
    scaled, _ = gradient_penalty_norms(D, reals, fakes, u, 0.0, loss_scale=2.0**20)
    torch.testing.assert_close(plain.double(), scaled.double())


def test_discriminator_loss_matches_formula():
    D = QuadraticD()
    reals, fakes, u = _batch()
    labels = torch.zeros(len(reals), 0)
    terms = discriminator_loss(D, reals, fakes, labels, u, 0.0, LossConfig())
    r = (0.7 * reals.square().sum(dim=(1, 2, 3)) + 0.3).numpy()
    f = (0.7 * fakes.square().sum(dim=(1, 2, 3)) + 0.3).numpy()
    m = (reals + (fakes - reals) * u).flatten(1).norm(dim=1).numpy()
    per_sample = f - r + 10.0 * (2 * 0.7 * m - 1.0) ** 2 + 0.001 * r**2
    np.testing.assert_allclose(terms.loss.item(), per_sample.mean(), rtol=1e-6)  # mean, not sum
    np.testing.assert_allclose(terms.stats["Loss/epsilon_penalty"].numpy(), r**2, rtol=1e-6)


def test_loss_is_a_mean_so_batch_size_does_not_scale_it():
    D = QuadraticD()
    reals, fakes, u = _batch()
    labels = torch.zeros(len(reals), 0)
    once = discriminator_loss(D, reals, fakes, labels, u, 0.0, LossConfig()).loss
    twice = discriminator_loss(D, torch.cat([reals] * 2), torch.cat([fakes] * 2), torch.zeros(10, 0),
                               torch.cat([u] * 2), 0.0, LossConfig()).loss
    torch.testing.assert_close(once, twice)


def test_acgan_terms_on_reals_and_fakes_with_the_real_labels():
    D = QuadraticD(labels=True)
    reals, fakes, u = _batch()
    labels = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 1]), 3).double()
    with_labels = discriminator_loss(D, reals, fakes, labels, u, 0.0, LossConfig(cond_weight=1.0))
    without = discriminator_loss(D, reals, fakes, labels, u, 0.0, LossConfig(cond_weight=0.0))
    ce = lambda x: -(labels * torch.log_softmax(0.7 * x.sum(dim=(2, 3)), 1)).sum(1)  # noqa: E731
    difference = (with_labels.loss - without.loss).double()
    torch.testing.assert_close(difference, (ce(reals) + ce(fakes)).mean(), rtol=2e-5, atol=0)


def test_label_cross_entropy_matches_softmax_definition():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    labels = torch.tensor([[0.0, 1.0, 0.0]])
    expected = -np.log(np.exp(0.0) / (np.exp(2.0) + 1.0 + np.exp(-1.0)))
    assert label_cross_entropy(labels, logits).item() == pytest.approx(expected, rel=1e-6)


def test_generator_loss():
    D = QuadraticD(labels=True)
    _, fakes, _ = _batch()
    labels = torch.nn.functional.one_hot(torch.tensor([2, 2, 1, 0, 0]), 3).double()
    terms = generator_loss(D, fakes, labels, 0.0, LossConfig())
    scores = 0.7 * fakes.square().sum(dim=(1, 2, 3)) + 0.3
    ce = -(labels * torch.log_softmax(0.7 * fakes.sum(dim=(2, 3)), 1)).sum(1)
    torch.testing.assert_close(terms.loss.double(), (-scores + ce).mean(), rtol=1e-5, atol=0)


def _level_and_full_batch(resolution: int, level: int, channels: int, labels: int, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    reals = torch.rand(8, channels, level, level, generator=g, dtype=torch.float64) * 2 - 1
    fakes = torch.rand(8, channels, level, level, generator=g, dtype=torch.float64) * 2 - 1
    u = torch.rand(8, 1, 1, 1, generator=g, dtype=torch.float64)
    table = torch.nn.functional.one_hot(torch.randint(labels, (8,), generator=g), labels).double() if labels \
        else torch.zeros(8, 0, dtype=torch.float64)
    up = lambda x: upscale2d(x, resolution // level)  # noqa: E731
    return (reals, fakes, u, table), (up(reals), up(fakes), u, table)


@pytest.mark.parametrize(("lod", "labels", "loss_scale"), [(1.0, 0, 1.0), (2.5, 3, 1.0), (3.0, 0, 2.0**20),
                                                            (1.25, 2, 2.0**20)])
def test_level_resolution_step_equals_the_official_full_resolution_step(lod, labels, loss_scale):
    """The official feeds D full-resolution images and takes the penalty's norm there; we feed the level's images
    and rescale the norm: the same norms, losses and D gradients (float64, so only the formulation differs)."""
    from pgtrain.networks import Discriminator

    torch.manual_seed(0)
    D = Discriminator(3, 32, label_size=labels, fmap_base=64, fmap_max=16).double()
    level = D.level_resolution(lod)
    level_batch, full_batch = _level_and_full_batch(32, level, 3, labels)
    results = []
    for (reals, fakes, u, table), full_resolution in ((level_batch, 32), (full_batch, None)):
        D.zero_grad(set_to_none=True)
        terms = discriminator_loss(D, reals, fakes, table, u, lod, LossConfig(), loss_scale, full_resolution)
        terms.loss.backward()
        results.append((terms, [p.grad.clone() for p in D.parameters() if p.grad is not None]))
    (ours, our_grads), (official, official_grads) = results
    assert level < 32 and ours.tensors["reals"].shape[-1] == level
    for name in ("Loss/mixed_norms", "Loss/gradient_penalty", "Loss/D"):
        torch.testing.assert_close(ours.stats[name], official.stats[name], rtol=1e-5, atol=1e-7)
    assert len(our_grads) == len(official_grads)
    for mine, theirs in zip(our_grads, official_grads, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-7)


def test_level_resolution_penalty_in_bf16_autocast_matches_the_full_resolution_norm():
    from pgtrain.networks import Discriminator

    torch.manual_seed(0)
    D = Discriminator(3, 32, fmap_base=64, fmap_max=16)
    level_batch, full_batch = _level_and_full_batch(32, 8, 3, 0)
    norms = []
    for (reals, fakes, u, _), full_resolution in ((level_batch, 32), (full_batch, None)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            norms.append(gradient_penalty_norms(D, reals.float(), fakes.float(), u.float(), 2.0,
                                                full_resolution=full_resolution)[0])
    torch.testing.assert_close(norms[0], norms[1], rtol=3e-2, atol=0)  # bf16 rounding, not the factor 4


def test_norm_scale_is_exact_and_refuses_a_size_that_does_not_divide():
    assert penalty_norm_scale(4, 1024) == 1 / 256 and penalty_norm_scale(32, 32) == 1.0
    assert penalty_norm_scale(8, None) == 1.0
    with pytest.raises(ValueError):
        penalty_norm_scale(12, 32)
