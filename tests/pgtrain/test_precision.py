"""Mixed precision against fp32: a few training steps from the same start move the networks the same way."""

from __future__ import annotations

import pytest
import torch

from pgtrain.presets import resolve_config
from tests.pgtrain.test_loop import tiny_trainer

STEPS = ["train.total_kimg=0.032", "train.mirror_augment=false"]  # 8 D and 8 G steps at 4x4 and in the fade


def _update(precision: str, device: str = "cpu", loss_scale_log2: float | None = None) -> torch.Tensor:
    """All parameters of G and D after the steps minus before, flattened."""
    trainer = tiny_trainer(presets=[precision], overrides=STEPS, device=device)
    if loss_scale_log2 is not None:  # the official start (2^64) overflows for ~45 steps, all skipped
        trainer.G_scale.log2 = trainer.D_scale.log2 = loss_scale_log2
    networks = (trainer.G, trainer.D)
    before = torch.cat([p.detach().flatten().clone() for net in networks for p in net.parameters()])
    trainer.run()
    after = torch.cat([p.detach().flatten() for net in networks for p in net.parameters()])
    return (after - before).cpu()


def _assert_close_updates(mixed: torch.Tensor, reference: torch.Tensor) -> None:
    cosine = torch.nn.functional.cosine_similarity(mixed, reference, dim=0).item()
    relative = ((mixed - reference).norm() / reference.norm()).item()
    assert relative > 0, "the mixed-precision run computed exactly fp32: autocast was not used"
    assert cosine > 0.98 and relative < 0.25, (cosine, relative)


def test_bf16_steps_follow_fp32_on_the_cpu():
    _assert_close_updates(_update("bf16"), _update("fp32"))


def test_the_precision_presets():
    bf16 = resolve_config(["bf16"])
    fp16 = resolve_config(["fp16"])
    assert bf16.precision == "bf16" and "pixelnorm_epsilon" not in bf16.G  # bf16 has fp32's exponent range
    assert fp16.precision == "fp16" and fp16.G["pixelnorm_epsilon"] == 1e-4
    assert bf16.sched.max_minibatch_per_gpu == fp16.sched.max_minibatch_per_gpu == {512: 16, 1024: 8}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_with_loss_scaling_follows_fp32_on_the_gpu():
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    _assert_close_updates(_update("fp16", "cuda", loss_scale_log2=10.0), _update("fp32", "cuda"))
