"""The names of a training run's files that pgtrain writes and pgmetrics reads: one definition, so that the
evaluator finds exactly the snapshots the trainer wrote (kimg in the name, as the official network-snapshot-*)."""

from __future__ import annotations

import re
from pathlib import Path

SNAPSHOT_PATTERN = re.compile(r"network-snapshot-(\d+)\.pt")
FINAL_SNAPSHOT_NAME = "network-final.pt"
DONE_MARKER_NAME = "_training-done.txt"


def snapshot_name(kimg: int) -> str:
    """network-snapshot-NNNNNN.pt, NNNNNN the kimg (thousands of real images shown to D)."""
    return f"network-snapshot-{kimg:06d}.pt"


def snapshot_kimg(name: str) -> int | None:
    """The kimg of a snapshot file name (the whole name must match), or None for any other name."""
    match = SNAPSHOT_PATTERN.fullmatch(name)
    return int(match.group(1)) if match else None


def list_snapshots(run_dir: Path) -> list[tuple[int, Path]]:
    """(kimg, path) of every network-snapshot-*.pt in `run_dir`, by kimg then name (network-final.pt is not
    among them)."""
    found = [(kimg, path) for path in Path(run_dir).iterdir() if (kimg := snapshot_kimg(path.name)) is not None]
    return sorted(found)
