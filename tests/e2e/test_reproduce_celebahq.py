"""`make reproduce-celebahq` (tools/reproduce_celebahq.py): the four stages, their skips and resumes, the report.

The slow test runs the whole target through `make`, as a user would, on the CelebA-HQ fixture (19 images at
1024x1024) with tiny settings: narrow networks, 1 kimg at 4x4, SWD of 16 images. The fast tests check the plan
(commands, presets, skips) and the report on small stand-ins, without running the tools.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgmetrics.inception import WEIGHTS_FILENAMES
from tests.conftest import REPO_ROOT, load_module, require_fixture

reproduce = load_module(REPO_ROOT / "tools" / "reproduce_celebahq.py", "reproduce_celebahq")
report = load_module(REPO_ROOT / "tools" / "reproduce_report.py", "reproduce_report")

#: Tiny training on the fixture: narrow networks (fmap_base 1024 leaves 1 feature map at 1024x1024), minibatch 4,
#: 1 kimg at 4x4 in ticks of 0.128 kimg, every tick a snapshot and a full training state.
TINY_TRAINING = ("--cpu-threads 1 --set train.total_kimg=1 --set G.fmap_base=1024 --set G.fmap_max=16 "
                 "--set D.fmap_base=1024 --set D.fmap_max=16 --set G.latent_size=16 --set sched.minibatch_base=4 "
                 "--set 'sched.minibatch_dict={}' --set sched.tick_kimg_base=0.128 --set 'sched.tick_kimg_dict={}' "
                 "--set train.network_snapshot_ticks=1")
TINY_METRICS = "--metrics swd --num 16"


def _make(tmp_path: Path, *variables: str, dry_run_flag: bool = False, **popen) -> subprocess.Popen:
    """`make reproduce-celebahq` on the fixture (the venv taken as installed: -o keeps make from reinstalling)."""
    root = require_fixture("celebahq")
    expected = json.loads((root / "expected.json").read_text())
    pgdata_args = f"--subset --quiet --celeba_000001_md5 {expected['celeba_000001_libjpeg8d_md5']}"
    command = ["make", "-s", "-C", str(REPO_ROOT), "-o", ".venv/bin/pgdata", *(["-n"] if dry_run_flag else []),
               "reproduce-celebahq", f"CELEBA={root}", f"DELTAS={root / 'deltas'}", f"OUT={tmp_path / 'celebahq'}",
               "GPUS=0", f"PGDATA_ARGS={pgdata_args}", f"PGTRAIN_ARGS={TINY_TRAINING}",
               f"PGMETRICS_ARGS={TINY_METRICS}", *variables]
    env = {**os.environ, "PGMETRICS_CACHE": str(tmp_path / "cache")}
    env.pop("PGMETRICS_INCEPTION_WEIGHTS", None)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, **popen)


def _finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output
    return output


def _assert_same_networks(run_a: Path, run_b: Path) -> None:
    """network-final.pt of both runs: G, D and Gs tensor for tensor, bit for bit."""
    import torch

    a, b = (torch.load(run / "network-final.pt", map_location="cpu", weights_only=True) for run in (run_a, run_b))
    for network in ("G", "D", "Gs"):
        assert a[network].keys() == b[network].keys()
        for name, tensor in a[network].items():
            assert torch.equal(tensor, b[network][name]), f"{network}.{name} differs"


@pytest.mark.slow
def test_the_whole_target_runs_skips_when_done_and_resumes_after_a_kill(tmp_path):
    uninterrupted = tmp_path / "results-a"
    output = _finish(_make(tmp_path, f"RESULTS={uninterrupted}"))
    run_dir = uninterrupted / "pgan-celebahq-v2-1gpu-cpu"
    for stage in ("[1/4] dataset", "[2/4] training", "[3/4] metrics", "[4/4] report"):
        assert stage in output
    assert "Dataset preset: celebahq" in output and "mirror_augment=True" in output
    text = (run_dir / "report.md").read_text()
    assert "| 1. dataset (pgdata create_celebahq) | built" in text and "| 2. training (pgtrain run) | trained" in text
    assert "| SWDx1e3_avg |" in text and "metric-swd-16.txt" in text and "![final fakes grid](fakes000001.png)" in text
    assert "pgmetrics evaluate" in text

    again = _finish(_make(tmp_path, f"RESULTS={uninterrupted}"))
    assert "[1/4] dataset (0s): skipped" in again and "[2/4] training (0s): skipped" in again
    assert "[3/4] metrics (0s): swd skipped: every snapshot is in its metric file" in again and "[4/4] report (0s): skipped" in again
    assert "Nothing to do" in again

    shown = _finish(_make(tmp_path, f"RESULTS={tmp_path / 'results-dry'}", "DRY_RUN=1"))
    assert "Dataset preset: celebahq (detected from manifest" in shown
    assert not (tmp_path / "results-dry").exists()

    interrupted = tmp_path / "results-b"
    killed_run = interrupted / "pgan-celebahq-v2-1gpu-cpu"
    process = _make(tmp_path, f"RESULTS={interrupted}", start_new_session=True)
    deadline = time.time() + 600
    while "tick 3 " not in (killed_run / "log.txt").read_text() if (killed_run / "log.txt").is_file() else True:
        assert process.poll() is None and time.time() < deadline, "training ended before it could be killed"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    assert not (killed_run / "_training-done.txt").exists()
    resumed = _finish(_make(tmp_path, f"RESULTS={interrupted}"))
    assert "[2/4] training (" in resumed and "resuming the unfinished run in place" in resumed
    _assert_same_networks(run_dir, killed_run)
    assert (killed_run / "report.md").is_file()


def test_make_n_shows_the_commands_of_every_stage_and_runs_none(tmp_path):
    output = _finish(_make(tmp_path, f"RESULTS={tmp_path / 'results'}", dry_run_flag=True))
    assert "create_celebahq" in output and "--subset" in output
    assert "pgtrain run --preset v2-1gpu --data" in output and "--run-dir" in output and "--device cpu" in output
    assert "sched.minibatch_dict={}" in output  # the *_ARGS arrive as typed, braces and quotes included
    assert "pgmetrics evaluate" in output and "--metrics swd --num 16" in output
    assert "[4/4] report" in output
    assert not (tmp_path / "results").exists() and not (tmp_path / "celebahq").exists()


def _plan(tmp_path: Path, *args: str):
    argv = ["--celeba", str(tmp_path / "celeba"), "--deltas", str(tmp_path / "deltas"),
            "--out", str(tmp_path / "celebahq"), "--results", str(tmp_path / "results"), *args]
    return reproduce.make_plan(reproduce.parse_args(argv))


@pytest.mark.parametrize(("gpus", "preset"), [(0, "v2-1gpu"), (1, "v2-1gpu"), (2, "v2-2gpus"), (4, "v2-4gpus"),
                                               (8, "v2-8gpus")])
def test_the_gpu_count_picks_the_official_preset_and_a_fixed_run_directory(tmp_path, gpus, preset):
    plan = _plan(tmp_path, "--gpus", str(gpus))
    command = reproduce.training_command(plan)
    assert command[command.index("--preset") + 1] == preset
    assert ("--device" in command) == (gpus == 0)
    assert plan.run_dir == tmp_path / "results" / (f"pgan-celebahq-{preset}" + ("-cpu" if gpus == 0 else ""))


def test_another_gpu_count_is_one_line_and_nothing_is_written(tmp_path):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "reproduce_celebahq.py"), "--celeba", "c",
                             "--deltas", "d", "--results", str(tmp_path / "results"), "--gpus", "3"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "reproduce-celebahq: error: --gpus 3: the official presets are for 1, 2, 4 or 8 GPUs (0: the CPU); pass "
        "GPUS=1, 2, 4 or 8"]
    assert not (tmp_path / "results").exists()


def test_a_partial_build_is_resumed_and_a_fresh_one_is_not(tmp_path):
    plan = _plan(tmp_path, "--gpus", "0", "--pgdata-args=--subset")
    assert reproduce.dataset_commands(plan)[0][-1] == "--subset" and "--resume" not in reproduce.dataset_commands(plan)[0]
    (tmp_path / "celebahq.partial").mkdir()
    assert reproduce.dataset_commands(plan)[0][-2:] == ["--resume", "--subset"]


def _fake_run(run_dir: Path, kimgs: list[int], scored: list[int], metric: str = "swd", label: str = "16k") -> None:
    run_dir.mkdir(parents=True)
    for kimg in kimgs:
        (run_dir / f"network-snapshot-{kimg:06d}.pt").write_bytes(b"")
    lines = ["Snapshot  Time_eval   SWDx1e3_avg  ", "---       ---         ---          ",
             "Reals     1m 05s      0.0000       "] + [f"{k:<10d}{'2m 01s':<12s}{10.0 - k:<13.4f}" for k in scored]
    (run_dir / f"metric-{metric}-{label}.txt").write_text("\n".join(lines) + "\n")
    (run_dir / f"metric-{metric}-{label}.png").write_bytes(b"")


def test_a_metric_is_skipped_only_when_its_file_lists_every_snapshot_scored_with_the_same_options(tmp_path):
    plan = _plan(tmp_path, "--gpus", "0")
    _fake_run(plan.run_dir, [0, 5, 9], [9, 5])
    swd = reproduce.metric_steps(plan, set())[0]
    assert swd.skip == "" and swd.command[-6:] == ["--metrics", "swd", "--num", "16384", "--real-passes", "2"]
    done = {swd.settings}
    assert reproduce.metric_steps(plan, done)[0].skip == ""  # snapshot 0 has no row
    (plan.run_dir / "metric-swd-16k.txt").write_text((plan.run_dir / "metric-swd-16k.txt").read_text()
                                                     + f"{0:<10d}{'3s':<12s}{1.0:<13.4f}\n")
    assert reproduce.metric_steps(plan, set())[0].skip == ""  # every row, but not known to be these options
    assert reproduce.metric_steps(plan, done)[0].skip.startswith("every snapshot is in its metric file")
    other_seed = _plan(tmp_path, "--gpus", "0", "--pgmetrics-args=--seed 3")
    assert reproduce.metric_steps(other_seed, done)[0].skip == ""
    (plan.run_dir / "network-snapshot-000012.pt").write_bytes(b"")
    assert reproduce.metric_steps(plan, done)[0].skip == ""


def test_the_official_metric_settings_and_the_users_args_come_last(tmp_path):
    plan = _plan(tmp_path, "--gpus", "0", "--pgmetrics-args=--seed 3")
    steps = {step.label: step for step in reproduce.metric_steps(plan, set())}
    assert set(steps) == {"swd 16k", "fid 50k", "msssim 20k"}
    assert steps["msssim 20k"].command[-6:] == ["--metrics", "msssim", "--num", "20000", "--seed", "3"]
    assert steps["fid 50k"].command[-4:] == ["--num", "50000", "--seed", "3"]


def test_fid_is_skipped_with_a_note_without_weights_and_run_when_asked_or_found(tmp_path, monkeypatch):
    monkeypatch.delenv("PGMETRICS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("PGMETRICS_CACHE", str(tmp_path / "cache"))
    fid = {step.label: step for step in reproduce.metric_steps(_plan(tmp_path, "--gpus", "0"), set())}["fid 50k"]
    assert fid.skip.startswith("no TF-Inception weights found")
    asked = _plan(tmp_path, "--gpus", "0", "--pgmetrics-args=--metrics fid --num 16")
    assert [step.skip for step in reproduce.metric_steps(asked, set())] == [""]
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / WEIGHTS_FILENAMES[0]).write_bytes(b"")
    fid = {step.label: step for step in reproduce.metric_steps(_plan(tmp_path, "--gpus", "0"), set())}["fid 50k"]
    assert fid.skip == ""


def test_the_report_links_the_final_grid_and_puts_the_published_numbers_beside_ours(tmp_path):
    run_dir = tmp_path / "run"
    _fake_run(run_dir, [0, 5, 9], [9, 5, 0])
    for name in ("fakes000000.png", "fakes000009.png", "fakes000005.png"):
        (run_dir / name).write_bytes(b"")
    record = {"stages": {"dataset": {"status": "built", "seconds": 65, "commands": ["pgdata create_celebahq a b c"],
                                     "skipped_last": True, "skip_reason": "verified"},
                         "training": {"status": "trained", "seconds": 7200, "commands": ["pgtrain run x"]}}}
    path = report.write_report(run_dir / "report.md", record)
    text = path.read_text()
    assert "![final fakes grid](fakes000009.png)" in text
    assert "| 1. dataset (pgdata create_celebahq) | built | 1m 05s | skipped: verified |" in text
    assert "| 2. training (pgtrain run) | trained | 2h 00m 00s | ran |" in text
    assert "pgdata create_celebahq a b c\npgtrain run x" in text
    assert "| SWDx1e3_avg | 1.0000 (metric-swd-16k.txt) | 1.0000 |" in text  # final kimg 9: 10 - 9; best the same
    assert "Karras et al. 2018 (PGGAN), Table 1 row (h)" in text and "| FID | not scored |" in text
    assert "![metric-swd-16k](metric-swd-16k.png)" in text
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []  # no temporary left behind


def test_metric_tables_are_cut_at_the_header_offsets_not_at_blanks():
    text = ("Snapshot  Time_eval   FID          \n---       ---         ---          \n"
            "Reals     1m 05s      0.0001       \n12        1h 02m 03s  7.7900       \n")
    assert report.parse_metric_table(text) == (["FID"], {12: {"FID": 7.79}})


def test_a_verified_dataset_is_verified_again_once_any_of_its_files_changes(tmp_path):
    plan = _plan(tmp_path, "--gpus", "0", "--dry-run")
    (plan.out / "r02").mkdir(parents=True)
    (plan.out / "manifest.json").write_text("{}")
    (plan.out / "r02" / "000000.tar").write_bytes(b"shard")
    record = reproduce.Record(plan.record_path, dry_run=True)
    record.content["dataset_verified"] = reproduce.dataset_fingerprint(plan.out)
    lines: list[str] = []
    reproduce.stage_dataset(plan, record, reproduce.Console(lines.append))
    assert len(lines) == 1 and "skipped" in lines[0] and "verify" not in lines[0]
    (plan.out / "r02" / "000000.tar").write_bytes(b"shard!")
    lines.clear()
    reproduce.stage_dataset(plan, record, reproduce.Console(lines.append))
    assert "pgdata verify" in lines[0] and not any("skipped:" in line for line in lines)


def test_a_malformed_stage_record_is_dropped_not_trusted(tmp_path):
    path = tmp_path / "run.reproduce.json"
    path.write_text(json.dumps({"stages": {"dataset": "built", "training": {"status": "trained"}},
                                "metrics_done": "--metrics swd"}))
    content = reproduce.Record(path, dry_run=True).content
    assert content["stages"] == {"training": {"status": "trained"}} and content["metrics_done"] == []
    path.write_text("[1, 2")
    assert reproduce.Record(path, dry_run=True).content == {"stages": {}, "metrics_done": []}
