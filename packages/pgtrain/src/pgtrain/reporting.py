"""What a run shows of itself once per tick: the official log line, stats.jsonl, TensorBoard, and the reals and
fakes grids (official setup_snapshot_image_grid: fixed latents for the whole run, seed `config.seed`).

Statistics are reported from the steps with one call (`StepStats.add`) and averaged over every rank once per tick,
as stylegan2-ada's training_stats; TensorBoard is an optional view of the same numbers. Only rank 0 writes.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pgdata.common.atomic import write_text
from pgdata.progress import format_time
from pgtrain import distributed
from pgtrain.errors import PgtrainError
from pgtrain.grids import choose_grid_indices, grid_shape, save_image_grid
from pgtrain.precision import autocast
from pgtrain.run_dir import fakes_name

if TYPE_CHECKING:
    from pgtrain.loop import Trainer
    from pgtrain.schedule import SchedulePoint

STATS_NAME = "stats.jsonl"


@dataclass
class StepStats:
    """Per-tick accumulation of detached statistics; converted to floats once per tick (no sync per step)."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            value = value.detach().float()
            self.sums[name] = self.sums.get(name, 0) + value.sum()
            self.counts[name] = self.counts.get(name, 0) + value.numel()

    def means(self) -> dict[str, float]:
        """Means over every rank's samples (a collective when several processes train)."""
        names = sorted(self.sums)
        if not names:
            return {}
        sums = torch.stack([torch.as_tensor(self.sums[name], dtype=torch.float64) for name in names])
        counts = torch.tensor([self.counts[name] for name in names], dtype=torch.float64, device=sums.device)
        sums, counts = distributed.sum_over_ranks(torch.stack([sums, counts])).cpu()
        return {name: float(total) / float(count) for name, total, count in zip(names, sums, counts, strict=True)}


def tick_line(trainer: Trainer, sched: SchedulePoint, tick_sec: float, tick_kimg: float,
              maintenance_sec: float) -> str:
    """The official log line: tick, kimg, lod, minibatch, time, sec/tick, sec/kimg, maintenance."""
    state = trainer.state
    return (f"tick {state.cur_tick:<5d} kimg {state.cur_nimg / 1000.0:<8.1f} lod {sched.lod:<5.2f} "
            f"minibatch {sched.minibatch:<4d} time {format_time(state.elapsed_sec):<12s} "
            f"sec/tick {tick_sec:<7.1f} sec/kimg {tick_sec / max(tick_kimg, 1e-9):<7.2f} "
            f"maintenance {maintenance_sec:.1f}")


def tick_record(trainer: Trainer, sched: SchedulePoint, tick_sec: float, tick_kimg: float,
                maintenance_sec: float, means: dict[str, float]) -> dict[str, Any]:
    """One stats.jsonl line: progress, learning rates, skipped steps, timing and the tick's step statistics."""
    state = trainer.state
    record = {"Progress/tick": state.cur_tick, "Progress/kimg": state.cur_nimg / 1000.0,
              "Progress/lod": sched.lod, "Progress/minibatch": sched.minibatch,
              "Progress/resolution": sched.resolution,
              "TrainG/learning_rate": sched.G_lrate, "TrainD/learning_rate": sched.D_lrate,
              "TrainG/skipped_steps": state.skipped_G_steps, "TrainD/skipped_steps": state.skipped_D_steps,
              "Timing/total_sec": state.elapsed_sec, "Timing/sec_per_tick": tick_sec,
              "Timing/sec_per_kimg": tick_sec / max(tick_kimg, 1e-9), "Timing/maintenance_sec": maintenance_sec,
              **means}
    if trainer.config.precision == "fp16":
        record["TrainG/loss_scaling_log2"] = trainer.G_scale.log2
        record["TrainD/loss_scaling_log2"] = trainer.D_scale.log2
    return record


class Reporter:
    """The run directory's view of the training: grids, stats.jsonl and TensorBoard (rank 0 with a run directory;
    elsewhere every method does nothing)."""

    def __init__(self, run_dir: Path | None, log: Callable[[str], None]):
        self.run_dir = run_dir if distributed.is_main() else None
        self.log = log
        self.grid: tuple[int, int, torch.Tensor, torch.Tensor] | None = None
        self.tensorboard = None

    def start(self, trainer: Trainer) -> None:
        """reals.png, the first fakes grid and the TensorBoard writer."""
        if self.run_dir is None:
            return
        config, reader = trainer.config, trainer.reader
        columns, rows = grid_shape(reader.resolution, config.grid.size)
        rng = np.random.default_rng(config.seed)
        indices = choose_grid_indices(trainer.data.labels, columns, rows, config.grid.layout, rng)
        reals = np.stack([reader.image(int(i)) for i in indices])
        save_image_grid(reals, self.run_dir / "reals.png", columns, rows, drange=(0, 255))
        latents = torch.randn(len(indices), trainer.G.latent_size,
                              generator=torch.Generator().manual_seed(config.seed))
        self.grid = (columns, rows, latents, torch.from_numpy(trainer.data.labels[indices]))
        self.save_fakes(trainer, trainer.schedule().lod)
        self._open_tensorboard()

    def _open_tensorboard(self) -> None:
        if importlib.util.find_spec("tensorboard") is None:
            self.log("TensorBoard: not installed (pip install tensorboard); statistics go to stats.jsonl only")
            return
        from torch.utils.tensorboard import SummaryWriter

        self.tensorboard = SummaryWriter(str(self.run_dir))
        self.log("TensorBoard: event files in the run directory (tensorboard --logdir results)")

    def save_fakes(self, trainer: Trainer, lod: float) -> Path | None:
        """fakesNNNNNN.png: Gs on the run's fixed latents, full resolution (lower levels upscaled)."""
        if self.grid is None or self.run_dir is None:
            return None
        columns, rows, latents, labels = self.grid
        images = []
        with torch.no_grad(), autocast(trainer.config.precision, trainer.device):
            for first in range(0, len(latents), 64):
                batch = trainer.Gs(latents[first:first + 64].to(trainer.device),
                                   labels[first:first + 64].to(trainer.device), lod)
                images.append(batch.float().cpu().numpy())
        path = self.run_dir / fakes_name(trainer.state.cur_nimg // 1000)
        save_image_grid(np.concatenate(images), path, columns, rows, drange=(-1, 1))
        return path

    def write(self, record: dict[str, Any], nimg: int) -> None:
        """Append the tick's record to stats.jsonl and TensorBoard."""
        if self.run_dir is None:
            return
        with open(self.run_dir / STATS_NAME, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for name, value in record.items():
                self.tensorboard.add_scalar(name, value, global_step=nimg)
            self.tensorboard.flush()

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None


def trim_stats(run_dir: Path, last_tick: int) -> None:
    """Keep only the stats.jsonl lines up to `last_tick`: a run resumed in place repeats the ticks after its
    training state, and their lines would otherwise appear twice. Lines that are not ours are kept as they are."""
    path = run_dir / STATS_NAME
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if _tick_of(line) is None or _tick_of(line) <= last_tick]
    if len(kept) == len(lines):
        return
    write_text(path, "".join(kept), fsync=False, error_type=PgtrainError)


def _tick_of(line: str) -> int | None:
    try:
        tick = json.loads(line).get("Progress/tick")
    except (ValueError, AttributeError):
        return None
    return tick if isinstance(tick, int) else None
