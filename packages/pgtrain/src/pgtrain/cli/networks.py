"""pgtrain commands for networks: `summary`, `import-tf`, `generate` (and, from cli/media.py, the videos)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from pgtrain.cli import app, options
from pgtrain.errors import PgtrainError


def _network_kwargs_from_presets(presets: list[str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """G / D keyword overrides of the named presets (pgtrain.presets), or none."""
    if not presets:
        return {}, {}
    from pgtrain.presets import resolve_config

    config = resolve_config(presets)
    return dict(config.G), dict(config.D)


@app.command("summary")
def summary(
    resolution: Annotated[int, typer.Option(help="Output resolution R (a power of two >= 4).")] = 1024,
    channels: Annotated[int, typer.Option(help="Image channels (1 or 3).")] = 3,
    label_size: Annotated[int, typer.Option("--label-size", help="Number of label classes (0: none).")] = 0,
    preset: Annotated[list[str] | None, typer.Option(
        help="Preset(s) whose G/D keywords to apply (as `pgtrain train --preset`; repeat or join with '+').")] = None,
) -> None:
    """Print the layer tables of G and D with output shapes and parameter counts (the paper's Table 2).

    Example: pgtrain summary --resolution 1024
    """
    from pgtrain.networks import Discriminator, Generator
    from pgtrain.summary import summary_text

    G_kwargs, D_kwargs = _network_kwargs_from_presets(preset)
    base = {"num_channels": channels, "resolution": resolution, "label_size": label_size}
    try:
        G = Generator(**{**base, **G_kwargs})
        D = Discriminator(**{**base, **D_kwargs})
    except (TypeError, ValueError) as error:
        raise PgtrainError(f"cannot build the networks: {error}") from error
    typer.echo(summary_text(G, D))


@app.command("import-tf")
def import_tf(
    network_pkl: Annotated[Path, typer.Argument(help="NVIDIA's pickle: karras2018iclr-*.pkl or "
                                                     "network-snapshot-*.pkl of the official trainer.")],
    out: Annotated[Path, typer.Argument(help="Output snapshot (.pt).")],
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Convert an official TensorFlow network pickle (G, D, Gs) into a pgtrain snapshot.

    Needs no TensorFlow and executes nothing from the pickle: only the classes an official pickle holds are
    accepted; anything else is refused. The pickle's static_kwargs are honoured (the released networks use
    fused_scale=False and minibatch-stddev group 16).

    Example: pgtrain import-tf karras2018iclr-celebahq-1024x1024.pkl celebahq-1024.pt
    """
    from pgtrain.checkpoint import save_snapshot
    from pgtrain.importers.tf_pickle import import_tf_pickle

    if out.exists() and not overwrite:
        raise PgtrainError(f"{out}: already exists (use --overwrite to replace it)")
    converted = import_tf_pickle(network_pkl)
    save_snapshot(out, **converted)
    ignored = converted["metadata"]["ignored_static_kwargs"]
    typer.echo(f"wrote {out}: G {converted['network_kwargs']['G']}, D {converted['network_kwargs']['D']}")
    for role, names in ignored.items():
        if names:
            typer.echo(f"note: {role} static_kwargs ignored as the official build function ignores them: {names}")


def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise PgtrainError(f"{path}: cannot read {what} as a .npy array ({error})") from error


def _latents_from_file(path: Path, latent_size: int, cells: int) -> list[np.ndarray]:
    """A [N, latent_size] .npy cut into PNGs of `cells` rows each."""
    latents = _load_npy(path, "latents")
    if latents.ndim != 2 or latents.shape[1] != latent_size or len(latents) == 0:
        raise PgtrainError(f"{path}: latents must be [N, {latent_size}], got {list(latents.shape)}")
    if len(latents) % cells:
        raise PgtrainError(f"{path}: {len(latents)} latents do not fill whole {cells}-image grids")
    latents = latents.astype(np.float32)
    return [latents[first:first + cells] for first in range(0, len(latents), cells)]


@app.command("generate")
def generate(
    snapshot_path: options.Snapshot,
    num: Annotated[int | None, typer.Option(help="Number of PNGs, latents drawn with numpy RandomState(seed).")] = None,
    grid: Annotated[str, typer.Option(help="Each PNG a grid of W x H images (official grid_size).")] = "1x1",
    shrink: options.Shrink = 1,
    seed: Annotated[int, typer.Option(help="Seed of the drawn latents (official default 1000).")] = 1000,
    latents: Annotated[Path | None, typer.Option(help="float32 [N, latent_size] .npy of latents instead of "
                                                      "--num (N a multiple of W x H).")] = None,
    labels: Annotated[str | None, typer.Option(help="Conditioned networks: class indices (0,2,5) or a float32 "
                                                    "[K, label_size] .npy; image i gets entry i mod K.")] = None,
    prefix: Annotated[str | None, typer.Option(help="PNG names <prefix><NNNNNN>.png (default: the snapshot's "
                                                    "folder-file-, as the official).")] = None,
    lod: options.Lod = None,
    raw: Annotated[Path | None, typer.Option(help="Write Gs's raw float32 output N x C x R x R here (.npy).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the PNGs into this folder.")] = None,
    batch_size: options.BatchSize = 16,
    device: options.Device = "cpu",
    overwrite: options.Overwrite = False,
    quiet: options.Quiet = False,
) -> None:
    """Run Gs of a snapshot: PNGs of images or grids (--out), as the official generate_fake_images, and/or the
    raw float32 output (--raw).

    Latents come from numpy RandomState(seed), one randn(W x H, latent_size) per PNG; uint8 as the official
    (x 127.5 + 127.5, box shrink, round half to even, clip). The same seed gives the same latents for each PNG
    whatever --batch-size or --device.

    Examples:
      pgtrain generate celebahq-1024.pt --num 16 --out fakes/
      pgtrain generate celebahq-1024.pt --num 4 --grid 4x3 --shrink 4 --seed 1 --out grids/
      pgtrain generate cifar10.pt --num 10 --labels 0,1,2,3,4,5,6,7,8,9 --out fakes/
      pgtrain generate celebahq-1024.pt --latents z.npy --raw images.npy
    """
    from pgdata.progress import progress_bar
    from pgtrain.fake_images import FakeImagesJob, default_prefix, write_fake_images
    from pgtrain.generator_setup import check_seed, check_shrink, load_generator, parse_grid
    from pgtrain.labels import resolve_labels
    from pgtrain.latents import png_latents

    if (latents is None) == (num is None):
        raise PgtrainError("give exactly one of --latents Z.npy or --num N")
    if raw is None and out is None:
        raise PgtrainError("give --raw OUT.npy and/or --out DIR")
    if num is not None and num <= 0:
        raise PgtrainError(f"--num must be positive, got {num}")
    if batch_size <= 0:
        raise PgtrainError(f"--batch-size must be positive, got {batch_size}")
    columns, rows = parse_grid(grid)
    loaded = load_generator(snapshot_path, device, lod)
    Gs = loaded.Gs
    check_shrink(shrink, Gs, snapshot_path)
    if latents is not None:
        per_png: Any = _latents_from_file(latents, Gs.latent_size, columns * rows)
        num = len(per_png)
    else:
        per_png = png_latents(check_seed(seed), num, columns * rows, Gs.latent_size)
    job = FakeImagesJob(num_pngs=num, columns=columns, rows=rows, shrink=shrink, out_dir=out,
                        prefix=default_prefix(snapshot_path) if prefix is None else prefix, raw=raw,
                        overwrite=overwrite)
    image_labels = resolve_labels(labels, Gs.label_size, num * columns * rows)
    with progress_bar(num, "generate", unit="png", quiet=quiet) as bar:
        write_fake_images(Gs, job, per_png, image_labels, lod=loaded.lod, batch_size=batch_size, device=device,
                          on_png=lambda: bar.update(1))
    if raw is not None:
        typer.echo(f"wrote {raw}: {[num * columns * rows, Gs.num_channels, Gs.resolution, Gs.resolution]} float32")
    if out is not None:
        typer.echo(f"wrote {num} PNGs to {out} ({job.prefix}{0:06d}.png ...)")

