"""`pgtrain run --metrics`: each network snapshot is scored as it is written, into exactly the files `pgmetrics
evaluate RUN_DIR` writes; bad metric settings are refused before any training."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from pgtrain.errors import PgtrainError
from tests.pgtrain.test_loop import TINY
from tests.pgtrain.test_training_cli import _invoke

pytest.importorskip("pgmetrics.settings", reason="pgmetrics with its settings module is not installed")

# 32-image minibatches and 1-kimg ticks: a network snapshot at kimg 1, 2 and 3 (three rows, three files).
SCORED = [*TINY, "sched.minibatch_base=32", "sched.lod_training_kimg=0.5", "sched.lod_transition_kimg=0.5",
          "sched.tick_kimg_base=1", "train.total_kimg=3", "train.network_snapshot_ticks=1"]
SETTINGS = [arg for item in SCORED for arg in ("--set", item)]


def _run(data, run_dir, *extra):
    return _invoke(["run", "--data", str(data), "--run-dir", str(run_dir), "--device", "cpu", "--cpu-threads",
                    "1", *SETTINGS, *extra])


def _rows(record):
    content = json.loads(record.read_text())
    return {row["file"]: row["values"] for row in content["snapshots"]}


def _table(path):
    """The metric table without its Time_eval column (characters 10-21 of every row)."""
    lines = path.read_text().splitlines()
    assert len([line for line in lines if line.strip()]) == 2 + 1 + 3  # header, rule, Reals, one per snapshot
    return [line[:10] + line[22:] for line in lines]


@pytest.fixture(scope="module")
def scored_run(dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("scored") / "run"
    result = _run(dataset, run_dir, "--metrics", "swd", "--metrics-num", "16")
    assert result.exit_code == 0, result.output
    return run_dir


def test_every_snapshot_has_its_row_as_it_is_written(scored_run):
    snapshots = sorted(path.name for path in scored_run.glob("network-snapshot-*.pt"))
    assert snapshots == ["network-snapshot-000001.pt", "network-snapshot-000002.pt", "network-snapshot-000003.pt"]
    assert (scored_run / "metric-swd-16.txt").is_file() and (scored_run / "metric-swd-16.png").is_file()
    assert sorted(_rows(scored_run / "metric-swd-16.json")) == snapshots
    stats = [json.loads(line) for line in (scored_run / "stats.jsonl").read_text().splitlines()]
    scored = [record for record in stats if "Metrics/SWDx1e3_avg" in record]
    assert [record["Progress/tick"] for record in scored] == [1, 2, 3]
    assert scored[-1]["Metrics/SWDx1e3_avg"] == _rows(scored_run / "metric-swd-16.json")[snapshots[-1]][
        "SWDx1e3_avg"]
    assert "Metrics of network-snapshot-000003.pt: SWDx1e3_16 " in (scored_run / "log.txt").read_text()


def test_the_files_equal_what_pgmetrics_evaluate_writes(scored_run, tmp_path):
    from pgmetrics.evaluate import evaluate_run
    from pgmetrics.settings import make_settings

    copy = tmp_path / "copy"
    copy.mkdir()
    for path in scored_run.iterdir():
        if path.name.startswith(("network-", "config.json")):
            shutil.copy2(path, copy / path.name)
    evaluate_run(copy, make_settings("swd", num=16, quiet=True), echo=lambda line="": None)
    assert _rows(copy / "metric-swd-16.json") == _rows(scored_run / "metric-swd-16.json")
    assert _table(copy / "metric-swd-16.txt") == _table(scored_run / "metric-swd-16.txt")


def test_a_rerun_of_a_finished_scored_run_does_nothing(dataset, scored_run):
    before = (scored_run / "metric-swd-16.txt").read_bytes()
    result = _run(dataset, scored_run, "--metrics", "swd", "--metrics-num", "16")
    assert result.exit_code == 0 and result.output == f"{scored_run}: training already finished\n"
    assert (scored_run / "metric-swd-16.txt").read_bytes() == before


@pytest.mark.parametrize("extra, message", [
    (["--metrics", "swd,nope"], "unknown metric(s) nope"),
    (["--metrics", "fid", "--inception-weights", "{tmp}/missing.pth"], "missing.pth"),
    (["--metrics-num", "16"], "need --metrics"),
])
def test_bad_metric_settings_are_refused_before_training(dataset, tmp_path, extra, message):
    extra = [item.format(tmp=tmp_path) for item in extra]
    result = _run(dataset, tmp_path / "run", *extra)
    assert result.exit_code != 0 and isinstance(result.exception, PgtrainError)
    assert message in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "run").exists()


def test_without_pgmetrics_the_error_says_to_install_it(dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pgmetrics", None)
    result = _run(dataset, tmp_path / "run", "--metrics", "swd")
    assert result.exit_code != 0 and "pip install" in str(result.exception)
    assert "\n" not in str(result.exception) and not (tmp_path / "run").exists()


def _waiting_worker(rank: int, folder: str, results) -> None:
    """Rank 0 'evaluates' for longer than the training collectives' timeout; rank 1 waits for it, then both
    exchange a tensor on the training group (which would have failed had rank 1 given up)."""
    import datetime
    import time
    import traceback

    import torch

    try:
        import os

        os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
        torch.distributed.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                                             world_size=2, timeout=datetime.timedelta(seconds=2))
        from pgtrain.snapshot_metrics import SnapshotMetrics

        scorer = SnapshotMetrics(settings=None, log=lambda line="": None)
        scorer._evaluate = lambda run_dir, snapshot: time.sleep(5) or {"Metrics/x": 1.0}
        values = scorer.after_snapshot(Path(folder) if rank == 0 else None, "network-snapshot-000001.pt")
        total = torch.ones(1)
        torch.distributed.all_reduce(total)
        results.put((rank, (values, float(total))))
        torch.distributed.destroy_process_group()
    except BaseException:
        results.put((rank, traceback.format_exc()))


def test_other_ranks_wait_for_rank_0s_evaluation_beyond_the_collective_timeout(tmp_path):
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_waiting_worker, args=(rank, str(tmp_path), results)) for rank in (0, 1)]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=30)
    assert outcomes[0] == ({"Metrics/x": 1.0}, 2.0), outcomes[0]
    assert outcomes[1] == ({}, 2.0), outcomes[1]
