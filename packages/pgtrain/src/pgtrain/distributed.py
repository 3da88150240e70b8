"""Rank, world size and rank-0 printing from torchrun's environment; one process when not launched by it.

No global state beyond what torchrun sets: multi-node needs nothing special (as EDM's torch_utils.distributed).
"""

from __future__ import annotations

import os

import torch


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def print0(*args, **kwargs) -> None:
    """print() on rank 0 only."""
    if is_main():
        print(*args, **kwargs)


def init(device: str | None = None) -> torch.device:
    """The device this process trains on; joins the process group when torchrun started several processes."""
    if device is None:
        device = f"cuda:{local_rank()}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size() > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend, init_method="env://")
    return device


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over ranks (a collective); the tensor itself on one process."""
    if world_size() <= 1:
        return values
    backend = torch.distributed.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    total = values.to(device).clone()
    torch.distributed.all_reduce(total)
    return total


def gather_objects(value):
    """Every rank's `value`, in rank order (a collective: every rank must call it); [value] on one process."""
    if world_size() <= 1:
        return [value]
    gathered = [None] * world_size()
    torch.distributed.all_gather_object(gathered, value)
    return gathered


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on any (a collective): ranks must agree to stop together."""
    if world_size() <= 1:
        return flag
    backend = torch.distributed.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    value = torch.tensor([1 if flag else 0], device=device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())
