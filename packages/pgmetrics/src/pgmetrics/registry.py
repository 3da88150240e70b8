"""The metric registry: every metric's name, what it reads, its official image count, the settings its values
depend on, its minimum count, its columns and the functions that score it, so that adding a metric touches only
this table (as stylegan2-ada's metric_main and torch-fidelity's registry do).

A metric reads either pixels (SWD's descriptors, MS-SSIM's pairs) or the TF-Inception network's outputs (FID,
IS, KID). The scoring functions take the Evaluator (its real-set statistics) and the SetPass of the generated
images (pgmetrics.compare); the `reals` function gives the official 'Reals' row, each metric's end('reals').
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pgmetrics import fid, inception_score, kid, swd

if TYPE_CHECKING:
    from pgmetrics.settings import Settings

PIXELS = "pixels"
INCEPTION = "inception"
Values = dict[str, float]


@dataclass(frozen=True)
class Metric:
    """One metric. `settings` names the Settings fields its values depend on (beyond num, seed, the real set and,
    for Inception metrics, the weights): a change of any of them means the metric is scored again."""

    name: str
    title: str
    needs: str  # PIXELS or INCEPTION
    needs_real_statistics: bool  # compared with the reals (SWD, FID, KID) rather than a property of one set
    official_num: int  # images per set in the official configs (metric-<name>-<label>.txt)
    settings: tuple[str, ...]
    minimum: Callable[[Settings], int]
    columns: Callable[[int], list[str]]  # the resolution -> the table's column names
    score: Callable[[Any, Any, Any], Values]  # (evaluator, the generated set's SetPass, SWD's rng) -> values
    reals: Callable[[Any], Values]  # evaluator -> the official 'Reals' row


def _swd_columns(resolution: int) -> list[str]:
    return [f"SWDx1e3_{size}" for size in swd.swd_resolutions(resolution)] + ["SWDx1e3_avg"]


def _swd_score(evaluator, collected, rng) -> Values:
    distances = swd.swd_levels(evaluator.real_descriptors, collected.swd_set.finish(), rng)
    return swd.swd_metrics(distances, evaluator.resolution)


def _swd_reals(evaluator) -> Values:
    """The stored descriptors against themselves: exactly 0 at every level."""
    return swd.swd_metrics([0.0] * len(swd.swd_resolutions(evaluator.resolution)), evaluator.resolution)


def _msssim_score(evaluator, collected, rng) -> Values:
    out = {"MS-SSIM": collected.msssim}
    if evaluator.real_msssim is not None:
        out["MS-SSIM_reals"] = evaluator.real_msssim
    return out


def _fid_score(evaluator, collected, rng) -> Values:
    return {"FID": fid.fid_from_features(evaluator.real_features, np.concatenate(collected.pool))}


def _fid_reals(evaluator) -> Values:
    """The real statistics against themselves: about 0 (only the matrix square root's rounding)."""
    return {"FID": fid.fid_from_features(evaluator.real_features, evaluator.real_features)}


def _is_score(evaluator, collected, rng) -> Values:
    mean, std = inception_score.inception_score(np.concatenate(collected.logits), evaluator.settings.is_splits)
    return {"IS_mean": mean, "IS_std": std}


def _is_reals(evaluator) -> Values:
    mean, std = inception_score.inception_score(evaluator.real_logits, evaluator.settings.is_splits)
    return {"IS_mean": mean, "IS_std": std}


def _kid_values(evaluator, fake_features: np.ndarray) -> Values:
    settings = evaluator.settings
    mean, std = kid.kid_from_features(evaluator.real_features, fake_features, settings.kid_subsets,
                                      settings.kid_subset_size)
    return {"KID_mean": mean, "KID_std": std}


REGISTRY: dict[str, Metric] = {metric.name: metric for metric in (
    Metric("swd", "SWD", PIXELS, True, swd.OFFICIAL_NUM_IMAGES,
           ("swd_reference_rng", "swd_official_warmup"), lambda settings: 1, _swd_columns, _swd_score, _swd_reals),
    Metric("msssim", "MS-SSIM", PIXELS, False, 20000, (), lambda settings: 2, lambda resolution: ["MS-SSIM"],
           _msssim_score, lambda evaluator: {"MS-SSIM": evaluator.real_msssim}),
    Metric("fid", "FID", INCEPTION, True, 50000, (), lambda settings: fid.MIN_IMAGES, lambda resolution: ["FID"],
           _fid_score, _fid_reals),
    Metric("is", "IS", INCEPTION, False, 50000, ("is_splits",), lambda settings: settings.is_splits,
           lambda resolution: ["IS_mean", "IS_std"], _is_score, _is_reals),
    Metric("kid", "KID", INCEPTION, True, 50000, ("kid_subsets", "kid_subset_size"),
           lambda settings: settings.kid_subset_size, lambda resolution: ["KID_mean", "KID_std"],
           lambda evaluator, collected, rng: _kid_values(evaluator, np.concatenate(collected.pool)),
           lambda evaluator: _kid_values(evaluator, evaluator.real_features)),
)}
METRICS = tuple(REGISTRY)
INCEPTION_METRICS = frozenset(name for name, metric in REGISTRY.items() if metric.needs == INCEPTION)


def get(name: str) -> Metric:
    return REGISTRY[name]


def needs_inception(metrics: list[str]) -> bool:
    return any(REGISTRY[name].needs == INCEPTION for name in metrics)
