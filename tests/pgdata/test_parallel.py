"""The order-preserving worker pool: a signal handler the parent had installed must not be the workers'."""

from __future__ import annotations

import signal

from pgdata.parallel import ordered_map


def sigterm_is_default(_item: int) -> bool:
    return signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_workers_die_on_sigterm_whatever_handler_the_parent_had():
    """The pool stops its workers with SIGTERM; a forked copy of a handler that does not exit (a training run's,
    left installed earlier in the same process) let a worker live on and hung the build at the pool's exit."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        assert list(ordered_map(sigterm_is_default, range(4), workers=2)) == [True] * 4
    finally:
        signal.signal(signal.SIGTERM, previous)
