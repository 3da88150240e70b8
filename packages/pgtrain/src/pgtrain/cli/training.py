"""pgtrain commands for training: `run` and `presets` (`presets show NAME`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from pgtrain.cli import app
from pgtrain.errors import PgtrainError

presets_app = typer.Typer(help="List the training presets, or show one in full.\n\n"
                               "Example: pgtrain presets; pgtrain presets show v2-8gpus",
                          invoke_without_command=True, no_args_is_help=False)
app.add_typer(presets_app, name="presets")


@presets_app.callback()
def presets_list(context: typer.Context) -> None:
    """List every preset with one line each (the official config.py's presets and switches, plus ours).

    Example: pgtrain presets; pgtrain presets show v2-8gpus
    """
    if context.invoked_subcommand is not None:
        return
    from pgtrain.presets import DEFAULT_BASE, DEFAULT_PRECISION, KINDS, PRESETS

    width = max(len(name) for name in PRESETS)
    for kind in KINDS:
        members = [p for p in PRESETS.values() if p.kind == kind]
        typer.echo(f"{kind}:")
        for preset in members:
            default = " (default)" if preset.name in (DEFAULT_BASE, DEFAULT_PRECISION) else ""
            typer.echo(f"  {preset.name:<{width}s} {preset.summary}{default}")
    typer.echo("Combine with '+' or repeat --preset: pgtrain run --preset v2-4gpus+fp16+nogrowing --data DIR")
    typer.echo("A dataset preset is detected when none is named (from pgdata's manifest, or an official TFRecords "
               "or HDF5 name); --set train.mirror_augment=... or --preset NAME chooses otherwise.")


@presets_app.command("show")
def presets_show(name: Annotated[str, typer.Argument(help="Preset name, as listed by `pgtrain presets`.")]) -> None:
    """Print one preset: what it is for and every setting it applies.

    Example: pgtrain presets show v2-8gpus
    """
    from pgtrain.presets import get_preset

    preset = get_preset(name)
    typer.echo(f"{preset.name} ({preset.kind}): {preset.summary}")
    for key, value in preset.settings:
        typer.echo(f"  {key} = {value!r}")
    if not preset.settings:
        typer.echo("  (no settings: the official line only names the dataset)")


@dataclass
class Plan:
    """What `pgtrain run` will do, resolved from its options before any training: the configuration, the data,
    and where it starts (fresh, a training state to resume, or a snapshot's networks to fine-tune from)."""

    config: Any
    reader: Any
    dataset_line: str
    data: Path | None
    resumed_path: Path | None = None
    resumed: Any = None  # the training state, read and checked once, handed to the trainer
    start_snapshot: Any = None
    start_kimg: float | None = None
    in_place: Path | None = None  # --run-dir: the run directory itself


def _check_exclusive(resume: Path | None, start_from: Path | None, start_kimg: float | None,
                     preset: list[str] | None) -> None:
    if start_kimg is not None and start_from is None:
        raise PgtrainError("--start-kimg needs --start-from (the snapshot whose networks the new run starts from)")
    if resume is not None and start_from is not None:
        raise PgtrainError("--resume continues a run, --start-from starts a new one from a snapshot's networks: "
                           "choose one")
    if resume is not None and preset:
        raise PgtrainError("--preset cannot be combined with --resume: the snapshot's configuration is used "
                           "(change fields with --set)")


def _plan_resume(resume: Path, data: Path | None, settings: list[str] | None) -> Plan:
    """Continue from a training state (--resume's file or run directory, or --run-dir's latest): its configuration
    (with --set on top) and its dataset unless --data."""
    from pgtrain.config import apply_overrides, validate
    from pgtrain.data import open_training_data
    from pgtrain.presets import resumed_dataset_line
    from pgtrain.run_dir import locate_resume
    from pgtrain.training_state import load_resume_snapshot, resume_config

    snapshot = load_resume_snapshot(locate_resume(resume))
    config, saved_data = resume_config(snapshot)
    apply_overrides(config, settings or [])
    validate(config)
    data = data if data is not None else (Path(saved_data) if saved_data else None)
    reader = open_training_data(data, config.dataset.synthetic)
    return Plan(config, reader, resumed_dataset_line(config, settings), data, snapshot.path, snapshot)


def _plan_new(data: Path | None, preset: list[str] | None, settings: list[str] | None,
              start_from: Path | None, start_kimg: float | None) -> Plan:
    """A new run: presets, --set and the detected dataset preset; with --start-from, the snapshot's networks."""
    from pgtrain.checkpoint import load_snapshot
    from pgtrain.data import open_training_data
    from pgtrain.dataset_presets import detect_for_reader
    from pgtrain.presets import resolve_config, resolve_run_config

    config = resolve_config(preset, settings)  # the user's own choices are checked before any I/O
    reader = open_training_data(data, config.dataset.synthetic)
    config, dataset_line = resolve_run_config(preset, settings, detect_for_reader(reader))
    plan = Plan(config, reader, dataset_line, data, start_kimg=start_kimg)
    if start_from is not None:
        from pgtrain.finetune import adopt_networks, starting_kimg

        plan.start_snapshot = load_snapshot(start_from)  # read and checked once, handed to the trainer
        plan.config = adopt_networks(config, plan.start_snapshot)
        plan.dataset_line += (f"\nStarting from the networks of {start_from} at kimg "
                              f"{starting_kimg(plan.start_snapshot, start_kimg):g} (fine-tuning: fresh optimizers)")
    return plan


def _open_run_dir(results: Path, run_dir_option: Path | None, description: str) -> Path:
    """The run directory (rank 0): the one --run-dir names, else a new results/NNN-description."""
    from pgtrain.run_dir import create_run_dir, make_run_dir

    if run_dir_option is not None:
        return make_run_dir(run_dir_option)
    return create_run_dir(results, description)


def _write_config(run_dir: Path, config: Any) -> None:
    from pgdata.common.atomic import write_text
    from pgtrain.config import config_to_json
    from pgtrain.run_dir import CONFIG_NAME

    write_text(run_dir / CONFIG_NAME, config_to_json(config) + "\n", fsync=False, error_type=PgtrainError)


def _metrics(metrics: str | None, metrics_num: int | None, inception_weights: Path | None,
             allow_unverified_weights: bool) -> Any:
    """pgmetrics' checked settings for --metrics (None without it); options that need --metrics are refused."""
    if metrics is None:
        if metrics_num is not None or inception_weights is not None or allow_unverified_weights:
            raise PgtrainError("--metrics-num, --inception-weights and --allow-unverified-weights need --metrics")
        return None
    from pgtrain.snapshot_metrics import MetricsRequest, check_request

    return check_request(MetricsRequest(metrics, metrics_num, None if inception_weights is None
                                        else str(inception_weights), allow_unverified_weights))


@app.command("run")
def run(
    data: Annotated[Path | None, typer.Option(help="Dataset: a pgshards or TFRecords directory, or an HDF5 "
                                                   "file (not needed with the syn1024rgb preset).")] = None,
    preset: Annotated[list[str] | None, typer.Option(
        help="Preset(s) to apply; repeat or join with '+' (default v2-1gpu+fp32; see `pgtrain presets`).")] = None,
    settings: Annotated[list[str] | None, typer.Option(
        "--set", help="Override any field: key=value, e.g. train.total_kimg=100 or sched.minibatch_dict={4:64}.")
    ] = None,
    results: Annotated[Path, typer.Option(help="Folder for run directories.")] = Path("results"),
    run_dir: Annotated[Path | None, typer.Option(
        help="Use exactly this run directory: absent or empty, a new run there; a finished run, nothing to do "
             "(exit 0); an unfinished run, resumed in place from its latest training state, bit for bit. "
             "--results is then not used.")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Continue a run in a new run directory: its directory (latest training state), a training-state-*.pt "
             "file, or a network snapshot with its training state beside it.")] = None,
    start_from: Annotated[Path | None, typer.Option(
        help="Fine-tune: a new run that starts from this snapshot's networks (ours, or `pgtrain import-tf` "
             "output) with fresh optimizers; the dataset must have the networks' resolution, channels and labels "
             "(the official resume_run_id).")] = None,
    start_kimg: Annotated[float | None, typer.Option(
        help="With --start-from: the kimg at which the schedule starts (official resume_kimg; default: the "
             "snapshot's kimg when it records one, else 0).")] = None,
    metrics: Annotated[str | None, typer.Option(
        help="Score each network snapshot as it is written, e.g. swd,fid (pgmetrics' metrics): the same "
             "metric-<name>-<num>.txt/.png files as `pgmetrics evaluate RUN_DIR`, values also in log.txt and "
             "stats.jsonl.")] = None,
    metrics_num: Annotated[int | None, typer.Option(
        help="With --metrics: images per evaluation (default: pgmetrics' default, the whole real set).",
        min=1)] = None,
    inception_weights: Annotated[Path | None, typer.Option(
        help="With --metrics: the TF-Inception weights file for fid/is/kid (default: located as pgmetrics does).")
    ] = None,
    allow_unverified_weights: Annotated[bool, typer.Option(
        "--allow-unverified-weights", help="With --metrics: accept Inception weights other than the official "
                                          "ones (scores then not comparable with published ones).")] = False,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda if available).")] = None,
    gpus: Annotated[int | None, typer.Option(
        help="Processes to start, one per GPU (default: the preset's num_gpus when that many GPUs are visible, "
             "else 1). Under torchrun or srun the launcher's world is used. With --device cpu: that many gloo "
             "processes (for tests).", min=1)] = None,
    collective_timeout: Annotated[float, typer.Option(
        help="Seconds a process waits for the others in a gradient exchange before the job stops with an error "
             "(a rank that died or hangs).", min=1)] = 600,
    cpu_threads: Annotated[int | None, typer.Option(
        help="Threads for CPU math (default: torch's choice; 1 is fastest on a busy small machine).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved configuration and exit.")] = False,
) -> None:
    """Train a Progressive GAN; writes results/NNN-pgan-<dataset>-<preset>-<precision>/ (or --run-dir).

    The run directory gets log.txt, config.json, stats.jsonl, reals.png, fakesNNNNNN.png (kimg),
    network-snapshot-NNNNNN.pt (G, D, Gs), training-state-NNNNNN.pt (the newest few full states: networks,
    optimizers, counters), network-final.pt and _training-done.txt. Ctrl-C (or SIGTERM) writes a snapshot and a
    training state and exits; --resume (or running again with the same --run-dir) continues exactly there.

    The official dataset preset (celebahq, lsun-bedroom ...: mirror augment as the official config) is
    detected from the dataset unless one is named with --preset or its settings are given with --set; the
    log says which, and config.json lists it in "presets".

    Example: pgtrain run --preset v2-4gpus --data datasets/celebahq
    Idempotent, with metrics: pgtrain run --data datasets/celebahq --run-dir results/celebahq --metrics swd,fid
    Fine-tuning: pgtrain run --data datasets/mine --start-from celebahq.pt --start-kimg 12000
    """
    from pgtrain.run_dir import classify_run_dir, latest_state

    _check_exclusive(resume, start_from, start_kimg, preset)
    if run_dir is not None:
        if resume is not None:
            raise PgtrainError("--run-dir resumes its own unfinished run; --resume continues another run in a new "
                               "directory: choose one")
        kind = classify_run_dir(run_dir)
        if kind == "finished":
            typer.echo(f"{run_dir}: training already finished")
            return
        resume = latest_state(run_dir) if kind == "unfinished" else None  # None: no state yet, start afresh
    metric_settings = _metrics(metrics, metrics_num, inception_weights, allow_unverified_weights)
    plan = _plan_resume(resume, data, settings) if resume is not None \
        else _plan_new(data, preset, settings, start_from, start_kimg)
    if run_dir is not None and plan.resumed is not None:
        plan.in_place = run_dir
    _train(plan, results, run_dir, metric_settings, device, gpus, collective_timeout, cpu_threads, dry_run)


def _train(plan: Plan, results: Path, run_dir_option: Path | None, metric_settings: Any, device: str | None,
           gpus: int | None, collective_timeout: float, cpu_threads: int | None, dry_run: bool) -> None:
    """Start the processes, announce the configuration, open the run directory and run the trainer."""
    from pgtrain import distributed
    from pgtrain.config import config_to_json
    from pgtrain.loop import Trainer, install_signal_handlers
    from pgtrain.presets import run_description
    from pgtrain.reporting import trim_stats
    from pgtrain.run_dir import LOG_NAME, LogTee
    from pgtrain.snapshot_metrics import SnapshotMetrics

    config, reader = plan.config, plan.reader
    processes = gpus if gpus is not None else distributed.default_process_count(config.num_gpus, device)
    if distributed.launched():
        if gpus is not None and gpus != distributed.world_size():
            raise PgtrainError(f"--gpus {gpus}, but the launcher started {distributed.world_size()} process(es)")
    elif processes > 1 and not dry_run:
        typer.echo(f"Starting {processes} processes (torch.distributed elastic launcher) ...")
        distributed.launch(processes, sys.argv[1:])
        return
    description = run_description(config, reader.path.name)
    say = typer.echo if distributed.is_main() else (lambda *args, **kwargs: None)  # one copy, from rank 0
    say(f"Dataset: {reader.path} ({reader.num_images} images, {reader.channels}x{reader.resolution}x"
        f"{reader.resolution}, labels {reader.label_size})")
    say(plan.dataset_line)
    resumed = f", resumed from {plan.resumed_path}" if plan.resumed_path else ""
    say(f"Configuration ({'+'.join(config.presets)}{resumed}):")
    say(config_to_json(config))
    if dry_run:
        say(f"Dry run: would write {run_dir_option or f'{results}/NNN-{description}'}/")
        return

    if cpu_threads is not None:
        import torch

        torch.set_num_threads(max(1, cpu_threads))
    torch_device = distributed.init(device, collective_timeout)
    run_dir = _open_run_dir(results, run_dir_option, description) if distributed.is_main() else None
    log = None
    if run_dir is not None:
        _write_config(run_dir, config)
        log = LogTee(run_dir / LOG_NAME)
        log(f"Run directory: {run_dir}")
        log(f"Dataset: {reader.path}; device: {torch_device}; world size {distributed.world_size()}")
        log(plan.dataset_line)
        if plan.resumed_path is not None:
            log(f"Resuming {'in place ' if plan.in_place else ''}from {plan.resumed_path}")
    scorer = SnapshotMetrics(metric_settings, log or (lambda line="": None)) if metric_settings else None
    trainer = Trainer(config, reader, run_dir, device=torch_device, log=log,
                      dataset_path=None if config.dataset.synthetic else str(Path(plan.data).resolve()),
                      resume_from=plan.resumed, start_from=plan.start_snapshot, start_kimg=plan.start_kimg, metrics=scorer)
    if run_dir is not None and run_dir_option is not None:
        trim_stats(run_dir, trainer.state.cur_tick)  # a rerun repeats the ticks after its training state
    restore_signal_handlers = install_signal_handlers(trainer)
    try:
        finished = trainer.run()
    finally:
        restore_signal_handlers()
    if log is not None:
        log("Training done." if finished else "Training interrupted (snapshot and training state saved).")
        log.close()
