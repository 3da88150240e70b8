"""The per-user cache folder of each tool (compiled kernels, real-set statistics, downloaded weights).

One rule for all: the package's override variable ($PGDATA_CACHE, $PGMETRICS_CACHE) when set and not empty,
else $XDG_CACHE_HOME/<package> when that is set and not empty, else ~/.cache/<package> (the XDG base directory
specification's default).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_variable(package: str) -> str:
    """The override variable of a package: PGDATA_CACHE, PGTRAIN_CACHE, PGMETRICS_CACHE."""
    return f"{package.upper()}_CACHE"


def cache_dir(package: str) -> Path:
    """The package's cache folder (not created: callers create what they write)."""
    override = os.environ.get(cache_variable(package))
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / package
