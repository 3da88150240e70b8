"""What every generation command does first: load Gs at the snapshot's lod on a deterministic device, and check
the grid, shrink and seed options against it, each problem in one line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pgdata.common.device import select_device
from pgtrain import latents
from pgtrain.errors import PgtrainError
from pgtrain.generate import make_deterministic
from pgtrain.networks import Generator


@dataclass(frozen=True)
class LoadedGenerator:
    """Gs ready to run, and the lod it runs at (the official tools run Gs at its stored lod)."""

    Gs: Generator
    lod: float
    path: Path


def load_generator(path: Path, device: str, lod: float | None = None) -> LoadedGenerator:
    """Gs of a pgtrain snapshot (ours or `pgtrain import-tf` output) on `device`, at its stored lod unless given."""
    from pgtrain.checkpoint import build_networks, load_snapshot, snapshot_lod

    torch_device = select_device(device, error_type=PgtrainError)
    make_deterministic(torch_device)
    snapshot = load_snapshot(path)
    _, _, Gs = build_networks(snapshot, device=torch_device)
    Gs.eval()
    return LoadedGenerator(Gs, snapshot_lod(snapshot) if lod is None else lod, path)


def parse_grid(text: str) -> tuple[int, int]:
    """'WxH' -> (columns, rows), both at least 1."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", text)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise PgtrainError(f"--grid must be WxH with W, H >= 1 (e.g. 4x3), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def check_shrink(shrink: int, Gs: Generator, path: Path) -> int:
    """The official out_shrink pools whole blocks: the factor must divide the resolution."""
    if shrink < 1 or Gs.resolution % shrink:
        raise PgtrainError(f"--shrink {shrink}: must be a divisor of {path}'s resolution {Gs.resolution} "
                           f"(e.g. 1, 2, 4)")
    return shrink


def check_positive(name: str, value: float) -> None:
    """One line for a count or duration that must be above zero."""
    if not value > 0:
        raise PgtrainError(f"{name} must be positive, got {value}")


def check_seed(seed: int, option: str = "--seed") -> int:
    """numpy's RandomState takes seeds in [0, 2**32 - 1]: anything else in one line naming the option."""
    try:
        return latents.check_seed(seed)
    except ValueError as error:
        raise PgtrainError(f"{option}: {error}") from error
