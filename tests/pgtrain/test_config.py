"""`--set` values are checked against their declared types when given: one line naming key, value and type."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys

import pytest
from typer.testing import CliRunner

from pgtrain.cli import app, main
from pgtrain.config import TrainingConfig, apply_overrides, config_from_dict, config_to_json
from pgtrain.errors import PgtrainError
from pgtrain.presets import PRESETS, resolve_config

runner = CliRunner()


def _error(*overrides: str) -> str:
    """The one-line message apply_overrides raises for `overrides`."""
    with pytest.raises(PgtrainError) as info:
        apply_overrides(TrainingConfig(), list(overrides))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_mistyped_number_names_key_value_and_type():
    message = _error("train.total_kimg=1O0")
    assert "train.total_kimg" in message and "'1O0'" in message and "float" in message


def test_the_cli_refuses_a_mistyped_number_before_anything_runs(tmp_path):
    result = runner.invoke(app, ["run", "--data", str(tmp_path), "--dry-run", "--set", "train.total_kimg=1O0"])
    assert result.exit_code != 0
    assert isinstance(result.exception, PgtrainError)
    assert "train.total_kimg" in str(result.exception) and "'1O0'" in str(result.exception)


def test_the_console_entry_prints_one_line_without_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["pgtrain", "run", "--data", str(tmp_path), "--dry-run",
                                      "--set", "train.total_kimg=1O0"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pgtrain: error: ") and "Traceback" not in err
    assert "train.total_kimg" in err and "'1O0'" in err and "float" in err


@pytest.mark.parametrize("setting, expected", [
    ("sched.minibatch_dict={4: 'x'}", "int"),  # a value of the wrong type
    ("sched.minibatch_dict={'a': 4}", "int"),  # a key that is no resolution
    ("sched.minibatch_dict={4.5: 4}", "int"),
    ("sched.G_lrate_dict={4: 'fast'}", "float"),
    ("sched.minibatch_dict=[4, 8]", "dict[int, int]"),
    ("dataset.synthetic={'resolution': 'big'}", "dict[str, int]"),
])
def test_dicts_are_checked_key_by_key_and_value_by_value(setting, expected):
    key = setting.split("=")[0]
    message = _error(setting)
    assert message.startswith(f"setting {key}:") and expected in message


def test_dict_keys_from_json_become_ints_and_values_take_the_declared_type():
    config = TrainingConfig()
    apply_overrides(config, ['sched.G_lrate_dict={"512": 1, "1024": 0.002}', 'sched.minibatch_dict={"4": 8.0}'])
    assert config.sched.G_lrate_dict == {512: 1.0, 1024: 0.002}
    assert isinstance(config.sched.G_lrate_dict[512], float)
    assert config.sched.minibatch_dict == {4: 8} and isinstance(config.sched.minibatch_dict[4], int)


@pytest.mark.parametrize("setting, expected", [
    ("train.D_repeats=true", "int"),
    ("train.total_kimg=false", "float"),
    ("G.normalize_latents=1", "true or false"),
    ("D.fused_scale=yes", "true or false"),
    ("G.use_wscale=0", "true or false"),
    ("D.fmap_base=true", "int"),
])
def test_bools_and_numbers_never_stand_in_for_each_other(setting, expected):
    message = _error(setting)
    assert setting.split("=")[0] in message and expected in message


def test_max_label_size_is_an_int_or_full():
    config = TrainingConfig()
    apply_overrides(config, ["dataset.max_label_size=full"])
    assert config.dataset.max_label_size == "full"
    apply_overrides(config, ["dataset.max_label_size=3"])
    assert config.dataset.max_label_size == 3
    message = _error("dataset.max_label_size=foo")
    assert "dataset.max_label_size" in message and "'foo'" in message and "'full'" in message


def test_list_fields_check_their_items():
    config = TrainingConfig()
    apply_overrides(config, ['presets=["v2-1gpu", "fp32"]'])
    assert config.presets == ["v2-1gpu", "fp32"]
    assert "str" in _error("presets=[1, 2]")
    assert "list[str]" in _error("presets=v2-1gpu")


def test_network_keywords_must_exist_and_have_the_constructor_type():
    message = _error("G.fmap_bse=256")
    assert "unknown setting 'G.fmap_bse'" in message and "fmap_base" in message and "use_pixelnorm" in message
    assert "mbstd_group_size" in _error("D.latent_size=8")  # a G keyword, not a D one
    message = _error("G.fmap_base=abc")
    assert "G.fmap_base" in message and "'abc'" in message and "int" in message
    assert "float" in _error("G.pixelnorm_epsilon=tiny")
    config = TrainingConfig()
    apply_overrides(config, ["G.latent_size=none", "D.mbstd_group_size=16"])
    assert config.G == {"latent_size": None} and config.D == {"mbstd_group_size": 16}


@pytest.mark.parametrize("keyword", ["num_channels", "resolution", "label_size"])
def test_keywords_the_dataset_decides_are_refused(keyword):
    for section in ("G", "D"):
        message = _error(f"{section}.{keyword}=3")
        assert f"{section}.{keyword}" in message and "dataset" in message


def test_whole_number_conversions():
    config = TrainingConfig()
    apply_overrides(config, ["train.total_kimg=100", "G.fmap_base=256.0", "sched.minibatch_base=2.0"])
    assert config.train.total_kimg == 100 and isinstance(config.train.total_kimg, float)
    assert config.G["fmap_base"] == 256 and isinstance(config.G["fmap_base"], int)
    assert config.sched.minibatch_base == 2 and isinstance(config.sched.minibatch_base, int)
    assert "2.5" in _error("sched.minibatch_base=2.5")


def _float_fields_hold_floats(config: object) -> bool:
    """Every field annotated `float` (here or in a nested section) holds a float."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            if not _float_fields_hold_floats(value):
                return False
        elif f.type == "float" and not isinstance(value, float):
            return False
    return True


_BASES = [name for name, preset in PRESETS.items() if preset.kind == "base"]
_PRECISIONS = [name for name, preset in PRESETS.items() if preset.kind == "precision"]
_MODIFIERS = [name for name, preset in PRESETS.items() if preset.kind not in ("base", "precision")]


@pytest.mark.parametrize("modifier", [None, *_MODIFIERS])
def test_every_preset_combination_round_trips_through_json(modifier):
    for base, precision in itertools.product(_BASES, _PRECISIONS):
        names = [base, precision] + ([modifier] if modifier else [])
        config = resolve_config(names)
        again = config_from_dict(json.loads(config_to_json(config)))
        assert again == config, names
        assert _float_fields_hold_floats(again), names  # read back with the declared types
        assert config_to_json(config_from_dict(json.loads(config_to_json(again)))) == config_to_json(again)


def test_config_from_dict_checks_what_it_reads():
    data = json.loads(config_to_json(resolve_config()))
    data["train"]["total_kimg"] = "lots"
    with pytest.raises(PgtrainError, match="train.total_kimg"):
        config_from_dict(data)
    data = json.loads(config_to_json(resolve_config()))
    data["G"] = {"fmap_base": "wide"}
    with pytest.raises(PgtrainError, match="G.fmap_base"):
        config_from_dict(data)


@pytest.mark.parametrize(("setting", "message"), [
    ("sched.minibatch_base=0", r"setting sched.minibatch_base: must be at least 1, got 0"),
    ("train.total_kimg=NaN", r"setting train.total_kimg: must be a finite number > 0, got nan"),
    ("train.total_kimg=-1", r"setting train.total_kimg: must be a finite number > 0, got -1.0"),
    ("train.total_kimg=nan", r"setting train.total_kimg: expected a float, got 'nan'"),
    ("sched.minibatch_dict=notadict", r"setting sched.minibatch_dict: expected a dict\[int, int\], got 'notadict'"),
    ("sched.minibatch_dict={4: 0}", r"setting sched.minibatch_dict: must be values of at least 1"),
    ("sched.lod_initial_resolution=6", r"must be a power of two >= 4, got 6"),
    ("train.G_smoothing=1.5", r"setting train.G_smoothing: must be in \[0, 1\), got 1.5"),
    ("sched.G_lrate_dict={\"1024\": Infinity}", r"setting sched.G_lrate_dict: must be finite values > 0"),
])
def test_values_out_of_range_are_refused_before_any_work(setting, message):
    from pgtrain.presets import resolve_config

    with pytest.raises(PgtrainError, match=message) as info:
        resolve_config([], [setting])
    assert "\n" not in str(info.value)
