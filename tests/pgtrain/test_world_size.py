"""Several processes (gloo, CPU): the preset's GPU count against the world size, a 2-process run against one
process computing the same two shares, and resume of a 2-process run."""

from __future__ import annotations

import os
import traceback

import pytest
import torch
import torch.multiprocessing as mp

from pgtrain.errors import PgtrainError
from pgtrain.loop import Trainer, check_world_size
from pgtrain.presets import resolve_config
from pgtrain.run_dir import locate_resume
from tests.pgtrain.test_loop import tiny_trainer


def test_a_preset_for_another_gpu_count_is_refused_at_start_naming_both():
    config = resolve_config(["v2-4gpus"])
    with pytest.raises(PgtrainError, match=r"num_gpus=4 but 2 process") as info:
        check_world_size(config, 10, 2)
    assert "allow_gpu_count_mismatch" in str(info.value) and "\n" not in str(info.value)
    check_world_size(resolve_config(["v2-8gpus"]), 10, 8)


def test_an_explicit_mismatch_is_accepted_only_when_every_resolution_splits():
    # v2-1gpu on 8 processes: 4 images at 512x512 cannot split over 8 (the official rounding is for 1 GPU)
    config = resolve_config(["v2-1gpu"], ["allow_gpu_count_mismatch=true"])
    with pytest.raises(PgtrainError, match=r"512x512 \(4\) does not split evenly into 8 share"):
        check_world_size(config, 10, 8)
    check_world_size(resolve_config(["v2-4gpus"], ["allow_gpu_count_mismatch=true"]), 10, 2)


def test_the_trainer_checks_the_world_size_before_training(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(PgtrainError, match="num_gpus=1 but 2 process"):
        tiny_trainer()


def test_resuming_with_another_world_size_is_refused(tmp_path, monkeypatch):
    first = tiny_trainer(tmp_path)
    assert first.run(stop_at_nimg=32) is False
    snapshot = locate_resume(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(PgtrainError, match=r"written by a run of 1 process\(es\), and this run has 2"):
        tiny_trainer(overrides=["allow_gpu_count_mismatch=true"], resume_from=snapshot)


TWO_GPUS = ["num_gpus=2", "train.verify_ranks=true"]  # the tiny run's 4-image minibatches: 2 per rank


def test_diverged_ranks_are_caught():
    from pgtrain.loop import check_ranks_agree

    check_ranks_agree([[1.5, 2.0, 3.0], [1.5, 2.0, 3.0]])
    with pytest.raises(PgtrainError, match="rank 1's networks differ from rank 0's"):
        check_ranks_agree([[1.5, 2.0, 3.0], [1.5, 2.0, 3.0000001]])


def _parameters(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {f"{name}.{key}": value.clone() for name in ("G", "D", "Gs")
            for key, value in getattr(trainer, name).state_dict().items()}


def _two_process_worker(rank: int, world_size: int, folder: str, stop_at_nimg: int, results) -> None:
    """One rank: an uninterrupted run, and a run stopped then resumed from its snapshot; writes its report file
    and puts "ok" or its traceback in `results` (tensors do not cross a queue once the process has exited)."""
    try:
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
        torch.set_num_threads(1)
        torch.distributed.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                                             world_size=world_size)
        from pathlib import Path

        def run_dir(name: str):
            path = Path(folder) / name
            if rank == 0:
                path.mkdir(exist_ok=True)
                return path
            return None

        straight = tiny_trainer(run_dir("straight"), overrides=TWO_GPUS)
        straight.run()
        interrupted = tiny_trainer(run_dir("interrupted"), overrides=TWO_GPUS)
        interrupted.run(stop_at_nimg=stop_at_nimg)
        stopped_state = interrupted.generator.get_state()
        torch.distributed.barrier()
        snapshot = locate_resume(Path(folder) / "interrupted")
        resumed = tiny_trainer(run_dir("resumed"), overrides=TWO_GPUS, resume_from=snapshot)
        restored_state = resumed.generator.get_state()
        resumed.run()
        torch.save({
            "restored_equals_stopped": torch.equal(restored_state, stopped_state),
            "stopped_state": stopped_state,
            "straight": _parameters(straight),
            "resumed": _parameters(resumed),
            "cur_nimg": (straight.state.cur_nimg, resumed.state.cur_nimg),
        }, Path(folder) / f"report{rank}.pt")
        results.put((rank, "ok"))
        torch.distributed.destroy_process_group()
    except BaseException:  # report instead of hanging the parent
        results.put((rank, traceback.format_exc()))


def test_a_two_process_run_equals_one_process_with_two_shares_and_resumes_exactly(tmp_path):
    context = mp.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_two_process_worker, args=(rank, 2, str(tmp_path), 48, results))
                 for rank in range(2)]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=300) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    for rank, outcome in outcomes.items():
        assert outcome == "ok", f"rank {rank} failed:\n{outcome}"
    reports = {rank: torch.load(tmp_path / f"report{rank}.pt", weights_only=True) for rank in (0, 1)}
    # the ranks share one random state (draws are global, each rank keeps its share); each got it back
    assert torch.equal(reports[0]["stopped_state"], reports[1]["stopped_state"])
    assert reports[0]["restored_equals_stopped"] and reports[1]["restored_equals_stopped"]
    for rank in (0, 1):
        straight, resumed = reports[rank]["straight"], reports[rank]["resumed"]
        assert reports[rank]["cur_nimg"][0] == reports[rank]["cur_nimg"][1] == 112
        for name, value in straight.items():
            assert torch.equal(value, resumed[name]), f"rank {rank}: {name} differs after the resume"
    for name, value in reports[0]["resumed"].items():  # every rank holds the same networks
        assert torch.equal(value, reports[1]["resumed"][name]), name
    # one process computing the two per-rank shares in turn (same minibatch-stddev groups) trains the same
    # networks, across two lod changes and their optimizer resets
    single = tiny_trainer(overrides=[*TWO_GPUS, "train.accumulation_steps=2"])
    single.run()
    for name, value in _parameters(single).items():
        torch.testing.assert_close(value, reports[0]["straight"][name], rtol=1e-6, atol=1e-7, msg=name)

