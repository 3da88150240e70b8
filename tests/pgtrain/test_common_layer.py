"""pgtrain on the shared layer (pgdata.common): its user errors are the toolkit's, its console entry is run_cli,
its outputs are written by pgdata.common.atomic (snapshots synced to disk), and the causes of its one-line
errors are kept for --debug."""

from __future__ import annotations

import errno
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pgdata.common.errors import ToolkitError
from pgtrain.errors import PgtrainError


def test_pgtrain_errors_are_toolkit_errors_and_read_as_before() -> None:
    error = PgtrainError("x.pt: damaged snapshot")
    assert isinstance(error, ToolkitError)
    assert (str(error), error.args, error.path) == ("x.pt: damaged snapshot", ("x.pt: damaged snapshot",), None)
    copy = pickle.loads(pickle.dumps(error))  # a worker's error reaches the launcher whole
    assert type(copy) is PgtrainError and str(copy) == str(error)


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *arguments: str) -> tuple[int, str, list]:
    from pgtrain.cli import main

    argv = ["pgtrain", *arguments]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.delenv("PG_DEBUG", raising=False)
    monkeypatch.delenv("PGTRAIN_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err, argv


def test_the_console_entry_is_one_line_and_debug_shows_the_cause(tmp_path: Path, monkeypatch, capsys) -> None:
    arguments = ["run", "--data", str(tmp_path), "--dry-run", "--set", "train.total_kimg=many"]
    code, err, _ = _main(monkeypatch, capsys, *arguments)
    assert code == 1 and err.count("\n") == 1 and err.startswith("pgtrain: error: setting train.total_kimg")
    code, err, argv = _main(monkeypatch, capsys, *arguments[:2], "--debug", *arguments[2:])
    assert code == 1 and "Traceback" in err and "_Mismatch" in err  # the cause, kept (was `from None`)
    assert "--debug" not in argv  # removed in place: `run --gpus N` relaunches its workers from sys.argv


def test_a_refusal_of_the_machine_says_what_is_intact(monkeypatch, capsys) -> None:
    from pgtrain import presets

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "results/x")

    monkeypatch.setattr(presets, "resolve_config", full)
    code, err, _ = _main(monkeypatch, capsys, "run", "--data", "nowhere", "--dry-run")
    assert code == 1 and err == ("pgtrain: error: results/x: No space left on device (the last training state "
                                 "written is intact; --resume, or the same --run-dir, continues from it)\n")


def test_a_mistyped_setting_keeps_its_cause() -> None:
    from pgtrain.config import TrainingConfig, apply_setting

    with pytest.raises(PgtrainError, match=r"setting sched.minibatch_dict: .*at 4") as info:
        apply_setting(TrainingConfig(), "sched.minibatch_dict", {4: "x"})
    cause = info.value.__cause__
    assert type(cause).__name__ == "_Mismatch" and cause.__cause__ is not None  # the entry's own mismatch


def test_a_failed_worker_keeps_the_launchers_error_as_cause(monkeypatch) -> None:
    from torch.distributed.elastic.multiprocessing import errors as elastic_errors
    from torch.distributed.launcher import api

    from pgtrain import distributed

    class Failure:
        exitcode = 3

    class ChildFailed(Exception):
        def get_first_failure(self):
            return 1, Failure()

    def launcher(config, entrypoint):
        def run(*args):
            raise ChildFailed("worker 1 failed")
        return run

    monkeypatch.setattr(elastic_errors, "ChildFailedError", ChildFailed)
    monkeypatch.setattr(api, "elastic_launch", launcher)
    with pytest.raises(PgtrainError, match="process 1 of 2 exited with status 3") as info:
        distributed.launch(2, ["run"])
    assert isinstance(info.value.__cause__, ChildFailed)


def test_snapshots_are_synced_to_disk_before_they_are_renamed(tmp_path: Path, monkeypatch) -> None:
    from pgtrain.checkpoint import load_snapshot
    from tests.pgtrain.test_checkpoint import _save

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda *a, **k: (events.append("replace"), real_replace(*a, **k))[1])
    _save(tmp_path / "training-state-000001.pt")
    assert events == ["fsync", "replace"]
    assert os.listdir(tmp_path) == ["training-state-000001.pt"] and load_snapshot(tmp_path / os.listdir(tmp_path)[0])


def test_a_snapshot_that_cannot_be_started_is_one_line(tmp_path: Path, monkeypatch) -> None:
    """A read-only folder (also for root, who can write anywhere): the temporary name is refused."""
    from pgdata.common import atomic
    from tests.pgtrain.test_checkpoint import _save

    def refuse(path):
        raise PermissionError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(atomic, "reserve_temporary", refuse)
    with pytest.raises(PgtrainError, match=r"s.pt: cannot write the snapshot \(Read-only file system\); nothing "
                                           "was written under this name and earlier snapshots are intact"):
        _save(tmp_path / "s.pt")
    assert os.listdir(tmp_path) == []


def test_outputs_that_cannot_be_renamed_into_place_are_one_line(tmp_path: Path, monkeypatch) -> None:
    from pgdata.common import atomic
    from pgtrain.outputs import atomic_output
    from pgtrain.reporting import STATS_NAME, trim_stats

    def full(temporary, path):
        Path(temporary).unlink()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "publish", full)
    with pytest.raises(PgtrainError, match=r"out.png: cannot write \(No space left on device\)"):
        with atomic_output(tmp_path / "deeper" / "out.png") as temporary:
            temporary.write_bytes(b"grid")
    assert os.listdir(tmp_path / "deeper") == []
    stats = tmp_path / STATS_NAME
    stats.write_text('{"Progress/tick": 1}\n{"Progress/tick": 2}\n')
    with pytest.raises(PgtrainError, match=rf"{STATS_NAME}: cannot write \(No space left on device\)"):
        trim_stats(tmp_path, 1)
    assert stats.read_text() == '{"Progress/tick": 1}\n{"Progress/tick": 2}\n'


def test_a_video_that_cannot_be_renamed_into_place_is_one_line(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("av")
    from pgtrain import video

    def full(temporary, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(video, "publish", full)
    frames = [np.zeros((16, 16, 3), np.uint8)] * 2
    with pytest.raises(PgtrainError, match=r"v.mp4: cannot write \(No space left on device\)"):
        video.write_mp4(tmp_path / "v.mp4", iter(frames), fps=10)
    assert os.listdir(tmp_path) == []


def test_a_synthetic_dataset_of_no_level_resolution_is_one_line() -> None:
    """It was rounded down to the power of two below without a word (48 trained at 32)."""
    from pgtrain.data import open_training_data

    with pytest.raises(PgtrainError, match=r"^dataset.synthetic: resolution 48 is not a power of two >= 4$"):
        open_training_data(None, {"resolution": 48, "channels": 3})
    assert open_training_data(None, {"resolution": 32, "channels": 1}).resolutions == (4, 8, 16, 32)


def test_a_training_device_is_checked_in_one_line() -> None:
    from pgtrain import distributed

    with pytest.raises(PgtrainError, match=r"--device 'gpu0': not a torch device"):
        distributed.init("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(PgtrainError, match="--device cuda: CUDA is not available here"):
            distributed.init("cuda")
    assert distributed.init("cpu") == torch.device("cpu")


def test_a_grid_appears_only_when_complete(tmp_path: Path, monkeypatch) -> None:
    """reals.png and fakesNNNNNN.png were written in place: a full disk left a torn PNG under the final name,
    which training-video then fails to read."""
    from PIL import Image

    from pgtrain.grids import save_image_grid

    images = np.arange(4 * 3 * 4 * 4, dtype=np.uint8).reshape(4, 3, 4, 4)
    path = tmp_path / "fakes000000.png"
    save_image_grid(images, path, 2, 2)
    before = path.read_bytes()
    assert Image.open(path).size == (8, 8)

    def torn(self, target, *args, **kwargs):
        Path(target).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", torn)
    with pytest.raises(PgtrainError, match=r"fakes000000.png: cannot write \(No space left on device\)"):
        save_image_grid(images[::-1], path, 2, 2)
    assert path.read_bytes() == before and os.listdir(tmp_path) == [path.name]
