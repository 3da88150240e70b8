"""The training loop on tiny CPU runs: outputs, the official loop's order of operations, and its corner rules."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from pgtrain import loop as loop_module
from pgtrain import training_step, updates
from pgtrain.checkpoint import build_networks, load_snapshot
from pgtrain.data import ArrayReader, order_indices
from pgtrain.loop import Trainer
from pgtrain.presets import resolve_config
from pgtrain.run_dir import LogTee

# 4-image minibatches, 4 per group: 16 images (0.016 kimg) per schedule point. A phase is 3 groups: lod is
# evaluated at t = 0 and 0.016 (stable), then at 0.032 (halfway through the fade-in). 7 groups: 4 -> 8 -> 16.
TINY = ["G.fmap_base=32", "G.fmap_max=8", "G.latent_size=8", "D.fmap_base=32", "D.fmap_max=8",
        "sched.minibatch_base=4", "sched.minibatch_dict={}", "sched.lod_training_kimg=0.016",
        "sched.lod_transition_kimg=0.032", "sched.tick_kimg_base=0.016", "sched.tick_kimg_dict={}",
        "train.total_kimg=0.112", "train.mirror_augment=true", "train.network_snapshot_ticks=2",
        "train.image_snapshot_ticks=1000"]




def tiny_reader(n=12, resolution=16, labels=False, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, resolution, resolution), dtype=np.uint8)
    table = np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)] if labels else None
    return ArrayReader(images, table, name="tiny")


def tiny_trainer(run_dir=None, overrides=(), presets=(), reader=None, **kwargs):
    config = resolve_config(list(presets), TINY + list(overrides))
    log = LogTee(run_dir / "log.txt", echo=False) if run_dir is not None else (lambda line="": None)
    return Trainer(config, reader or tiny_reader(), run_dir, log=log, **kwargs)


def test_tiny_run_across_two_resolution_transitions_writes_every_output(tmp_path):
    trainer = tiny_trainer(tmp_path)
    lods = []
    original = trainer.schedule
    trainer.schedule = lambda: lods.append(original().lod) or original()
    assert trainer.run() is True
    assert lods[0] == 2.0 and lods[-1] == 0.0 and any(0 < lod < 1 for lod in lods) and any(1 < lod < 2 for lod in lods)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"log.txt", "stats.jsonl", "reals.png", "fakes000000.png", "network-final.pt", "_training-done.txt",
            "network-snapshot-000000.pt"} <= names
    ticks = [line for line in (tmp_path / "log.txt").read_text().splitlines() if line.startswith("tick ")]
    assert len(ticks) == 7
    pattern = (r"tick \d+\s+kimg [\d.]+\s+lod [\d.]+\s+minibatch \d+\s+time .+ sec/tick [\d.]+\s+"
               r"sec/kimg [\d.]+\s+maintenance [\d.]+")
    assert all(re.fullmatch(pattern, line) for line in ticks)
    stats = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [s["Progress/tick"] for s in stats] == [1, 2, 3, 4, 5, 6, 7]
    assert all(math.isfinite(s["Loss/D"]) and math.isfinite(s["Loss/G"]) for s in stats)
    assert {"Loss/mixed_norms", "TrainD/learning_rate", "Progress/lod", "Timing/sec_per_kimg"} <= set(stats[0])
    from PIL import Image

    assert Image.open(tmp_path / "reals.png").size == (32 * 16, 32 * 16)  # 1080p layout at 16x16: 32 x 32 cells


def test_snapshots_load_with_weights_only_and_rebuild_the_networks(tmp_path):
    trainer = tiny_trainer(tmp_path)
    trainer.run()
    raw = torch.load(tmp_path / "training-state-000000.pt", weights_only=True)
    assert raw["training_state"]["state"]["cur_nimg"] == 112
    G, D, Gs = build_networks(load_snapshot(tmp_path / "network-final.pt"))
    for name, tensor in trainer.Gs.state_dict().items():
        assert torch.equal(Gs.state_dict()[name], tensor)
    latents = torch.randn(2, 8)
    assert Gs(latents, None, 0.0).shape == (2, 3, 16, 16)


def test_gs_is_updated_with_the_d_step_from_g_before_its_g_step():
    trainer = tiny_trainer(overrides=["train.minibatch_repeats=1", "train.total_kimg=0.004",
                                      "train.G_smoothing=0.5"])
    before = [p.detach().clone() for p in trainer.G.parameters()]
    trainer.run()
    # Gs started as a copy of G, so averaging with G *before* its step leaves Gs at the initial weights.
    for averaged, initial in zip(trainer.Gs.parameters(), before, strict=True):
        assert torch.equal(averaged, initial)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.G.parameters(), strict=True))


def test_minibatch_repeats_are_distinct_minibatches_under_one_schedule_point(monkeypatch):
    trainer = tiny_trainer(overrides=["train.total_kimg=0.032"])
    drawn, points = [], []
    next_batch = trainer.data.next_batch
    trainer.data.next_batch = lambda: drawn.append(trainer.data.position) or next_batch()
    schedule = trainer.schedule
    trainer.schedule = lambda: points.append(schedule()) or points[-1]
    latents = []
    for name in ("draw_discriminator_inputs", "draw_generator_inputs"):
        draw = getattr(loop_module, name)
        monkeypatch.setattr(loop_module, name, lambda *a, draw=draw, **k: latents.append(draw(*a, **k)) or latents[-1])
    trainer.run()
    latents = [draws.latents for draws in latents]
    assert len(points) == 2 and len(drawn) == 8  # schedule once per group of 4 D steps
    assert drawn == [0, 4, 8, 12, 16, 20, 24, 28]  # each D step takes the next 4 images
    assert len(latents) == 16 and len({tuple(t.flatten().tolist()) for t in latents}) == 16  # fresh latents


def test_optimizers_reset_at_start_and_twice_per_new_resolution(monkeypatch):
    trainer = tiny_trainer()
    resets = []
    monkeypatch.setattr(loop_module, "reset_optimizer", lambda opt: resets.append((trainer.state.cur_nimg, opt)))
    trainer.run()
    times = sorted({nimg for nimg, _ in resets})
    assert times == [0, 32, 48, 80, 96]  # start; fade-in 8 (lod 1.5); stable 8; fade-in 16 (0.5); stable 16
    assert len(resets) == 2 * len(times)  # G and D each time


def test_noreset_keeps_adam_state(monkeypatch):
    trainer = tiny_trainer(presets=["noreset"])
    resets = []
    monkeypatch.setattr(loop_module, "reset_optimizer", lambda opt: resets.append(opt))
    trainer.run()
    assert resets == []


def test_non_finite_gradients_skip_the_step_and_are_counted():
    trainer = tiny_trainer(overrides=["train.minibatch_repeats=1", "train.total_kimg=0.004"])
    parameter = next(trainer.D.parameters())
    before = [p.detach().clone() for p in trainer.D.parameters()]
    handle = parameter.register_hook(lambda grad: grad * float("nan"))
    trainer.run()
    handle.remove()
    assert trainer.state.skipped_D_steps == 1 and trainer.state.skipped_G_steps == 0
    for old, new in zip(before, trainer.D.parameters(), strict=True):
        assert torch.equal(old, new)
    assert len(trainer.D_opt.state) == 0  # Adam did not step either


def test_d_fakes_use_the_real_batch_labels_and_g_draws_from_the_table():
    reader = tiny_reader(labels=True)
    trainer = tiny_trainer(reader=reader, presets=["cond"], overrides=["train.minibatch_repeats=1",
                                                                         "train.total_kimg=0.004"])
    seen = []
    forward = trainer.G.forward
    trainer.G.forward = lambda latents, labels, lod, output_resolution=None: (
        seen.append(labels.clone()) or forward(latents, labels, lod, output_resolution))
    trainer.run()
    real_indices = order_indices(trainer.config.seed, reader.num_images, 0, 4)
    assert torch.equal(seen[0], torch.from_numpy(reader.labels()[real_indices]))  # the D step
    assert seen[1].shape == (4, 2) and bool((seen[1].sum(1) == 1).all())  # the G step: rows of the table


def test_reals_reach_d_faded_at_the_current_level(monkeypatch):
    trainer = tiny_trainer(overrides=["train.minibatch_repeats=1", "train.mirror_augment=false",
                                      "train.total_kimg=0.036"])
    trainer.state.cur_nimg = 32  # lod 1.5: halfway through the 8x8 fade-in
    trainer.data.position = 0
    seen = []
    original = training_step.discriminator_loss
    monkeypatch.setattr(training_step, "discriminator_loss",
                        lambda D, reals, *args, **kw: seen.append((reals.clone(), args[3])) or original(D, reals, *args, **kw))
    trainer.run()
    reals, lod = seen[0]
    assert 1.0 < lod < 2.0 and reals.shape[-1] == 8  # fading in 8x8: reals at 8x8
    indices = order_indices(trainer.config.seed, 12, 0, 4)
    x = torch.from_numpy(trainer.reader._levels[8][indices]).float() * (2 / 255) - 1
    y = torch.nn.functional.avg_pool2d(x, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(reals, x + (y - x) * (lod - 1.0))


def test_adam_update_equals_tensorflow_adam_also_after_a_reset():
    """TF adds ε to the raw sqrt(v); with gradients near ε the two conventions differ unless matched."""
    beta1, beta2, eps, lr = 0.0, 0.99, 1e-8, 0.001
    gradients = [torch.tensor([3e-8, -1e-7, 5e-9], dtype=torch.float64) * (k + 1) for k in range(3)]
    parameter = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    optimizer = torch.optim.Adam([parameter], lr=lr, betas=(beta1, beta2), eps=eps)
    for _ in range(2):  # the second run starts after a reset: t counts from 1 again
        updates.reset_optimizer(optimizer)
        expected = parameter.detach().clone()
        m = torch.zeros(3, dtype=torch.float64)
        v = torch.zeros(3, dtype=torch.float64)
        for t, g in enumerate(gradients, start=1):
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            expected -= lr * math.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (v.sqrt() + eps)
            parameter.grad = g.clone()
            updates.match_tf_adam_epsilon(optimizer, eps, t)
            optimizer.step()
        torch.testing.assert_close(parameter.detach(), expected, rtol=1e-12, atol=0)


def test_adam_epsilon_follows_each_optimizers_own_step_count_after_the_first_fade():
    """D's first parameter (the 4x4 fromRGB) gets no gradient once the first fade is over; TF's ε still follows
    the optimizer's count of updates since the reset, not that parameter's."""
    trainer = tiny_trainer()
    trainer.run()
    assert trainer.schedule().lod == 0.0 and trainer.D.from_rgb[0].weight not in trainer.D_opt.state
    for name, optimizer in (("G", trainer.G_opt), ("D", trainer.D_opt)):
        steps = getattr(trainer.state, f"{name}_adam_steps")
        assert steps > 1 and steps == max(int(s["step"]) for s in optimizer.state.values())
        assert optimizer.param_groups[0]["eps"] == pytest.approx(1e-8 / math.sqrt(1 - 0.99**steps), rel=1e-12)


def test_sigterm_saves_a_snapshot_and_stops_cleanly(tmp_path):
    import signal

    trainer = tiny_trainer(tmp_path)
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        loop_module.install_signal_handlers(trainer)
        step = trainer.generator_step
        trainer.generator_step = lambda sched: (step(sched), trainer.state.cur_nimg == 16
                                                and signal.raise_signal(signal.SIGTERM))
        assert trainer.run() is False
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    assert trainer.state.cur_nimg == 16  # the minibatch group was finished, no more
    saved = torch.load(tmp_path / "training-state-000000.pt", weights_only=True)
    assert saved["training_state"]["state"]["cur_nimg"] == 16
    assert not (tmp_path / "_training-done.txt").exists()
