"""The progressive training loop, written as the official train_progressive_gan reads:

    while kimg < total:
        schedule ← TrainingSchedule(kimg)                  (lod, resolution, minibatch, learning rates)
        data stage ← this resolution and minibatch
        reset Adam if floor(lod) or ceil(lod) changed
        repeat minibatch_repeats times (fresh data and latents each time):
            D step, then Gs ← EMA of G (G as it was before this iteration's G step); kimg += minibatch
            G step
        at the end of a tick: log line, stats, fakes grid, network snapshot (and its metrics), training state

The pieces it calls live in their own modules, as EDM separates them: the losses and their random draws
(pgtrain.training_step), one network update (pgtrain.updates), what a run shows of itself (pgtrain.reporting:
log line, stats.jsonl, TensorBoard, grids), and its state on disk (pgtrain.training_state: light network
snapshots, full training states, resume). Everything that decides the numbers (networks, Adam states, counters,
the data position, the RNG) is in `TrainingState` + the networks and is saved in every training state, so a
resumed run continues bit for bit.
"""

from __future__ import annotations

import copy
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pgdata.common.resolution import resolution_log2
from pgdata.common.run_files import DONE_MARKER_NAME, FINAL_SNAPSHOT_NAME, snapshot_name
from pgdata.formats.base import DatasetReader
from pgtrain import distributed
from pgtrain.checkpoint import Snapshot, load_snapshot
from pgtrain.config import TrainingConfig
from pgtrain.data import DataStage, check_levels
from pgtrain.ema import update_ema
from pgtrain.errors import PgtrainError
from pgtrain.finetune import adopt_networks
from pgtrain.gradient_sync import GradientAverager
from pgtrain.loss import LossTerms
from pgtrain.networks import Discriminator, Generator
from pgtrain.networks.common import split_lod
from pgtrain.precision import LossScale, check_precision
from pgtrain.reporting import Reporter, StepStats, tick_line, tick_record
from pgtrain.run_dir import LogTee
from pgtrain.schedule import SchedulePoint, lod_level_changed, minibatch_at, schedule_at, trained_resolutions
from pgtrain.snapshot_metrics import SnapshotMetrics
from pgtrain.training_state import (
    Checkpoints,
    TrainingState,
    capture,
    load_resume_snapshot,
    restore,
    written_states_to_continue,
)
from pgtrain.training_state import start_from as start_from_networks
from pgtrain.training_step import (
    discriminator_step_loss,
    draw_discriminator_inputs,
    draw_generator_inputs,
    generator_step_loss,
)
from pgtrain.updates import NetworkUpdate, make_adam, reset_optimizer


def network_kwargs(config: TrainingConfig, reader: DatasetReader, label_size: int) -> dict[str, dict[str, Any]]:
    """Generator / Discriminator constructor arguments for this dataset (official: from the training set)."""
    common = {"num_channels": reader.channels, "resolution": reader.resolution, "label_size": label_size}
    return {"G": {**common, **config.G}, "D": {**common, **config.D}}


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


class Trainer:
    """Networks, optimizers, data stage and state of one run; `run()` is the loop."""

    def __init__(self, config: TrainingConfig, reader: DatasetReader, run_dir: Path | None, *,
                 device: str | torch.device = "cpu", log: LogTee | None = None, dataset_path: str | None = None,
                 resume_from: Path | Snapshot | None = None, start_from: Path | Snapshot | None = None,
                 start_kimg: float | None = None, metrics: SnapshotMetrics | None = None):
        """`resume_from`: continue a run exactly from a training state (or a network snapshot with its state
        beside it). `start_from`: a new run from any snapshot's networks (fine-tuning, see pgtrain.finetune), its
        schedule at `start_kimg`. Both take a path, or the snapshot already loaded (a large file is then read and
        checked once). `metrics`: scores each network snapshot as it is written (pgtrain.snapshot_metrics)."""
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
        self.resolution_log2 = resolution_log2(reader.resolution)
        check_world_size(config, self.resolution_log2, self.world_size)
        check_levels(reader, trained_resolutions(config.sched, self.resolution_log2))

        torch.manual_seed(config.seed)
        self.data = DataStage(reader, seed=config.seed, max_label_size=config.dataset.max_label_size,
                              buffer_mb=config.dataset.buffer_mb, workers=config.dataset.workers,
                              rank=self.rank, world_size=self.world_size)
        self.label_table = torch.from_numpy(self.data.labels).to(self.device)
        self.network_kwargs = network_kwargs(config, reader, self.data.label_size)
        self._build_networks()
        # One random state on every rank: draws are made for the global minibatch and each rank keeps its share.
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        written_states: list[str] = []
        if resume_from is not None:
            snapshot = load_resume_snapshot(resume_from) if isinstance(resume_from, (str, Path)) else resume_from
            restore(self, snapshot)
            written_states = written_states_to_continue(snapshot, run_dir)
        if start is not None:
            start_from_networks(self, start, start_kimg)
        self.data.position = self.state.data_position
        self.checkpoints = Checkpoints(run_dir if distributed.is_main() else None, config.train.state_dump_keep,
                                       written_states)
        self.reporter = Reporter(run_dir, self.log)
        self.metrics = metrics
        self.stats = StepStats()
        self.stop_requested = False

    def _build_networks(self) -> None:
        """G, D, Gs (a copy of G), both Adam optimizers, loss scales and gradient averagers."""
        try:
            G = Generator(**self.network_kwargs["G"])
            D = Discriminator(**self.network_kwargs["D"])
        except (TypeError, ValueError) as error:
            raise PgtrainError(f"bad network setting: {error}") from error
        config = self.config
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.Gs = copy.deepcopy(self.G).requires_grad_(False)
        self.G_opt = make_adam(self.G.parameters(), config.G_opt)
        self.D_opt = make_adam(self.D.parameters(), config.D_opt)
        self.G_scale = LossScale(enabled=config.precision == "fp16")
        self.D_scale = LossScale(enabled=config.precision == "fp16")
        def averager(network: torch.nn.Module) -> GradientAverager:
            return GradientAverager(network.parameters(), self.world_size)

        self.updates = {"G": NetworkUpdate(self.G, self.G_opt, self.G_scale, averager(self.G), config.G_opt.epsilon),
                        "D": NetworkUpdate(self.D, self.D_opt, self.D_scale, averager(self.D), config.D_opt.epsilon)}

    # -- the loop ----------------------------------------------------------------------------------------

    def run(self, stop_at_nimg: int | None = None) -> bool:
        """Train until total_kimg (True) or until a stop is requested or `stop_at_nimg` is passed, in which
        case a network snapshot and a training state are written and False is returned. Stops are honoured
        between minibatch groups."""
        loop = self.config.train
        total_nimg = int(round(loop.total_kimg * 1000))
        self.reporter.start(self)
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
                self._stop()
                return False
        self.checkpoints.save_network(self, FINAL_SNAPSHOT_NAME)
        if self.run_dir is not None and distributed.is_main():
            (self.run_dir / DONE_MARKER_NAME).write_text("")
        self._close()
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
        """One update of G or D (pgtrain.updates), counted as an Adam step or as a skipped one."""
        update = self.updates[name]
        level, fade = split_lod(sched.lod, update.network.max_lod)  # which layers get gradients
        adam_step = getattr(self.state, f"{name}_adam_steps") + 1
        if update.apply(share_loss, steps=self.config.train.accumulation_steps, plan_key=(level, fade > 0),
                        lrate=lrate, adam_step=adam_step, report=self.stats.add):
            setattr(self.state, f"{name}_adam_steps", adam_step)
        else:
            setattr(self.state, f"skipped_{name}_steps", getattr(self.state, f"skipped_{name}_steps") + 1)

    # -- maintenance: reporting and state ----------------------------------------------------------------

    def maintenance(self, sched: SchedulePoint, done: bool, tick_sec: float, maintenance_sec: float) -> None:
        """The official once-per-tick work: progress line, statistics, fakes grid, network snapshot (and its
        metrics), plus the full training state at its own interval."""
        state, loop = self.state, self.config.train
        state.cur_tick += 1
        tick_kimg = (state.cur_nimg - state.tick_start_nimg) / 1000.0
        state.tick_start_nimg = state.cur_nimg
        self.log(tick_line(self, sched, tick_sec, tick_kimg, maintenance_sec))
        record = tick_record(self, sched, tick_sec, tick_kimg, maintenance_sec, self.stats.means())
        self.stats = StepStats()
        if loop.verify_ranks:
            check_ranks_agree(distributed.gather_objects(network_checksums(self.G, self.D, self.Gs)))
        if state.cur_tick % loop.image_snapshot_ticks == 0 or done:
            self.reporter.save_fakes(self, sched.lod)
        if state.cur_tick % loop.network_snapshot_ticks == 0 or done:
            name = snapshot_name(state.cur_nimg // 1000)
            self.checkpoints.save_network(self, name)
            if self.metrics is not None:
                record.update(self.metrics.after_snapshot(self.run_dir, name))
        if state.cur_tick % (loop.state_dump_ticks or loop.network_snapshot_ticks) == 0 or done:
            self.checkpoints.save_state(self)
        self.reporter.write(record, state.cur_nimg)

    def _stop(self) -> None:
        """A requested stop: a network snapshot and a training state of this point, then the outputs close."""
        snapshot = self.checkpoints.save_network(self, snapshot_name(self.state.cur_nimg // 1000))
        state = self.checkpoints.save_state(self)
        self.log(f"Stopped at kimg {self.state.cur_nimg / 1000:.1f}; snapshot {snapshot}, training state {state}. "
                 f"Continue with: pgtrain run --resume {self.run_dir}")
        self._close()

    def _close(self) -> None:
        self.data.close()
        self.reporter.close()

    # -- state -------------------------------------------------------------------------------------------

    def training_state(self) -> dict[str, Any]:
        """Everything beyond the weights that the next step depends on (what training-state files hold)."""
        return capture(self, self.checkpoints.written_states)


def install_signal_handlers(trainer: Trainer) -> Callable[[], None]:
    """SIGINT / SIGTERM: finish the current minibatch group, write a network snapshot and a training state, exit
    cleanly. Returns the function that puts the previous handlers back: they must not outlive the run (a process
    forked later, e.g. a pgdata worker pool, would inherit them and ignore the pool's SIGTERM)."""
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    def request_stop(signum, frame):  # noqa: ARG001
        if trainer.stop_requested:  # a second signal: stop now
            raise KeyboardInterrupt
        trainer.stop_requested = True
        trainer.log(f"Signal {signal.Signals(signum).name}: saving a snapshot after this minibatch group ...")

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    def restore() -> None:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])

    return restore
