"""`pgtrain presets`, `pgtrain run` (dry run, a tiny real run, resume) and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from pgdata.errors import PgdataError
from pgdata.exporter import export_dataset
from pgdata.sources.base import Source, SourceInfo
from pgtrain.cli import app
from pgtrain.errors import PgtrainError
from pgtrain.presets import PRESETS
from tests.pgtrain.test_loop import TINY

runner = CliRunner()


class TinySource(Source):
    def __init__(self, n=12, resolution=16):
        self.info = SourceInfo(name="tiny", channels=3, resolution=resolution, num_images=n)
        self.images = np.random.default_rng(0).integers(0, 256, (n, 3, resolution, resolution), dtype=np.uint8)

    def iter_chunks(self, start=0):
        yield self.images[start:]


def _invoke(args):
    threads = torch.get_num_threads()
    try:
        return runner.invoke(app, args)
    finally:
        torch.set_num_threads(threads)


def test_presets_lists_every_preset_with_one_line():
    result = _invoke(["presets"])
    assert result.exit_code == 0, result.output
    for name in PRESETS:
        assert sum(line.split()[0] == name for line in result.output.splitlines() if line.startswith("  ")) == 1


def test_presets_show_prints_every_setting():
    result = _invoke(["presets", "show", "v2-8gpus"])
    assert result.exit_code == 0
    assert "sched.minibatch_base = 32" in result.output and "num_gpus = 8" in result.output
    assert "sched.G_lrate_dict = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}" in result.output


def test_dry_run_prints_the_resolved_config_and_writes_nothing(dataset, tmp_path):
    result = _invoke(["run", "--preset", "v2-4gpus+fp16", "--data", str(dataset), "--set", "train.total_kimg=5",
                      "--results", str(tmp_path / "results"), "--dry-run"])
    assert result.exit_code == 0, result.output
    config = json.loads(result.output[result.output.index("{"):result.output.rindex("}") + 1])
    assert config["train"]["total_kimg"] == 5 and config["precision"] == "fp16" and config["num_gpus"] == 4
    assert "pgan-tiny-v2-4gpus-fp16" in result.output
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("args, message", [
    (["run", "--preset", "v9-1gpu", "--dry-run"], "no preset named 'v9-1gpu'"),
    (["run", "--data", "{tmp}", "--dry-run"], "not a dataset"),
    (["run", "--data", "{tmp}/missing", "--dry-run"], "no such file or directory"),
    (["run", "--data", "{data}", "--set", "sched.nope=1", "--dry-run"], "unknown setting"),
    (["run", "--resume", "{data}"], "not a run directory with snapshots"),
    (["run", "--resume", "{data}/manifest.json"], "not a pgtrain snapshot"),
    (["presets", "show", "nope"], "no preset named 'nope'"),
])
def test_bad_input_is_a_user_error(args, message, dataset, tmp_path):
    args = [a.format(tmp=tmp_path, data=dataset) for a in args]
    result = _invoke(args)
    assert result.exit_code != 0
    assert message in str(result.exception)
    assert isinstance(result.exception, (PgtrainError, PgdataError))


def test_console_error_is_one_line_with_exit_status_1(tmp_path):
    process = subprocess.run([sys.executable, "-c", "from pgtrain.cli import main; main()", "run", "--data",
                              str(tmp_path), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert process.returncode == 1
    assert process.stderr.count("\n") == 1 and process.stderr.startswith("pgtrain: error: ")
    assert "not a dataset" in process.stderr


def test_a_network_too_narrow_for_the_resolution_is_one_line(dataset, tmp_path):
    """fmap_base=4 at 16x16 rounds the last stage's width down to 0 (the official nf()): refused by name, not a
    ZeroDivisionError from inside torch."""
    settings = [arg for item in [*TINY, "G.fmap_base=4", "D.fmap_base=4"] for arg in ("--set", item)]
    result = _invoke(["run", "--data", str(dataset), "--results", str(tmp_path / "results"), "--device", "cpu",
                      "--cpu-threads", "1", *settings])
    assert result.exit_code != 0
    assert isinstance(result.exception, PgtrainError)
    message = str(result.exception)
    assert message.startswith("bad network setting: fmap_base=4") and "\n" not in message
    assert "0 feature maps at stage 3 of a 16x16 network" in message


def test_run_then_resume_through_the_cli(dataset, tmp_path):
    results = tmp_path / "results"
    settings = [arg for item in TINY + ["train.total_kimg=0.032"] for arg in ("--set", item)]
    first = _invoke(["run", "--data", str(dataset), "--results", str(results), "--device", "cpu",
                     "--cpu-threads", "1", *settings])
    assert first.exit_code == 0, first.output
    run_dir = results / "000-pgan-tiny-v2-1gpu-fp32"
    assert (run_dir / "_training-done.txt").is_file() and (run_dir / "config.json").is_file()
    assert json.loads((run_dir / "config.json").read_text())["train"]["total_kimg"] == 0.032
    second = _invoke(["run", "--resume", str(run_dir), "--results", str(results), "--cpu-threads", "1",
                      "--set", "train.total_kimg=0.064"])
    assert second.exit_code == 0, second.output
    resumed = results / "001-pgan-tiny-v2-1gpu-fp32"
    assert "Resuming from" in (resumed / "log.txt").read_text()
    ticks = [json.loads(line) for line in (resumed / "stats.jsonl").read_text().splitlines()]
    assert ticks[0]["Progress/kimg"] == 0.048 and ticks[0]["Progress/tick"] == 3  # continues, not from 0
    final = torch.load(resumed / "training-state-000000.pt", weights_only=True)
    assert final["training_state"]["state"]["cur_nimg"] == 64


# Dataset presets through the CLI. CelebA-HQ needs large inputs, so this dataset is written by pgdata's exporter
# with the command name `pgdata create_celebahq` records (a tiny stand-in source, the real manifest code).

class TinyCelebAHQ(TinySource):
    def __init__(self):
        super().__init__()
        self.info = SourceInfo(name="celebahq", channels=3, resolution=16, num_images=12)


@pytest.fixture(scope="module")
def celebahq(tmp_path_factory):
    return export_dataset(TinyCelebAHQ(), tmp_path_factory.mktemp("data") / "celebahq", command="create_celebahq",
                          arguments={}, quiet=True)


def _printed_config(output: str) -> dict:
    return json.loads(output[output.index("{"):output.rindex("}") + 1])


def test_presets_lists_and_shows_the_dataset_presets():
    listing = _invoke(["presets"]).output
    names = {line.split()[0] for line in listing.splitlines() if line.startswith("  ")}
    assert {"celebahq", "celeba", "cifar10", "cifar100", "svhn", "mnist", "mnistrgb", "lsun-bedroom",
            "lsun-tvmonitor"} <= names
    shown = _invoke(["presets", "show", "lsun-churchoutdoor"])
    assert shown.exit_code == 0 and "train.mirror_augment = True" in shown.output
    assert "lsun-churchoutdoor-100k" in shown.output


def test_dry_run_detects_celebahq_and_turns_mirroring_on(celebahq, tmp_path):
    result = _invoke(["run", "--preset", "v2-4gpus", "--data", str(celebahq), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert ("Dataset preset: celebahq (detected from manifest: pgdata create_celebahq) -> "
            "train.mirror_augment=True") in result.output
    config = _printed_config(result.output)
    assert config["train"]["mirror_augment"] is True and config["presets"] == ["v2-4gpus", "fp32", "celebahq"]
    assert "NNN-pgan-celebahq-v2-4gpus-fp32/" in result.output


def test_dry_run_explicit_mirror_false_wins_over_detection(celebahq):
    result = _invoke(["run", "--data", str(celebahq), "--set", "train.mirror_augment=false", "--dry-run"])
    assert result.exit_code == 0, result.output
    config = _printed_config(result.output)
    assert config["train"]["mirror_augment"] is False and "celebahq" not in config["presets"]
    assert "not applied: train.mirror_augment set by --set" in result.output


def test_run_records_the_detected_preset_and_resume_does_not_detect_again(celebahq, tmp_path):
    results = tmp_path / "results"
    tiny = [item for item in TINY if not item.startswith("train.mirror_augment")] + ["train.total_kimg=0.032"]
    settings = [arg for item in tiny for arg in ("--set", item)]
    first = _invoke(["run", "--data", str(celebahq), "--results", str(results), "--device", "cpu",
                     "--cpu-threads", "1", *settings])
    assert first.exit_code == 0, first.output
    run_dir = results / "000-pgan-celebahq-v2-1gpu-fp32"
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["presets"] == ["v2-1gpu", "fp32", "celebahq"] and saved["train"]["mirror_augment"] is True
    assert "Dataset preset: celebahq (detected from manifest" in (run_dir / "log.txt").read_text()

    unmirrored = _invoke(["run", "--data", str(celebahq), "--results", str(results), "--device", "cpu",
                          "--cpu-threads", "1", *settings, "--set", "train.mirror_augment=false"])
    assert unmirrored.exit_code == 0, unmirrored.output
    resumed = _invoke(["run", "--resume", str(results / "001-pgan-celebahq-v2-1gpu-fp32"), "--results",
                       str(results), "--cpu-threads", "1", "--set", "train.total_kimg=0.048"])
    assert resumed.exit_code == 0, resumed.output
    assert "Dataset preset: none (from the snapshot's configuration, not detected again)" in resumed.output
    again = json.loads((results / "002-pgan-celebahq-v2-1gpu-fp32" / "config.json").read_text())
    assert again["train"]["mirror_augment"] is False and "celebahq" not in again["presets"]


def test_a_full_disk_or_a_read_only_results_folder_is_one_line(dataset, tmp_path, monkeypatch, capsys):
    import errno as errno_codes

    from pgtrain import run_dir as run_dir_module
    from pgtrain.cli import main

    def refuse(results, description):
        raise PermissionError(errno_codes.EACCES, "Permission denied", str(results))

    monkeypatch.setattr(run_dir_module, "create_run_dir", refuse)
    monkeypatch.setattr(sys, "argv", ["pgtrain", "run", "--data", str(dataset), "--results",
                                      str(tmp_path / "results"), "--device", "cpu", *sum((["--set", s] for s in TINY), [])])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"pgtrain: error: {tmp_path / 'results'}: Permission denied")


def test_a_run_puts_the_previous_signal_handlers_back(dataset, tmp_path):
    """The run's SIGINT/SIGTERM handlers live as long as the run: left installed, a process forked later (a pgdata
    worker pool) inherits them and ignores the pool's SIGTERM."""
    import signal

    def mine(signum, frame):  # noqa: ARG001
        return None

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        settings = [arg for item in TINY + ["train.total_kimg=0.016"] for arg in ("--set", item)]
        result = _invoke(["run", "--data", str(dataset), "--results", str(tmp_path / "results"), "--device", "cpu",
                          "--cpu-threads", "1", *settings])
        assert result.exit_code == 0, result.output
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)
