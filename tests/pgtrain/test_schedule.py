"""The official TrainingSchedule, checked against values worked out by hand from its formulas, and the optimizer
resets against the official instants (step 0, each fade-in start, each stabilisation start).

lod = R − log2(initial) − phase − max(t − training, 0)/transition (clamped at 0), resolution = 2^(R − floor(lod)),
minibatch = dict.get(res, base) rounded down to a GPU multiple and capped at max_per_gpu·GPUs.
"""

from __future__ import annotations

import itertools

import pytest

from pgtrain.presets import resolve_config
from pgtrain.schedule import ScheduleConfig, lod_level_changed, schedule_at

# (presets, dataset log2 resolution, kimg) -> (lod, resolution, minibatch, G/D lrate, tick kimg)
TABLE = [
    # v2-1gpu + fp32 at 1024 (R = 10), 600/600 kimg phases
    ("v2-1gpu", 10, 0, 8.0, 4, 128, 0.001, 160),
    ("v2-1gpu", 10, 599.9, 8.0, 4, 128, 0.001, 160),
    ("v2-1gpu", 10, 900, 7.5, 8, 128, 0.001, 140),  # fading in 8x8: its settings already apply
    ("v2-1gpu", 10, 1200, 7.0, 8, 128, 0.001, 140),
    ("v2-1gpu", 10, 4200, 5.0, 32, 64, 0.001, 100),
    ("v2-1gpu", 10, 4500, 4.5, 64, 32, 0.001, 80),
    ("v2-1gpu", 10, 7800, 2.0, 256, 8, 0.001, 40),
    ("v2-1gpu", 10, 8100, 1.5, 512, 4, 0.001, 20),
    ("v2-1gpu", 10, 9300, 0.5, 1024, 4, 0.0015, 10),  # base 4, fp32 cap 4 per GPU
    ("v2-1gpu", 10, 11000, 0.0, 1024, 4, 0.0015, 10),
    # v2-2gpus: 512 takes the base 8 (cap 8·2 = 16), 1024 is capped at 4·2
    ("v2-2gpus", 10, 0, 8.0, 4, 256, 0.001, 160),
    ("v2-2gpus", 10, 7800, 2.0, 256, 8, 0.001, 40),
    ("v2-2gpus", 10, 8700, 1.0, 512, 8, 0.0015, 20),
    ("v2-2gpus", 10, 9300, 0.5, 1024, 8, 0.002, 10),
    # v2-4gpus
    ("v2-4gpus", 10, 0, 8.0, 4, 512, 0.001, 160),
    ("v2-4gpus", 10, 7800, 2.0, 256, 16, 0.0015, 40),
    ("v2-4gpus", 10, 9300, 0.5, 1024, 16, 0.003, 10),
    # v2-8gpus
    ("v2-8gpus", 10, 0, 8.0, 4, 512, 0.001, 160),
    ("v2-8gpus", 10, 5700, 3.5, 128, 32, 0.0015, 60),
    ("v2-8gpus", 10, 9300, 0.5, 1024, 32, 0.003, 10),
    ("v2-8gpus+fp16", 10, 9300, 0.5, 1024, 32, 0.003, 10),
    # v1-1gpu: 800/800 kimg phases, minibatch 16 with {256: 14, 512: 6, 1024: 3}
    ("v1-1gpu", 10, 0, 8.0, 4, 16, 0.001, 160),
    ("v1-1gpu", 10, 1200, 7.5, 8, 16, 0.001, 140),
    ("v1-1gpu", 10, 11000, 1.25, 512, 6, 0.001, 20),
    ("v1-1gpu", 10, 12400, 0.5, 1024, 3, 0.001, 10),
    ("v1-1gpu", 10, 18999, 0.0, 1024, 3, 0.001, 10),
    # fp16 caps {512: 16, 1024: 8} per GPU
    ("v2-1gpu+fp16", 10, 9300, 0.5, 1024, 4, 0.0015, 10),
    ("v2-4gpus+fp16", 10, 8700, 1.0, 512, 16, 0.002, 20),
    # BENCHMARK: 3/3 kimg phases, 1-kimg ticks everywhere
    ("BENCHMARK", 10, 4.5, 7.5, 8, 128, 0.001, 1),
    ("BENCHMARK", 10, 51, 0.0, 1024, 4, 0.0015, 1),
    # BENCHMARK0: starts at 1024
    ("BENCHMARK0", 10, 0, 0.0, 1024, 4, 0.0015, 1),
    # nogrowing on a 32x32 dataset: lod 5 − 10 clamps at 0 from the start
    ("nogrowing", 5, 0, 0.0, 32, 64, 0.001, 100),
    ("nogrowing", 5, 5000, 0.0, 32, 64, 0.001, 100),
    # a 32x32 dataset under v2-1gpu: lod starts at 3
    ("v2-1gpu", 5, 0, 3.0, 4, 128, 0.001, 160),
    ("v2-1gpu", 5, 3300, 0.5, 32, 64, 0.001, 100),
    ("v2-1gpu", 5, 3600, 0.0, 32, 64, 0.001, 100),
]


@pytest.mark.parametrize("presets, log2, kimg, lod, resolution, minibatch, lrate, tick", TABLE)
def test_schedule_table(presets, log2, kimg, lod, resolution, minibatch, lrate, tick):
    config = resolve_config([presets])
    point = schedule_at(int(round(kimg * 1000)), log2, config.sched, config.num_gpus)
    assert point.lod == pytest.approx(lod, abs=1e-9)
    assert point.resolution == resolution
    assert point.minibatch == minibatch
    assert point.G_lrate == pytest.approx(lrate) and point.D_lrate == pytest.approx(lrate)
    assert point.tick_kimg == tick


def test_minibatch_rounds_down_to_gpu_multiple_then_caps():
    config = ScheduleConfig(minibatch_base=10, max_minibatch_per_gpu={4: 1})
    assert schedule_at(0, 2, config, num_gpus=4).minibatch == 4  # 10 -> 8 -> cap 1·4
    config.lod_initial_resolution = 8
    assert schedule_at(0, 3, config, num_gpus=4).minibatch == 8  # 8x8 level: 10 -> 8, no cap there


def test_initial_resolution_uses_floor_log2():
    config = ScheduleConfig(lod_initial_resolution=12)  # floor(log2 12) = 3
    assert schedule_at(0, 5, config).lod == 2.0


@pytest.mark.parametrize("previous, lod, changed", [
    (None, 8.0, True),  # step 0
    (8.0, 8.0, False),
    (8.0, 7.999, True),  # fade-in starts: floor changes
    (7.999, 7.5, False),
    (7.5, 7.0, True),  # stabilisation starts: ceil changes
    (7.0, 7.0, False),
])
def test_lod_level_changed(previous, lod, changed):
    assert lod_level_changed(previous, lod) is changed


# The official reset_opt_for_new_lod instants at 1024x1024 (peers-and-official-facts.md §2.8, §2.9): at step 0,
# then twice per new resolution 8 ... 1024: when its fade-in starts and when its stabilisation starts.
# v2 (600/600 kimg): fade to 8x8 600-1200, ..., fade to 1024x1024 9000-9600; v1 (800/800): 1024 fades 12000-12800.
OFFICIAL_RESETS = {
    "v2-1gpu": {"fade_ins": [600 + 1200 * k for k in range(8)], "stabilisations": [1200 * (k + 1) for k in range(8)]},
    "v1-1gpu": {"fade_ins": [800 + 1600 * k for k in range(8)], "stabilisations": [1600 * (k + 1) for k in range(8)]},
}
STEP_NIMG = 4  # one schedule evaluation to the next, as close as a minibatch group can be


def _changed(config, before_kimg: float, kimg: float) -> bool:
    """Whether the reset rule fires between two schedule evaluations of the official 1024x1024 schedule."""
    def lod(at):
        return schedule_at(int(round(at * 1000)), 10, config.sched, config.num_gpus).lod
    return lod_level_changed(lod(before_kimg), lod(kimg))


@pytest.mark.parametrize("preset", sorted(OFFICIAL_RESETS))
def test_optimizer_resets_when_each_fade_in_and_each_stabilisation_starts(preset):
    config = resolve_config([preset])
    step = STEP_NIMG / 1000
    assert lod_level_changed(None, schedule_at(0, 10, config.sched).lod)  # step 0
    for start in OFFICIAL_RESETS[preset]["fade_ins"]:
        assert not _changed(config, start - step, start)  # lod is still the integer at the fade's first instant
        assert _changed(config, start, start + step), f"{preset}: no reset when the fade-in at {start} kimg starts"
    for start in OFFICIAL_RESETS[preset]["stabilisations"]:
        assert _changed(config, start - step, start), f"{preset}: no reset when stabilisation starts at {start} kimg"
        assert not _changed(config, start, start + step)


@pytest.mark.parametrize("preset", sorted(OFFICIAL_RESETS))
def test_no_optimizer_reset_inside_a_stable_or_fading_stretch(preset):
    config = resolve_config([preset])
    instants = [0, *OFFICIAL_RESETS[preset]["fade_ins"], *OFFICIAL_RESETS[preset]["stabilisations"]]
    edges = sorted(instants) + [config.train.total_kimg]
    step = STEP_NIMG / 1000
    for first, last in itertools.pairwise(edges):
        for kimg in (first + 2 * step, (first + last) / 2, last - step):  # inside the stretch
            assert not _changed(config, kimg - step, kimg), f"{preset}: a reset at {kimg} kimg"
