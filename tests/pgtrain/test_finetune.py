"""Fine-tuning (`pgtrain run --start-from`): a new run from an imported official network or one of our snapshots."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from pgdata.exporter import export_dataset
from pgdata.sources.base import Source, SourceInfo
from pgtrain.checkpoint import load_snapshot, save_snapshot
from pgtrain.cli import app
from pgtrain.errors import PgtrainError
from pgtrain.importers.tf_pickle import import_tf_pickle
from pgtrain.loop import Trainer
from pgtrain.presets import resolve_config
from pgtrain.run_dir import locate_resume
from pgtrain.training_state import resume_config
from tests.conftest import require_fixture
from tests.pgtrain.test_loop import tiny_reader, tiny_trainer

# The schedule only: the networks are the snapshot's. 8-image minibatches (two mbstd groups of 4).
SCHEDULE = ["sched.minibatch_base=8", "sched.minibatch_dict={}", "sched.lod_training_kimg=0.016",
            "sched.lod_transition_kimg=0.032", "sched.tick_kimg_base=0.016", "sched.tick_kimg_dict={}",
            "train.network_snapshot_ticks=1", "train.image_snapshot_ticks=1000"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The train_step fixture's r32 networks (32x32 RGB, no labels), imported as `pgtrain import-tf` does."""
    pickle = require_fixture("train_step", "r32.pkl")
    path = tmp_path_factory.mktemp("imported") / "r32.pt"
    save_snapshot(path, **import_tf_pickle(pickle))
    return path


def _states_equal(a: torch.nn.Module, b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(value, b[name]) for name, value in a.state_dict().items())


def test_an_imported_official_network_starts_a_new_run_at_the_given_kimg(imported, tmp_path):
    snapshot = load_snapshot(imported)
    config = resolve_config([], SCHEDULE + ["train.total_kimg=0.208"])
    trainer = Trainer(config, tiny_reader(n=16, resolution=32), tmp_path, log=lambda line="": None,
                      start_from=imported, start_kimg=0.16)
    assert trainer.network_kwargs["G"]["fmap_base"] == 128 and trainer.config.D["mbstd_group_size"] == 4
    assert _states_equal(trainer.G, snapshot.G_state) and _states_equal(trainer.D, snapshot.D_state)
    assert _states_equal(trainer.Gs, snapshot.Gs_state)
    assert trainer.state.cur_nimg == 160 and trainer.schedule().lod == 0.0
    assert len(trainer.G_opt.state) == 0 and trainer.data.position == 0  # fresh Adam, fresh data order
    assert trainer.run() is True
    assert trainer.state.cur_nimg >= 200 and not _states_equal(trainer.G, snapshot.G_state)
    # the new run's snapshots carry the adopted architecture, so they resume like any other run
    last = locate_resume(tmp_path)
    resumed_config, _ = resume_config(last)
    assert resumed_config.G["fmap_base"] == 128
    again = Trainer(resumed_config, tiny_reader(n=16, resolution=32), None, log=lambda line="": None,
                    resume_from=last)
    assert _states_equal(again.G, trainer.G.state_dict())


def test_the_start_kimg_defaults_to_the_snapshots_own(tmp_path):
    (tmp_path / "first").mkdir()
    first = tiny_trainer(tmp_path / "first")
    first.run(stop_at_nimg=48)
    snapshot = locate_resume(tmp_path / "first")
    second = tiny_trainer(start_from=snapshot)
    assert second.state.cur_nimg == 48 and len(second.D_opt.state) == 0
    assert _states_equal(second.G, first.G.state_dict())


def test_a_dataset_of_another_shape_is_refused_in_one_line(imported):
    config = resolve_config([], SCHEDULE)
    with pytest.raises(PgtrainError, match=r"networks are for 3x32x32 images with 0 labels, the dataset has "
                                           r"3x16x16 images with 0 labels") as info:
        Trainer(config, tiny_reader(n=16, resolution=16), None, log=lambda line="": None, start_from=imported)
    assert "\n" not in str(info.value)


def test_a_conflicting_architecture_setting_is_refused(imported):
    config = resolve_config([], SCHEDULE + ["G.fmap_base=64"])
    with pytest.raises(PgtrainError, match="weights do not fit"):
        Trainer(config, tiny_reader(n=16, resolution=32), None, log=lambda line="": None, start_from=imported)


class _Images(Source):
    def __init__(self):
        self.info = SourceInfo(name="mine", channels=3, resolution=32, num_images=16)
        self.images = np.random.default_rng(1).integers(0, 256, (16, 3, 32, 32), dtype=np.uint8)

    def iter_chunks(self, start=0):
        yield self.images[start:]


def test_cli_start_from_shows_and_records_the_adopted_networks(imported, tmp_path):
    data = export_dataset(_Images(), tmp_path / "mine", command="test", arguments={}, quiet=True)
    args = ["run", "--data", str(data), "--results", str(tmp_path / "results"), "--device", "cpu",
            "--start-from", str(imported), "--start-kimg", "0.16", "--set", "train.total_kimg=0.176"]
    for item in SCHEDULE:
        args += ["--set", item]
    result = CliRunner().invoke(app, [*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Starting from the networks of" in result.output and '"fmap_base": 128' in result.output
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "results").iterdir()
    assert json.loads((run_dir / "config.json").read_text())["G"]["fmap_max"] == 16
    assert "kimg 0.1" in (run_dir / "log.txt").read_text()


def test_cli_start_kimg_without_start_from_and_with_resume_are_refused(imported, tmp_path):
    result = CliRunner().invoke(app, ["run", "--data", str(tmp_path), "--start-kimg", "5"])
    assert result.exit_code != 0 and "--start-kimg needs --start-from" in str(result.exception)
    result = CliRunner().invoke(app, ["run", "--resume", str(tmp_path), "--start-from", str(imported)])
    assert result.exit_code != 0 and "choose one" in str(result.exception)


def test_a_negative_start_kimg_is_refused_in_one_line(imported):
    config = resolve_config([], SCHEDULE)
    with pytest.raises(PgtrainError, match=r"the start kimg must be >= 0, got -1.0") as info:
        Trainer(config, tiny_reader(n=16, resolution=32), None, log=lambda line="": None, start_from=imported,
                start_kimg=-1.0)
    assert "\n" not in str(info.value)
