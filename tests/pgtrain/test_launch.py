"""`pgtrain run --gpus N` starts its own processes (gloo on the CPU here) and stops them all when one fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgdata.exporter import export_dataset
from tests.pgtrain.test_loop import TINY
from tests.pgtrain.test_training_cli import TinySource


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return export_dataset(TinySource(), tmp_path_factory.mktemp("data") / "tiny", command="test", arguments={},
                          quiet=True)


def _command(dataset: Path, results: Path, *settings: str) -> list[str]:
    args = [sys.executable, "-m", "pgtrain", "run", "--gpus", "2", "--device", "cpu", "--cpu-threads", "1",
            "--data", str(dataset), "--results", str(results), "--set", "num_gpus=2"]
    for item in (*TINY, *settings):
        args += ["--set", item]
    return args


def _environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}


def test_two_processes_are_started_and_train_one_run(dataset, tmp_path):
    done = subprocess.run(_command(dataset, tmp_path / "results"), capture_output=True, text=True, timeout=300,
                          env=_environment())
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "results").iterdir()
    log = (run_dir / "log.txt").read_text()
    assert "world size 2" in log and (run_dir / "network-final.pt").is_file()
    assert done.stdout.count("Configuration (") == 1  # printed by rank 0 only


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes through /proc")
def test_a_rank_that_dies_stops_the_whole_job_with_a_clear_error(dataset, tmp_path):
    results = tmp_path / "results"
    process = subprocess.Popen(_command(dataset, results, "train.total_kimg=1000"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_environment())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until both ranks train (the first tick is logged)
            logs = list(results.glob("*/log.txt"))
            if logs and "tick 1 " in logs[0].read_text():
                break
            time.sleep(0.2)
        else:
            pytest.fail("the run did not reach its first tick")
        workers = _children(process.pid)
        assert len(workers) == 2, workers
        os.kill(workers[1], signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)  # bounded: the launcher stops the other rank
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert "was killed by signal 9; the others were stopped" in stderr, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-3000:]
