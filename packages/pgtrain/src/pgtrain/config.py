"""The resolved training configuration: one tree of dataclasses, built from presets plus `--set key=value`.

Section and field names follow the official config.py (sched, train, G, D, G_opt, D_opt, grid, dataset) so that a
line of the original config reads the same here: `sched.minibatch_base=16`, `train.total_kimg=19000`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pgdata.common.resolution import LOWEST_RESOLUTION, is_power_of_two
from pgtrain.errors import PgtrainError
from pgtrain.schedule import ScheduleConfig

PRECISIONS = ("fp32", "fp16", "bf16")
NETWORK_SECTIONS = ("G", "D")  # sections of Generator / Discriminator constructor keywords
DATASET_KEYWORDS = ("num_channels", "resolution", "label_size")  # network keywords the dataset decides


@dataclass
class LoopConfig:
    """Options of the official train_progressive_gan(), with its defaults."""

    total_kimg: float = 15000
    G_smoothing: float = 0.999  # Gs EMA beta per D step
    D_repeats: int = 1
    minibatch_repeats: int = 4  # minibatches per schedule evaluation
    accumulation_steps: int = 1  # per-GPU shares each process computes in turn: num_gpus = processes × this
    verify_ranks: bool = False  # debugging: at every tick, check that G, D and Gs are identical on every rank
    reset_opt_for_new_lod: bool = True
    mirror_augment: bool = False
    image_snapshot_ticks: int = 1
    network_snapshot_ticks: int = 10  # light snapshots: G, D, Gs and metadata (what generate/evaluate need)
    state_dump_ticks: int | None = None  # full training states (EDM's state_dump_ticks); None: network_snapshot_ticks
    state_dump_keep: int = 2  # training-state files a run keeps (the newest it wrote); older ones are removed


@dataclass
class AdamConfig:
    """Adam as the official G_opt / D_opt: beta1 0, beta2 0.99, epsilon 1e-8."""

    beta1: float = 0.0
    beta2: float = 0.99
    epsilon: float = 1e-8


@dataclass
class LossConfig:
    """Weights of the official D_wgangp_acgan / G_wgan_acgan losses."""

    wgan_lambda: float = 10.0
    wgan_epsilon: float = 0.001
    wgan_target: float = 1.0
    cond_weight: float = 1.0


@dataclass
class GridConfig:
    """Snapshot grids as the official setup_snapshot_image_grid: size '1080p' or '4k', layout 'random' or
    'row_per_class'."""

    size: str = "1080p"
    layout: str = "random"


@dataclass
class DatasetConfig:
    """How reals are read. max_label_size as the official dataset: 0 = no labels, 'full', or the first N."""

    max_label_size: int | Literal["full"] = 0
    synthetic: dict[str, int] | None = None  # {"resolution": R, "channels": C}: black images, no I/O
    buffer_mb: int = 4096  # a resolution level that fits is held in memory (official shuffle buffer: 4096 MB)
    workers: int = 2  # reader threads for levels that do not fit


@dataclass
class TrainingConfig:
    """Everything a run needs besides the dataset path; saved as config.json and in every snapshot's metadata."""

    seed: int = 1000  # official random_seed
    num_gpus: int = 1  # the preset's GPU count: rounds the minibatch as the official schedule does
    allow_gpu_count_mismatch: bool = False  # run with a world size other than num_gpus (refused otherwise)
    precision: str = "fp32"
    presets: list[str] = field(default_factory=list)  # names applied, in order (for the run-directory name)
    sched: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    G: dict[str, Any] = field(default_factory=dict)  # Generator keyword overrides
    D: dict[str, Any] = field(default_factory=dict)  # Discriminator keyword overrides
    G_opt: AdamConfig = field(default_factory=AdamConfig)
    D_opt: AdamConfig = field(default_factory=AdamConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)


def parse_value(text: str) -> Any:
    """A command-line value: JSON or a Python literal ({4: 64}, 1e-3, True), else the bare string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError):
            continue
    return text


class _Mismatch(Exception):
    """A value that does not fit a type; the message says what was expected and, for containers, where."""

    def __init__(self, value: Any, hint: Any, detail: str = "") -> None:
        super().__init__(f"expected {_describe(hint)}, got {value!r}" + (f" ({detail})" if detail else ""))


def _describe(hint: Any) -> str:
    """A type as a user reads it (a float; an int or 'full'; a dict[int, int]; true or false), not typing's repr."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return "true or false"
    if hint is type(None):
        return "None"
    if origin is Literal:
        return " or ".join(repr(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    name = _type_name(hint)
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _type_name(hint: Any) -> str:
    """`dict[int, float]` rather than typing's repr, so messages read like the annotations."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return "value"
    if hint is type(None):
        return "None"
    if origin is Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is None:
        return getattr(hint, "__name__", str(hint))
    return f"{origin.__name__}[{', '.join(_type_name(arg) for arg in args)}]" if args else origin.__name__


def _json_key(key: Any, hint: Any) -> Any:
    """JSON object keys are always strings: '1024' back to 1024 where the declared key type is int."""
    if hint is int and isinstance(key, str) and re.fullmatch(r"-?[0-9]+", key.strip()):
        return int(key)
    return key


def _conform(value: Any, hint: Any) -> Any:
    """`value` checked against the annotation `hint` (scalar, Literal, Union/Optional, dict[K, V], list[T], Any).

    Converts only where nothing is lost, so that `--set` and JSON read back the same: int -> float,
    integral float -> int, string dict keys -> int. Bools and numbers never stand in for each other.
    Raises _Mismatch.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return _conform(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch(value, hint)
    if origin is Literal:
        if any(type(value) is type(arg) and value == arg for arg in args):
            return value
        raise _Mismatch(value, hint)
    if origin is dict:
        return _conform_dict(value, hint, *(args or (Any, Any)))
    if origin is list:
        return _conform_list(value, hint, args[0] if args else Any)
    if hint is type(None):
        if value is None:
            return None
        raise _Mismatch(value, hint)
    if isinstance(value, bool) != (hint is bool):
        raise _Mismatch(value, hint)
    if hint is float and isinstance(value, int):
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise _Mismatch(value, hint)


def _conform_dict(value: Any, hint: Any, key_hint: Any, value_hint: Any) -> dict[Any, Any]:
    """A dict with every key and value conformed; a bad entry is named in the message."""
    if not isinstance(value, dict):
        raise _Mismatch(value, hint)
    result = {}
    for key, item in value.items():
        try:
            new_key = _conform(_json_key(key, key_hint), key_hint)
        except _Mismatch as error:
            raise _Mismatch(value, hint, f"key {key!r}: {error}") from error
        try:
            result[new_key] = _conform(item, value_hint)
        except _Mismatch as error:
            raise _Mismatch(value, hint, f"at {key!r}: {error}") from error
    return result


def _conform_list(value: Any, hint: Any, item_hint: Any) -> list[Any]:
    """A list (a tuple from a Python literal is fine) with every item conformed."""
    if not isinstance(value, (list, tuple)):
        raise _Mismatch(value, hint)
    result = []
    for index, item in enumerate(value):
        try:
            result.append(_conform(item, item_hint))
        except _Mismatch as error:
            raise _Mismatch(value, hint, f"item {index}: {error}") from error
    return result


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check a setting against its declared type when it is given, not when training first uses it."""
    try:
        return _conform(value, hint)
    except _Mismatch as error:
        raise PgtrainError(f"setting {key}: {error}") from error


@functools.cache
def _field_hints(cls: type) -> dict[str, Any]:
    """Field name -> resolved annotation of a config dataclass (the modules use postponed annotations)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


@functools.cache
def _network_hints(section: str) -> dict[str, Any]:
    """Constructor keyword -> annotation of Generator (G) or Discriminator (D); imported late (torch)."""
    from pgtrain.networks import Discriminator, Generator

    init = (Generator if section == "G" else Discriminator).__init__
    hints = typing.get_type_hints(init)
    parameters = list(inspect.signature(init).parameters.values())[1:]  # without self
    return {p.name: hints.get(p.name, Any) for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _network_keyword(section: str, name: str, value: Any) -> Any:
    """A G.* / D.* value checked like a field: the keyword must exist and not be one the dataset sets."""
    key = f"{section}.{name}"
    if name in DATASET_KEYWORDS:
        raise PgtrainError(f"setting {key}: {name} comes from the dataset and cannot be set")
    hints = _network_hints(section)
    if name not in hints:
        known = ", ".join(sorted(k for k in hints if k not in DATASET_KEYWORDS))
        raise PgtrainError(f"unknown setting '{key}' (network keywords: {known})")
    return _coerce(value, hints[name], key)


def apply_setting(config: TrainingConfig, key: str, value: Any) -> None:
    """Set `section.field` (or a top-level field) in place, checked against its declared type; G.* and D.* are
    Generator / Discriminator keywords."""
    *path, name = key.split(".")
    if len(path) == 1 and path[0] in NETWORK_SECTIONS:
        getattr(config, path[0])[name] = _network_keyword(path[0], name, value)
        return
    target: Any = config
    for part in path:
        if part not in _field_hints(type(target)) or not dataclasses.is_dataclass(getattr(target, part)):
            raise PgtrainError(f"unknown setting '{key}' (sections: {', '.join(_section_names())})")
        target = getattr(target, part)
    hints = _field_hints(type(target))
    if not path and name in NETWORK_SECTIONS:
        raise PgtrainError(f"setting {key}: set its keywords one at a time ({key}.fmap_base=...)")
    if name not in hints or dataclasses.is_dataclass(getattr(target, name)):
        known = ", ".join(sorted(hints))
        raise PgtrainError(f"unknown setting '{key}' (known here: {known})")
    setattr(target, name, _coerce(value, hints[name], key))


def apply_overrides(config: TrainingConfig, overrides: list[str]) -> None:
    """Apply `key=value` strings from the command line."""
    for item in overrides:
        if "=" not in item:
            raise PgtrainError(f"--set expects key=value, got '{item}'")
        key, text = item.split("=", 1)
        apply_setting(config, key.strip(), parse_value(text))


def _finite(value: float) -> bool:
    return math.isfinite(value)


# (setting, rule, what the rule says): ranges that the types cannot express, checked before any work starts.
_RANGES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("train.total_kimg", lambda v: _finite(v) and v > 0, "a finite number > 0"),
    ("train.G_smoothing", lambda v: _finite(v) and 0 <= v < 1, "in [0, 1)"),
    ("train.accumulation_steps", lambda v: v >= 1, "at least 1"),
    ("train.image_snapshot_ticks", lambda v: v >= 1, "at least 1"),
    ("train.network_snapshot_ticks", lambda v: v >= 1, "at least 1"),
    ("train.state_dump_ticks", lambda v: v is None or v >= 1, "at least 1 (or None: network_snapshot_ticks)"),
    ("train.state_dump_keep", lambda v: v >= 1, "at least 1"),
    ("sched.lod_initial_resolution", lambda v: is_power_of_two(v, LOWEST_RESOLUTION), "a power of two >= 4"),
    ("sched.lod_training_kimg", lambda v: _finite(v) and v >= 0, "a finite number >= 0"),
    ("sched.lod_transition_kimg", lambda v: _finite(v) and v >= 0, "a finite number >= 0"),
    ("sched.minibatch_base", lambda v: v >= 1, "at least 1"),
    ("sched.minibatch_dict", lambda d: all(v >= 1 for v in d.values()), "values of at least 1"),
    ("sched.max_minibatch_per_gpu", lambda d: all(v >= 1 for v in d.values()), "values of at least 1"),
    ("sched.G_lrate_base", lambda v: _finite(v) and v > 0, "a finite number > 0"),
    ("sched.D_lrate_base", lambda v: _finite(v) and v > 0, "a finite number > 0"),
    ("sched.G_lrate_dict", lambda d: all(_finite(v) and v > 0 for v in d.values()), "finite values > 0"),
    ("sched.D_lrate_dict", lambda d: all(_finite(v) and v > 0 for v in d.values()), "finite values > 0"),
    ("sched.tick_kimg_base", lambda v: _finite(v) and v > 0, "a finite number > 0"),
    ("sched.tick_kimg_dict", lambda d: all(_finite(v) and v > 0 for v in d.values()), "finite values > 0"),
    ("G_opt.beta2", lambda v: _finite(v) and 0 <= v < 1, "in [0, 1)"),
    ("D_opt.beta2", lambda v: _finite(v) and 0 <= v < 1, "in [0, 1)"),
    ("G_opt.epsilon", lambda v: _finite(v) and v > 0, "a finite number > 0"),
    ("D_opt.epsilon", lambda v: _finite(v) and v > 0, "a finite number > 0"),
    ("loss.wgan_target", lambda v: _finite(v) and v != 0, "finite and not 0"),
)


def validate(config: TrainingConfig) -> None:
    """Reject values and combinations that cannot run, with one line the user can act on, before any work."""
    for key, rule, wanted in _RANGES:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if not rule(value):
            raise PgtrainError(f"setting {key}: must be {wanted}, got {value!r}")
    if config.precision not in PRECISIONS:
        raise PgtrainError(f"precision '{config.precision}' is not one of {', '.join(PRECISIONS)}")
    if config.grid.size not in ("1080p", "4k"):
        raise PgtrainError(f"grid.size '{config.grid.size}' is not 1080p or 4k")
    if config.grid.layout not in ("random", "row_per_class"):
        raise PgtrainError(f"grid.layout '{config.grid.layout}' is not random or row_per_class")
    if config.train.minibatch_repeats < 1 or config.train.D_repeats < 1:
        raise PgtrainError("train.minibatch_repeats and train.D_repeats must be at least 1")
    if config.num_gpus < 1:
        raise PgtrainError("num_gpus must be at least 1")


def _section_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainingConfig)]


def config_to_dict(config: TrainingConfig) -> dict[str, Any]:
    """Plain JSON-ready dict (resolution keys become strings in JSON; config_from_dict turns them back)."""
    return dataclasses.asdict(config)


def config_from_dict(data: dict[str, Any]) -> TrainingConfig:
    """Inverse of config_to_dict (also accepts the JSON form with string keys)."""
    config = TrainingConfig()
    for key, value in data.items():
        section = key in NETWORK_SECTIONS or dataclasses.is_dataclass(getattr(config, key, None))
        if section and isinstance(value, dict):
            for sub_key, sub_value in value.items():
                apply_setting(config, f"{key}.{sub_key}", sub_value)
        else:
            apply_setting(config, key, value)
    return config


def config_to_json(config: TrainingConfig) -> str:
    return json.dumps(config_to_dict(config), indent=2, sort_keys=False)
