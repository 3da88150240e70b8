"""Orchestration: stream a real set once (or load its cached statistics), then score any number of fake sets.

Mirrors the official evaluate_metrics: every metric sees the same uint8 RGB minibatches (grey is tiled to RGB),
the reals are fed first, then each fake set; in SWD reference mode the numpy RandomState stream continues across
passes exactly as the official global RNG did (after the official noise warm-up's draws only with
swd_official_warmup). What each metric computes from a pass is in the registry (pgmetrics.registry).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from pgdata.common.device import select_device
from pgdata.common.images import to_uint8
from pgmetrics import cache, inception, ms_ssim, registry, swd
from pgmetrics.errors import PgmetricsError
from pgmetrics.settings import Settings, check_count, check_settings
from pgmetrics.sources import ImageSource, pixel_digest, update_pixels

FORMATS = {"SWD": "%-13.4f", "MS-SSIM": "%-10.4f", "FID": "%-10.4f", "IS": "%-10.4f", "KID": "%-12.6f"}


def to_rgb(batch: np.ndarray, resolution: int, resize: bool) -> np.ndarray:
    """Tile grey to RGB (as the official evaluation did) and optionally resize (antialiased bilinear, then the
    toolkit's float -> uint8 conversion: rint half to even, clipped)."""
    if batch.shape[1] == 1:
        batch = np.repeat(batch, 3, axis=1)
    if batch.shape[-1] != resolution:
        if not resize:
            raise PgmetricsError(f"image size {batch.shape[-1]} differs from the real set's {resolution} "
                                 "(pass --resize)")
        values = F.interpolate(torch.from_numpy(np.ascontiguousarray(batch)).float(), size=(resolution, resolution),
                               mode="bilinear", align_corners=False, antialias=True)
        batch = to_uint8(values.numpy(), drange=(0, 255))
    return batch


def progress(total: int | None, description: str, quiet: bool):
    from pgdata.progress import progress_bar

    return progress_bar(total, description, unit="img", quiet=quiet)


class SetPass:
    """What one pass over a set collects from each uint8 RGB minibatch: SWD descriptors, Inception pool_3 and
    logits, MS-SSIM pair sums (each only when asked for)."""

    def __init__(self, swd_set: swd.DescriptorSet | None, network: inception.InceptionV3TF | None,
                 msssim_device: torch.device | None):
        self.swd_set, self.network, self.msssim_device = swd_set, network, msssim_device
        self.pool: list[np.ndarray] = []
        self.logits: list[np.ndarray] = []
        self.msssim_sum, self.msssim_pairs, self.count = 0.0, 0, 0

    def run(self, source: ImageSource, batch_size: int, start: int, num: int, resolution: int, resize: bool,
            label: str, quiet: bool, digest=None) -> SetPass:
        """Feed `num` images of `source` from `start`; `digest`, when given, also receives their pixels."""
        with progress(num, label, quiet) as bar:
            for batch in source.iter_batches(batch_size, start, start + num):
                if digest is not None:
                    update_pixels(digest, batch)
                self.feed(to_rgb(batch, resolution, resize))
                bar.update(len(batch))
        if self.count < num:
            where = f" from index {start}" if start else ""
            raise PgmetricsError(f"has only {self.count} images{where}, {num} needed", source.name)
        return self

    def feed(self, batch: np.ndarray) -> None:
        self.count += len(batch)
        if self.swd_set is not None:
            self.swd_set.feed(batch)
        if self.network is not None:
            pool, logits = inception.extract_features(self.network, batch)
            self.pool.append(pool)
            self.logits.append(logits)
        if self.msssim_device is not None:
            value, pairs = ms_ssim.ms_ssim_of_batches([batch], self.msssim_device)
            self.msssim_sum += value * pairs
            self.msssim_pairs += pairs

    @property
    def msssim(self) -> float:
        return self.msssim_sum / self.msssim_pairs


class Evaluator:
    """Real-set statistics for the requested metrics, then `score(fake)` per generated set."""

    def __init__(self, real: ImageSource, settings: Settings, num: int):
        self.real, self.settings, self.num = real, settings, num
        self.metrics = settings.metrics
        self.device = select_device(settings.device, PgmetricsError)
        self.resolution = real.resolution
        self.timings: dict[str, float] = {}
        if "swd" in self.metrics:
            swd.swd_resolutions(self.resolution)
            if real.channels not in (1, 3):
                raise PgmetricsError(f"SWD needs RGB or grey images, got {real.channels} channels", real.name)
        self.batch_size = settings.minibatch or (swd.official_minibatch(self.resolution)
                                                 if settings.swd_reference_rng else 64)
        self.network = None
        self.weights_sha: str | None = None
        if registry.needs_inception(self.metrics):
            self.network, self.weights_sha = inception.load_inception(
                settings.inception_weights, self.device, verify=not settings.allow_unverified_weights)
        self.rng = swd.make_rng(settings.seed, settings.swd_reference_rng)
        if settings.swd_official_warmup and "swd" in self.metrics:
            self.rng.official_warmup(self.batch_size, swd.swd_resolutions(self.resolution))
        self.real_features: np.ndarray | None = None
        self.real_logits: np.ndarray | None = None
        self.real_descriptors: list[torch.Tensor] | None = None
        self.real_msssim: float | None = None
        self._load_or_compute_reals()

    # --- reals ------------------------------------------------------------------------------------------------

    def _keys(self, fingerprint: str) -> dict[str, str]:
        base = {"num": self.num, "resolution": self.resolution}
        return {
            "inception": cache.cache_key("inception", fingerprint, {**base, "weights": self.weights_sha}),
            "swd": cache.cache_key("swd", fingerprint, {
                **base, "seed": self.settings.seed, "reference_rng": self.settings.swd_reference_rng,
                "official_warmup": self.settings.swd_official_warmup,
                "minibatch": self.batch_size if self.settings.swd_reference_rng else None}),
        }

    def _cached(self, key: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray] | None:
        """A stored entry whose arrays have the float32 shapes these statistics must have (else it is ignored)."""
        stored = cache.load(key)
        if stored is None or any(name not in stored or stored[name].shape != shape or stored[name].dtype != np.float32
                                 for name, shape in shapes.items()):
            return None
        return stored

    def _save(self, key: str, arrays: dict[str, np.ndarray], what: str) -> None:
        """Store real-set statistics, unless they are not finite (such values are never reused)."""
        if not cache.all_finite(arrays):
            self.settings.notes.append(f"{what} of the real set are not finite (constant images?): not cached")
            return
        cache.save(key, arrays)

    def _load_or_compute_reals(self) -> None:
        need_swd = "swd" in self.metrics
        need_features = bool({"fid", "kid"} & set(self.metrics))
        need_logits = "is" in self.metrics and self.settings.score_reals
        fingerprint = None
        if self.settings.use_cache and (need_swd or need_features or need_logits):
            fingerprint = self.real.fingerprint(self.num)
        keys = self._keys(fingerprint) if fingerprint else {}
        sizes = swd.swd_resolutions(self.resolution) if need_swd else []
        if keys and (need_features or need_logits):
            shapes = {"pool_3": (self.num, inception.POOL_FEATURES)}
            if need_logits:
                shapes["logits_unbiased"] = (self.num, inception.LOGITS)
            stored = self._cached(keys["inception"], shapes)
            if stored is not None:
                self.real_features = stored["pool_3"]
                self.real_logits = stored.get("logits_unbiased")
                self.settings.notes.append("real Inception features from the cache")
        if keys and need_swd:
            stored = self._cached(keys["swd"], {f"level{i}": (self.num * swd.PATCHES_PER_IMAGE, swd.DESCRIPTOR_SIZE)
                                                for i in range(len(sizes))})
            if stored is not None:
                self.real_descriptors = [torch.from_numpy(stored[f"level{i}"]).to(self.device)
                                         for i in range(len(sizes))]
                self.settings.notes.append("real SWD descriptors from the cache")
                if self.settings.swd_reference_rng:
                    for begin in range(0, self.num, self.batch_size):
                        for size in sizes:
                            self.rng.positions(min(self.batch_size, self.num - begin) * swd.PATCHES_PER_IMAGE,
                                               size, "reals")
        feed_swd = need_swd and self.real_descriptors is None
        feed_features = (need_features or need_logits) and self.real_features is None
        feed_msssim = "msssim" in self.metrics and (self.settings.msssim_reals or self.settings.score_reals)
        if feed_swd or feed_features or feed_msssim:
            started = time.time()
            collected = SetPass(swd.DescriptorSet(self.resolution, self.rng, "reals", self.device) if feed_swd else None,
                                self.network if feed_features else None, self.device if feed_msssim else None)
            digest = pixel_digest(self.real.channels, self.resolution) if (
                keys and self.real.fingerprint_of_pixels) else None
            collected.run(self.real, self.batch_size, 0, self.num, self.resolution, False, "reals",
                          self.settings.quiet, digest=digest)
            if digest is not None and digest.hexdigest() != fingerprint:
                raise PgmetricsError("changed while it was being read (the sha256 of the images read differs "
                                     "from the one taken first); run again", self.real.name)
            if feed_swd:
                self.real_descriptors = collected.swd_set.finish()
                if keys:
                    self._save(keys["swd"], {f"level{i}": d.cpu().numpy() for i, d in enumerate(self.real_descriptors)},
                               "SWD descriptors")
            if feed_features:
                self.real_features, self.real_logits = np.concatenate(collected.pool), np.concatenate(collected.logits)
                if keys:
                    self._save(keys["inception"], {"pool_3": self.real_features, "logits_unbiased": self.real_logits},
                               "Inception features")
            if feed_msssim:
                self.real_msssim = collected.msssim
            self.timings["reals_s"] = round(time.time() - started, 3)
        if need_swd:
            self.rng.end_pass(len(sizes))

    # --- fakes ------------------------------------------------------------------------------------------------

    def score(self, fake: ImageSource, start: int = 0, label: str = "fakes",
              metrics: list[str] | None = None) -> dict[str, float]:
        """Metrics of `num` images of `fake` (from index `start`) against the stored real statistics: every
        metric of the settings, or only `metrics` (evaluate scores a snapshot only for the metrics that lack it)."""
        settings = self.settings
        metrics = self.metrics if metrics is None else metrics
        rng = self.rng if settings.swd_reference_rng else swd.FastRng(settings.seed)
        if fake.channels not in (1, 3):
            raise PgmetricsError(f"expected RGB or grey images, got {fake.channels} channels", fake.name)
        if fake.resolution != self.resolution and not settings.resize:
            raise PgmetricsError(f"images are {fake.resolution}x{fake.resolution}, the real set's are "
                                 f"{self.resolution}x{self.resolution} (pass --resize to resize them)", fake.name)
        started = time.time()
        collected = SetPass(
            swd.DescriptorSet(self.resolution, rng, "fakes", self.device) if "swd" in metrics else None,
            self.network if registry.needs_inception(metrics) else None,
            self.device if "msssim" in metrics else None,
        ).run(fake, self.batch_size, start, self.num, self.resolution, settings.resize, label, settings.quiet)
        out: dict[str, float] = {}
        for metric in (name for name in registry.METRICS if name in metrics):  # the registry's order
            out.update(registry.get(metric).score(self, collected, rng))
        self.timings[f"{label}_s"] = round(time.time() - started, 3)
        return out


def choose_num(settings: Settings, *sources: ImageSource) -> int:
    """--num, else every image of the smallest finite set; each set must have enough, each metric its minimum."""
    finite = [s.num_images for s in sources if s.num_images is not None]
    num = settings.num if settings.num is not None else (min(finite) if finite else None)
    if num is None:
        raise PgmetricsError("both sets are generated: give --num")
    for source in sources:
        if source.num_images is not None and source.num_images < num:
            raise PgmetricsError(f"has only {source.num_images} images, --num {num} asked", source.name)
    check_count(settings, num)
    return num


def compare(real: ImageSource, fake: ImageSource, settings: Settings) -> dict:
    """The JSON object of `pgmetrics compare`: `metrics` plus settings, counts, notes and timings."""
    check_settings(settings)
    num = choose_num(settings, real, fake)
    for source, role in ((real, "REAL"), (fake, "FAKE")):
        if source.channels == 1:
            settings.notes.append(f"{role} is greyscale: tiled to RGB as the official evaluation did")
    if fake.resolution != real.resolution and settings.resize:
        settings.notes.append(f"FAKE resized from {fake.resolution} to {real.resolution}")
    evaluator = Evaluator(real, settings, num)
    metrics = evaluator.score(fake)
    return {
        "metrics": metrics,
        "num_images": num,
        "resolution": real.resolution,
        "real": real.describe(),
        "fake": fake.describe(),
        "settings": {"seed": settings.seed, "swd_reference_rng": settings.swd_reference_rng,
                     "swd_official_warmup": settings.swd_official_warmup,
                     "minibatch": evaluator.batch_size, "device": str(evaluator.device),
                     "inception_weights_sha256": evaluator.weights_sha,
                     "inception_weights_verified": weights_verified(evaluator.weights_sha), "is_splits": settings.is_splits,
                     "kid_subsets": settings.kid_subsets, "kid_subset_size": settings.kid_subset_size},
        "notes": settings.notes,
        "timings": evaluator.timings,
    }


def weights_verified(sha: str | None) -> bool | None:
    """Whether the Inception weights used were the TF-Inception ones (None: no Inception metric)."""
    return None if sha is None else inception.is_verified(sha)


def format_value(name: str, value: float) -> str:
    key = "SWD" if name.startswith("SWD") else name.split("_")[0]
    return FORMATS.get(key, "%-12.6f") % value
