"""`pgtrain run --run-dir DIR`: the same command run again does what is left and nothing more.

Absent or empty DIR: a new run there. A finished run: one line, exit 0, no work. An unfinished run: resumed in place
from its latest training state, ending with the same networks as an uninterrupted run. Anything else is refused
in one line and left as it was.
"""

from __future__ import annotations

import json

import pytest
import torch

from pgtrain import loop as loop_module
from pgtrain.errors import PgtrainError
from pgtrain.run_dir import classify_run_dir
from tests.pgtrain.test_loop import TINY
from tests.pgtrain.test_training_cli import _invoke

TINY_SETTINGS = [arg for item in TINY for arg in ("--set", item)]


def _run(data, run_dir, *extra):
    return _invoke(["run", "--data", str(data), "--run-dir", str(run_dir), "--device", "cpu", "--cpu-threads",
                    "1", *TINY_SETTINGS, *extra])


def _networks(path):
    saved = torch.load(path, weights_only=True)
    return {f"{name}.{key}": value for name in ("G", "D", "Gs") for key, value in saved[name].items()}


def _stop_at(monkeypatch, nimg):
    """The next run stops (as Ctrl-C does) once `nimg` images are shown."""
    original = loop_module.Trainer.run
    monkeypatch.setattr(loop_module.Trainer, "run", lambda self, stop_at_nimg=None: original(self, nimg))


def _ticks(run_dir):
    return [json.loads(line)["Progress/tick"] for line in (run_dir / "stats.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def straight(dataset, tmp_path_factory):
    """An uninterrupted run in a new --run-dir (whose parents do not exist yet)."""
    run_dir = tmp_path_factory.mktemp("straight") / "runs" / "tiny"
    result = _run(dataset, run_dir)
    assert result.exit_code == 0, result.output
    return run_dir


def test_a_new_run_dir_gets_a_whole_run(straight):
    assert (straight / "_training-done.txt").is_file() and (straight / "network-final.pt").is_file()
    assert not list(straight.parent.glob("0*-pgan-*"))  # exactly DIR, no results/NNN-... beside it


def test_a_finished_run_is_one_line_and_no_work(dataset, straight, monkeypatch):
    before = {path.name: path.read_bytes() for path in straight.iterdir()}
    monkeypatch.setattr(loop_module, "Trainer", lambda *a, **k: pytest.fail("a finished run trained again"))
    monkeypatch.setattr("pgtrain.data.open_training_data", lambda *a, **k: pytest.fail("the dataset was opened"))
    result = _run(dataset, straight)
    assert result.exit_code == 0, result.output
    assert result.output == f"{straight}: training already finished\n"
    assert {path.name: path.read_bytes() for path in straight.iterdir()} == before


@pytest.mark.parametrize("stop_at_nimg", [48, 80])
def test_a_stopped_run_continues_in_place_to_the_same_networks(dataset, straight, tmp_path, monkeypatch,
                                                               stop_at_nimg):
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        _stop_at(patch, stop_at_nimg)
        first = _run(dataset, run_dir)
    assert first.exit_code == 0, first.output
    assert not (run_dir / "_training-done.txt").exists() and list(run_dir.glob("training-state-*.pt"))
    second = _run(dataset, run_dir)
    assert second.exit_code == 0, second.output
    assert "Resuming in place from" in (run_dir / "log.txt").read_text()
    expected, resumed = _networks(straight / "network-final.pt"), _networks(run_dir / "network-final.pt")
    assert expected.keys() == resumed.keys()
    for name, value in expected.items():
        assert torch.equal(value, resumed[name]), name
    assert (run_dir / "network-final.pt").read_bytes() == (straight / "network-final.pt").read_bytes()
    assert _ticks(run_dir) == _ticks(straight)  # the repeated ticks are not listed twice


def test_a_run_killed_after_its_last_training_state_continues_from_it(dataset, straight, tmp_path,
                                                                     monkeypatch):
    """A hard kill writes nothing: the rerun starts from the newest periodic state (tick 4 of 5 logged) and
    trains ticks 5-7 again, listed once in stats.jsonl."""
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        _stop_at(patch, 80)
        patch.setattr(loop_module.Trainer, "_stop", lambda self: self._close())  # killed: no snapshot, no state
        first = _run(dataset, run_dir)
    assert first.exit_code == 0, first.output
    assert _ticks(run_dir) == [1, 2, 3, 4, 5]
    second = _run(dataset, run_dir)
    assert second.exit_code == 0, second.output
    assert "training-state-000000.pt" in (run_dir / "log.txt").read_text()
    assert (run_dir / "network-final.pt").read_bytes() == (straight / "network-final.pt").read_bytes()
    assert _ticks(run_dir) == _ticks(straight)


def test_an_unfinished_run_without_a_training_state_starts_afresh_in_place(dataset, straight, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text((straight / "config.json").read_text())
    (run_dir / "log.txt").write_text("Run directory: killed before its first training state\n")
    (run_dir / "stats.jsonl").write_text(json.dumps({"Progress/tick": 1}) + "\n")
    result = _run(dataset, run_dir)
    assert result.exit_code == 0, result.output
    for name, value in _networks(straight / "network-final.pt").items():
        assert torch.equal(value, _networks(run_dir / "network-final.pt")[name]), name
    assert _ticks(run_dir) == _ticks(straight)


@pytest.mark.parametrize("make, message", [
    (lambda path: path.write_text("not a folder"), "not a folder"),
    (lambda path: (path.mkdir(), (path / "holiday.jpg").write_bytes(b"\xff\xd8")), "not a pgtrain run directory"),
    (lambda path: (path.mkdir(), (path / "config.json").write_text('{"train": {"total_kimg": "many"}}'),
                   (path / "log.txt").write_text("")), "not a pgtrain run directory"),
])
def test_a_folder_that_is_not_a_run_is_refused_in_one_line_and_left_alone(dataset, tmp_path, make, message):
    target = tmp_path / "target"
    make(target)
    before = target.read_bytes() if target.is_file() else {p.name: p.read_bytes() for p in target.iterdir()}
    result = _run(dataset, target)
    assert result.exit_code != 0 and isinstance(result.exception, PgtrainError)
    assert message in str(result.exception) and "\n" not in str(result.exception)
    after = target.read_bytes() if target.is_file() else {p.name: p.read_bytes() for p in target.iterdir()}
    assert after == before


def test_run_dir_and_resume_together_are_refused(dataset, straight, tmp_path):
    result = _run(dataset, tmp_path / "new", "--resume", str(straight))
    assert result.exit_code != 0 and "choose one" in str(result.exception)


def test_classify_run_dir(tmp_path, straight):
    assert classify_run_dir(tmp_path / "absent") == "fresh"
    assert classify_run_dir(tmp_path) == "fresh"
    assert classify_run_dir(straight) == "finished"
