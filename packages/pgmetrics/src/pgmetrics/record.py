"""The record beside each metric table, `metric-<name>-<label>.json`: the settings that made the table (the
weights' sha256 among them), and every row with the sha256 of the snapshot it scored.

The official `metric-*.txt` table has no room for settings, so they live here; `pgmetrics evaluate` reads the
record to score only what is new (a snapshot whose content it has not scored with these settings). A record that
is missing, unreadable, of another format or made with other settings is not trusted: the metric is scored again.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from pgdata.common.atomic import write_text
from pgmetrics import __version__
from pgmetrics.errors import PgmetricsError

RECORD_FORMAT = "pgmetrics-metric-record"
RECORD_VERSION = 1


@dataclass
class Row:
    """One table row: 'Reals', 'Reals2', or a snapshot (then kimg, its file name and its content's sha256)."""

    title: str
    seconds: float
    values: dict[str, float]
    kimg: int | None = None
    file: str | None = None
    sha256: str | None = None


@dataclass
class MetricRecord:
    metric: str
    identity: dict  # every setting the values depend on; another identity means another table
    columns: list[str]
    reals: list[Row] = field(default_factory=list)
    snapshots: list[Row] = field(default_factory=list)


def record_path(stem: Path) -> Path:
    return stem.with_name(stem.name + ".json")


def _row_from_json(item: object, columns: list[str], snapshot: bool) -> Row | None:
    """A row exactly as write_record stores it, or None for anything else."""
    if not isinstance(item, dict) or not isinstance(item.get("title"), str):
        return None
    values, seconds = item.get("values"), item.get("seconds")
    if not isinstance(values, dict) or list(values) != columns or not isinstance(seconds, (int, float)):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()):
        return None
    row = Row(item["title"], float(seconds), {k: float(v) for k, v in values.items()})
    if snapshot:
        kimg, file, sha = item.get("kimg"), item.get("file"), item.get("sha256")
        if not (isinstance(kimg, int) and isinstance(file, str) and isinstance(sha, str) and len(sha) == 64):
            return None
        row.kimg, row.file, row.sha256 = kimg, file, sha
    return row


def _rows(items: object, columns: list[str], snapshot: bool) -> list[Row] | None:
    if not isinstance(items, list):
        return None
    rows = [_row_from_json(item, columns, snapshot) for item in items]
    return None if any(row is None for row in rows) else rows


def read_record(path: Path, metric: str, identity: dict, columns: list[str]) -> MetricRecord | None:
    """The record at `path` when it is well formed and was made with exactly `identity` and `columns`; else None."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(content, dict) or content.get("format") != RECORD_FORMAT:
        return None
    if content.get("version") != RECORD_VERSION or content.get("metric") != metric:
        return None
    if content.get("settings") != identity or content.get("columns") != columns:
        return None
    reals = _rows(content.get("reals"), columns, snapshot=False)
    snapshots = _rows(content.get("snapshots"), columns, snapshot=True)
    if reals is None or snapshots is None:
        return None
    return MetricRecord(metric, identity, columns, reals, snapshots)


def _row_json(row: Row) -> dict:
    item = {"title": row.title, "seconds": round(row.seconds, 3),
            "values": {k: (v if math.isfinite(v) else None) for k, v in row.values.items()}}
    if row.sha256 is not None:
        item.update(kimg=row.kimg, file=row.file, sha256=row.sha256)
    return item


def write_record(path: Path, record: MetricRecord, weights_verified: bool | None) -> Path:
    """Write the record atomically. Non-finite values are stored as null, which read_record does not accept:
    such a row is scored again rather than trusted."""
    content = {
        "format": RECORD_FORMAT, "version": RECORD_VERSION, "metric": record.metric,
        "settings": record.identity, "inception_weights_verified": weights_verified,
        "pgmetrics_version": __version__, "columns": record.columns,
        "reals": [_row_json(row) for row in record.reals],
        "snapshots": [_row_json(row) for row in record.snapshots],
    }
    return write_text(path, json.dumps(content, indent=1) + "\n", error_type=PgmetricsError)
