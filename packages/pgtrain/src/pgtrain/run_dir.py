"""Run directories: `results/NNN-<description>/`, the log tee, and finding a snapshot to resume from."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pgtrain.errors import PgtrainError

SNAPSHOT_PATTERN = re.compile(r"network-snapshot-(\d+)\.pt$")
FINAL_NAME = "network-final.pt"
DONE_NAME = "_training-done.txt"


def create_run_dir(results: str | Path, description: str) -> Path:
    """Make `results/NNN-description` with NNN one more than the largest run number there (as the official
    create_result_subdir); retries if another process takes the number first."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    while True:
        numbers = [int(m.group(1)) for p in results.iterdir() if (m := re.match(r"(\d+)-", p.name))]
        path = results / f"{max(numbers, default=-1) + 1:03d}-{description}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def snapshot_name(kimg: int) -> str:
    return f"network-snapshot-{kimg:06d}.pt"


def fakes_name(kimg: int) -> str:
    return f"fakes{kimg:06d}.png"


def latest_snapshot(run_dir: Path) -> Path | None:
    """The newest resumable file in a run directory: the most advanced snapshot, or the final one."""
    candidates = [(int(m.group(1)), p) for p in run_dir.glob("network-snapshot-*.pt")
                  if (m := SNAPSHOT_PATTERN.search(p.name))]
    if (run_dir / FINAL_NAME).is_file():
        return run_dir / FINAL_NAME
    if not candidates:
        return None
    # Several files can share a kimg (an interrupt right after a tick): the most recently written wins.
    best_kimg = max(k for k, _ in candidates)
    return max((p for k, p in candidates if k == best_kimg), key=lambda p: p.stat().st_mtime_ns)


def locate_resume(path: str | Path) -> Path:
    """A snapshot file, or a run directory (its latest snapshot); anything else is a one-line user error."""
    path = Path(path)
    if path.is_dir():
        found = latest_snapshot(path)
        if found is None:
            raise PgtrainError(f"{path}: not a run directory with snapshots (no network-snapshot-*.pt or "
                               f"{FINAL_NAME})")
        return found
    if path.is_file():
        if path.suffix != ".pt":
            raise PgtrainError(f"{path}: not a pgtrain snapshot (expected a network-*.pt file or a run directory)")
        return path
    raise PgtrainError(f"{path}: no such file or directory")


class LogTee:
    """Writes to a stream and appends to log.txt (the official run directory keeps a copy of stdout)."""

    def __init__(self, path: Path, stream=None, echo: bool = True):
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.stream = stream if stream is not None else sys.stdout
        self.echo = echo

    def __call__(self, line: str = "") -> None:
        if self.echo:
            print(line, file=self.stream, flush=True)
        self.file.write(line + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()
