"""Light network snapshots and full training states (EDM's network-snapshot / training-state split).

Network snapshots hold G, D, Gs and metadata, no Adam moments; training states hold everything a bit-exact resume
needs, at their own interval, and a run keeps only the newest few it wrote itself.
"""

from __future__ import annotations

import pytest
import torch

from pgtrain.checkpoint import load_snapshot, snapshot_lod
from pgtrain.errors import PgtrainError
from pgtrain.loop import Trainer
from pgtrain.run_dir import locate_resume
from pgtrain.training_state import load_resume_snapshot, resume_config
from tests.pgtrain.test_loop import tiny_reader, tiny_trainer
from tests.pgtrain.test_resume import _assert_same_training_state


def test_network_snapshots_are_light_and_training_states_full(tmp_path):
    trainer = tiny_trainer(tmp_path)
    assert trainer.run() is True
    for name in ("network-snapshot-000000.pt", "network-final.pt"):
        raw = torch.load(tmp_path / name, weights_only=True)
        assert raw["training_state"] is None and {"G", "D", "Gs"} <= set(raw)
        assert raw["metadata"]["nimg"] == 112 and raw["metadata"]["producer"] == "pgtrain run"
        assert snapshot_lod(load_snapshot(tmp_path / name)) == 0.0  # generate/evaluate run Gs at its lod
    state = torch.load(tmp_path / "training-state-000000.pt", weights_only=True)
    assert {"G_opt", "D_opt", "rng", "state"} <= set(state["training_state"])
    assert state["training_state"]["G_opt"]["state"]  # the Adam moments live here only


def test_a_stop_writes_both_a_network_snapshot_and_a_training_state(tmp_path):
    trainer = tiny_trainer(tmp_path, overrides=["train.network_snapshot_ticks=1000"])
    assert trainer.run(stop_at_nimg=48) is False
    assert load_snapshot(tmp_path / "network-snapshot-000000.pt").metadata["nimg"] == 48
    assert load_snapshot(tmp_path / "training-state-000000.pt").training_state["state"]["cur_nimg"] == 48


def test_training_states_follow_their_own_interval(tmp_path):
    written = []
    trainer = tiny_trainer(tmp_path, overrides=["train.network_snapshot_ticks=1", "train.state_dump_ticks=3"])
    save_state = trainer.checkpoints.save_state
    trainer.checkpoints.save_state = lambda t: written.append(t.state.cur_tick) or save_state(t)
    trainer.run()
    assert written == [3, 6, 7]  # every 3 ticks, and at the end (tick 7)


def test_only_the_newest_states_the_run_wrote_are_kept(tmp_path):
    foreign = tmp_path / "training-state-000005.pt"
    foreign.write_bytes(b"someone else's file")
    trainer = tiny_trainer(tmp_path, overrides=["train.state_dump_keep=2"])
    for nimg in (1000, 2000, 3000, 4000):
        trainer.state.cur_nimg = nimg
        trainer.checkpoints.save_state(trainer)
    names = sorted(path.name for path in tmp_path.glob("training-state-*.pt"))
    assert names == ["training-state-000003.pt", "training-state-000004.pt", "training-state-000005.pt"]
    assert foreign.read_bytes() == b"someone else's file"


def test_a_run_continued_in_its_directory_prunes_the_states_its_earlier_process_wrote(tmp_path):
    first = tiny_trainer(tmp_path, overrides=["train.state_dump_keep=1"])
    first.state.cur_nimg = 1000
    first.checkpoints.save_state(first)
    state = load_resume_snapshot(tmp_path / "training-state-000001.pt")
    second = tiny_trainer(tmp_path, overrides=["train.state_dump_keep=1"], resume_from=state)
    second.state.cur_nimg = 2000
    second.checkpoints.save_state(second)
    assert sorted(p.name for p in tmp_path.glob("training-state-*.pt")) == ["training-state-000002.pt"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    third = tiny_trainer(elsewhere, overrides=["train.state_dump_keep=1"], resume_from=tmp_path / "training-state-000002.pt")
    third.state.cur_nimg = 3000
    third.checkpoints.save_state(third)
    assert (tmp_path / "training-state-000002.pt").is_file()  # another directory's state is never removed


def test_a_network_snapshot_with_its_state_beside_it_resumes_exactly(tmp_path):
    (tmp_path / "straight").mkdir()
    (tmp_path / "stopped").mkdir()
    straight = tiny_trainer(tmp_path / "straight", reader=tiny_reader())
    straight.run()
    tiny_trainer(tmp_path / "stopped", reader=tiny_reader()).run(stop_at_nimg=48)
    snapshot = tmp_path / "stopped" / "network-snapshot-000000.pt"
    config, _ = resume_config(snapshot)
    resumed = Trainer(config, tiny_reader(), None, log=lambda line="": None, resume_from=snapshot)
    assert resumed.state.cur_nimg == 48
    resumed.run()
    _assert_same_training_state(straight, resumed)


def test_a_light_snapshot_alone_is_one_line_saying_what_to_pass(tmp_path):
    tiny_trainer(tmp_path).run(stop_at_nimg=48)
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (tmp_path / "network-snapshot-000000.pt").rename(lonely / "network-snapshot-000000.pt")
    for attempt in (lambda: resume_config(lonely / "network-snapshot-000000.pt"),
                    lambda: tiny_trainer(resume_from=lonely / "network-snapshot-000000.pt")):
        with pytest.raises(PgtrainError, match="no training-state-000000.pt of the same point beside it") as info:
            attempt()
        assert "--start-from" in str(info.value) and "\n" not in str(info.value)
    assert locate_resume(tmp_path).name == "training-state-000000.pt"  # the run directory finds its state


def test_a_state_of_another_point_beside_a_snapshot_is_not_taken(tmp_path):
    trainer = tiny_trainer(tmp_path, overrides=["train.network_snapshot_ticks=1", "train.state_dump_ticks=1000"])
    trainer.run(stop_at_nimg=64)  # snapshots at every tick, the state only at the stop
    snapshot = load_snapshot(tmp_path / "network-snapshot-000000.pt")
    assert snapshot.metadata["nimg"] == 64
    trainer.state.cur_nimg = 16  # a state of another point under the same kimg name
    trainer.checkpoints.save_state(trainer)
    with pytest.raises(PgtrainError, match="of the same point beside it"):
        load_resume_snapshot(tmp_path / "network-snapshot-000000.pt")
