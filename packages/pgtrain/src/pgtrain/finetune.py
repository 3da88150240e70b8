"""Fine-tuning: a new run that starts from the networks of any snapshot (the official resume_run_id /
resume_snapshot / resume_kimg).

Unlike `--resume` (the same run, continued bit for bit), the new run keeps only the three networks: Adam starts
afresh (the official trainer builds new optimizers), the data order and random draws start from the seed, and
the schedule starts at the given kimg. The networks keep their own architecture (a pgtrain snapshot's, or an
imported official network's static kwargs), with any G.* / D.* setting of the presets or --set on top, so an
fp16 preset's PixelNorm epsilon still applies; the dataset must have their image shape and label count.
"""

from __future__ import annotations

import copy

from pgtrain.checkpoint import Snapshot
from pgtrain.config import DATASET_KEYWORDS, TrainingConfig
from pgtrain.errors import PgtrainError


def adopt_networks(config: TrainingConfig, snapshot: Snapshot) -> TrainingConfig:
    """A copy of `config` whose G / D keywords are the snapshot's architecture, overlaid by the config's own."""
    adopted = copy.deepcopy(config)
    for role in ("G", "D"):
        architecture = {key: value for key, value in snapshot.network_kwargs[role].items()
                        if key not in DATASET_KEYWORDS}
        setattr(adopted, role, {**architecture, **getattr(config, role)})
    return adopted


def check_dataset_fits(snapshot: Snapshot, dataset_kwargs: dict[str, int]) -> None:
    """Refuse a dataset whose images or labels the snapshot's networks were not built for."""
    network = snapshot.network_kwargs["G"]
    wanted = {key: network.get(key) for key in DATASET_KEYWORDS}
    have = {key: dataset_kwargs[key] for key in DATASET_KEYWORDS}
    if wanted != have:
        raise PgtrainError(f"{snapshot.path}: its networks are for {_shape(wanted)}, the dataset has {_shape(have)}; "
                           "fine-tuning needs a dataset of the same resolution, channels and label count")


def starting_kimg(snapshot: Snapshot, requested: float | None) -> float:
    """Where the schedule starts: as requested, else the snapshot's own kimg when it records one, else 0 (the
    official default resume_kimg)."""
    if requested is not None:
        if requested < 0:
            raise PgtrainError(f"the start kimg must be >= 0, got {requested}")
        return float(requested)
    recorded = (snapshot.metadata or {}).get("kimg")
    return float(recorded) if isinstance(recorded, (int, float)) and not isinstance(recorded, bool) else 0.0


def _shape(kwargs: dict[str, int | None]) -> str:
    return (f"{kwargs['num_channels']}x{kwargs['resolution']}x{kwargs['resolution']} images with "
            f"{kwargs['label_size']} labels")
