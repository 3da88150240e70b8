"""The thread pool SWD's numpy work runs in, and numpy's BLAS held to one thread inside it."""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import glob
import os
import threading

import numpy as np
import torch

_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_BLAS_LOCK = threading.Lock()
_BLAS: dict = {}


def workers() -> int:
    return max(1, torch.get_num_threads())


def _openblas_threads():
    """numpy's bundled OpenBLAS thread setter/getter (ctypes), or None. Needed because each pool thread runs
    its own matmul: with OpenBLAS's threads on top, 2 cores ran 2x slower than one thread (measured)."""
    if "functions" not in _BLAS:
        functions = None
        for path in glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in ("scipy_openblas_", "openblas_"):
                for suffix in ("64_", ""):
                    setter = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                    getter = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                    if setter is not None and getter is not None and functions is None:
                        functions = (setter, getter)
        _BLAS["functions"] = functions
    return _BLAS["functions"]


@contextlib.contextmanager
def blas_single_threaded():
    """Yield True when numpy's BLAS now runs one thread per call (restored afterwards), False if unknown."""
    functions = _openblas_threads()
    if functions is None:
        yield False
        return
    setter, getter = functions
    with _BLAS_LOCK:
        before = getter()
        setter(1)
        try:
            yield True
        finally:
            setter(before)


def pool() -> concurrent.futures.ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL._max_workers != workers():
        _POOL = concurrent.futures.ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="pgmetrics-swd")
    return _POOL
