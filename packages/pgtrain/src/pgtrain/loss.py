"""WGAN-GP with the drift term, plus AC-GAN label terms: the official D_wgangp_acgan and G_wgan_acgan.

Per-sample losses are averaged over the (per-device) minibatch, never summed (a known bug of some ports, which
makes the effective learning rate grow with the batch). Networks are called as `D(images, lod) -> (scores,
label_logits)`; all loss arithmetic is in float32 whatever the network precision.

The resolution of the gradient penalty. The official trainer feeds D full-resolution images (the level image
nearest-upscaled by f = 2^floor(lod)), D box-downscales them by f before its first layer, and the penalty's norm
is taken with respect to those full-resolution images. We feed D the level's image, which computes the same
scores for a fraction of the work, but the gradient with respect to an r x r image is f^2 times the gradient of
each of the f x f full-resolution pixels it stands for, so its norm is f times the official one. The norm is
therefore divided by f = full_resolution / r (a power of two: exact in every precision) before the penalty:
the same loss, the same parameter gradients, and `Loss/mixed_norms` comparable with the official logs.
Proven against the original TensorFlow step in tests/pgtrain/test_train_step_oracle.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from pgtrain.config import LossConfig

Discriminator = Callable[[torch.Tensor, float], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class LossTerms:
    """The minibatch loss to differentiate, and per-sample terms detached for statistics."""

    loss: torch.Tensor
    stats: dict[str, torch.Tensor]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # detached intermediates, for inspection


def label_cross_entropy(labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy against (possibly soft) label rows, per sample; as TF's
    softmax_cross_entropy_with_logits_v2."""
    return -(labels.float() * F.log_softmax(logits.float(), dim=1)).sum(dim=1)


@dataclass
class PenaltyTerms:
    """The gradient penalty's pieces, all at the official (full-resolution) scale but `gradients`."""

    norms: torch.Tensor  # [N], ‖∇x̂ D(x̂)‖₂ w.r.t. the full-resolution mixed images, graph kept
    mixed_scores: torch.Tensor  # [N]
    gradients: torch.Tensor  # [N, C, r, r], detached, w.r.t. the images D was fed (the level resolution)


def penalty_norm_scale(image_size: int, full_resolution: int | None) -> float:
    """1 / f with f = full_resolution / image_size: turns a norm taken at D's input size into the official one."""
    if full_resolution is None or full_resolution == image_size:
        return 1.0
    if full_resolution % image_size or full_resolution < image_size:
        raise ValueError(f"images of size {image_size} do not divide the full resolution {full_resolution}")
    return image_size / full_resolution


def gradient_penalty_terms(
    D: Discriminator, reals: torch.Tensor, fakes: torch.Tensor, mixing_factors: torch.Tensor, lod: float,
    loss_scale: float = 1.0, full_resolution: int | None = None,
) -> PenaltyTerms:
    """‖∇x̂ D(x̂)‖₂ per sample at x̂ = lerp(real, fake, u), with the graph kept for the penalty's gradient.

    Matches the official GradientPenalty: the gradient is taken of the *sum* of the mixed scores (so each
    sample's gradient is its own), with the loss scale applied before and undone after (fp16), and the norm is
    the one w.r.t. full-resolution images (see the module docstring) when `full_resolution` is given.
    """
    mixed = (reals + (fakes - reals) * mixing_factors.to(reals.dtype)).detach().requires_grad_(True)
    mixed_scores = D(mixed, lod)[0].float()
    (gradients,) = torch.autograd.grad(mixed_scores.sum() * loss_scale, mixed, create_graph=True)
    gradients = gradients.float() / loss_scale
    norms = gradients.square().sum(dim=(1, 2, 3)).sqrt() * penalty_norm_scale(mixed.shape[-1], full_resolution)
    return PenaltyTerms(norms, mixed_scores[:, 0], gradients.detach())


def gradient_penalty_norms(
    D: Discriminator, reals: torch.Tensor, fakes: torch.Tensor, mixing_factors: torch.Tensor, lod: float,
    loss_scale: float = 1.0, full_resolution: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(norms [N], mixed scores [N]) of `gradient_penalty_terms`."""
    terms = gradient_penalty_terms(D, reals, fakes, mixing_factors, lod, loss_scale, full_resolution)
    return terms.norms, terms.mixed_scores


def discriminator_loss(
    D: Discriminator, reals: torch.Tensor, fakes: torch.Tensor, labels: torch.Tensor, mixing_factors: torch.Tensor,
    lod: float, config: LossConfig, loss_scale: float = 1.0, full_resolution: int | None = None,
) -> LossTerms:
    """D(fake) − D(real) + λ(‖∇‖ − t)²/t² + ε·D(real)² [+ label cross-entropy on reals and fakes], mean over N.

    `fakes` come from G with the real batch's labels (as the official code) and carry no graph. Give
    `full_resolution` (the networks' R) when the images are at a level's resolution r < R: ‖∇‖ is then the
    official full-resolution norm.
    """
    real_scores, real_logits = (t.float() for t in D(reals, lod))
    fake_scores, fake_logits = (t.float() for t in D(fakes, lod))
    real_scores, fake_scores = real_scores[:, 0], fake_scores[:, 0]
    penalty = gradient_penalty_terms(D, reals, fakes, mixing_factors, lod, loss_scale, full_resolution)
    norms, mixed_scores = penalty.norms, penalty.mixed_scores
    gradient_penalty = (norms - config.wgan_target).square()
    epsilon_penalty = real_scores.square()
    per_sample = (fake_scores - real_scores
                  + gradient_penalty * (config.wgan_lambda / config.wgan_target**2)
                  + epsilon_penalty * config.wgan_epsilon)
    stats = {"Loss/real_scores": real_scores, "Loss/fake_scores": fake_scores, "Loss/mixed_scores": mixed_scores,
             "Loss/mixed_norms": norms, "Loss/gradient_penalty": gradient_penalty,
             "Loss/epsilon_penalty": epsilon_penalty}
    if real_logits.shape[1] > 0:
        label_penalty_reals = label_cross_entropy(labels, real_logits)
        label_penalty_fakes = label_cross_entropy(labels, fake_logits)
        per_sample = per_sample + (label_penalty_reals + label_penalty_fakes) * config.cond_weight
        stats["Loss/label_penalty_reals"] = label_penalty_reals
        stats["Loss/label_penalty_fakes"] = label_penalty_fakes
    stats["Loss/D"] = per_sample
    tensors = {"mixed_gradients": penalty.gradients, "reals": reals.detach(), "fakes": fakes.detach(),
               "real_label_logits": real_logits.detach(), "fake_label_logits": fake_logits.detach()}
    return LossTerms(per_sample.mean(), {k: v.detach() for k, v in stats.items()}, tensors)


def generator_loss(D: Discriminator, fakes: torch.Tensor, labels: torch.Tensor, lod: float,
                   config: LossConfig) -> LossTerms:
    """−D(G(z)) [+ label cross-entropy with labels drawn at random from the dataset], mean over N."""
    fake_scores, fake_logits = (t.float() for t in D(fakes, lod))
    per_sample = -fake_scores[:, 0]
    stats = {}
    if fake_logits.shape[1] > 0:
        label_penalty = label_cross_entropy(labels, fake_logits)
        per_sample = per_sample + label_penalty * config.cond_weight
        stats["Loss/G_label_penalty"] = label_penalty
    stats["Loss/G"] = per_sample
    tensors = {"fakes": fakes.detach(), "fake_scores": fake_scores[:, 0].detach(),
               "fake_label_logits": fake_logits.detach()}
    return LossTerms(per_sample.mean(), {k: v.detach() for k, v in stats.items()}, tensors)
