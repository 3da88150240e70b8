"""Gradients averaged over ranks during the backward pass (pgtrain.gradient_sync), on two gloo processes."""

from __future__ import annotations

import traceback

import torch
import torch.multiprocessing as mp

from pgtrain.gradient_sync import GradientAverager, plan_buckets


def test_buckets_are_consecutive_and_bounded():
    parameters = [torch.nn.Parameter(torch.zeros(n)) for n in (10, 10, 30, 5, 5)]  # 40, 40, 120, 20, 20 bytes
    buckets = plan_buckets(parameters, bucket_bytes=80)
    assert [[p.numel() for p in bucket] for bucket in buckets] == [[10, 10], [30], [5, 5]]
    assert [p for bucket in buckets for p in bucket] == parameters


def _worker(rank: int, folder: str, results) -> None:
    try:
        torch.distributed.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                                             world_size=2)
        torch.manual_seed(0)
        network = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8),
                                      torch.nn.Tanh(), torch.nn.Linear(8, 1))
        idle = torch.nn.Linear(3, 3)  # never used: gets no gradient, like the layers above the current level
        averager = GradientAverager([*network.parameters(), *idle.parameters()], world_size=2, bucket_bytes=64)
        outcome = {}
        for step in range(2):  # the first pass plans (reduced after the fact), the second overlaps
            inputs = torch.randn(5, 4, generator=torch.Generator().manual_seed(10 * step + rank))
            network.zero_grad(set_to_none=True)
            averager.arm("structure")
            x = inputs.requires_grad_(True)
            (grad,) = torch.autograd.grad(network(x).sum(), x, create_graph=True)  # a penalty's double backward
            (network(inputs).square().mean() + grad.square().sum()).backward()
            launched_during_backward = len(averager._pass.in_flight)
            averager.finish()
            outcome[step] = {"grads": [p.grad.clone() for p in network.parameters()],
                             "launched_during_backward": launched_during_backward,
                             "idle": [p.grad for p in idle.parameters()]}
        torch.save(outcome, f"{folder}/rank{rank}.pt")
        results.put((rank, "ok"))
        torch.distributed.destroy_process_group()
    except BaseException:
        results.put((rank, traceback.format_exc()))


def _local_gradients(step: int, rank: int) -> list[torch.Tensor]:
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8),
                                  torch.nn.Tanh(), torch.nn.Linear(8, 1))
    inputs = torch.randn(5, 4, generator=torch.Generator().manual_seed(10 * step + rank))
    x = inputs.requires_grad_(True)
    (grad,) = torch.autograd.grad(network(x).sum(), x, create_graph=True)
    (network(inputs).square().mean() + grad.square().sum()).backward()
    return [p.grad.clone() for p in network.parameters()]


def test_two_ranks_get_the_mean_gradient_and_later_passes_reduce_during_backward(tmp_path):
    context = mp.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_worker, args=(rank, str(tmp_path), results)) for rank in range(2)]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=30)
    assert outcomes == {0: "ok", 1: "ok"}, outcomes
    reports = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in range(2)]
    for step in range(2):
        expected = [(a + b) / 2 for a, b in zip(_local_gradients(step, 0), _local_gradients(step, 1), strict=True)]
        for report in reports:
            for got, want in zip(report[step]["grads"], expected, strict=True):
                torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
            assert report[step]["idle"] == [None, None]
    assert reports[0][0]["launched_during_backward"] == 0  # planning pass: everything after the backward
    assert reports[0][1]["launched_during_backward"] >= 2  # then every bucket starts while backward runs
