"""One network update as the official tfutil.Optimizer applies it: backward over this process's shares, gradients
averaged over ranks, the whole update skipped when any gradient is not finite (also in fp32), else one Adam step
whose epsilon matches TensorFlow's Adam. The losses themselves are pgtrain.training_step's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch

from pgtrain.config import AdamConfig
from pgtrain.gradient_sync import GradientAverager
from pgtrain.loss import LossTerms
from pgtrain.precision import LossScale


def make_adam(parameters, options: AdamConfig) -> torch.optim.Adam:
    """The official Adam (beta1 0, beta2 0.99, epsilon 1e-8); the learning rate is set before each step."""
    return torch.optim.Adam(parameters, lr=0.001, betas=(options.beta1, options.beta2), eps=options.epsilon)


def reset_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Forget Adam's moments and step counts (the official reset_optimizer_state)."""
    optimizer.state.clear()


def set_learning_rate(optimizer: torch.optim.Optimizer, lrate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lrate


def match_tf_adam_epsilon(optimizer: torch.optim.Adam, epsilon: float, step: int) -> None:
    """Set torch Adam's epsilon for the coming update, the `step`-th since the last reset (from 1), so that the
    update equals TensorFlow's.

    TF's Adam adds ε to the raw sqrt(v) and folds the bias corrections into the step size; torch adds ε to the
    bias-corrected sqrt(v̂). They agree when torch's ε is ε / sqrt(1 − β2^t). TF's t is one count per optimizer
    (its beta powers), so it is counted per optimizer here too: a parameter's own count stalls when it stops
    receiving gradients (D's 4x4 fromRGB after the first fade), which would freeze ε at its first-step value.
    """
    for group in optimizer.param_groups:
        group["eps"] = epsilon / math.sqrt(1.0 - group["betas"][1] ** step)


def gradients_finite(parameters) -> bool:
    """True when every gradient is finite: the official optimizers skip the whole update otherwise."""
    grads = [p.grad for p in parameters if p.grad is not None]
    return bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()) if grads else True


@dataclass
class NetworkUpdate:
    """What one network's updates use: its optimizer, loss scale and gradient averager."""

    network: torch.nn.Module
    optimizer: torch.optim.Adam
    scale: LossScale
    averager: GradientAverager
    epsilon: float

    def apply(self, share_loss: Callable[[int, int], LossTerms], *, steps: int, plan_key: Hashable, lrate: float,
              adam_step: int, report: Callable[[dict[str, torch.Tensor]], None]) -> bool:
        """Backward over `steps` shares (gradient accumulation), average over ranks while the last backward runs,
        then the `adam_step`-th Adam step since the last reset; False (nothing updated) when a gradient is not
        finite. `plan_key` says which layers get gradients (the averager's plan)."""
        self.optimizer.zero_grad(set_to_none=True)
        for index in range(steps):
            terms = share_loss(index, steps)
            if index == steps - 1:
                self.averager.arm(plan_key)
            (terms.loss.float() * (self.scale.value / steps)).backward()
            report(terms.stats)
        self.averager.finish()
        parameters = list(self.network.parameters())
        finite = gradients_finite(parameters)
        scale_value = self.scale.value
        self.scale.update(finite)
        if not finite:
            return False
        if scale_value != 1.0:
            for p in parameters:
                if p.grad is not None:
                    p.grad.mul_(1.0 / scale_value)
        set_learning_rate(self.optimizer, lrate)
        match_tf_adam_epsilon(self.optimizer, self.epsilon, adam_step)
        self.optimizer.step()
        return True
