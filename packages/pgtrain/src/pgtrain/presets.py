"""Named, inspectable presets: every configuration the official config.py offers, plus our CPU demo.

A preset is a list of settings (the same `key=value` pairs `--set` takes), so `pgtrain presets show NAME` prints
exactly what it changes. A run applies one base preset (default v2-1gpu, the official config.py default), one
precision (default fp32), at most one dataset preset (named, or detected from the dataset: see
pgtrain.dataset_presets), then any modifiers in the order given, then `--set` overrides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pgtrain.config import TrainingConfig, apply_overrides, apply_setting, validate
from pgtrain.dataset_presets import (
    OFFICIAL_DATASETS,
    DatasetChoice,
    Detection,
    choose_dataset_preset,
    override_keys,
)
from pgtrain.errors import PgtrainError

KINDS = ("base", "precision", "mode", "ablation", "conditioning", "grid", "dataset")


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str  # one of KINDS
    summary: str
    settings: tuple[tuple[str, Any], ...]


def _v2(gpus: int, base: int, minibatch: dict[int, int], lrate: dict[int, float], summary: str) -> Preset:
    return Preset(f"v2-{gpus}gpu" + ("s" if gpus > 1 else ""), "base", summary, (
        ("num_gpus", gpus),
        ("sched.minibatch_base", base),
        ("sched.minibatch_dict", minibatch),
        ("sched.G_lrate_dict", lrate),
        ("sched.D_lrate_dict", dict(lrate)),
        ("train.total_kimg", 12000),
    ))


_BENCH_TICKS = (("sched.tick_kimg_base", 1), ("sched.tick_kimg_dict", {}),
                ("train.image_snapshot_ticks", 1000), ("train.network_snapshot_ticks", 1000))

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("v1-1gpu", "base", "the paper's CelebA-HQ config: 800+800 kimg phases, 19000 kimg, mbstd group 16 "
           "(about 1 month on 1 V100)", (
               ("num_gpus", 1),
               ("D.mbstd_group_size", 16),
               ("sched.minibatch_base", 16),
               ("sched.minibatch_dict", {256: 14, 512: 6, 1024: 3}),
               ("sched.lod_training_kimg", 800),
               ("sched.lod_transition_kimg", 800),
               ("train.total_kimg", 19000),
           )),
    _v2(1, 4, {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}, {1024: 0.0015},
        "optimised 1-GPU config, 12000 kimg (about 2 weeks on 1 V100); the official default"),
    _v2(2, 8, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8}, {512: 0.0015, 1024: 0.002},
        "optimised 2-GPU config, 12000 kimg (about 1 week on 2 V100)"),
    _v2(4, 16, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16}, {256: 0.0015, 512: 0.002, 1024: 0.003},
        "optimised 4-GPU config, 12000 kimg (about 3 days on 4 V100)"),
    _v2(8, 32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}, {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003},
        "optimised 8-GPU config, 12000 kimg (about 2 days on a DGX-1)"),
    Preset("fp32", "precision", "32-bit training; per-GPU minibatch caps {256: 16, 512: 8, 1024: 4}", (
        ("precision", "fp32"),
        ("sched.max_minibatch_per_gpu", {256: 16, 512: 8, 1024: 4}),
    )),
    Preset("fp16", "precision", "mixed precision with dynamic loss scaling, PixelNorm epsilon 1e-4; caps "
           "{512: 16, 1024: 8}", (
               ("precision", "fp16"),
               ("G.pixelnorm_epsilon", 1e-4),
               ("sched.max_minibatch_per_gpu", {512: 16, 1024: 8}),
           )),
    Preset("bf16", "precision", "ours: bfloat16 autocast, no loss scaling (fp32's exponent range); the fp16 "
           "caps {512: 16, 1024: 8}", (
               ("precision", "bf16"),
               ("sched.max_minibatch_per_gpu", {512: 16, 1024: 8}),
           )),
    Preset("BENCHMARK", "mode", "speed test: 3+3 kimg phases through every resolution, 1-kimg ticks, "
           "no snapshots", (
               ("sched.lod_initial_resolution", 4),
               ("sched.lod_training_kimg", 3),
               ("sched.lod_transition_kimg", 3),
               ("train.total_kimg", (8 * 2 + 1) * 3),
               *_BENCH_TICKS,
           )),
    Preset("BENCHMARK0", "mode", "speed test at full resolution only: 10 kimg, 1-kimg ticks, no snapshots", (
        ("sched.lod_initial_resolution", 1024),
        ("train.total_kimg", 10),
        *_BENCH_TICKS,
    )),
    Preset("VERBOSE", "mode", "a tick (log line and fakes grid) every kimg, network snapshot every 100 ticks", (
        ("sched.tick_kimg_base", 1),
        ("sched.tick_kimg_dict", {}),
        ("train.image_snapshot_ticks", 1),
        ("train.network_snapshot_ticks", 100),
    )),
    Preset("nogrowing", "ablation", "no progressive growing: full resolution from the start, 10000 kimg", (
        ("sched.lod_initial_resolution", 1024),
        ("sched.lod_training_kimg", 0),
        ("sched.lod_transition_kimg", 0),
        ("train.total_kimg", 10000),
    )),
    Preset("nopixelnorm", "ablation", "no pixelwise feature normalisation in G", (("G.use_pixelnorm", False),)),
    Preset("nowscale", "ablation", "no equalized learning rate in G and D",
           (("G.use_wscale", False), ("D.use_wscale", False))),
    Preset("noleakyrelu", "ablation", "ReLU instead of leaky ReLU in G", (("G.use_leakyrelu", False),)),
    Preset("nosmoothing", "ablation", "no G weight averaging (Gs = G)", (("train.G_smoothing", 0.0),)),
    Preset("norepeat", "ablation", "schedule re-evaluated after every minibatch", (("train.minibatch_repeats", 1),)),
    Preset("noreset", "ablation", "keep Adam state across lod changes", (("train.reset_opt_for_new_lod", False),)),
    Preset("cond", "conditioning", "condition G and D on the full label vector (AC-GAN)",
           (("dataset.max_label_size", "full"),)),
    Preset("cond1", "conditioning", "condition on the first label component only", (("dataset.max_label_size", 1),)),
    Preset("g4k", "grid", "snapshot grids sized for a 4k display", (("grid.size", "4k"),)),
    Preset("grpc", "grid", "snapshot grids with one row per class", (("grid.layout", "row_per_class"),)),
    Preset("syn1024rgb", "dataset", "synthetic black 1024x1024 RGB images: throughput tests without I/O "
           "(no --data needed)", (("dataset.synthetic", {"resolution": 1024, "channels": 3}),)),
    *(Preset(d.preset, "dataset", d.summary, d.settings) for d in OFFICIAL_DATASETS.values()),
    Preset("demo-cpu", "mode", "ours: a narrow network that learns 32x32 shapes on 2 CPU cores in minutes "
           "(tools/demo.py); everything else as the paper", (
               ("G.fmap_base", 128), ("G.fmap_max", 32), ("G.latent_size", 32),
               ("D.fmap_base", 128), ("D.fmap_max", 32),
               ("sched.minibatch_base", 16), ("sched.minibatch_dict", {}),
               ("sched.lod_training_kimg", 4), ("sched.lod_transition_kimg", 4),
               ("sched.G_lrate_base", 0.002), ("sched.D_lrate_base", 0.002),
               ("sched.tick_kimg_base", 4), ("sched.tick_kimg_dict", {}),
               ("train.total_kimg", 32), ("train.mirror_augment", True),
               # Gs averages over ~1000 steps at 0.999, longer than this whole run; 0.99 keeps ~100
               ("train.G_smoothing", 0.99),
               ("train.network_snapshot_ticks", 4),
           )),
)}

DEFAULT_BASE = "v2-1gpu"
DEFAULT_PRECISION = "fp32"


def get_preset(name: str) -> Preset:
    """The preset called `name`; an unknown name is a user error listing the known ones."""
    if name not in PRESETS:
        raise PgtrainError(f"no preset named '{name}' (known: {', '.join(PRESETS)}; see `pgtrain presets`)")
    return PRESETS[name]


def split_preset_names(values: list[str] | None) -> list[str]:
    """`--preset a+b --preset c` -> [a, b, c]."""
    names: list[str] = []
    for value in values or []:
        names.extend(part.strip() for part in value.split("+") if part.strip())
    return names


def ordered_presets(names: list[str]) -> list[Preset]:
    """Base first (default v2-1gpu), then precision (default fp32), then the dataset preset, then the rest in the
    order given. The dataset comes before the modifiers as the official Dataset block precedes the other
    switches, so a modifier that sets the same field (demo-cpu's mirror augment) wins."""
    presets = [get_preset(name) for name in names]
    bases = [p for p in presets if p.kind == "base"]
    precisions = [p for p in presets if p.kind == "precision"]
    datasets = [p for p in presets if p.kind == "dataset"]
    if len(bases) > 1:
        raise PgtrainError(f"choose one base preset, got {', '.join(p.name for p in bases)}")
    if len(precisions) > 1:
        raise PgtrainError(f"choose one precision, got {', '.join(p.name for p in precisions)}")
    if len(datasets) > 1:
        raise PgtrainError(f"choose one dataset preset, got {', '.join(p.name for p in datasets)}")
    rest = [p for p in presets if p.kind not in ("base", "precision", "dataset")]
    base = bases or [PRESETS[DEFAULT_BASE]]
    precision = precisions or [PRESETS[DEFAULT_PRECISION]]
    return base + precision + datasets + rest


def resolve_config(preset_names: list[str] | None = None, overrides: list[str] | None = None) -> TrainingConfig:
    """Build the configuration a run uses: defaults, presets in order, then `key=value` overrides."""
    config = TrainingConfig()
    applied = ordered_presets(split_preset_names(preset_names))
    for preset in applied:
        for key, value in preset.settings:
            apply_setting(config, key, _copy(value))
    config.presets = [p.name for p in applied]
    apply_overrides(config, overrides or [])
    validate(config)
    return config


def explicit_keys(preset_names: list[str] | None, overrides: list[str] | None) -> dict[str, str]:
    """Fields the user set, each with where: with `--set` (wins), or through a non-dataset preset named with
    `--preset`."""
    named = [get_preset(name) for name in split_preset_names(preset_names)]
    from_presets = {key: f"preset {p.name}" for p in named if p.kind != "dataset" for key, _ in p.settings}
    return from_presets | override_keys(overrides)


def resolve_run_config(preset_names: list[str] | None, overrides: list[str] | None,
                       detection: Detection) -> tuple[TrainingConfig, str]:
    """The configuration of a new run on a dataset, with the dataset preset chosen by the rule of
    pgtrain.dataset_presets, and the `Dataset preset: ...` line that says what was chosen and why."""
    names = split_preset_names(preset_names)
    given = [name for name in names if get_preset(name).kind == "dataset"]
    keys = explicit_keys(names, overrides)
    choice = choose_dataset_preset(detection, given, keys)
    if choice.preset is not None and choice.preset not in names:
        names.append(choice.preset)
    config = resolve_config(names, overrides)
    return config, choice.line(_settings_of(choice.preset), keys)


def resumed_dataset_line(config: TrainingConfig, overrides: list[str] | None) -> str:
    """The `Dataset preset: ...` line of a resumed run: the snapshot's choice, never detected again."""
    names = [name for name in config.presets if name in PRESETS and PRESETS[name].kind == "dataset"]
    choice = DatasetChoice(names[0] if names else None, "from the snapshot's configuration, not detected again")
    return choice.line(_settings_of(choice.preset), override_keys(overrides))


def _settings_of(name: str | None) -> tuple[tuple[str, Any], ...]:
    return get_preset(name).settings if name is not None else ()


def run_description(config: TrainingConfig, dataset_name: str) -> str:
    """`pgan-<dataset>-<presets>-<precision>`, as DESIGN.md names run directories.

    Dataset presets are left out: the dataset's folder name is already there (the official desc gets
    '-celebahq' from its dataset line, we get it from the folder), and a detected preset would otherwise
    name the data twice (pgan-celebahq-celebahq-...). config.json records them.
    """
    names = [n for n in config.presets if PRESETS.get(n) is None or PRESETS[n].kind not in ("precision", "dataset")]
    return "-".join(["pgan", dataset_name, *names, config.precision])


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value
