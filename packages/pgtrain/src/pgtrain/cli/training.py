"""pgtrain commands for training: `run` and `presets` (`presets show NAME`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pgtrain.cli import app
from pgtrain.errors import PgtrainError

presets_app = typer.Typer(help="List the training presets, or show one in full.", invoke_without_command=True,
                          no_args_is_help=False)
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
    resume: Annotated[Path | None, typer.Option(
        help="Continue a run: its directory (latest snapshot) or a network-*.pt snapshot.")] = None,
    start_from: Annotated[Path | None, typer.Option(
        help="Fine-tune: a new run that starts from this snapshot's networks (ours, or `pgtrain import-tf` "
             "output) with fresh optimizers; the dataset must have the networks' resolution, channels and labels "
             "(the official resume_run_id).")] = None,
    start_kimg: Annotated[float | None, typer.Option(
        help="With --start-from: the kimg at which the schedule starts (official resume_kimg; default: the "
             "snapshot's kimg when it records one, else 0).")] = None,
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
    """Train a Progressive GAN; writes results/NNN-pgan-<dataset>-<preset>-<precision>/.

    The run directory gets log.txt, config.json, stats.jsonl, reals.png, fakesNNNNNN.png (kimg),
    network-snapshot-NNNNNN.pt, network-final.pt and _training-done.txt. Ctrl-C (or SIGTERM) saves a snapshot
    and exits; --resume continues exactly where it stopped.

    The official dataset preset (celebahq, lsun-bedroom ...: mirror augment as the official config) is
    detected from the dataset unless one is named with --preset or its settings are given with --set; the
    log says which, and config.json lists it in "presets".

    Example: pgtrain run --preset v2-4gpus --data datasets/celebahq
    Fine-tuning: pgtrain run --data datasets/mine --start-from celebahq.pt --start-kimg 12000
    """
    from pgtrain import distributed
    from pgtrain.checkpoint import load_snapshot
    from pgtrain.config import apply_overrides, config_to_json, validate
    from pgtrain.data import open_training_data
    from pgtrain.dataset_presets import detect_for_reader
    from pgtrain.loop import Trainer, install_signal_handlers, resume_config
    from pgtrain.presets import resolve_config, resolve_run_config, resumed_dataset_line, run_description
    from pgtrain.run_dir import LogTee, create_run_dir, locate_resume

    snapshot = start_snapshot = resumed_path = None
    if start_kimg is not None and start_from is None:
        raise PgtrainError("--start-kimg needs --start-from (the snapshot whose networks the new run starts from)")
    if resume is not None:
        if start_from is not None:
            raise PgtrainError("--resume continues a run, --start-from starts a new one from a snapshot's networks: "
                               "choose one")
        if preset:
            raise PgtrainError("--preset cannot be combined with --resume: the snapshot's configuration is used "
                               "(change fields with --set)")
        resumed_path = locate_resume(resume)
        snapshot = load_snapshot(resumed_path)  # read and checked once, handed to the trainer
        config, saved_data = resume_config(snapshot)
        apply_overrides(config, settings or [])
        validate(config)
        data = data if data is not None else (Path(saved_data) if saved_data else None)
        reader = open_training_data(data, config.dataset.synthetic)
        dataset_line = resumed_dataset_line(config, settings)
    else:
        config = resolve_config(preset, settings)  # the user's own choices are checked before any I/O
        reader = open_training_data(data, config.dataset.synthetic)
        config, dataset_line = resolve_run_config(preset, settings, detect_for_reader(reader))
        if start_from is not None:
            from pgtrain.finetune import adopt_networks, starting_kimg

            start_snapshot = load_snapshot(start_from)  # read and checked once, handed to the trainer
            config = adopt_networks(config, start_snapshot)
            dataset_line += (f"\nStarting from the networks of {start_from} at kimg "
                             f"{starting_kimg(start_snapshot, start_kimg):g} (fine-tuning: fresh optimizers)")
    processes = gpus if gpus is not None else distributed.default_process_count(config.num_gpus, device)
    if distributed.launched():
        if gpus is not None and gpus != distributed.world_size():
            raise PgtrainError(f"--gpus {gpus}, but the launcher started {distributed.world_size()} process(es)")
    elif processes > 1 and not dry_run:
        typer.echo(f"Starting {processes} processes (torch.distributed elastic launcher) ...")
        distributed.launch(processes, sys.argv[1:])
        return
    dataset_name = reader.path.name
    description = run_description(config, dataset_name)
    say = typer.echo if distributed.is_main() else (lambda *args, **kwargs: None)  # one copy, from rank 0
    say(f"Dataset: {reader.path} ({reader.num_images} images, {reader.channels}x{reader.resolution}x"
        f"{reader.resolution}, labels {reader.label_size})")
    say(dataset_line)
    say(f"Configuration ({'+'.join(config.presets)}{', resumed from ' + str(resumed_path) if resumed_path else ''}):")
    say(config_to_json(config))
    if dry_run:
        say(f"Dry run: would write {results}/NNN-{description}/")
        return

    if cpu_threads is not None:
        import torch

        torch.set_num_threads(max(1, cpu_threads))
    torch_device = distributed.init(device, collective_timeout)
    run_dir = create_run_dir(results, description) if distributed.is_main() else None
    log = None
    if run_dir is not None:
        (run_dir / "config.json").write_text(config_to_json(config) + "\n")
        log = LogTee(run_dir / "log.txt")
        log(f"Run directory: {run_dir}")
        log(f"Dataset: {reader.path}; device: {torch_device}; world size {distributed.world_size()}")
        log(dataset_line)
        if resumed_path is not None:
            log(f"Resuming from {resumed_path}")
    trainer = Trainer(config, reader, run_dir, device=torch_device, log=log,
                      dataset_path=None if config.dataset.synthetic else str(Path(data).resolve()),
                      resume_from=snapshot, start_from=start_snapshot, start_kimg=start_kimg)
    install_signal_handlers(trainer)
    finished = trainer.run()
    if log is not None:
        log("Training done." if finished else "Training interrupted (snapshot saved).")
        log.close()
