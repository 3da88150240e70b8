"""`pgtrain bench`: the official BENCHMARK / BENCHMARK0 speed tests as a measurement, one level at a time.

For each level resolution the trainer's own step is timed: a `Trainer` (no run directory) runs its
discriminator_step + EMA (D_repeats times) and generator_step at the level's stable lod, as run() does, after
warm-up steps, with the device synchronised around the clock. Beside it, at the same level:

- the data stage alone (the trainer's `DataStage` delivering minibatches): can the loader keep up?
- the *bare* networks: the same G and D, forward and backward with the same shapes on tensors already on the
  device (G forward, D on reals and fakes, the penalty's gradient and double backward, the G step), no data,
  optimizer, EMA or statistics. trainer / bare is the price of everything around the networks.
- achieved TFLOP/s from pgtrain.flops (layer shapes), and its fraction of the device's peak.

From the per-level sec/kimg it projects the wall time of the whole schedule of the configuration (the preset
without its BENCHMARK mode): the kimg the schedule spends at each resolution (stable + fade-in, which trains at
the new resolution) times that resolution's sec/kimg. Ticks, snapshots and fakes grids are not counted.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from pgdata.common.resolution import LOWEST_RESOLUTION, is_power_of_two, resolution_log2
from pgdata.progress import format_time
from pgtrain.config import TrainingConfig
from pgtrain.ema import update_ema
from pgtrain.errors import PgtrainError
from pgtrain.flops import DevicePeak, find_device_peak, iteration_flops, peak_tflops
from pgtrain.loop import Trainer
from pgtrain.precision import autocast
from pgtrain.schedule import ScheduleConfig, SchedulePoint, schedule_at, trained_resolutions
from pgtrain.updates import reset_optimizer

MODES = ("BENCHMARK", "BENCHMARK0")  # every level, short / the full resolution only


# -- what to measure -------------------------------------------------------------------------------------------

def split_mode(preset_names: list[str]) -> tuple[list[str], str]:
    """The presets of the configuration to measure, and the benchmark mode (default BENCHMARK).

    The modes' own schedule (3+3 kimg phases, 1-kimg ticks) is not applied: the minibatches and the projected
    schedule are those of the configuration itself (v2-1gpu: 12000 kimg of 600+600 kimg phases).
    """
    modes = [name for name in preset_names if name in MODES]
    if len(set(modes)) > 1:
        raise PgtrainError("choose BENCHMARK (every resolution) or BENCHMARK0 (the full resolution only), not both")
    return [name for name in preset_names if name not in MODES], (modes[0] if modes else "BENCHMARK")


def check_resolution(resolution: int, full_resolution: int | None = None) -> None:
    """--resolution must be a level: a power of two >= 4, and at most the dataset's resolution."""
    if not is_power_of_two(resolution, LOWEST_RESOLUTION):
        raise PgtrainError(f"--resolution {resolution}: not a power of two >= {LOWEST_RESOLUTION}")
    if full_resolution is not None and resolution > full_resolution:
        raise PgtrainError(f"--resolution {resolution}: larger than the dataset's {full_resolution}x{full_resolution}")


def bench_resolutions(sched: ScheduleConfig, resolution_log2: int, mode: str, up_to: int | None) -> list[int]:
    """The level resolutions to measure: those the schedule trains (BENCHMARK) or the last (BENCHMARK0), up to
    `up_to`."""
    levels = [r for r in trained_resolutions(sched, resolution_log2) if up_to is None or r <= up_to]
    return levels[-1:] if mode == "BENCHMARK0" else levels


def processes(config: TrainingConfig) -> int:
    """The processes the configuration is made for: num_gpus per-GPU shares, accumulation_steps per process."""
    return max(1, config.num_gpus // max(1, getattr(config.train, "accumulation_steps", 1)))


def stable_point(resolution: int, resolution_log2: int, config: TrainingConfig) -> SchedulePoint:
    """The schedule's point while `resolution` trains stably (integer lod), with its minibatch and learning rates
    by the official rules: the schedule evaluated at its start with that resolution first."""
    sched = dataclasses.replace(config.sched, lod_initial_resolution=resolution)
    return schedule_at(0, resolution_log2, sched, config.num_gpus)


# -- the projection ----------------------------------------------------------------------------------------------

def kimg_per_resolution(sched: ScheduleConfig, resolution_log2: int, total_kimg: float) -> dict[int, float]:
    """kimg the schedule spends at each level resolution over [0, total_kimg) (stable and fade-in phases).

    The schedule's resolution is piecewise constant, changing only at phase starts and fade-in starts (a fade
    trains at the new resolution), so it is integrated exactly over those intervals. The loop evaluates it once
    per minibatch group, which moves each boundary by less than one group.
    """
    phase = sched.lod_training_kimg + sched.lod_transition_kimg
    cuts = {0.0, float(total_kimg)}
    if phase > 0:
        for index in range(resolution_log2 + 1):
            for cut in (index * phase, index * phase + sched.lod_training_kimg):
                if 0 < cut < total_kimg:
                    cuts.add(float(cut))
    ordered = sorted(cuts)
    spent: dict[int, float] = {}
    for start, end in zip(ordered, ordered[1:], strict=False):
        resolution = schedule_at((start + end) / 2 * 1000, resolution_log2, sched).resolution
        spent[resolution] = spent.get(resolution, 0.0) + (end - start)
    return dict(sorted(spent.items()))


@dataclass(frozen=True)
class Projection:
    """Projected wall time of a schedule from measured sec/kimg per resolution."""

    kimg: dict[int, float]  # the schedule's kimg per resolution
    seconds: dict[int, float]  # for the measured resolutions
    complete: bool  # every resolution the schedule trains was measured

    @property
    def hours(self) -> float:
        return sum(self.seconds.values()) / 3600.0


def project(kimg: dict[int, float], sec_per_kimg: dict[int, float]) -> Projection:
    """Σ kimg at each resolution × sec/kimg at that resolution, over the resolutions measured."""
    seconds = {r: spent * sec_per_kimg[r] for r, spent in kimg.items() if r in sec_per_kimg}
    return Projection(kimg, seconds, all(r in sec_per_kimg for r, spent in kimg.items() if spent > 0))


# -- measuring -----------------------------------------------------------------------------------------------------

def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(call: Callable[[], Any], steps: int, warmup: int, device: torch.device) -> float:
    """Mean wall time of `call` over `steps` calls after `warmup` calls, the device drained before and after."""
    for _ in range(warmup):
        call()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        call()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def seconds_per_call_alternating(calls: list[Callable[[], Any]], steps: int, device: torch.device,
                                 rounds: int = 3) -> list[float]:
    """Mean wall time of each (warmed-up) call over `steps` calls, timed in alternating rounds, so that a
    neighbour's load on a shared machine slows them alike and their ratio stays meaningful."""
    totals = [0.0] * len(calls)
    chunks = [steps // rounds + (index < steps % rounds) for index in range(rounds)]
    for chunk in (c for c in chunks if c):
        for index, call in enumerate(calls):
            synchronize(device)
            start = time.perf_counter()
            for _ in range(chunk):
                call()
            synchronize(device)
            totals[index] += time.perf_counter() - start
    return [total / steps for total in totals]


def trainer_iteration(trainer: Trainer, sched: SchedulePoint) -> Callable[[], None]:
    """One iteration as Trainer.run() does it: D_repeats × (D step, Gs EMA), then a G step."""
    loop = trainer.config.train

    def iterate() -> None:
        for _ in range(loop.D_repeats):
            trainer.discriminator_step(sched)
            update_ema(trainer.Gs, trainer.G, loop.G_smoothing)
        trainer.generator_step(sched)
    return iterate


def bare_iteration(trainer: Trainer, sched: SchedulePoint) -> Callable[[], None]:
    """The same networks' forward and backward passes with the trainer's shapes and losses, on tensors made once:
    no data stage, draws, loss-term bookkeeping, finiteness checks, optimizer or EMA."""
    G, D, device = trainer.G, trainer.D, trainer.device
    precision, loss, lod, size = trainer.config.precision, trainer.config.loss, sched.lod, sched.resolution
    count, repeats = sched.minibatch, trainer.config.train.D_repeats
    rng = torch.Generator(device).manual_seed(0)
    reals = torch.rand(count, trainer.reader.channels, size, size, generator=rng, device=device) * 2 - 1
    latents = torch.randn(count, G.latent_size, generator=rng, device=device)
    table = trainer.label_table
    labels = table[torch.randint(len(table), (count,), generator=rng, device=device)] if table.shape[1] else \
        torch.zeros(count, 0, device=device)
    mixing = torch.rand(count, 1, 1, 1, generator=rng, device=device)

    def discriminator_pass() -> None:
        with autocast(precision, device):
            with torch.no_grad():
                fakes = G(latents, labels, lod, output_resolution=size)
            real_scores = D(reals, lod)[0].float()
            fake_scores = D(fakes, lod)[0].float()
            mixed = (reals + (fakes - reals) * mixing).detach().requires_grad_(True)
            (gradients,) = torch.autograd.grad(D(mixed, lod)[0].float().sum(), mixed, create_graph=True)
            norms = gradients.float().square().sum(dim=(1, 2, 3)).sqrt()
            penalty = (norms - loss.wgan_target).square() * loss.wgan_lambda
            total = (fake_scores - real_scores)[:, 0] + penalty + real_scores[:, 0].square() * loss.wgan_epsilon
        D.zero_grad(set_to_none=True)
        total.mean().backward()

    def generator_pass() -> None:
        D.requires_grad_(False)
        try:
            with autocast(precision, device):
                total = -D(G(latents, labels, lod, output_resolution=size), lod)[0].float().mean()
            G.zero_grad(set_to_none=True)
            total.backward()
        finally:
            D.requires_grad_(True)

    def iterate() -> None:
        for _ in range(repeats):
            discriminator_pass()
        generator_pass()
    return iterate


def loader_images_per_second(trainer: Trainer, steps: int, warmup: int) -> float:
    """Images/s of the trainer's data stage alone at its configured resolution and minibatch."""
    data = trainer.data
    seconds = seconds_per_call(data.next_batch, steps, warmup, torch.device("cpu"))
    return data.minibatch / seconds


def peak_memory_source(device: torch.device) -> str:
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated, per resolution (trainer step)"
    return "process peak resident set size (getrusage ru_maxrss): cumulative over the run, not per resolution"


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


@dataclass
class LevelResult:
    """One resolution's figures. Rates are of the whole configuration (`processes` devices in parallel,
    scaling assumed linear, gradient averaging not counted); TFLOP/s and memory are per device."""

    resolution: int
    lod: float
    minibatch: int  # global, as the schedule sets it
    minibatch_per_device: int
    steps: int
    sec_per_iteration: float
    images_per_s: float
    sec_per_kimg: float
    peak_mem_bytes: int
    loader_images_per_s: float
    flops_per_iteration: int  # per device
    tflops: float
    peak_fraction: float | None
    bare_sec_per_iteration: float | None = None
    bare_images_per_s: float | None = None
    trainer_over_bare: float | None = None


@dataclass
class BenchSettings:
    """How long to measure each level, and which device peak to compare with."""

    kimg_per_level: float = 1.0
    warmup_steps: int = 3
    min_steps: int = 5
    measure_bare: bool = True
    peak_tflops: float | None = None  # overrides the table


@dataclass
class DeviceInfo:
    device: str
    name: str
    peak_tflops: float | None
    peak_basis: str  # what the peak is of ('bf16 dense, NVIDIA H100 SXM (table)'), or why it is unknown


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            model = next((line.split(":", 1)[1].strip() for line in file if line.startswith("model name")), "")
    except OSError:
        model = ""
    return f"{model or platform.processor() or platform.machine()} ({torch.get_num_threads()} torch threads)"


def describe_device(device: torch.device, precision: str, override: float | None) -> DeviceInfo:
    """The device's name and its peak for this precision: the override, the table, or unknown (CPUs)."""
    name = device_name(device)
    if override is not None:
        return DeviceInfo(str(device), name, override, "--peak-tflops")
    peak: DevicePeak | None = find_device_peak(name) if device.type == "cuda" else None
    if peak is None:
        return DeviceInfo(str(device), name, None, "unknown (not in the table; give --peak-tflops)")
    value, number_type = peak_tflops(peak, precision, bool(torch.backends.cudnn.allow_tf32))
    if value is None:
        return DeviceInfo(str(device), name, None, f"unknown ({peak.name} has no {number_type} tensor cores)")
    return DeviceInfo(str(device), name, value, f"{number_type} dense, {peak.name} (table)")


def measure_level(trainer: Trainer, resolution: int, settings: BenchSettings, device_info: DeviceInfo,
                  log: Callable[[str], None]) -> LevelResult:
    """Time the trainer's iteration, the data stage and the bare passes at `resolution`'s stable lod."""
    config = trainer.config
    point = stable_point(resolution, trainer.resolution_log2, config)
    share = point.minibatch // processes(config)
    if share < 1:
        raise PgtrainError(f"the minibatch at {resolution}x{resolution} ({point.minibatch}) is smaller than the "
                           f"{processes(config)} devices it is made for")
    sched = dataclasses.replace(point, minibatch=share)  # one device's share, as that device's trainer steps it
    images = config.train.D_repeats * point.minibatch  # per iteration, all devices
    steps = max(settings.min_steps, math.ceil(settings.kimg_per_level * 1000 / images))
    trainer.data.configure(resolution, share)
    reset_optimizer(trainer.G_opt)  # as run() does at a new level
    reset_optimizer(trainer.D_opt)
    trainer.state.G_adam_steps = trainer.state.D_adam_steps = 0
    loader = loader_images_per_second(trainer, max(steps, 4), 2)
    iterate = trainer_iteration(trainer, sched)
    reset_peak_memory(trainer.device)
    for _ in range(max(1, settings.warmup_steps)):  # the peak of the trainer's step: measured while warming up
        iterate()
    synchronize(trainer.device)
    memory = peak_memory_bytes(trainer.device)
    calls = [iterate]
    if settings.measure_bare:
        calls.append(bare_iteration(trainer, sched))
        for _ in range(settings.warmup_steps):
            calls[1]()
    seconds, *bare = seconds_per_call_alternating(calls, steps, trainer.device)
    flops = iteration_flops(trainer.G, trainer.D, sched.lod).per_iteration(share, config.train.D_repeats)
    tflops = flops / seconds / 1e12
    result = LevelResult(
        resolution=resolution, lod=sched.lod, minibatch=point.minibatch, minibatch_per_device=share, steps=steps,
        sec_per_iteration=seconds, images_per_s=images / seconds, sec_per_kimg=seconds * 1000 / images,
        peak_mem_bytes=memory, loader_images_per_s=loader * processes(config), flops_per_iteration=flops,
        tflops=tflops, peak_fraction=tflops / device_info.peak_tflops if device_info.peak_tflops else None)
    if bare:
        result.bare_sec_per_iteration, result.bare_images_per_s = bare[0], images / bare[0]
        result.trainer_over_bare = seconds / bare[0]
    log(level_line(result))
    return result


# -- the whole run and its report ------------------------------------------------------------------------------

@dataclass
class BenchReport:
    device: DeviceInfo
    torch_version: str
    precision: str
    presets: list[str]
    mode: str
    dataset: str
    full_resolution: int
    processes: int
    peak_mem_source: str
    levels: list[LevelResult] = field(default_factory=list)
    projection: Projection | None = None
    total_kimg: float = 0.0

    def to_json(self) -> dict[str, Any]:
        projection = self.projection
        return {
            "device": self.device.device, "device_name": self.device.name, "torch_version": self.torch_version,
            "precision": self.precision, "presets": self.presets, "mode": self.mode, "dataset": self.dataset,
            "full_resolution": self.full_resolution, "processes": self.processes,
            "tf32_convolutions": bool(torch.backends.cudnn.allow_tf32) if self.device.device.startswith("cuda")
            else None,
            "peak_tflops": self.device.peak_tflops, "peak_basis": self.device.peak_basis,
            "peak_mem_source": self.peak_mem_source,
            "resolutions": [dataclasses.asdict(level) for level in self.levels],
            "schedule_total_kimg": self.total_kimg,
            "schedule_kimg_per_resolution": {str(r): k for r, k in projection.kimg.items()} if projection else {},
            "projected_hours_per_resolution": {str(r): s / 3600 for r, s in projection.seconds.items()}
            if projection else {},
            "projection_complete": projection.complete if projection else False,
            "projected_hours": projection.hours if projection and projection.seconds else None,
        }


def run_benchmark(config: TrainingConfig, reader, device: torch.device, mode: str, up_to: int | None,
                  settings: BenchSettings, log: Callable[[str], None] = print) -> BenchReport:
    """Measure every level `mode` names (up to `up_to`) with a Trainer on `reader`, then project the schedule."""
    from pgtrain import distributed

    if distributed.world_size() > 1:
        raise PgtrainError("pgtrain bench measures one process; run it without torchrun")
    full_log2 = resolution_log2(reader.resolution)
    if processes(config) > 1:  # measure one device's share of a multi-GPU configuration
        config = dataclasses.replace(config, allow_gpu_count_mismatch=True)
    trainer = Trainer(config, reader, None, device=device, log=lambda line="": None)
    info = describe_device(trainer.device, config.precision, settings.peak_tflops)
    report = BenchReport(info, torch.__version__, config.precision, list(config.presets), mode, str(reader.path),
                         reader.resolution, processes(config), peak_memory_source(trainer.device),
                         total_kimg=config.train.total_kimg)
    log(f"Device: {info.name} ({info.device}); torch {torch.__version__}; precision {config.precision}; "
        f"peak {format_peak(info)}")
    if report.processes > 1:
        log(f"Configuration for {config.num_gpus} GPUs: one device's share is measured; rates assume "
            f"{report.processes} devices scale linearly (gradient averaging not counted)")
    try:
        for resolution in bench_resolutions(config.sched, full_log2, mode, up_to):
            report.levels.append(measure_level(trainer, resolution, settings, info, log))
    finally:
        trainer.data.close()
    spent = kimg_per_resolution(config.sched, full_log2, config.train.total_kimg)
    report.projection = project(spent, {level.resolution: level.sec_per_kimg for level in report.levels})
    return report


def format_peak(info: DeviceInfo) -> str:
    return f"{info.peak_tflops:g} TFLOP/s ({info.peak_basis})" if info.peak_tflops else info.peak_basis


def level_line(level: LevelResult) -> str:
    """The progress line of one resolution."""
    bare = (f"; bare {level.bare_images_per_s:.1f} img/s, trainer/bare {level.trainer_over_bare:.2f}x"
            if level.trainer_over_bare is not None else "")
    fraction = f" ({level.peak_fraction:.1%} of peak)" if level.peak_fraction is not None else ""
    return (f"{level.resolution:>5}x{level.resolution:<5} minibatch {level.minibatch:<4} "
            f"{level.sec_per_kimg:9.2f} sec/kimg {level.images_per_s:9.1f} img/s{bare}; loader "
            f"{level.loader_images_per_s:.0f} img/s; {level.tflops:.3g} TFLOP/s{fraction}; "
            f"peak mem {level.peak_mem_bytes / 2**20:.0f} MiB ({level.steps} steps)")


def format_table(report: BenchReport) -> str:
    """The final table, one row per resolution, then the projection."""
    header = (f"{'res':>6} {'mb':>4} {'sec/kimg':>9} {'img/s':>9} {'bare img/s':>10} {'tr/bare':>7} "
              f"{'loader img/s':>12} {'TFLOP/s':>8} {'% peak':>7} {'peak MiB':>9}")
    lines = [header, "-" * len(header)]
    for level in report.levels:
        bare = f"{level.bare_images_per_s:10.1f} {level.trainer_over_bare:7.2f}" \
            if level.trainer_over_bare is not None else f"{'-':>10} {'-':>7}"
        fraction = f"{level.peak_fraction:7.1%}" if level.peak_fraction is not None else f"{'-':>7}"
        lines.append(f"{level.resolution:>6} {level.minibatch:>4} {level.sec_per_kimg:9.2f} "
                     f"{level.images_per_s:9.1f} {bare} {level.loader_images_per_s:12.0f} {level.tflops:8.3g} "
                     f"{fraction} {level.peak_mem_bytes / 2**20:9.0f}")
    lines.append(projection_line(report))
    return "\n".join(lines)


def projection_line(report: BenchReport) -> str:
    projection = report.projection
    if projection is None or not projection.seconds:
        return "Projection: no resolution the schedule trains was measured"
    kimg = sum(projection.kimg[r] for r in projection.seconds)
    schedule = f"{'+'.join(report.presets)} on {report.full_resolution}x{report.full_resolution}"
    if projection.complete:
        return (f"Projected wall time of the schedule ({schedule}, {report.total_kimg:g} kimg): "
                f"{format_time(projection.hours * 3600)} ({projection.hours:.3g} h), ticks and snapshots not counted")
    measured = ", ".join(str(r) for r in projection.seconds)
    return (f"Projected wall time of the measured levels only ({measured}: {kimg:g} of {report.total_kimg:g} kimg "
            f"of {schedule}): {format_time(projection.hours * 3600)} ({projection.hours:.3g} h); measure every level for the whole schedule")
