"""Run directories: `results/NNN-<description>/` or one named with --run-dir, the names of the files in them, the
log tee, and finding the training state to resume from."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from pgdata.common.run_files import DONE_MARKER_NAME as DONE_NAME
from pgdata.common.run_files import FINAL_SNAPSHOT_NAME as FINAL_NAME
from pgdata.common.run_files import SNAPSHOT_PATTERN
from pgtrain.errors import PgtrainError

STATE_PATTERN = re.compile(r"training-state-(\d+)\.pt$")
CONFIG_NAME = "config.json"
LOG_NAME = "log.txt"


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


def state_name(kimg: int) -> str:
    return f"training-state-{kimg:06d}.pt"


def fakes_name(kimg: int) -> str:
    return f"fakes{kimg:06d}.png"


def _most_advanced(run_dir: Path, pattern: re.Pattern) -> Path | None:
    """The file of the highest kimg matching `pattern`; among equal kimg the most recently written."""
    candidates = [(int(m.group(1)), p) for p in run_dir.glob("*.pt") if (m := pattern.fullmatch(p.name))]
    if not candidates:
        return None
    best_kimg = max(k for k, _ in candidates)
    return max((p for k, p in candidates if k == best_kimg), key=lambda p: p.stat().st_mtime_ns)


def latest_state(run_dir: Path) -> Path | None:
    """The newest full training state in a run directory (training-state-NNNNNN.pt), or None."""
    return _most_advanced(run_dir, STATE_PATTERN)


def latest_snapshot(run_dir: Path) -> Path | None:
    """The newest network snapshot: the final one, else the most advanced (runs written before training states
    were separate keep their full state in these)."""
    if (run_dir / FINAL_NAME).is_file():
        return run_dir / FINAL_NAME
    return _most_advanced(run_dir, SNAPSHOT_PATTERN)


def locate_resume(path: str | Path) -> Path:
    """A snapshot file, or a run directory (its latest training state, else its latest snapshot); anything else
    is a one-line user error."""
    path = Path(path)
    if path.is_dir():
        found = latest_state(path) or latest_snapshot(path)
        if found is None:
            raise PgtrainError(f"{path}: not a run directory with snapshots (no training-state-*.pt, "
                               f"network-snapshot-*.pt or {FINAL_NAME})")
        return found
    if path.is_file():
        if path.suffix != ".pt":
            raise PgtrainError(f"{path}: not a pgtrain snapshot (expected a network-*.pt file or a run directory)")
        return path
    raise PgtrainError(f"{path}: no such file or directory")


def classify_run_dir(path: Path) -> str:
    """What `pgtrain run --run-dir` finds there: "fresh" (absent or empty), "finished" or "unfinished" (a run
    this tool wrote: our config.json and log.txt). Anything else is refused in one line and left untouched."""
    if not path.exists():
        return "fresh"
    if not path.is_dir():
        raise PgtrainError(f"{path}: not a folder; --run-dir needs a new or empty folder, or a pgtrain run directory")
    if not any(path.iterdir()):
        return "fresh"
    if not _holds_our_config(path / CONFIG_NAME) or not (path / LOG_NAME).is_file():
        raise PgtrainError(f"{path}: not empty and not a pgtrain run directory (no {CONFIG_NAME} and {LOG_NAME} "
                           "written by pgtrain run); choose a new or empty folder")
    return "finished" if (path / DONE_NAME).is_file() else "unfinished"


def _holds_our_config(path: Path) -> bool:
    """True when `path` is a configuration `pgtrain run` wrote (it parses into a TrainingConfig)."""
    from pgtrain.config import config_from_dict

    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(content, dict):
            return False
        config_from_dict(content)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, PgtrainError):
        return False
    return True


def make_run_dir(path: Path) -> Path:
    """Create the folder --run-dir names (and its parents), or say in one line why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PgtrainError(f"{path}: cannot create the run directory ({error.strerror or error})") from error
    return path


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
