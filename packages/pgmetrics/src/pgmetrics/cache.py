"""Real-set statistics cache: arrays stored under a key derived from the sha256 fingerprint of the images read
(see sources.py) and every setting that changes them (for Inception features, the weights file's sha256: two
weights files never share an entry), so a real set is processed once (FID/KID features, SWD
descriptors). Non-finite arrays are never stored nor served: a NaN must not outlive the run that made it."""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from pgdata.common.atomic import atomic_file
from pgdata.common.cache import cache_dir


def stats_dir() -> Path:
    return cache_dir("pgmetrics") / "stats"


def cache_key(kind: str, fingerprint: str, settings: dict) -> str:
    text = json.dumps({"kind": kind, "fingerprint": fingerprint, **settings}, sort_keys=True)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def all_finite(arrays: dict[str, np.ndarray]) -> bool:
    return all(np.isfinite(array).all() for array in arrays.values())


def load(key: str, directory: Path | None = None) -> dict[str, np.ndarray] | None:
    """The stored arrays, or None when absent, unreadable (the zip CRCs are checked as the members are read) or
    not finite: then the statistics are simply recomputed."""
    path = (directory or stats_dir()) / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
    return arrays if all_finite(arrays) else None


def save(key: str, arrays: dict[str, np.ndarray], directory: Path | None = None) -> Path | None:
    """Write atomically (temporary file, then rename); a read-only cache only costs the reuse. Non-finite arrays
    are not stored."""
    if not all_finite(arrays):
        return None
    directory = directory or stats_dir()
    final = directory / f"{key}.npz"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_file(final) as file:
            np.savez(file, **arrays)
    except OSError:
        return None
    return final
