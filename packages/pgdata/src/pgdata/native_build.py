"""Compile a package's C file on first use into a per-user cache and load it with ctypes.

Why: a few inner loops (the CelebA-HQ Pillow 3.1.1 kernels, SWD's patch descriptors) are several times faster
in C, and compiling on first use needs only a C compiler (no Python headers, no wheel per platform). Libraries are
named by the hash of source, compiler and flags, written under a temporary name and renamed into place, so
concurrent first uses end with one complete file and an edited source never loads a stale build.

Environment: the libraries live in <pgdata cache>/native, the cache being $PGDATA_CACHE, else
$XDG_CACHE_HOME/pgdata, else ~/.cache/pgdata (pgdata.common.cache); CC picks the compiler.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from pgdata.common.atomic import publish, reserve_temporary
from pgdata.common.cache import cache_dir as common_cache_dir

# Exact arithmetic: no -ffast-math, no FMA contraction, no -march (the cache may be shared between CPUs).
EXACT_FLAGS = ("-O3", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math", "-std=c99")


def cache_dir() -> Path:
    """Where the compiled libraries live: the native/ folder of pgdata's cache."""
    return common_cache_dir("pgdata") / "native"


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def build(source: Path, name: str, flags: Sequence[str] = EXACT_FLAGS) -> Path | None:
    """Path of the compiled `source` (built now if needed), or None without a working compiler (warned)."""
    compiler = _compiler()
    if compiler is None:
        return None
    digest = hashlib.sha256(source.read_bytes() + " ".join([compiler, *flags]).encode()).hexdigest()[:16]
    target = cache_dir() / f"{name}_{digest}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = reserve_temporary(target)
    try:
        result = subprocess.run([compiler, *flags, str(source), "-o", str(temporary), "-lm"], capture_output=True)
        if result.returncode != 0:
            warnings.warn(f"compiling {source.name} failed, using the slower numpy code: "
                          f"{result.stderr.decode(errors='replace')[-500:]}", stacklevel=3)
            return None
        publish(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)  # a failed compile's output; gone already once published
    for stale in target.parent.glob(f"{name}_*.so"):  # builds of older sources
        if stale != target:
            stale.unlink(missing_ok=True)  # a process still using one keeps its mapping
    return target


def load(source: Path, name: str, declare: Callable[[ctypes.CDLL], None], disable_variable: str,
         flags: Sequence[str] = EXACT_FLAGS) -> ctypes.CDLL | None:
    """The compiled library with its functions declared, or None when `disable_variable`=0, on Windows, or
    when it cannot be built or loaded (then callers use their numpy code)."""
    if os.environ.get(disable_variable, "1") == "0" or sys.platform == "win32":
        return None
    try:
        path = build(source, name, flags)
        if path is None:
            return None
        lib = ctypes.CDLL(str(path))
        declare(lib)
        return lib
    except OSError as error:
        warnings.warn(f"cannot load the compiled {source.name} ({error}); using numpy", stacklevel=2)
        return None
