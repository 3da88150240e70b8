"""The run's state on disk: light network snapshots, full training states, and resuming from them.

As EDM separates `network-snapshot-*.pkl` from `training-state-*.pt`, a run directory holds two kinds of file,
both in the one pgtrain snapshot format (pgtrain.checkpoint):

- `network-snapshot-NNNNNN.pt` and `network-final.pt`: G, D and Gs with metadata (configuration, dataset, kimg,
  lod), and no training state: what generate, evaluate and --start-from read, written every
  `train.network_snapshot_ticks`.
- `training-state-NNNNNN.pt`: the networks plus everything else the next step depends on (both Adam states, the
  loop's counters, the data position, the random state, the loss scales), written every
  `train.state_dump_ticks` (default: with each network snapshot), at the end and when stopped. Only the newest
  `train.state_dump_keep` that the run itself wrote are kept, so a run directory does not carry Adam moments in
  every snapshot. A resume from one continues bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgtrain.checkpoint import Snapshot, build_networks, load_snapshot, save_snapshot
from pgtrain.config import TrainingConfig, config_from_dict, config_to_json
from pgtrain.errors import PgtrainError
from pgtrain.finetune import check_dataset_fits, starting_kimg
from pgtrain.run_dir import STATE_PATTERN, state_name

if TYPE_CHECKING:
    from pgtrain.loop import Trainer


@dataclass
class TrainingState:
    """The official loop's counters, plus what makes a resume exact."""

    cur_nimg: int = 0
    cur_tick: int = 0
    tick_start_nimg: int = 0
    prev_lod: float | None = None
    data_position: int = 0
    skipped_D_steps: int = 0
    skipped_G_steps: int = 0
    G_adam_steps: int = 0  # updates since the last optimizer reset: TF's beta powers count per optimizer
    D_adam_steps: int = 0
    elapsed_sec: float = 0.0  # training wall time before this process started


def capture(trainer: Trainer, written_states: list[str]) -> dict[str, Any]:
    """Everything beyond the weights that the next step depends on (weights_only-loadable).

    The ranks share one random state (draws are made for the global minibatch, each rank keeps its share), and
    the optimizers, counters and networks are the same on every rank, so rank 0's copy is the whole state; the
    world size is recorded because each rank's share (and its minibatch-stddev groups) depends on it.
    `written_states` names the state files this run wrote in its directory (the only ones it may remove).
    """
    return {
        "state": asdict(trainer.state),
        "G_opt": trainer.G_opt.state_dict(),
        "D_opt": trainer.D_opt.state_dict(),
        "rng": trainer.generator.get_state(),
        "world_size": trainer.world_size,
        "loss_scale_log2": {"G": trainer.G_scale.log2, "D": trainer.D_scale.log2},
        "written_states": list(written_states),
    }


def network_metadata(trainer: Trainer) -> dict[str, Any]:
    """What a snapshot says about itself: the run's configuration and dataset, and where the schedule was."""
    state = trainer.state
    lod = state.prev_lod if state.prev_lod is not None else trainer.schedule().lod
    return {"config": config_to_json(trainer.config), "dataset": trainer.dataset_path,
            "kimg": state.cur_nimg / 1000.0, "nimg": state.cur_nimg, "lod": float(lod), "producer": "pgtrain run"}


class Checkpoints:
    """Writes a run's network snapshots and training states (rank 0 only: the other ranks hold the same state),
    and removes the training states it wrote beyond the newest `keep`; never a file it did not write."""

    def __init__(self, run_dir: Path | None, keep: int, written_states: list[str] | None = None):
        self.run_dir = run_dir
        self.keep = keep
        self.written_states = list(written_states or [])

    def save_network(self, trainer: Trainer, name: str) -> Path | None:
        """A light snapshot: G, D, Gs and metadata, no optimizer or loop state."""
        if self.run_dir is None:
            return None
        return save_snapshot(self.run_dir / name, network_kwargs=trainer.network_kwargs,
                             G_state=trainer.G.state_dict(), D_state=trainer.D.state_dict(),
                             Gs_state=trainer.Gs.state_dict(), metadata=network_metadata(trainer))

    def save_state(self, trainer: Trainer) -> Path | None:
        """A full training state, `training-state-NNNNNN.pt` (kimg), then the pruning of older ones."""
        if self.run_dir is None:
            return None
        name = state_name(trainer.state.cur_nimg // 1000)
        self.written_states = [n for n in self.written_states if n != name] + [name]
        path = save_snapshot(self.run_dir / name, network_kwargs=trainer.network_kwargs,
                             G_state=trainer.G.state_dict(), D_state=trainer.D.state_dict(),
                             Gs_state=trainer.Gs.state_dict(), training_state=capture(trainer, self.written_states),
                             metadata={**network_metadata(trainer), "kind": "training-state"})
        self._prune()
        return path

    def _prune(self) -> None:
        """Remove the states this run wrote beyond the newest `keep` (named by its own pattern, in its folder)."""
        old, self.written_states = self.written_states[:-self.keep], self.written_states[-self.keep:]
        for name in old:
            if STATE_PATTERN.fullmatch(name):
                (self.run_dir / name).unlink(missing_ok=True)


def written_states_to_continue(snapshot: Snapshot, run_dir: Path | None) -> list[str]:
    """The state files a resumed run may later remove: those its earlier process recorded, when it continues in
    the same directory (a resume into a new directory removes nothing of the old one)."""
    saved = snapshot.training_state or {}
    names = saved.get("written_states") if isinstance(saved, dict) else None
    same_folder = run_dir is not None and snapshot.path is not None and \
        snapshot.path.parent.resolve() == run_dir.resolve()
    if not same_folder or not isinstance(names, list):
        return []
    return [name for name in names if isinstance(name, str) and STATE_PATTERN.fullmatch(name)]


def has_full_state(snapshot: Snapshot) -> bool:
    saved = snapshot.training_state
    return isinstance(saved, dict) and "state" in saved


def load_resume_snapshot(path: str | Path) -> Snapshot:
    """The full training state to resume from: the file itself, or for a light network snapshot, the training
    state written beside it at the same point; anything else is one line saying what to pass."""
    snapshot = load_snapshot(path)
    if has_full_state(snapshot):
        return snapshot
    metadata = snapshot.metadata or {}
    if metadata.get("producer") != "pgtrain run" or not isinstance(metadata.get("kimg"), (int, float)):
        return snapshot  # not ours: resume_config says so in one line
    beside = snapshot.path.parent / state_name(int(round(metadata["kimg"] * 1000)) // 1000)
    if beside.is_file():
        state = load_snapshot(beside)
        nimg = state.training_state.get("state", {}).get("cur_nimg") if has_full_state(state) else None
        if nimg is not None and nimg == metadata.get("nimg"):
            return state
    raise PgtrainError(f"{snapshot.path}: a network snapshot (weights only, no training state) and no "
                       f"{beside.name} of the same point beside it; resume from the run directory or a "
                       "training-state-*.pt file, or fine-tune from it with --start-from")


def resume_config(path: Path | Snapshot) -> tuple[TrainingConfig, str | None]:
    """The configuration and dataset path stored in a training state (a path, or the snapshot already loaded)."""
    snapshot = load_resume_snapshot(path) if isinstance(path, (str, Path)) else path
    metadata = snapshot.metadata or {}
    if "config" not in metadata or not has_full_state(snapshot):
        raise PgtrainError(f"{snapshot.path}: not a pgtrain training snapshot (no config/training state); "
                           f"only snapshots written by `pgtrain run` can be resumed")
    return config_from_dict(json.loads(metadata["config"])), metadata.get("dataset")


def restore(trainer: Trainer, snapshot: Snapshot) -> None:
    """Put a training state's networks, optimizers, random state and counters into the trainer."""
    path = snapshot.path
    if not has_full_state(snapshot):
        raise PgtrainError(f"{path}: a network snapshot without training state (imported?); cannot resume")
    saved = snapshot.training_state
    if snapshot.network_kwargs != trainer.network_kwargs:
        raise PgtrainError(f"{path}: its networks do not match this dataset/config "
                           f"({snapshot.network_kwargs} vs {trainer.network_kwargs})")
    build_networks(snapshot)  # validates the three state dicts with one-line errors
    trainer.G.load_state_dict(snapshot.G_state)
    trainer.D.load_state_dict(snapshot.D_state)
    trainer.Gs.load_state_dict(snapshot.Gs_state)
    written_by = int(saved.get("world_size", 1))
    if written_by != trainer.world_size:
        raise PgtrainError(f"{path}: written by a run of {written_by} process(es), and this run has "
                           f"{trainer.world_size}; resume it with {written_by} (each process's share of the "
                           "minibatch is part of the exact continuation)")
    trainer.G_opt.load_state_dict(saved["G_opt"])
    trainer.D_opt.load_state_dict(saved["D_opt"])
    trainer.generator.set_state(saved["rng"])
    trainer.G_scale.log2 = saved["loss_scale_log2"]["G"]
    trainer.D_scale.log2 = saved["loss_scale_log2"]["D"]
    trainer.state = TrainingState(**saved["state"])
    for name, optimizer in (("G", trainer.G_opt), ("D", trainer.D_opt)):
        if f"{name}_adam_steps" not in saved["state"]:  # snapshots from before the per-optimizer count
            steps = [int(state["step"]) for state in optimizer.state.values() if "step" in state]
            setattr(trainer.state, f"{name}_adam_steps", max(steps, default=0))


def start_from(trainer: Trainer, snapshot: Snapshot, kimg: float | None) -> None:
    """Take the snapshot's G, D and Gs; everything else is this new run's (fresh Adam, RNG, data order)."""
    check_dataset_fits(snapshot, trainer.network_kwargs["G"])
    G, D, Gs = build_networks(dataclasses.replace(snapshot, network_kwargs=trainer.network_kwargs))
    trainer.G.load_state_dict(G.state_dict())
    trainer.D.load_state_dict(D.state_dict())
    trainer.Gs.load_state_dict(Gs.state_dict())
    trainer.state.cur_nimg = trainer.state.tick_start_nimg = int(round(starting_kimg(snapshot, kimg) * 1000))
    trainer.log(f"Starting from the networks of {snapshot.path} at kimg {trainer.state.cur_nimg / 1000:.1f} "
                f"(lod {trainer.schedule().lod:.2f}); optimizers, data order and random draws start afresh")
