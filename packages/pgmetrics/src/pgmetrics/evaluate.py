"""Score every snapshot of a training run, as the official util_scripts.evaluate_metrics did, incrementally.

Per metric: `metric-<name>-<num>.txt` in the official table format (header, '---' line, a 'Reals' row, an
optional 'Reals2' row, then one row per snapshot, newest first, labelled by kimg), `metric-<name>-<num>.png`,
the metric over kimg, and `metric-<name>-<num>.json`, the record (pgmetrics.record): the settings the values
depend on (the Inception weights' sha256 among them) and the sha256 of each row's snapshot. A later run keeps
the rows of the snapshots it finds unchanged under the same settings and scores only the others; when nothing is
new it reads no image (nor the real set's statistics) and says so. With --swd-reference-rng, SWD's rows share
one random stream, so any new row re-scores all of SWD.

Matches the official code: the Reals row is each metric's `end('reals')`, i.e. the real set scored as if it were
the generated one (SWD and FID of the reals against themselves, IS and MS-SSIM of the reals); Reals2 is the
next `num` images of the real stream in 'fakes' mode (two disjoint real subsets: the noise floor). The real
stream repeats from the start when the set runs out (the official dataset iterator repeats: CelebA-HQ's 30000
images give 16384 + 16384 for SWD's two passes) and, when the run trained with mirror augmentation, flips a
random half of the real images (official misc.apply_mirror_augment; seeded here).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pgdata.common import run_files
from pgdata.common.atomic import write_text
from pgdata.hashing import file_sha256
from pgdata.progress import format_time
from pgmetrics import inception, registry
from pgmetrics.compare import Evaluator, Settings, check_settings, choose_num, format_value
from pgmetrics.errors import PgmetricsError
from pgmetrics.output import check_folder_writable, check_writable
from pgmetrics.plot import plot_series
from pgmetrics.record import MetricRecord, Row, read_record, record_path, write_record
from pgmetrics.settings import check_weights_available
from pgmetrics.sources import ImageSource, SnapshotSource, open_source, read_run_config


def count_label(num: int) -> str:
    """16384 -> '16k', 50000 -> '50k' (the official log names metric-swd-16k.txt, metric-fid-50k.txt)."""
    if num % 1000 == 0:
        return f"{num // 1000}k"
    if num % 1024 == 0:
        return f"{num // 1024}k"
    return str(num)


def list_snapshots(run_dir: Path) -> list[tuple[int, Path]]:
    found = run_files.list_snapshots(run_dir)
    if not found:
        raise PgmetricsError("no network-snapshot-NNNNNN.pt files", run_dir)
    return found


def metric_names(metric: str, resolution: int) -> list[str]:
    return registry.get(metric).columns(resolution)


def header_lines(names: list[str]) -> list[str]:
    """The official header: every name padded to its value's printed width (trailing blanks kept, as printed)."""
    widths = [len(format_value(name, 0.0)) for name in names]
    head = "%-10s%-12s" % ("Snapshot", "Time_eval") + "".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
    rule = "%-10s%-12s" % ("---", "---") + "".join("---".ljust(w) for w in widths)
    return [head, rule]


def row_line(title: str, seconds: float, names: list[str], values: dict[str, float]) -> str:
    """'%-10s' title, '%-12s' time, then each value in its metric's official format (left-justified)."""
    text = "%-10s%-12s" % (title, format_time(seconds))
    return text + "".join(format_value(name, values[name]) for name in names)


def reals_row(evaluator: Evaluator, metrics: list[str]) -> dict[str, float]:
    """The official 'Reals' row, each metric's end('reals'): the reals scored against their own statistics.

    SWD: the stored descriptors against themselves (exactly 0); FID: the real statistics against themselves
    (about 0: only the matrix square root's rounding); IS and MS-SSIM: the real images' own values. KID (not an
    official metric) follows the same rule: the real features against themselves (about 0).
    """
    out: dict[str, float] = {}
    for metric in metrics:
        out.update(registry.get(metric).reals(evaluator))
    return out


class RealStream(ImageSource):
    """The real set as the official evaluation reads it: in file order, repeating from the start when it runs out,
    a random half of the images mirrored when the run trained with mirror augmentation.

    Positions count along the stream (position N is image 0 again, flipped or not by its own draw), so the
    Reals2 pass (positions num .. 2*num) continues where Reals stopped, as the official iterator did.
    """

    def __init__(self, base: ImageSource, mirror: bool = False, seed: int = 0):
        if base.num_images is None or base.num_images < 1:
            raise PgmetricsError("the real set must be a finite image set (a dataset, folder or array)", base.name)
        self.base, self.mirror, self.seed = base, mirror, seed
        self.name, self.channels, self.resolution = base.name, base.channels, base.resolution
        self.num_images = None  # unbounded: it repeats

    def mirror_mask(self, stop: int) -> np.ndarray:
        """Flip flags for stream positions 0 .. stop-1 (independent of batching)."""
        return np.random.RandomState(self.seed).rand(stop) < 0.5

    def positions(self, start: int, stop: int) -> np.ndarray:
        return np.arange(start, stop) % self.base.num_images

    def _pieces(self, batch_size: int, start: int, stop: int):
        """The base set's batches for positions start .. stop: one sequential read per lap of the set."""
        total, position = self.base.num_images, start
        while position < stop:
            first = position % total
            take = min(stop - position, total - first)
            yield from self.base.iter_batches(batch_size, first, first + take)
            position += take

    def iter_batches(self, batch_size: int, start: int = 0, stop: int | None = None):
        """Batches of exactly batch_size (the last may be short); a batch may span the end of the set."""
        if stop is None:
            raise PgmetricsError("the repeating real stream needs a stop", self.name)
        flips = self.mirror_mask(stop) if self.mirror else None
        pending, count, begin = [], 0, start
        for piece in self._pieces(batch_size, start, stop):
            pending.append(piece)
            count += len(piece)
            while count >= batch_size or (count and begin + count == stop):
                joined = np.concatenate(pending)
                size = min(batch_size, count)
                batch, rest = np.array(joined[:size]), joined[size:]
                pending, count = ([rest] if len(rest) else []), count - size
                if flips is not None:
                    mask = flips[begin:begin + size]
                    batch[mask] = batch[mask][..., ::-1]
                begin += size
                yield batch

    @property
    def fingerprint_of_pixels(self) -> bool:
        return self.base.fingerprint_of_pixels

    def fingerprint(self, stop: int) -> str:
        """The stream's own pixels (mirrored, repeated) where the base's fingerprint is its pixels; else the
        base's fingerprint of the images read, the mirroring and the stop."""
        if self.base.fingerprint_of_pixels:
            return super().fingerprint(stop)
        import hashlib

        extra = f":mirror={self.seed}" if self.mirror else ""
        base = self.base.fingerprint(min(stop, self.base.num_images))
        return hashlib.sha256(f"{base}:{stop}{extra}".encode()).hexdigest()

    def content_key(self, stop: int) -> str:
        """The base's content key, the stop and the mirroring, which determine the stream (no image decoded)."""
        import hashlib

        extra = f":mirror={self.seed}" if self.mirror else ""
        base = self.base.content_key(min(stop, self.base.num_images))
        return hashlib.sha256(f"{base}:{stop}{extra}".encode()).hexdigest()

    def describe(self) -> dict:
        return {**self.base.describe(), "repeating": True, "mirror": self.mirror}

    def close(self) -> None:
        self.base.close()


def snapshot_metadata(path: Path) -> dict:
    """The metadata a pgtrain snapshot stores (dataset path, training configuration); {} when unreadable."""
    try:
        from pgtrain.checkpoint import load_snapshot
        from pgtrain.errors import PgtrainError
    except ImportError:
        return {}
    try:
        return dict(load_snapshot(path).metadata or {})
    except PgtrainError:
        return {}


def run_settings(run_dir: Path, snapshots: list[tuple[int, Path]], real: str | None) -> tuple[str, bool]:
    """(real data path, mirror augmentation): --real, else config.json's "data", else the dataset path that
    `pgtrain run` stores in every snapshot (its config.json has no "data" key); mirror from the run's config."""
    config = read_run_config(run_dir)
    metadata = {}
    if (not real and not config.get("data")) or not config:
        metadata = snapshot_metadata(snapshots[-1][1])
    if not config and isinstance(metadata.get("config"), str):
        try:
            config = json.loads(metadata["config"])
        except json.JSONDecodeError:
            config = {}
    path = real or config.get("data") or metadata.get("dataset")
    if not path:
        raise PgmetricsError("no real data: neither config.json (\"data\") nor the newest snapshot names the "
                             "dataset; pass --real", run_dir)
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    return str(path), bool(train.get("mirror_augment", config.get("mirror_augment", False)))


def real_labels(base: ImageSource, start: int, num: int) -> np.ndarray | None:
    """The labels of stream positions start .. start+num (the official run feeds the snapshots the labels of the
    last real pass); None for unlabelled sets."""
    reader = getattr(base, "reader", None)
    table = reader.labels() if reader is not None else None
    if table is None or table.shape[1] == 0:
        return None
    return table[(start + np.arange(num)) % len(table)]


def metric_stem(run_dir: Path, metric: str, num: int) -> Path:
    return run_dir / f"metric-{metric}-{count_label(num)}"



def write_metric_files(stem: Path, metric: str, num: int, record: MetricRecord,
                       weights_verified: bool | None) -> list[Path]:
    """One metric's table (the Reals rows, then the snapshots newest first), its plot and, last, its record,
    each written atomically: a record never vouches for a table that was not written."""
    names = record.columns
    snapshots = sorted(record.snapshots, key=lambda row: row.kimg, reverse=True)
    lines = header_lines(names) + [row_line(r.title, r.seconds, names, r.values)
                                   for r in record.reals + snapshots] + [""]
    table = write_text(stem.with_suffix(".txt"), "\n".join(lines) + "\n", error_type=PgmetricsError)
    ascending = snapshots[::-1]
    series = {name: [row.values[name] for row in ascending] for name in names if not name.endswith("_std")}
    plot = plot_series(stem.with_suffix(".png"), f"{metric} ({count_label(num)} images)",
                       [row.kimg for row in ascending], series)
    write_record(record_path(stem), replace(record, snapshots=snapshots), weights_verified)
    return [table, plot]


def check_outputs(run_dir: Path, metrics: list[str], num: int) -> None:
    """Every file evaluate will write can be written: checked before any image is read."""
    check_folder_writable(run_dir)
    for metric in metrics:
        stem = metric_stem(run_dir, metric, num)
        for path in (stem.with_suffix(".txt"), stem.with_suffix(".png"), record_path(stem)):
            check_writable(path)


def score_snapshot(evaluator: Evaluator, path: Path, labels: np.ndarray | None, kimg: int,
                   metrics: list[str]) -> dict[str, float]:
    source = SnapshotSource(path, seed=evaluator.settings.seed, device=str(evaluator.device))
    if labels is not None and source.Gs.label_size:
        source.labels = labels[:, :source.Gs.label_size]
    return evaluator.score(source, label=f"{kimg:06d}", metrics=metrics)


@dataclass
class Snapshot:
    kimg: int
    path: Path
    sha256: str


@dataclass
class MetricPlan:
    """What one metric keeps from its record and what it still has to score."""

    metric: str
    stem: Path
    record: MetricRecord
    todo: list[Snapshot] = field(default_factory=list)
    changed: bool = False  # the files differ from what the record and the present snapshots call for

    @property
    def up_to_date(self) -> bool:
        return not self.todo and bool(self.record.reals)


def metric_identity(metric: str, settings: Settings, num: int, real_passes: int, real_key: str,
                    resolution: int, weights_sha: str | None) -> dict:
    """Every setting a metric's values depend on: the common ones, the registry's list for the metric, and the
    Inception weights' sha256 for the metrics that use them."""
    spec = registry.get(metric)
    identity = {"metric": metric, "num": num, "seed": settings.seed, "minibatch": settings.minibatch,
                "real_passes": real_passes, "real_set": real_key, "resolution": resolution,
                **{name: getattr(settings, name) for name in spec.settings}}
    if spec.needs == registry.INCEPTION:
        identity["inception_weights_sha256"] = weights_sha
    return identity


def plan_metric(metric: str, stem: Path, identity: dict, columns: list[str], snapshots: list[Snapshot],
                real_passes: int, from_scratch_on_change: bool) -> MetricPlan:
    """Keep the rows of the record made with these settings whose snapshot is still present with the same
    content; the rest of the present snapshots are to be scored. `from_scratch_on_change`: any new row means
    every row is scored again (SWD's reference draws continue across rows, so one row depends on the others)."""
    stored = read_record(record_path(stem), metric, identity, columns)
    stored = stored if stored is not None and len(stored.reals) == real_passes else None
    present = {(s.path.name, s.sha256) for s in snapshots}
    kept = [row for row in stored.snapshots if (row.file, row.sha256) in present] if stored else []
    done = {(row.file, row.sha256) for row in kept}
    todo = [s for s in snapshots if (s.path.name, s.sha256) not in done]
    if from_scratch_on_change and todo:
        stored, kept, todo = None, [], list(snapshots)
    record = MetricRecord(metric, identity, columns, stored.reals if stored else [], kept)
    files_present = all(stem.with_suffix(suffix).is_file() for suffix in (".txt", ".png"))
    changed = stored is None or len(kept) != len(stored.snapshots) or not files_present
    return MetricPlan(metric, stem, record, sorted(todo, key=lambda s: s.kimg, reverse=True), changed)


def hash_snapshots(found: list[tuple[int, Path]]) -> list[Snapshot]:
    """The snapshots with the sha256 of their content: a snapshot replaced under the same name is scored again."""
    try:
        return [Snapshot(kimg, path, file_sha256(path)) for kimg, path in found]
    except OSError as error:
        raise PgmetricsError(f"cannot read ({error.strerror or error})", error.filename) from error


def evaluate_run(run_dir: Path, settings: Settings, real: str | None = None, real_passes: int = 1,
                 echo=print) -> list[Path]:
    """Write metric-<name>-<num>.txt, .png and .json for every requested metric; echo and return their paths
    (the .txt and .png).

    Incremental: a snapshot already scored with the same settings (its record's, metric-<name>-<num>.json) keeps
    its row; when every metric is up to date, no image is read (nor the real set) and one line per metric says
    so. The files are rewritten (atomically) after every snapshot, so an interrupted run keeps the rows it
    finished. A snapshot that cannot be scored (a corrupt file, another resolution, ...) is reported on its own
    line and left out; the others are scored and written, then a one-line error says how many were refused."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PgmetricsError("no such run directory", run_dir)
    check_settings(settings)
    if real_passes not in (1, 2):
        raise PgmetricsError(f"--real-passes must be 1 or 2, got {real_passes}")
    weights_sha = check_weights_available(settings)
    found = list_snapshots(run_dir)
    real_path, mirror = run_settings(run_dir, found, real)
    base = open_source(real_path)
    num = choose_num(replace(settings, num=settings.num if settings.num is not None else base.num_images))
    check_outputs(run_dir, settings.metrics, num)
    real_source = RealStream(base, mirror=mirror, seed=settings.seed)
    snapshots = hash_snapshots(found)
    real_key = real_source.content_key(real_passes * num)
    plans = []
    for metric in settings.metrics:
        identity = metric_identity(metric, settings, num, real_passes, real_key, base.resolution, weights_sha)
        plans.append(plan_metric(metric, metric_stem(run_dir, metric, num), identity,
                                 metric_names(metric, base.resolution), snapshots, real_passes,
                                 from_scratch_on_change=metric == "swd" and settings.swd_reference_rng))
    verified = None if weights_sha is None else inception.is_verified(weights_sha)
    written = [path for plan in plans if plan.up_to_date for path in report_up_to_date(plan, num, verified, echo)]
    pending = [plan for plan in plans if not plan.up_to_date]
    if pending:
        written += score_pending(pending, settings, num, real_passes, base, real_source, mirror, echo)
    return written


def report_up_to_date(plan: MetricPlan, num: int, weights_verified: bool | None, echo) -> list[Path]:
    """One line for a metric with nothing to score; its files are rewritten only when they are missing or list
    a snapshot that is gone (no image is read either way)."""
    files = [plan.stem.with_suffix(".txt"), plan.stem.with_suffix(".png")]
    if plan.changed:
        files = write_metric_files(plan.stem, plan.metric, num, plan.record, weights_verified)
    echo(f"{files[0]}: up to date ({len(plan.record.snapshots)} snapshots)")
    return files


def score_reals(evaluator: Evaluator, plans: list[MetricPlan], real_source: RealStream, num: int,
                real_passes: int, seconds: float) -> None:
    """The Reals row (from the real statistics just made: `seconds`) and, with two passes, the Reals2 row (the
    next `num` real images scored as a generated set) of the plans that have none."""
    metrics = [plan.metric for plan in plans]
    rows = [("Reals", seconds, reals_row(evaluator, metrics))]
    if real_passes == 2:
        started = time.time()
        values = evaluator.score(real_source, start=num, label="reals2", metrics=metrics)
        rows.append(("Reals2", time.time() - started, values))
    for plan in plans:
        plan.record.reals = [Row(title, taken, {name: values[name] for name in plan.record.columns})
                             for title, taken, values in rows]


def score_pending(plans: list[MetricPlan], settings: Settings, num: int, real_passes: int, base: ImageSource,
                  real_source: RealStream, mirror: bool, echo) -> list[Path]:
    """Score what the plans lack: the real statistics, the Reals rows where they are not kept, then every
    snapshot still to score (newest first, each only for the metrics that lack it)."""
    metrics = [plan.metric for plan in plans]
    fresh = [plan for plan in plans if not plan.record.reals]
    if base.num_images is not None and real_passes * num > base.num_images:
        echo(f"note: {real_passes} x {num} real images asked, the set has {base.num_images}: the real stream "
             "repeats from the start, as the official evaluation's did")
    if mirror:
        echo("note: the run trained with mirror augmentation: a random half of the real images are mirrored, "
             "as the official evaluation did")
    started = time.time()
    evaluator = Evaluator(real_source, replace(settings, metrics=metrics, score_reals=bool(fresh)), num)
    weights_verified = None if evaluator.weights_sha is None else inception.is_verified(evaluator.weights_sha)
    if fresh:
        score_reals(evaluator, fresh, real_source, num, real_passes, time.time() - started)
    labels = real_labels(base, (real_passes - 1) * num, num)
    todo = sorted({s.path: s for plan in plans for s in plan.todo}.values(), key=lambda s: s.kimg, reverse=True)
    refused: list[Path] = []
    written: list[Path] = []
    for snapshot in todo:
        wanting = [plan for plan in plans if snapshot in plan.todo]
        started = time.time()
        try:
            values = score_snapshot(evaluator, snapshot.path, labels, snapshot.kimg, [p.metric for p in wanting])
        except PgmetricsError as error:
            echo(f"{snapshot.kimg:06d} refused: {error}")
            refused.append(snapshot.path)
            continue
        seconds = time.time() - started
        for plan in wanting:
            row_values = {name: values[name] for name in plan.record.columns}
            plan.record.snapshots.append(Row(f"{snapshot.kimg}", seconds, row_values, snapshot.kimg,
                                             snapshot.path.name, snapshot.sha256))
            plan.changed = True
        echo(f"{snapshot.kimg:06d} " + " ".join(f"{name}={values[name]:.4f}" for plan in wanting
                                                for name in plan.record.columns))
        written = write_all(plans, num, weights_verified)
    if not todo or not written:
        written = write_all([plan for plan in plans if plan.record.snapshots], num, weights_verified)
    for file in written:
        echo(str(file))
    if refused:
        scored = len(todo) - len(refused)
        kept = (f"the metric files hold the other {scored}" if scored else
                "the metric files keep their earlier rows" if written else "no metric file was written")
        raise PgmetricsError(f"{len(refused)} of {len(todo)} snapshots could not be scored (said above); "
                             f"{kept}", plans[0].stem.parent)
    return written


def write_all(plans: list[MetricPlan], num: int, weights_verified: bool | None) -> list[Path]:
    return [file for plan in plans for file in write_metric_files(plan.stem, plan.metric, num, plan.record,
                                                                  weights_verified)]
