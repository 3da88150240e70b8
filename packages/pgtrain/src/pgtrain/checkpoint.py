"""The one pgtrain snapshot format, shared by the trainer and the importer.

A snapshot is a `torch.save`d dict of tensors and plain Python data only, so that
`torch.load(path, weights_only=True)` reads it without executing anything:

    {"format": "pgtrain-snapshot/1",
     "network_kwargs": {"G": {...}, "D": {...}},      # Generator / Discriminator constructor kwargs
     "G": state_dict, "D": state_dict, "Gs": state_dict,
     "training_state": dict | None,                     # optimizers, counters, RNG ...: training-state files only
     "metadata": dict | None}                           # provenance: config, dataset, kimg, lod; importer ...

`pgtrain run` writes two kinds (pgtrain.training_state): light network snapshots (training_state None) and
training-state-NNNNNN.pt files that carry the full training state; import-tf writes network snapshots.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pgdata.common.atomic import atomic_file
from pgtrain.errors import PgtrainError
from pgtrain.networks import Discriminator, Generator

FORMAT = "pgtrain-snapshot/1"


@dataclass
class Snapshot:
    """A loaded snapshot: network constructor kwargs, the three state dicts and free-form extras."""

    network_kwargs: dict[str, dict[str, Any]]
    G_state: dict[str, torch.Tensor]
    D_state: dict[str, torch.Tensor]
    Gs_state: dict[str, torch.Tensor]
    training_state: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def save_snapshot(path: str | os.PathLike, *, network_kwargs: dict[str, dict[str, Any]],
                  G_state: dict[str, torch.Tensor], D_state: dict[str, torch.Tensor],
                  Gs_state: dict[str, torch.Tensor], training_state: dict[str, Any] | None = None,
                  metadata: dict[str, Any] | None = None) -> Path:
    """Write a snapshot atomically and durably (pgdata.common.atomic: a temporary name in the same folder,
    synced to disk, then renamed), so a crash or a full disk never leaves a half snapshot under its name."""
    path = Path(path)
    if set(network_kwargs) != {"G", "D"}:
        raise ValueError('network_kwargs must have exactly the keys "G" and "D"')
    payload = {
        "format": FORMAT,
        "network_kwargs": {key: dict(value) for key, value in network_kwargs.items()},
        "G": {name: tensor.detach().cpu() for name, tensor in G_state.items()},
        "D": {name: tensor.detach().cpu() for name, tensor in D_state.items()},
        "Gs": {name: tensor.detach().cpu() for name, tensor in Gs_state.items()},
        "training_state": training_state,
        "metadata": dict(metadata or {}),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, "wb", fsync=True) as file:
            torch.save(payload, file)
    except (OSError, RuntimeError) as error:  # torch's zip writer reports a full disk as a RuntimeError
        raise PgtrainError(f"{path}: cannot write the snapshot ({_write_failure(error)}); nothing was written "
                           "under this name and earlier snapshots are intact") from error
    return path


def _write_failure(error: OSError | RuntimeError) -> str:
    """The first line of why a write failed: the system's words, or torch's (at most 200 characters)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[:200]
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def check_archive(path: Path) -> None:
    """Every member of the zip archive against its CRC-32: torch.load does not check them, so a flipped byte in a
    tensor would otherwise load as a wrong (often NaN) weight."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise PgtrainError(f"{path}: not a readable pgtrain snapshot ({error})") from error
    if damaged is not None:
        raise PgtrainError(f"{path}: damaged snapshot (CRC mismatch in {damaged}); it cannot be trusted")


def check_finite(path: Path | None, states: dict[str, dict[str, torch.Tensor]]) -> None:
    """Refuse NaN or infinite weights: no run we write has them (non-finite steps are skipped)."""
    for network, state in states.items():
        for name, tensor in state.items():
            if not isinstance(tensor, torch.Tensor):
                raise PgtrainError(f"{path}: {network} entry {name} is not a tensor")
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise PgtrainError(f"{path}: {network} weight {name} holds NaN or infinite values; the snapshot "
                                   "is damaged (or comes from a diverged run)")


def load_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read a snapshot with `torch.load(weights_only=True)`; PgtrainError for a missing/corrupt/foreign file."""
    path = Path(path)
    if not path.is_file():
        raise PgtrainError(f"{path}: no such snapshot file")
    if not zipfile.is_zipfile(path):
        raise PgtrainError(f"{path}: not a pgtrain snapshot (not a torch.save zip archive; truncated or corrupt?)")
    check_archive(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt file; all mean "unreadable"
        text = str(error)
        if "Weights only load failed" in text:
            raise PgtrainError(f"{path}: refused: it holds objects other than tensors and plain data "
                               "(torch.load with weights_only=True failed)") from error
        reason = text.strip().splitlines()[0][:200] if text.strip() else type(error).__name__
        raise PgtrainError(f"{path}: not a readable pgtrain snapshot ({reason})") from error
    if not isinstance(payload, dict) or "format" not in payload:
        raise PgtrainError(f"{path}: not a pgtrain snapshot (no 'format' key)")
    if payload["format"] != FORMAT:
        raise PgtrainError(f"{path}: unsupported snapshot format {payload['format']!r} (expected {FORMAT!r})")
    try:
        kwargs = payload["network_kwargs"]
        states = [payload[key] for key in ("G", "D", "Gs")]
        if not (isinstance(kwargs, dict) and isinstance(kwargs.get("G"), dict) and isinstance(kwargs.get("D"), dict)
                and all(isinstance(state, dict) for state in states)):
            raise KeyError("network_kwargs/G/D/Gs")
    except KeyError as error:
        raise PgtrainError(f"{path}: incomplete pgtrain snapshot (missing or malformed {error})") from error
    check_finite(path, {"G": states[0], "D": states[1], "Gs": states[2]})
    return Snapshot(network_kwargs=kwargs, G_state=states[0], D_state=states[1], Gs_state=states[2],
                    training_state=payload.get("training_state"), metadata=payload.get("metadata") or {},
                    path=path)


def _load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, path: Path | None) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        raise PgtrainError(f"{path}: {what} weights do not fit its network_kwargs ({' '.join(first[:2])[:300]})") \
            from error


def build_networks(snapshot: Snapshot, device: str | torch.device = "cpu") -> tuple[Generator, Discriminator,
                                                                                   Generator]:
    """(G, D, Gs) built from the snapshot's kwargs with its weights; Gs has requires_grad off (it is the EMA)."""
    try:
        G = Generator(**snapshot.network_kwargs["G"])
        D = Discriminator(**snapshot.network_kwargs["D"])
        Gs = Generator(**snapshot.network_kwargs["G"])
    except (TypeError, ValueError) as error:
        raise PgtrainError(f"{snapshot.path}: invalid network_kwargs ({error})") from error
    _load_state(G, snapshot.G_state, "G", snapshot.path)
    _load_state(D, snapshot.D_state, "D", snapshot.path)
    _load_state(Gs, snapshot.Gs_state, "Gs", snapshot.path)
    Gs.requires_grad_(False)
    return G.to(device), D.to(device), Gs.to(device)


def snapshot_lod(snapshot: Snapshot) -> float:
    """The lod Gs had when the snapshot was written; 0.0 when it does not say.

    The official tools run Gs at its stored `lod` variable. Imported pickles record it in metadata["lod"]["Gs"];
    trainer snapshots as metadata["lod"], older ones as training_state["lod"] / training_state["state"]["prev_lod"].
    """
    candidates: list[Any] = []
    metadata, training = snapshot.metadata or {}, snapshot.training_state or {}
    if isinstance(metadata, dict):
        lod = metadata.get("lod")
        candidates.append(lod.get("Gs") if isinstance(lod, dict) else lod)
    if isinstance(training, dict):
        candidates.append(training.get("lod"))
        state = training.get("state")
        candidates.append(state.get("prev_lod") if isinstance(state, dict) else None)
    for lod in candidates:
        if isinstance(lod, (int, float)) and not isinstance(lod, bool):
            return float(lod)
    return 0.0
