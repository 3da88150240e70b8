"""Order-preserving parallel map over processes, for decoding-heavy sources."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")



def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def ordered_map(function: Callable[[T], R], items: Iterable[T], workers: int | None = None,
                prefetch: int = 4) -> Iterator[R]:
    """Yield function(item) in input order, computed by `workers` processes (1: in this process).

    Bounded memory: at most about workers * prefetch results are in flight. `function` must be picklable
    (a module-level function or a functools.partial of one).
    """
    workers = available_cores() if workers is None else max(1, workers)
    if workers == 1:
        yield from map(function, items)
        return
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    task = functools.partial(run_task, function, os.getpid())
    with context.Pool(workers, initializer=quiet_worker) as pool:
        pending = []
        iterator = iter(items)
        exhausted = False
        while True:
            while not exhausted and len(pending) < workers * prefetch:
                try:
                    item = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                pending.append(pool.apply_async(task, (item,)))
            if not pending:
                return
            yield pending.pop(0).get()


def quiet_worker() -> None:
    """Pool initializer: Ctrl-C reaches the whole process group; the parent handles it and stops the pool,
    instead of every worker printing a KeyboardInterrupt traceback. SIGTERM is the default again: the pool stops
    its workers with it, and a handler the parent had installed (forked along) must not keep a worker alive."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_task(function: Callable[[T], R], parent: int, item: T) -> R:
    """function(item) in a worker. After a kill -9 of the parent, a worker finishes its task and would print
    a BrokenPipeError traceback handing back a result nobody reads: it leaves without a word instead (an idle
    worker sees the closed task pipe and leaves quietly on its own)."""
    try:
        return function(item)
    finally:
        if os.getppid() != parent:
            os._exit(0)
