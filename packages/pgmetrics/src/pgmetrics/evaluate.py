"""Score every snapshot of a training run, as the official util_scripts.evaluate_metrics did.

One `metric-<name>-<num>.txt` per metric in the official table format (header, '---' line, a 'Reals' row, an
optional 'Reals2' row, then one row per snapshot, newest first, labelled by kimg), and `metric-<name>-<num>.png`,
the metric over kimg.

Matches the official code: the Reals row is each metric's `end('reals')`, i.e. the real set scored as if it were
the generated one (SWD and FID of the reals against themselves, IS and MS-SSIM of the reals); Reals2 is the
next `num` images of the real stream in 'fakes' mode (two disjoint real subsets: the noise floor). The real
stream repeats from the start when the set runs out (the official dataset iterator repeats: CelebA-HQ's 30000
images give 16384 + 16384 for SWD's two passes) and, when the run trained with mirror augmentation, flips a
random half of the real images (official misc.apply_mirror_augment; seeded here).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pgdata.progress import format_time
from pgmetrics import fid, inception_score, kid, swd
from pgmetrics.compare import Evaluator, Settings, check_settings, choose_num, format_value
from pgmetrics.errors import PgmetricsError
from pgmetrics.output import check_folder_writable, check_writable, write_text
from pgmetrics.plot import plot_series
from pgmetrics.sources import ImageSource, SnapshotSource, open_source, read_run_config

SNAPSHOT_PATTERN = re.compile(r"network-snapshot-(\d+)\.pt$")


def count_label(num: int) -> str:
    """16384 -> '16k', 50000 -> '50k' (the official log names metric-swd-16k.txt, metric-fid-50k.txt)."""
    if num % 1000 == 0:
        return f"{num // 1000}k"
    if num % 1024 == 0:
        return f"{num // 1024}k"
    return str(num)


def list_snapshots(run_dir: Path) -> list[tuple[int, Path]]:
    found = sorted((int(m.group(1)), p) for p in run_dir.iterdir() if (m := SNAPSHOT_PATTERN.match(p.name)))
    if not found:
        raise PgmetricsError("no network-snapshot-NNNNNN.pt files", run_dir)
    return found


def metric_names(metric: str, resolution: int) -> list[str]:
    return {"swd": [f"SWDx1e3_{r}" for r in swd.swd_resolutions(resolution)] + ["SWDx1e3_avg"],
            "msssim": ["MS-SSIM"], "fid": ["FID"], "is": ["IS_mean", "IS_std"],
            "kid": ["KID_mean", "KID_std"]}[metric]


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


def reals_row(evaluator: Evaluator) -> dict[str, float]:
    """The official 'Reals' row, each metric's end('reals'): the reals scored against their own statistics.

    SWD: the stored descriptors against themselves (exactly 0); FID: the real statistics against themselves
    (about 0: only the matrix square root's rounding); IS and MS-SSIM: the real images' own values. KID (not an
    official metric) follows the same rule: the real features against themselves (about 0).
    """
    out: dict[str, float] = {}
    metrics = evaluator.metrics
    if "swd" in metrics:
        out.update(swd.swd_metrics([0.0] * len(swd.swd_resolutions(evaluator.resolution)), evaluator.resolution))
    if "msssim" in metrics:
        out["MS-SSIM"] = evaluator.real_msssim
    features = evaluator.real_features
    if "fid" in metrics:
        out["FID"] = fid.fid_from_features(features, features)
    if "kid" in metrics:
        out["KID_mean"], out["KID_std"] = kid.kid_from_features(features, features, evaluator.settings.kid_subsets,
                                                                evaluator.settings.kid_subset_size)
    if "is" in metrics:
        out["IS_mean"], out["IS_std"] = inception_score.inception_score(evaluator.real_logits,
                                                                        evaluator.settings.is_splits)
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


def write_metric_files(stem: Path, metric: str, names: list[str], num: int,
                       rows: list[tuple[str, float, dict[str, float]]], kimgs: list[int]) -> list[Path]:
    """One metric's table (the Reals rows, then the snapshots as scored: newest first) and its plot, each
    written atomically. `rows` ends with one row per entry of `kimgs`."""
    lines = header_lines(names) + [row_line(t, s, names, v) for t, s, v in rows] + [""]
    table = write_text(stem.with_suffix(".txt"), "\n".join(lines) + "\n")
    snapshot_rows = rows[len(rows) - len(kimgs):]
    order = np.argsort(kimgs)
    series = {name: [snapshot_rows[i][2][name] for i in order] for name in names if not name.endswith("_std")}
    plot = plot_series(stem.with_suffix(".png"), f"{metric} ({count_label(num)} images)",
                       [kimgs[i] for i in order], series)
    return [table, plot]


def check_outputs(run_dir: Path, metrics: list[str], num: int) -> None:
    """Every file evaluate will write can be written: checked before any image is read."""
    check_folder_writable(run_dir)
    for metric in metrics:
        for suffix in (".txt", ".png"):
            check_writable(metric_stem(run_dir, metric, num).with_suffix(suffix))


def score_snapshot(evaluator: Evaluator, path: Path, labels: np.ndarray | None, kimg: int) -> dict[str, float]:
    source = SnapshotSource(path, seed=evaluator.settings.seed, device=str(evaluator.device))
    if labels is not None and source.Gs.label_size:
        source.labels = labels[:, :source.Gs.label_size]
    return evaluator.score(source, label=f"{kimg:06d}")


def evaluate_run(run_dir: Path, settings: Settings, real: str | None = None, real_passes: int = 1,
                 echo=print) -> list[Path]:
    """Write metric-<name>-<num>.txt and .png for every requested metric; echo and return the written paths.

    The files are rewritten (atomically) after every snapshot, so an interrupted run keeps the rows it finished.
    A snapshot that cannot be scored (a corrupt file, another resolution, ...) is reported on its own line and
    left out; the others are scored and written, then a one-line error says how many were refused (exit 1)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PgmetricsError("no such run directory", run_dir)
    check_settings(settings)
    snapshots = list_snapshots(run_dir)
    real_path, mirror = run_settings(run_dir, snapshots, real)
    base = open_source(real_path)
    settings = replace(settings, score_reals=True)
    num = choose_num(replace(settings, num=settings.num if settings.num is not None else base.num_images))
    check_outputs(run_dir, settings.metrics, num)
    if base.num_images is not None and real_passes * num > base.num_images:
        echo(f"note: {real_passes} x {num} real images asked, the set has {base.num_images}: the real stream "
             "repeats from the start, as the official evaluation's did")
    if mirror:
        echo("note: the run trained with mirror augmentation: a random half of the real images are mirrored, "
             "as the official evaluation did")
    real_source = RealStream(base, mirror=mirror, seed=settings.seed)
    started = time.time()
    evaluator = Evaluator(real_source, settings, num)
    rows: list[tuple[str, float, dict[str, float]]] = [("Reals", time.time() - started, reals_row(evaluator))]
    if real_passes == 2:
        started = time.time()
        values = evaluator.score(real_source, start=num, label="reals2")
        rows.append(("Reals2", time.time() - started, values))
    labels = real_labels(base, (real_passes - 1) * num, num)
    shown = [name for metric in settings.metrics for name in metric_names(metric, evaluator.resolution)]
    kimgs: list[int] = []
    refused: list[Path] = []
    written: list[Path] = []
    for kimg, path in reversed(snapshots):
        started = time.time()
        try:
            values = score_snapshot(evaluator, path, labels, kimg)
        except PgmetricsError as error:
            echo(f"{kimg:06d} refused: {error}")
            refused.append(path)
            continue
        rows.append((f"{kimg}", time.time() - started, values))
        kimgs.append(kimg)
        echo(f"{kimg:06d} " + " ".join(f"{name}={values[name]:.4f}" for name in shown))
        written = [file for metric in settings.metrics
                   for file in write_metric_files(metric_stem(run_dir, metric, num), metric,
                                                  metric_names(metric, evaluator.resolution), num, rows, kimgs)]
    for file in written:
        echo(str(file))
    if refused:
        kept = f"the metric files hold the other {len(kimgs)}" if kimgs else "no metric file was written"
        raise PgmetricsError(f"{len(refused)} of {len(snapshots)} snapshots could not be scored (said above); "
                             f"{kept}", run_dir)
    return written
