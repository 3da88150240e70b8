"""The progressive training loop, written as the official train_progressive_gan reads:

    while kimg < total:
        schedule ← TrainingSchedule(kimg)                  (lod, resolution, minibatch, learning rates)
        data stage ← this resolution and minibatch
        reset Adam if floor(lod) or ceil(lod) changed
        repeat minibatch_repeats times (fresh data and latents each time):
            D step, then Gs ← EMA of G (G as it was before this iteration's G step); kimg += minibatch
            G step
        at the end of a tick: log line, stats, fakes grid, network snapshot

Everything that decides the numbers (networks, Adam states, counters, the data position, the RNG) is in
`TrainingState` + the networks and is saved in every snapshot, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import math
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pgdata.formats.base import DatasetReader
from pgdata.progress import format_time
from pgtrain import distributed
from pgtrain.checkpoint import Snapshot, build_networks, load_snapshot, save_snapshot
from pgtrain.config import TrainingConfig, config_from_dict, config_to_json
from pgtrain.data import DataStage, check_levels
from pgtrain.ema import update_ema
from pgtrain.errors import PgtrainError
from pgtrain.finetune import adopt_networks, check_dataset_fits, starting_kimg
from pgtrain.gradient_sync import GradientAverager
from pgtrain.grids import choose_grid_indices, grid_shape, save_image_grid
from pgtrain.loss import LossTerms
from pgtrain.networks import Discriminator, Generator
from pgtrain.networks.common import split_lod
from pgtrain.precision import LossScale, autocast, check_precision
from pgtrain.run_dir import DONE_NAME, FINAL_NAME, LogTee, fakes_name, snapshot_name
from pgtrain.schedule import SchedulePoint, lod_level_changed, minibatch_at, schedule_at, trained_resolutions
from pgtrain.training_step import (
    discriminator_step_loss,
    draw_discriminator_inputs,
    draw_generator_inputs,
    generator_step_loss,
)


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


def network_kwargs(config: TrainingConfig, reader: DatasetReader, label_size: int) -> dict[str, dict[str, Any]]:
    """Generator / Discriminator constructor arguments for this dataset (official: from the training set)."""
    common = {"num_channels": reader.channels, "resolution": reader.resolution, "label_size": label_size}
    return {"G": {**common, **config.G}, "D": {**common, **config.D}}


def _adam(parameters, options) -> torch.optim.Adam:
    return torch.optim.Adam(parameters, lr=0.001, betas=(options.beta1, options.beta2), eps=options.epsilon)


def reset_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Forget Adam's moments and step counts (the official reset_optimizer_state)."""
    optimizer.state.clear()


def set_learning_rate(optimizer: torch.optim.Optimizer, lrate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lrate


def match_tf_adam_epsilon(optimizer: torch.optim.Adam, epsilon: float, step: int) -> None:
    """Set torch Adam's epsilon for the coming update, the `step`-th since the last reset (from 1), so that the
    update equals TensorFlow's.

    TF's Adam adds ε to the raw sqrt(v) and folds the bias corrections into the step size; torch adds ε to the
    bias-corrected sqrt(v̂). They agree when torch's ε is ε / sqrt(1 − β2^t). TF's t is one count per optimizer
    (its beta powers), so it is counted per optimizer here too: a parameter's own count stalls when it stops
    receiving gradients (D's 4x4 fromRGB after the first fade), which would freeze ε at its first-step value.
    """
    for group in optimizer.param_groups:
        group["eps"] = epsilon / math.sqrt(1.0 - group["betas"][1] ** step)


def check_world_size(config: TrainingConfig, resolution_log2: int, world_size: int) -> None:
    """Refuse a process count the configuration was not made for, before anything is trained.

    The schedule rounds and caps minibatches for the preset's `num_gpus`, the data split divides them by the
    world size: a mismatch silently changes each process's batch (and its minibatch-stddev groups) and can
    fail at a later resolution. `allow_gpu_count_mismatch` keeps the preset's global minibatches on purpose;
    every resolution's minibatch must still split evenly.
    """
    steps = config.train.accumulation_steps
    shares = world_size * steps
    if config.num_gpus != shares and not config.allow_gpu_count_mismatch:
        accumulation = f" x {steps} accumulation steps" if steps > 1 else ""
        raise PgtrainError(
            f"the configuration is made for num_gpus={config.num_gpus} but {world_size} process(es){accumulation} "
            f"are running; use the preset for {shares} GPU(s), --set train.accumulation_steps=N to compute "
            f"N per-GPU shares per process, or --set allow_gpu_count_mismatch=true to split the "
            f"{config.num_gpus}-GPU minibatches over {shares} share(s)")
    for resolution in trained_resolutions(config.sched, resolution_log2):
        minibatch = minibatch_at(resolution, config.sched, config.num_gpus)
        if minibatch % shares or minibatch == 0:
            raise PgtrainError(f"the minibatch at {resolution}x{resolution} ({minibatch}) does not split evenly "
                               f"into {shares} share(s) ({world_size} process(es) x {steps} accumulation "
                               "steps); adjust sched.minibatch_dict or the preset")


def network_checksums(*networks: torch.nn.Module) -> list[float]:
    """One float64 sum of every parameter and buffer per network: cheap, and differs after any divergence."""
    return [float(sum(t.detach().double().sum() for t in (*net.parameters(), *net.buffers()))) for net in networks]


def check_ranks_agree(checksums_per_rank: list[list[float]]) -> None:
    """Refuse to go on when a rank's networks differ from rank 0's (train.verify_ranks)."""
    for rank, checksums in enumerate(checksums_per_rank[1:], start=1):
        if checksums != checksums_per_rank[0]:
            raise PgtrainError(f"rank {rank}'s networks differ from rank 0's (checksums {checksums} vs "
                               f"{checksums_per_rank[0]}): the ranks have diverged")


def gradients_finite(parameters) -> bool:
    """True when every gradient is finite: the official optimizers skip the whole update otherwise."""
    grads = [p.grad for p in parameters if p.grad is not None]
    return bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()) if grads else True


class Trainer:
    """Networks, optimizers, data stage and state of one run; `run()` is the loop."""

    def __init__(self, config: TrainingConfig, reader: DatasetReader, run_dir: Path | None, *,
                 device: str | torch.device = "cpu", log: LogTee | None = None, dataset_path: str | None = None,
                 resume_from: Path | Snapshot | None = None, start_from: Path | Snapshot | None = None,
                 start_kimg: float | None = None):
        """`resume_from`: continue a run exactly from its snapshot. `start_from`: a new run from any snapshot's
        networks (fine-tuning, see pgtrain.finetune), its schedule at `start_kimg`. Both take a path, or the
        snapshot already loaded (a large snapshot is then read and checked once)."""
        start = load_snapshot(start_from) if isinstance(start_from, (str, Path)) else start_from
        if start is not None:
            if resume_from is not None:
                raise PgtrainError("resume a run or start from a snapshot's networks, not both")
            config = adopt_networks(config, start)
        self.config = config
        self.reader = reader
        self.run_dir = run_dir
        self.device = torch.device(device)
        check_precision(config.precision, self.device)
        self.log = log or (lambda line="": distributed.print0(line))
        self.dataset_path = dataset_path
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        self.state = TrainingState()
        self.resolution_log2 = int(math.log2(reader.resolution))
        check_world_size(config, self.resolution_log2, self.world_size)
        check_levels(reader, trained_resolutions(config.sched, self.resolution_log2))

        torch.manual_seed(config.seed)
        self.data = DataStage(reader, seed=config.seed, max_label_size=config.dataset.max_label_size,
                              buffer_mb=config.dataset.buffer_mb, workers=config.dataset.workers,
                              rank=self.rank, world_size=self.world_size)
        self.label_table = torch.from_numpy(self.data.labels).to(self.device)
        self.network_kwargs = network_kwargs(config, reader, self.data.label_size)
        try:
            G = Generator(**self.network_kwargs["G"])
            D = Discriminator(**self.network_kwargs["D"])
        except TypeError as error:
            raise PgtrainError(f"bad network setting: {error}") from None
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.Gs = copy.deepcopy(self.G).requires_grad_(False)
        self.G_opt = _adam(self.G.parameters(), config.G_opt)
        self.D_opt = _adam(self.D.parameters(), config.D_opt)
        self._epsilon = {"G": config.G_opt.epsilon, "D": config.D_opt.epsilon}
        self.G_scale = LossScale(enabled=config.precision == "fp16")
        self.D_scale = LossScale(enabled=config.precision == "fp16")
        # One random state on every rank: draws are made for the global minibatch and each rank keeps its share.
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        self.averagers = {"G": GradientAverager(self.G.parameters(), self.world_size),
                          "D": GradientAverager(self.D.parameters(), self.world_size)}
        if resume_from is not None:
            self._restore(resume_from)
        if start is not None:
            self._start_from(start, start_kimg)
        self.data.position = self.state.data_position
        self.stats = StepStats()
        self.stop_requested = False
        self.grid: tuple[int, int, torch.Tensor, torch.Tensor] | None = None
        self.tensorboard = None

    # -- the loop ----------------------------------------------------------------------------------------

    def run(self, stop_at_nimg: int | None = None) -> bool:
        """Train until total_kimg (True) or until a stop is requested or `stop_at_nimg` is passed, in which
        case a snapshot is written and False is returned. Stops are honoured between minibatch groups."""
        loop = self.config.train
        total_nimg = int(round(loop.total_kimg * 1000))
        self._start_outputs()
        start_time = time.time() - self.state.elapsed_sec
        tick_start_time = maintenance_start = time.time()
        while self.state.cur_nimg < total_nimg:
            sched = self.schedule()
            self.data.configure(sched.resolution, sched.minibatch)
            if loop.reset_opt_for_new_lod and lod_level_changed(self.state.prev_lod, sched.lod):
                reset_optimizer(self.G_opt)
                reset_optimizer(self.D_opt)
                self.state.G_adam_steps = self.state.D_adam_steps = 0
            self.state.prev_lod = sched.lod
            for _ in range(loop.minibatch_repeats):
                for _ in range(loop.D_repeats):
                    self.discriminator_step(sched)
                    update_ema(self.Gs, self.G, loop.G_smoothing)
                    self.state.cur_nimg += sched.minibatch
                self.generator_step(sched)
            self.state.data_position = self.data.position
            done = self.state.cur_nimg >= total_nimg
            if done or self.state.cur_nimg >= self.state.tick_start_nimg + sched.tick_kimg * 1000:
                now = time.time()
                self.state.elapsed_sec = now - start_time
                self.maintenance(sched, done, tick_sec=now - tick_start_time,
                                 maintenance_sec=tick_start_time - maintenance_start)
                maintenance_start, tick_start_time = now, time.time()
            stop = self.stop_requested or (stop_at_nimg is not None and self.state.cur_nimg >= stop_at_nimg)
            if not done and distributed.any_rank(stop):  # every rank stops at the same step, or none
                self.state.elapsed_sec = time.time() - start_time
                path = self.save(snapshot_name(self.state.cur_nimg // 1000))
                self.log(f"Stopped at kimg {self.state.cur_nimg / 1000:.1f}; snapshot {path}. "
                         f"Continue with: pgtrain run --resume {self.run_dir}")
                self._close_outputs()
                return False
        self.save(FINAL_NAME)
        if self.run_dir is not None and distributed.is_main():
            (self.run_dir / DONE_NAME).write_text("")
        self._close_outputs()
        return True

    def schedule(self) -> SchedulePoint:
        return schedule_at(self.state.cur_nimg, self.resolution_log2, self.config.sched, self.config.num_gpus)

    # -- the steps ---------------------------------------------------------------------------------------

    def discriminator_step(self, sched: SchedulePoint) -> None:
        """One D update on a fresh real minibatch and fresh fakes made with the reals' labels."""
        batch = self.data.next_batch()
        draws = draw_discriminator_inputs(batch.images, batch.labels, self.G.latent_size,
                                          self.config.train.mirror_augment, self.generator, self.device,
                                          rank=self.rank, world_size=self.world_size)
        self._update("D", sched, sched.D_lrate, lambda index, count: discriminator_step_loss(
            self.G, self.D, draws.part(index, count), sched.lod, self.config.loss,
            full_resolution=self.reader.resolution, precision=self.config.precision, loss_scale=self.D_scale.value))

    def generator_step(self, sched: SchedulePoint) -> None:
        """One G update against D, with labels drawn at random from the dataset."""
        draws = draw_generator_inputs(sched.minibatch, self.G.latent_size, self.label_table, self.generator,
                                      self.device, rank=self.rank, world_size=self.world_size)
        self.D.requires_grad_(False)
        try:
            self._update("G", sched, sched.G_lrate, lambda index, count: generator_step_loss(
                self.G, self.D, draws.part(index, count), sched.lod, self.config.loss,
                level_resolution=sched.resolution, precision=self.config.precision))
        finally:
            self.D.requires_grad_(True)

    def _update(self, name: str, sched: SchedulePoint, lrate: float,
                share_loss: Callable[[int, int], LossTerms]) -> None:
        """Backward over this process's shares (gradient accumulation), average over ranks while the last
        backward runs, skip the update if any gradient is not finite (counted), else one Adam step."""
        network, optimizer = (self.G, self.G_opt) if name == "G" else (self.D, self.D_opt)
        scale = self.G_scale if name == "G" else self.D_scale
        averager, steps = self.averagers[name], self.config.train.accumulation_steps
        level, fade = split_lod(sched.lod, network.max_lod)  # which layers get gradients: the averager's plan
        optimizer.zero_grad(set_to_none=True)
        for index in range(steps):
            terms = share_loss(index, steps)
            if index == steps - 1:
                averager.arm((level, fade > 0))
            (terms.loss.float() * (scale.value / steps)).backward()
            self.stats.add(terms.stats)
        averager.finish()
        parameters = list(network.parameters())
        finite = gradients_finite(parameters)
        scale_value = scale.value
        scale.update(finite)
        if not finite:
            setattr(self.state, f"skipped_{name}_steps", getattr(self.state, f"skipped_{name}_steps") + 1)
            return
        if scale_value != 1.0:
            for p in parameters:
                if p.grad is not None:
                    p.grad.mul_(1.0 / scale_value)
        adam_steps = getattr(self.state, f"{name}_adam_steps") + 1
        setattr(self.state, f"{name}_adam_steps", adam_steps)
        set_learning_rate(optimizer, lrate)
        match_tf_adam_epsilon(optimizer, self._epsilon[name], adam_steps)
        optimizer.step()

    # -- maintenance: logs, grids, snapshots -------------------------------------------------------------

    def maintenance(self, sched: SchedulePoint, done: bool, tick_sec: float, maintenance_sec: float) -> None:
        """The official once-per-tick work: progress line, statistics, fakes grid, network snapshot."""
        state = self.state
        state.cur_tick += 1
        tick_kimg = (state.cur_nimg - state.tick_start_nimg) / 1000.0
        state.tick_start_nimg = state.cur_nimg
        self.log(f"tick {state.cur_tick:<5d} kimg {state.cur_nimg / 1000.0:<8.1f} lod {sched.lod:<5.2f} "
                 f"minibatch {sched.minibatch:<4d} time {format_time(state.elapsed_sec):<12s} "
                 f"sec/tick {tick_sec:<7.1f} sec/kimg {tick_sec / max(tick_kimg, 1e-9):<7.2f} "
                 f"maintenance {maintenance_sec:.1f}")
        record = {"Progress/tick": state.cur_tick, "Progress/kimg": state.cur_nimg / 1000.0,
                  "Progress/lod": sched.lod, "Progress/minibatch": sched.minibatch,
                  "Progress/resolution": sched.resolution,
                  "TrainG/learning_rate": sched.G_lrate, "TrainD/learning_rate": sched.D_lrate,
                  "TrainG/skipped_steps": state.skipped_G_steps, "TrainD/skipped_steps": state.skipped_D_steps,
                  "Timing/total_sec": state.elapsed_sec, "Timing/sec_per_tick": tick_sec,
                  "Timing/sec_per_kimg": tick_sec / max(tick_kimg, 1e-9), "Timing/maintenance_sec": maintenance_sec,
                  **self.stats.means()}
        if self.config.precision == "fp16":
            record["TrainG/loss_scaling_log2"] = self.G_scale.log2
            record["TrainD/loss_scaling_log2"] = self.D_scale.log2
        self.stats = StepStats()
        loop = self.config.train
        if loop.verify_ranks:
            check_ranks_agree(distributed.gather_objects(network_checksums(self.G, self.D, self.Gs)))
        if self.run_dir is not None and distributed.is_main():
            with open(self.run_dir / "stats.jsonl", "a", encoding="utf-8") as file:
                file.write(json.dumps(record) + "\n")
            if self.tensorboard is not None:
                for name, value in record.items():
                    self.tensorboard.add_scalar(name, value, global_step=state.cur_nimg)
                self.tensorboard.flush()
            if state.cur_tick % loop.image_snapshot_ticks == 0 or done:
                self.save_fakes(sched.lod)
        if state.cur_tick % loop.network_snapshot_ticks == 0 or done:
            self.save(snapshot_name(state.cur_nimg // 1000))

    def _start_outputs(self) -> None:
        """reals.png, the first fakes grid and the TensorBoard writer (rank 0, with a run directory)."""
        if self.run_dir is None or not distributed.is_main():
            return
        columns, rows = grid_shape(self.reader.resolution, self.config.grid.size)
        rng = np.random.default_rng(self.config.seed)
        indices = choose_grid_indices(self.data.labels, columns, rows, self.config.grid.layout, rng)
        reals = np.stack([self.reader.image(int(i)) for i in indices])
        save_image_grid(reals, self.run_dir / "reals.png", columns, rows, drange=(0, 255))
        latents = torch.randn(len(indices), self.G.latent_size, generator=torch.Generator().manual_seed(self.config.seed))
        self.grid = (columns, rows, latents, torch.from_numpy(self.data.labels[indices]))
        self.save_fakes(self.schedule().lod)
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(self.run_dir))
            self.log("TensorBoard: event files in the run directory (tensorboard --logdir results)")
        else:
            self.log("TensorBoard: not installed (pip install tensorboard); statistics go to stats.jsonl only")

    def save_fakes(self, lod: float) -> Path | None:
        """fakesNNNNNN.png: Gs on the run's fixed latents, full resolution (lower levels upscaled)."""
        if self.grid is None:
            return None
        columns, rows, latents, labels = self.grid
        images = []
        with torch.no_grad(), autocast(self.config.precision, self.device):
            for first in range(0, len(latents), 64):
                batch = self.Gs(latents[first:first + 64].to(self.device), labels[first:first + 64].to(self.device),
                                lod)
                images.append(batch.float().cpu().numpy())
        path = self.run_dir / fakes_name(self.state.cur_nimg // 1000)
        save_image_grid(np.concatenate(images), path, columns, rows, drange=(-1, 1))
        return path

    def _close_outputs(self) -> None:
        self.data.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None

    # -- snapshots and resume ----------------------------------------------------------------------------

    def training_state(self) -> dict[str, Any]:
        """Everything beyond the weights that the next step depends on (weights_only-loadable).

        The ranks share one random state (draws are made for the global minibatch, each rank keeps its share), and
        the optimizers, counters and networks are the same on every rank, so rank 0's copy is the whole state; the
        world size is recorded because each rank's share (and its minibatch-stddev groups) depends on it.
        """
        return {
            "state": asdict(self.state),
            "G_opt": self.G_opt.state_dict(),
            "D_opt": self.D_opt.state_dict(),
            "rng": self.generator.get_state(),
            "world_size": self.world_size,
            "loss_scale_log2": {"G": self.G_scale.log2, "D": self.D_scale.log2},
        }

    def save(self, name: str) -> Path | None:
        """Write a snapshot (rank 0 only; the other ranks hold the same state)."""
        if self.run_dir is None or not distributed.is_main():
            return None
        metadata = {"config": config_to_json(self.config), "dataset": self.dataset_path,
                    "kimg": self.state.cur_nimg / 1000.0, "producer": "pgtrain run"}
        return save_snapshot(self.run_dir / name, network_kwargs=self.network_kwargs, G_state=self.G.state_dict(),
                             D_state=self.D.state_dict(), Gs_state=self.Gs.state_dict(),
                             training_state=self.training_state(), metadata=metadata)

    def _start_from(self, snapshot: Snapshot, kimg: float | None) -> None:
        """Take the snapshot's G, D and Gs; everything else is this new run's (fresh Adam, RNG, data order)."""
        check_dataset_fits(snapshot, self.network_kwargs["G"])
        G, D, Gs = build_networks(dataclasses.replace(snapshot, network_kwargs=self.network_kwargs))
        self.G.load_state_dict(G.state_dict())
        self.D.load_state_dict(D.state_dict())
        self.Gs.load_state_dict(Gs.state_dict())
        self.state.cur_nimg = self.state.tick_start_nimg = int(round(starting_kimg(snapshot, kimg) * 1000))
        self.log(f"Starting from the networks of {snapshot.path} at kimg {self.state.cur_nimg / 1000:.1f} "
                 f"(lod {self.schedule().lod:.2f}); optimizers, data order and random draws start afresh")

    def _restore(self, path: Path | Snapshot) -> None:
        snapshot = load_snapshot(path) if isinstance(path, (str, Path)) else path
        path = snapshot.path
        saved = snapshot.training_state
        if not isinstance(saved, dict) or "state" not in saved:
            raise PgtrainError(f"{path}: a network snapshot without training state (imported?); cannot resume")
        if snapshot.network_kwargs != self.network_kwargs:
            raise PgtrainError(f"{path}: its networks do not match this dataset/config "
                               f"({snapshot.network_kwargs} vs {self.network_kwargs})")
        build_networks(snapshot)  # validates the three state dicts with one-line errors
        self.G.load_state_dict(snapshot.G_state)
        self.D.load_state_dict(snapshot.D_state)
        self.Gs.load_state_dict(snapshot.Gs_state)
        written_by = int(saved.get("world_size", 1))
        if written_by != self.world_size:
            raise PgtrainError(f"{path}: written by a run of {written_by} process(es), and this run has "
                               f"{self.world_size}; resume it with {written_by} (each process's share of the "
                               "minibatch is part of the exact continuation)")
        self.G_opt.load_state_dict(saved["G_opt"])
        self.D_opt.load_state_dict(saved["D_opt"])
        self.generator.set_state(saved["rng"])
        self.G_scale.log2 = saved["loss_scale_log2"]["G"]
        self.D_scale.log2 = saved["loss_scale_log2"]["D"]
        self.state = TrainingState(**saved["state"])
        for name, optimizer in (("G", self.G_opt), ("D", self.D_opt)):
            if f"{name}_adam_steps" not in saved["state"]:  # snapshots from before the per-optimizer count
                steps = [int(state["step"]) for state in optimizer.state.values() if "step" in state]
                setattr(self.state, f"{name}_adam_steps", max(steps, default=0))


def resume_config(path: Path | Snapshot, overrides_applier=None) -> tuple[TrainingConfig, str | None]:
    """The configuration and dataset path stored in a snapshot (a path, or the snapshot already loaded)."""
    snapshot = load_snapshot(path) if isinstance(path, (str, Path)) else path
    path = snapshot.path
    metadata = snapshot.metadata or {}
    if "config" not in metadata or not isinstance(snapshot.training_state, dict):
        raise PgtrainError(f"{path}: not a pgtrain training snapshot (no config/training state); "
                           f"only snapshots written by `pgtrain run` can be resumed")
    return config_from_dict(json.loads(metadata["config"])), metadata.get("dataset")


def install_signal_handlers(trainer: Trainer) -> None:
    """SIGINT / SIGTERM: finish the current minibatch group, write a snapshot, exit cleanly."""
    def request_stop(signum, frame):  # noqa: ARG001
        if trainer.stop_requested:  # a second signal: stop now
            raise KeyboardInterrupt
        trainer.stop_requested = True
        trainer.log(f"Signal {signal.Signals(signum).name}: saving a snapshot after this minibatch group ...")

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
