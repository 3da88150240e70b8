"""Gradients averaged over ranks while the backward pass still runs (what DDP does, without DDP's limits).

DDP is not used because a Progressive GAN step breaks two of its assumptions: D runs three forward passes
(reals, fakes, mixed images) before one backward, and at every lod most layers are idle (the levels above the
current one), which DDP can only handle with `find_unused_parameters`, and not together with the gradient
penalty's double backward. Here a post-accumulate-grad hook on every parameter reports when its gradient is
final; parameters are grouped in buckets (about 25 MB, in reverse registration order, about the order the
backward pass finishes them, as DDP does) and a bucket's asynchronous all-reduce starts as soon as its
parameters are ready, while the backward pass computes the rest.

Which parameters get a gradient depends on the lod's structure (the level, and whether a fade is under way),
and every rank must put the same parameters in the same buckets and launch the buckets in the same order. So the
first backward for each structure (`key`) is reduced after the fact, in one fixed order, and records which
parameters had gradients; later backwards with that key use that plan, launching buckets strictly in bucket
order. The penalty's `autograd.grad(create_graph=True)` accumulates nothing into `.grad`, so it triggers no hook.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import torch

from pgtrain.distributed import collective

BUCKET_BYTES = 25 * 2**20


def plan_buckets(parameters: list[torch.nn.Parameter], bucket_bytes: int = BUCKET_BYTES) -> list[list[torch.nn.Parameter]]:
    """Consecutive groups of at most `bucket_bytes` (a larger parameter gets a bucket of its own)."""
    buckets: list[list[torch.nn.Parameter]] = []
    size = bucket_bytes
    for parameter in parameters:
        nbytes = parameter.numel() * parameter.element_size()
        if size + nbytes > bucket_bytes and (not buckets or buckets[-1]):
            buckets.append([])
            size = 0
        buckets[-1].append(parameter)
        size += nbytes
    return [bucket for bucket in buckets if bucket]


class _Pass:
    """One armed backward pass: which buckets are ready, and the reductions in flight."""

    def __init__(self, key: Hashable, plan: list[list[torch.nn.Parameter]] | None) -> None:
        self.key, self.plan = key, plan
        self.waiting = [len(bucket) for bucket in plan] if plan is not None else []
        self.bucket_of = {id(p): index for index, bucket in enumerate(plan) for p in bucket} if plan else {}
        self.next_launch = 0
        self.in_flight: list[tuple[object, torch.Tensor, list[torch.nn.Parameter]]] = []


class GradientAverager:
    """Averages the gradients of `parameters` over the process group; a no-op on one process.

    Use: `arm(key)` before the backward pass whose gradients are final, then `finish()` after it.
    """

    def __init__(self, parameters: Iterable[torch.nn.Parameter], world_size: int,
                 bucket_bytes: int = BUCKET_BYTES) -> None:
        self.parameters = [p for p in parameters if p.requires_grad]
        self.world_size = world_size
        self.bucket_bytes = bucket_bytes
        self.plans: dict[Hashable, list[list[torch.nn.Parameter]]] = {}
        self._pass: _Pass | None = None
        self._hooks = [p.register_post_accumulate_grad_hook(self._ready) for p in self.parameters] \
            if world_size > 1 else []

    def arm(self, key: Hashable) -> None:
        """The next backward pass produces the gradients to average; `key` names the graph's structure."""
        if self.world_size > 1:
            self._pass = _Pass(key, self.plans.get(key))

    def _ready(self, parameter: torch.nn.Parameter) -> None:
        current = self._pass
        if current is None or current.plan is None:
            return
        index = current.bucket_of.get(id(parameter))
        if index is None:
            raise RuntimeError(f"a parameter outside the gradient plan for {current.key!r} got a gradient")
        current.waiting[index] -= 1
        while current.next_launch < len(current.plan) and current.waiting[current.next_launch] == 0:
            self._launch(current, current.plan[current.next_launch])
            current.next_launch += 1

    def _launch(self, current: _Pass, bucket: list[torch.nn.Parameter]) -> None:
        flat = torch.cat([p.grad.reshape(-1) for p in bucket])
        with collective("averaging gradients"):
            work = torch.distributed.all_reduce(flat, async_op=True)
        current.in_flight.append((work, flat, bucket))

    def finish(self) -> None:
        """Wait for every bucket and write the averages back; the first pass of a key plans and reduces here."""
        current, self._pass = self._pass, None
        if current is None:
            return
        with_grads = [p for p in reversed(self.parameters) if p.grad is not None]
        if current.plan is None:  # first pass with this structure: plan it, reduce everything now
            current.plan = plan_buckets(with_grads, self.bucket_bytes)
            self.plans[current.key] = current.plan
            for bucket in current.plan:
                self._launch(current, bucket)
        elif current.next_launch != len(current.plan) or len(with_grads) != len(current.bucket_of):
            raise RuntimeError(f"the parameters with gradients differ from the plan for {current.key!r}")
        for work, flat, bucket in current.in_flight:
            with collective("averaging gradients"):
                work.wait()
            flat /= self.world_size
            offset = 0
            for parameter in bucket:
                count = parameter.numel()
                parameter.grad.copy_(flat[offset:offset + count].view_as(parameter.grad))
                offset += count

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
