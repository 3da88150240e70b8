"""Metrics during training (`pgtrain run --metrics swd,fid`), as stylegan2-ada's `--metrics`: after each network
snapshot, rank 0 runs pgmetrics' incremental `evaluate_run` on the run directory, so the metric-<name>-<num>.txt,
.png and .json files are exactly those `pgmetrics evaluate RUN_DIR` writes (a snapshot already scored keeps its
row). pgmetrics is imported only when metrics are asked, and the settings and Inception weights are checked before
training starts.

With several processes the other ranks wait at a barrier of their own process group (gloo, on the CPU), whose
timeout is `WAIT_TIMEOUT_S` rather than --collective-timeout: an evaluation may take longer than any gradient
exchange is allowed to. The barrier is met outside every training collective (after the tick's gradients and
statistics), so no pending exchange can time out meanwhile.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pgtrain import distributed
from pgtrain.errors import PgtrainError

WAIT_TIMEOUT_S = 7 * 24 * 3600  # ranks wait this long for rank 0's evaluation before the job stops


@dataclass
class MetricsRequest:
    """What `--metrics`, `--metrics-num`, `--inception-weights` and `--allow-unverified-weights` ask."""

    metrics: str
    num: int | None = None
    inception_weights: str | None = None
    allow_unverified_weights: bool = False


def _pgmetrics():
    """pgmetrics' settings and evaluate modules, or one line saying how to install it."""
    try:
        from pgmetrics import evaluate, settings
    except ImportError as error:
        raise PgtrainError("--metrics needs pgmetrics, which is not installed: pip install ./packages/pgmetrics "
                           f"(or pgtrain's metrics extra) ({error})") from error
    return settings, evaluate


def _one_line(error: Exception) -> PgtrainError:
    return PgtrainError(f"--metrics: {error}")


def check_request(request: MetricsRequest) -> Any:
    """pgmetrics' Settings for the request, checked before any training: a known metric, a valid count, and the
    Inception weights present (and verified, unless allowed) when FID, IS or KID is asked."""
    settings_module, _ = _pgmetrics()
    from pgmetrics.errors import PgmetricsError

    overrides: dict[str, Any] = {"allow_unverified_weights": request.allow_unverified_weights, "quiet": True}
    if request.num is not None:
        overrides["num"] = request.num
    if request.inception_weights is not None:
        overrides["inception_weights"] = request.inception_weights
    try:
        settings = settings_module.make_settings(request.metrics, **overrides)
        settings_module.check_weights_available(settings)
    except PgmetricsError as error:
        raise _one_line(error) from error
    return settings


class SnapshotMetrics:
    """Scores each new network snapshot of a run (rank 0) while the other ranks wait."""

    def __init__(self, settings: Any, log: Callable[[str], None]):
        self.settings = settings
        self.log = log
        self.wait_group = None
        if distributed.world_size() > 1:
            self.wait_group = torch.distributed.new_group(
                backend="gloo", timeout=datetime.timedelta(seconds=WAIT_TIMEOUT_S))

    def after_snapshot(self, run_dir: Path | None, snapshot: str) -> dict[str, float]:
        """Evaluate every snapshot not yet scored (rank 0) and return this snapshot's values, named
        "Metrics/<column>"; the other ranks return {} once rank 0 is done."""
        values = self._evaluate(run_dir, snapshot) if distributed.is_main() and run_dir is not None else {}
        if self.wait_group is not None:
            with distributed.collective("waiting for rank 0's metrics"):
                torch.distributed.barrier(group=self.wait_group)
        return values

    def _evaluate(self, run_dir: Path, snapshot: str) -> dict[str, float]:
        _, evaluate = _pgmetrics()
        from pgmetrics.errors import PgmetricsError

        try:
            written = evaluate.evaluate_run(run_dir, self.settings, echo=self.log)
        except PgmetricsError as error:
            raise _one_line(error) from error
        values = {}
        for table in written:
            if table.suffix == ".txt":
                values.update(snapshot_values(table.with_suffix(".json"), snapshot))
        if values:
            self.log(f"Metrics of {snapshot}: " + "  ".join(f"{name.split('/', 1)[1]} {value:.4f}"
                                                            for name, value in values.items()))
        return values


def snapshot_values(record: Path, snapshot: str) -> dict[str, float]:
    """The row of `snapshot` in a pgmetrics metric record (metric-<name>-<num>.json), as "Metrics/<column>"."""
    try:
        content = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    rows = content.get("snapshots") if isinstance(content, dict) else None
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and row.get("file") == snapshot and isinstance(row.get("values"), dict):
            return {f"Metrics/{name}": float(value) for name, value in row["values"].items()
                    if isinstance(value, (int, float)) and not isinstance(value, bool)}
    return {}
