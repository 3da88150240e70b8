"""Progress bars for long work (rate and ETA on stderr, silent with --quiet or when not a terminal) and durations
as the official logs print them."""

from __future__ import annotations

import os
import sys

from tqdm import tqdm


def progress_bar(total: int | None, description: str, unit: str = "img", quiet: bool = False) -> tqdm:
    """A tqdm bar; disabled when quiet, or when stderr is not a terminal unless PGDATA_PROGRESS=1."""
    forced = os.environ.get("PGDATA_PROGRESS") == "1"
    disable = quiet or not (forced or sys.stderr.isatty())
    return tqdm(total=total, desc=description, unit=unit, unit_scale=True, dynamic_ncols=True,
                smoothing=0.1, disable=disable, file=sys.stderr)


def format_time(seconds: float) -> str:
    """'12s', '3m 05s', '2h 03m 04s', '1d 02h 03m': the official misc.format_time, which the training log and the
    metric logs print."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {(s // 60) % 60:02d}m {s % 60:02d}s"
    return f"{s // 86400}d {(s // 3600) % 24:02d}h {(s // 60) % 60:02d}m"
