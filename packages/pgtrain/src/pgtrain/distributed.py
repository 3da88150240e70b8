"""Rank, world size and rank-0 printing from the launcher's environment; one process when not launched by one.

torchrun (and `pgtrain run --gpus N`, which starts torch's elastic launcher itself) sets RANK, WORLD_SIZE and
LOCAL_RANK; SLURM's `srun` sets SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID, used when torchrun's are absent
(MASTER_ADDR and MASTER_PORT then come from the job script). No global state beyond that environment, so
multi-node needs nothing special (as EDM's torch_utils.distributed).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
from collections.abc import Iterator

import torch

from pgdata.common.device import select_device
from pgtrain.errors import PgtrainError

DEFAULT_TIMEOUT_S = 600  # a collective waiting longer than this means a rank is gone: the job stops


def _environment(name: str, slurm_name: str, default: str) -> int:
    value = os.environ.get(name)
    if value is None and "SLURM_NTASKS" in os.environ:
        value = os.environ.get(slurm_name)
    return int(value if value is not None else default)


def rank() -> int:
    return _environment("RANK", "SLURM_PROCID", "0")


def world_size() -> int:
    return _environment("WORLD_SIZE", "SLURM_NTASKS", "1")


def local_rank() -> int:
    return _environment("LOCAL_RANK", "SLURM_LOCALID", "0")


def launched() -> bool:
    """True inside a process that a launcher started (torchrun, our own launch, srun)."""
    return "RANK" in os.environ or "SLURM_NTASKS" in os.environ


def is_main() -> bool:
    return rank() == 0


def print0(*args, **kwargs) -> None:
    """print() on rank 0 only."""
    if is_main():
        print(*args, **kwargs)


def init(device: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> torch.device:
    """The device this process trains on (`device` as given, checked; by default this rank's GPU, else the CPU);
    joins the process group when a launcher started several processes.

    Collectives time out after `timeout_s`, so a rank that died or hangs stops the job instead of blocking it.
    """
    device = select_device(device, error_type=PgtrainError, cuda_index=local_rank())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size() > 1 and not torch.distributed.is_initialized():
        if "SLURM_NTASKS" in os.environ and "RANK" not in os.environ:
            os.environ.update(RANK=str(rank()), WORLD_SIZE=str(world_size()), LOCAL_RANK=str(local_rank()))
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend, init_method="env://",
                                             timeout=datetime.timedelta(seconds=timeout_s))
    return device


@contextlib.contextmanager
def collective(what: str) -> Iterator[None]:
    """Turn a failed collective (a peer that died, or no answer within the timeout) into one line."""
    try:
        yield
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise PgtrainError(f"{what}: another process stopped or stopped answering; the job stops ({first})") \
            from error


def default_process_count(num_gpus: int, device: str | None) -> int:
    """How many processes `pgtrain run` starts by itself: the preset's GPU count when that many GPUs are visible
    and the run is on CUDA, else one (the world-size check then says what to change)."""
    on_cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if on_cuda and num_gpus > 1 and torch.cuda.device_count() >= num_gpus:
        return num_gpus
    return 1


def launch(processes: int, arguments: list[str]) -> None:
    """Run `python -m pgtrain <arguments>` in `processes` processes on this machine through torch's elastic
    launcher (what torchrun --standalone does): rendezvous on a free local port, no restarts, and when one
    process fails the others are stopped and the failure is reported in one line."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=processes, run_id=f"pgtrain-{os.getpid()}",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.5)
    try:
        elastic_launch(config, sys.executable)("-m", "pgtrain", *arguments)
    except ChildFailedError as error:
        local, failure = error.get_first_failure()  # the cause; the launcher then stopped the others
        code = failure.exitcode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise PgtrainError(f"process {local} of {processes} {how}; the others were stopped "
                           "(its own error, if any, is above)") from error


def _collective_device() -> torch.device:
    """Where a small tensor must be for a collective: the current GPU under NCCL, else the CPU (gloo)."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over ranks (a collective); the tensor itself on one process."""
    if world_size() <= 1:
        return values
    total = values.to(_collective_device()).clone()
    with collective("reducing statistics"):
        torch.distributed.all_reduce(total)
    return total


def gather_objects(value):
    """Every rank's `value`, in rank order (a collective: every rank must call it); [value] on one process."""
    if world_size() <= 1:
        return [value]
    gathered = [None] * world_size()
    with collective("gathering from every rank"):
        torch.distributed.all_gather_object(gathered, value)
    return gathered


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on any (a collective): ranks must agree to stop together."""
    if world_size() <= 1:
        return flag
    value = torch.tensor([1 if flag else 0], device=_collective_device())
    with collective("agreeing on a stop"):
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())
