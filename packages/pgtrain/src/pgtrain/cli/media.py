"""pgtrain commands that make videos and strips: `video`, `training-video`, `interpolate`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from pgtrain.cli import app, options
from pgtrain.errors import PgtrainError

if TYPE_CHECKING:
    from pgtrain.video import VideoInfo


def _check_video_options(out: Path, fps: int, codec: str, bitrate: str, overwrite: bool) -> None:
    """Everything about the MP4 that can be refused before any work: output, rate, encoder, bitrate."""
    from pgtrain.outputs import check_output
    from pgtrain.video import parse_bitrate, require_encoder

    if out.suffix.lower() != ".mp4":
        raise PgtrainError(f"{out}: the output must be an .mp4 file")
    check_output(out, overwrite)
    if fps <= 0:
        raise PgtrainError(f"--fps must be positive, got {fps}")
    try:
        parse_bitrate(bitrate)
    except ValueError as error:
        raise PgtrainError(f"--bitrate: {error}") from error
    require_encoder(codec)


def _report(info: VideoInfo) -> None:
    typer.echo(f"wrote {info.path}: {info.frames} frames, {info.width}x{info.height}")


@app.command("video")
def video(
    snapshot_path: options.Snapshot,
    out: options.VideoOut,
    grid: Annotated[str, typer.Option(help="Each frame a grid of W x H images.")] = "1x1",
    duration: Annotated[float, typer.Option(help="Length in seconds (official 60).")] = 60.0,
    fps: options.Fps = 30,
    smoothing: Annotated[float, typer.Option(help="Gaussian smoothing of the latents over time, in seconds.")] = 1.0,
    zoom: options.Zoom = 1.0,
    shrink: options.Shrink = 1,
    seed: Annotated[int, typer.Option(help="Seed of the latents (official default 1000).")] = 1000,
    labels: Annotated[str | None, typer.Option(help="Conditioned networks: class indices or a .npy, one per "
                                                    "grid cell (cycled).")] = None,
    codec: options.Codec = "libx264",
    bitrate: options.Bitrate = "16M",
    lod: options.Lod = None,
    batch_size: options.BatchSize = 16,
    device: options.Device = "cpu",
    overwrite: options.Overwrite = False,
    quiet: options.Quiet = False,
) -> None:
    """A random walk through latent space as the official generate_interpolation_video.

    Latents: RandomState(seed).randn(frames, W x H, latent_size), frames = rint(duration x fps), smoothed over
    time by a Gaussian of sigma smoothing x fps frames (wrapping: the video loops), divided by their RMS.

    Examples:
      pgtrain video celebahq-1024.pt --out lerp.mp4
      pgtrain video celebahq-1024.pt --grid 4x2 --shrink 4 --duration 10 --codec libx265 --out grid.mp4
    """
    from pgdata.progress import progress_bar
    from pgtrain.frames import gs_frames
    from pgtrain.generator_setup import check_positive, check_seed, check_shrink, load_generator, parse_grid
    from pgtrain.labels import resolve_labels
    from pgtrain.latents import num_video_frames, smoothed_latents
    from pgtrain.video import write_mp4

    columns, rows = parse_grid(grid)
    check_positive("--duration", duration)
    check_positive("--batch-size", batch_size)
    if smoothing < 0 or zoom < 1:
        raise PgtrainError(f"--smoothing must be >= 0 and --zoom >= 1, got {smoothing} and {zoom}")
    _check_video_options(out, fps, codec, bitrate, overwrite)
    frames = num_video_frames(duration, fps)
    if frames < 1:
        raise PgtrainError(f"--duration {duration} at --fps {fps} makes no frame")
    loaded = load_generator(snapshot_path, device, lod)
    check_shrink(shrink, loaded.Gs, snapshot_path)
    cell_labels = resolve_labels(labels, loaded.Gs.label_size, columns * rows)
    latents = smoothed_latents(check_seed(seed), frames, columns * rows, loaded.Gs.latent_size, smoothing * fps)
    groups = ((frame_latents, cell_labels) for frame_latents in latents)
    frame_iter = gs_frames(loaded.Gs, groups, lod=loaded.lod, columns=columns, rows=rows, shrink=shrink, zoom=zoom,
                           batch_size=batch_size, device=device)
    with progress_bar(frames, "video", unit="frame", quiet=quiet) as bar:
        info = write_mp4(out, frame_iter, fps=fps, codec=codec, bitrate=bitrate, on_frame=lambda: bar.update(1))
    _report(info)


@app.command("training-video")
def training_video(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory (log.txt, fakesNNNNNN.png).")],
    out: options.VideoOut,
    duration: Annotated[float, typer.Option(help="Length in seconds (official 20).")] = 20.0,
    time_warp: Annotated[float, typer.Option("--time-warp", help="Frame at t shows wall-clock "
                                             "(t / duration)^time_warp of the run (official 1.5).")] = 1.5,
    fps: options.Fps = 30,
    codec: options.Codec = "libx264",
    bitrate: options.Bitrate = "16M",
    overwrite: options.Overwrite = False,
    quiet: options.Quiet = False,
) -> None:
    """The run's fakes grids over its wall-clock time, as the official generate_training_video: grids halved
    to fit 1920x1080, with lod, time and kimg written along the bottom.

    Example: pgtrain training-video results/003-pgan-celebahq-v2-1gpu-fp32 --out training.mp4
    """
    from pgdata.progress import progress_bar
    from pgtrain.generator_setup import check_positive
    from pgtrain.latents import num_video_frames
    from pgtrain.training_video import frame_ticks, read_ticks, training_frames
    from pgtrain.video import write_mp4

    check_positive("--duration", duration)
    check_positive("--time-warp", time_warp)
    _check_video_options(out, fps, codec, bitrate, overwrite)
    ticks = read_ticks(run_dir)
    frames = num_video_frames(duration, fps)
    if frames < 1:
        raise PgtrainError(f"--duration {duration} at --fps {fps} makes no frame")
    frame_iter = training_frames(frame_ticks(ticks, duration, time_warp, fps))
    with progress_bar(frames, "training-video", unit="frame", quiet=quiet) as bar:
        info = write_mp4(out, frame_iter, fps=fps, codec=codec, bitrate=bitrate, on_frame=lambda: bar.update(1))
    _report(info)


def _endpoint(spec: str, latent_size: int, option: str) -> np.ndarray:
    """A seed (its first latent, PNG 0 of `pgtrain generate --seed S`) or a [latent_size] / [1, latent_size] .npy."""
    from pgtrain.generator_setup import check_seed
    from pgtrain.latents import seed_latent

    if spec.strip().isdigit():
        return seed_latent(check_seed(int(spec), option), latent_size)
    path = Path(spec)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise PgtrainError(f"{option} {spec}: neither a seed nor a readable .npy latent ({error})") from error
    if array.size != latent_size or array.ndim > 2:
        raise PgtrainError(f"{path}: a latent must be [{latent_size}] or [1, {latent_size}], got {list(array.shape)}")
    return array.reshape(latent_size).astype(np.float32)


@app.command("interpolate")
def interpolate(
    snapshot_path: options.Snapshot,
    start: Annotated[str, typer.Option("--from", help="Start: a seed (PNG 0 of `generate --seed S`) or a .npy "
                                       "latent.")],
    end: Annotated[str, typer.Option("--to", help="End: a seed or a .npy latent.")],
    out: Annotated[Path, typer.Option(help="FILE.mp4 (one step per frame) or FILE.png (a strip of the steps).")],
    steps: Annotated[int, typer.Option(help="Images from start to end, both included.")] = 60,
    slerp: Annotated[bool, typer.Option("--slerp", help="Spherical instead of linear interpolation.")] = False,
    columns: Annotated[int | None, typer.Option(help="PNG strip: steps per row (default: all in one row).")] = None,
    labels: Annotated[str | None, typer.Option(help="Conditioned networks: class indices or a .npy (step i "
                                                    "gets entry i mod K).")] = None,
    shrink: options.Shrink = 1,
    zoom: options.Zoom = 1.0,
    fps: options.Fps = 30,
    codec: options.Codec = "libx264",
    bitrate: options.Bitrate = "16M",
    lod: options.Lod = None,
    batch_size: options.BatchSize = 16,
    device: options.Device = "cpu",
    overwrite: options.Overwrite = False,
    quiet: options.Quiet = False,
) -> None:
    """Interpolate between two latents (not in the official scripts): a video or a strip of images.

    Examples:
      pgtrain interpolate celebahq-1024.pt --from 1000 --to 1001 --steps 90 --slerp --out walk.mp4
      pgtrain interpolate celebahq-1024.pt --from a.npy --to 7 --steps 8 --shrink 4 --out strip.png
    """
    from pgdata.progress import progress_bar
    from pgtrain.frames import gs_frames
    from pgtrain.generate import generate_images, gs_output_to_uint8
    from pgtrain.generator_setup import check_positive, check_shrink, load_generator
    from pgtrain.grids import save_image_grid
    from pgtrain.labels import resolve_labels
    from pgtrain.latents import interpolation_path
    from pgtrain.outputs import check_output
    from pgtrain.video import write_mp4

    as_video = out.suffix.lower() == ".mp4"
    if not as_video and out.suffix.lower() != ".png":
        raise PgtrainError(f"{out}: the output must be an .mp4 video or a .png strip")
    if steps < 2:
        raise PgtrainError(f"--steps must be at least 2 (both ends are included), got {steps}")
    check_positive("--batch-size", batch_size)
    if zoom < 1:
        raise PgtrainError(f"--zoom must be >= 1, got {zoom}")
    if columns is not None and columns < 1:
        raise PgtrainError(f"--columns must be positive, got {columns}")
    if as_video:
        _check_video_options(out, fps, codec, bitrate, overwrite)
    else:
        check_output(out, overwrite)
    loaded = load_generator(snapshot_path, device, lod)
    Gs = loaded.Gs
    check_shrink(shrink, Gs, snapshot_path)
    path = interpolation_path(_endpoint(start, Gs.latent_size, "--from"), _endpoint(end, Gs.latent_size, "--to"),
                              steps, spherical=slerp)
    step_labels = resolve_labels(labels, Gs.label_size, steps)
    if as_video:
        groups = ((path[[i]], None if step_labels is None else step_labels[[i]]) for i in range(steps))
        frame_iter = gs_frames(Gs, groups, lod=loaded.lod, columns=1, rows=1, shrink=shrink, zoom=zoom,
                               batch_size=batch_size, device=device)
        with progress_bar(steps, "interpolate", unit="frame", quiet=quiet) as bar:
            _report(write_mp4(out, frame_iter, fps=fps, codec=codec, bitrate=bitrate, on_frame=lambda: bar.update(1)))
        return
    images = generate_images(Gs, path, step_labels, lod=loaded.lod, batch_size=batch_size, device=device)
    per_row = columns or steps
    save_image_grid(gs_output_to_uint8(images, shrink), out, per_row, -(-steps // per_row))
    typer.echo(f"wrote {out}: {steps} steps, {per_row} per row")
