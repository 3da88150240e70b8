"""`pgtrain bench`: per-resolution training speed, loader speed, TFLOP/s and the projected schedule time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pgtrain.cli import app


@app.command("bench")
def bench(
    preset: Annotated[list[str] | None, typer.Option(
        help="Configuration to measure, as for `pgtrain run` (default v2-1gpu+fp32); add BENCHMARK (every "
             "resolution, the default) or BENCHMARK0 (the full resolution only).")] = None,
    settings: Annotated[list[str] | None, typer.Option(
        "--set", help="Override any field, as for `pgtrain run`: G.fmap_base=64, sched.minibatch_dict={4:64}.")
    ] = None,
    resolution: Annotated[int | None, typer.Option(
        help="Measure the levels up to this resolution. Without --data the synthetic images have this "
             "resolution (default 1024), so the projection is the schedule of such a dataset.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda if available).")] = None,
    data: Annotated[Path | None, typer.Option(
        help="Dataset to read (pgshards, TFRecords, HDF5); default: synthetic black RGB images, no I/O.")] = None,
    kimg_per_level: Annotated[float, typer.Option(
        help="Images (kimg) timed at each resolution, after the warm-up steps.")] = 1.0,
    warmup_steps: Annotated[int, typer.Option(help="Untimed iterations before each measurement.")] = 3,
    min_steps: Annotated[int, typer.Option(help="Timed iterations at least, whatever --kimg-per-level.")] = 5,
    peak_tflops: Annotated[float | None, typer.Option(
        help="The device's peak TFLOP/s for this precision (default: the table of known GPUs; unknown on CPUs).")
    ] = None,
    bare: Annotated[bool, typer.Option(
        "--bare/--no-bare", help="Also time the bare networks' passes (trainer/bare ratio).")] = True,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results to this JSON file.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --json file.")] = False,
    cpu_threads: Annotated[int | None, typer.Option(help="Threads for CPU math (default: torch's choice).")] = None,
) -> None:
    """Measure training speed per resolution with the trainer's real step, and project a whole schedule.

    Per resolution: minibatch, sec/kimg, images/s, peak memory, the data stage's images/s, achieved TFLOP/s
    and its fraction of the device's peak, and the bare networks' speed (trainer/bare). Then the projected
    wall time of the configuration's schedule. See docs/performance.md.

    Example: pgtrain bench --preset v2-1gpu+fp16+BENCHMARK0 --kimg-per-level 2 --json bench.json
    CPU: pgtrain bench --preset demo-cpu --resolution 32 --device cpu
    """
    from pgdata.common.atomic import write_text
    from pgtrain import bench as measure
    from pgtrain import distributed
    from pgtrain.data import open_training_data
    from pgtrain.dataset_presets import detect_for_reader
    from pgtrain.errors import PgtrainError
    from pgtrain.outputs import check_output, make_folder
    from pgtrain.presets import resolve_config, resolve_run_config, split_preset_names

    if json_path is not None:
        check_output(json_path, overwrite)  # before minutes of measuring, not after
    if resolution is not None:
        measure.check_resolution(resolution)
    if kimg_per_level <= 0 or warmup_steps < 0 or min_steps < 1:
        raise PgtrainError("--kimg-per-level must be > 0, --warmup-steps >= 0 and --min-steps >= 1")
    names, mode = measure.split_mode(split_preset_names(preset))
    config = resolve_config(names, settings)  # the user's own choices are checked before any I/O
    synthetic = config.dataset.synthetic
    if data is None and not synthetic:
        synthetic = {"resolution": resolution or 1024, "channels": 3}
    reader = open_training_data(None if synthetic else data, synthetic)
    if resolution is not None:
        measure.check_resolution(resolution, reader.resolution)
    config, _ = resolve_run_config(names, settings, detect_for_reader(reader))
    if cpu_threads is not None:
        import torch

        torch.set_num_threads(max(1, cpu_threads))
    torch_device = distributed.init(device)
    options = measure.BenchSettings(kimg_per_level, warmup_steps, min_steps, bare, peak_tflops)
    typer.echo(f"Benchmark {mode} of {'+'.join(config.presets)} on {reader.path} "
               f"({reader.resolution}x{reader.resolution}); {kimg_per_level:g} kimg per resolution")
    report = measure.run_benchmark(config, reader, torch_device, mode, resolution, options, log=typer.echo)
    typer.echo(measure.format_table(report))
    if json_path is not None:
        make_folder(json_path.parent)
        write_text(json_path, json.dumps(report.to_json(), indent=1) + "\n", fsync=False, error_type=PgtrainError)
        typer.echo(f"Results: {json_path}")
