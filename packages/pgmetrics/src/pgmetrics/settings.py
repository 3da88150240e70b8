"""The settings of a comparison, their one defaults table (shared by the Python API and the command line), and the
checks that refuse, before any source is opened or any image read, what could only fail later."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from pgmetrics import inception, inception_score, kid, registry
from pgmetrics.errors import PgmetricsError

MAX_SEED = 2**32 - 1  # numpy's RandomState (SWD's reference draws, snapshot latents) takes 0 .. 2**32 - 1

DEFAULTS: dict[str, object] = {
    "num": None,  # None: every image of the (smallest finite) set
    "seed": 0,
    "swd_reference_rng": False,
    "swd_official_warmup": False,
    "minibatch": None,  # None: 64, or the official clip(8192 // resolution, 4, 256) with swd_reference_rng
    "resize": False,
    "device": "auto",
    "inception_weights": None,  # None: $PGMETRICS_INCEPTION_WEIGHTS, else the cache folder
    "allow_unverified_weights": False,
    "is_splits": inception_score.OFFICIAL_SPLITS,
    "kid_subsets": kid.DEFAULT_SUBSETS,
    "kid_subset_size": kid.DEFAULT_SUBSET_SIZE,
    "msssim_reals": False,
    "use_cache": True,
    "quiet": False,
}


@dataclass
class Settings:
    metrics: list[str]
    num: int | None = DEFAULTS["num"]
    seed: int = DEFAULTS["seed"]
    swd_reference_rng: bool = DEFAULTS["swd_reference_rng"]
    swd_official_warmup: bool = DEFAULTS["swd_official_warmup"]  # reference mode: the noise warm-up draws first
    minibatch: int | None = DEFAULTS["minibatch"]
    resize: bool = DEFAULTS["resize"]
    device: str = DEFAULTS["device"]
    inception_weights: str | None = DEFAULTS["inception_weights"]
    allow_unverified_weights: bool = DEFAULTS["allow_unverified_weights"]  # any weights that load and fit
    is_splits: int = DEFAULTS["is_splits"]
    kid_subsets: int = DEFAULTS["kid_subsets"]
    kid_subset_size: int = DEFAULTS["kid_subset_size"]
    msssim_reals: bool = DEFAULTS["msssim_reals"]
    score_reals: bool = False  # the real pass also yields every metric of the reals (evaluate's 'Reals' row)
    use_cache: bool = DEFAULTS["use_cache"]
    quiet: bool = DEFAULTS["quiet"]
    notes: list[str] = field(default_factory=list)


def make_settings(metrics: str | list[str], **overrides) -> Settings:
    """Checked settings from DEFAULTS and `overrides` (Settings field names), e.g.
    make_settings("swd,fid", num=16384, inception_weights="w.pth"); a wrong name or value is one PgmetricsError."""
    names = {item.name for item in fields(Settings)} - {"metrics", "notes", "score_reals"}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise PgmetricsError(f"unknown setting(s) {', '.join(unknown)}; choose from {', '.join(sorted(names))}")
    chosen = metrics if isinstance(metrics, str) else ",".join(metrics)
    return check_settings(replace(Settings(metrics=parse_metrics(chosen)), **overrides))


def parse_metrics(text: str) -> list[str]:
    names = [name.strip().lower().replace("-", "") for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in registry.REGISTRY]
    if unknown or not names:
        raise PgmetricsError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; "
                             f"choose from {', '.join(registry.METRICS)}")
    return list(dict.fromkeys(names))


def minimum_images(settings: Settings) -> dict[str, int]:
    return {name: metric.minimum(settings) for name, metric in registry.REGISTRY.items()}


def check_settings(settings: Settings) -> Settings:
    """Refuse, before any source is opened or any weight loaded, the settings that could only fail later: counts
    below 1, a seed numpy cannot take, --num below a metric's minimum, an odd count or minibatch for MS-SSIM."""
    for name, value, least in (("--num", settings.num, 1), ("--minibatch", settings.minibatch, 1),
                               ("--is-splits", settings.is_splits, 1), ("--kid-subsets", settings.kid_subsets, 1),
                               ("--kid-subset-size", settings.kid_subset_size, 2)):
        check_at_least(name, value, least)
    check_seed(settings.seed)
    if settings.swd_official_warmup and "swd" in settings.metrics and not settings.swd_reference_rng:
        raise PgmetricsError("--swd-official-warmup only applies with --swd-reference-rng")
    if settings.swd_reference_rng and settings.minibatch and settings.minibatch % 2 and "msssim" in settings.metrics:
        raise PgmetricsError("MS-SSIM needs an even --minibatch")
    if settings.num is not None:
        check_count(settings, settings.num)
    return settings


def check_at_least(option: str, value: int | None, least: int) -> None:
    if value is not None and value < least:
        raise PgmetricsError(f"{option} must be at least {least}, got {value}")


def check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise PgmetricsError(f"--seed must be in 0 .. {MAX_SEED}, got {seed}")


def check_count(settings: Settings, num: int) -> None:
    """Each requested metric's minimum, and MS-SSIM's pairs."""
    for metric, minimum in minimum_images(settings).items():
        if metric in settings.metrics and num < minimum:
            raise PgmetricsError(f"{metric} needs at least {minimum} images, got {num}")
    if "msssim" in settings.metrics and num % 2:
        raise PgmetricsError(f"MS-SSIM pairs images (0,1), (2,3), ...: --num must be even, got {num}")


def check_weights_available(settings: Settings) -> str | None:
    """The sha256 of the Inception weights when an Inception metric is asked (None otherwise), or one
    PgmetricsError, before any image work: the file is missing, or it is not the TF-Inception weights and
    `allow_unverified_weights` is off. Whether the file loads and fits is checked when it is loaded."""
    if not registry.needs_inception(settings.metrics):
        return None
    return inception.weights_sha256(settings.inception_weights, verify=not settings.allow_unverified_weights)
