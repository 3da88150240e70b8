"""The pgmetrics command line: compare, features, evaluate. Thin wrappers over pgmetrics.compare/evaluate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import typer

from pgmetrics.errors import PgmetricsError

app = typer.Typer(name="pgmetrics", help="Compare generated and real image sets: the Progressive GAN paper's SWD "
                  "and MS-SSIM exactly, plus FID, IS and KID.", no_args_is_help=True, add_completion=False)

METRICS_HELP = "Comma-separated: swd, msssim, fid, is, kid."
WEIGHTS_HELP = ("TF-Inception weights (pt_inception-2015-12-05-6726825d.pth); default $PGMETRICS_INCEPTION_WEIGHTS "
                "or the cache folder ($PGMETRICS_CACHE or ~/.cache/pgmetrics).")


def _settings(metrics: str, num, seed, swd_reference_rng, minibatch, resize, device, inception_weights, is_splits,
              kid_subsets, kid_subset_size, msssim_reals, no_cache, quiet, swd_official_warmup=False):
    """The settings, checked before any work (sources, weights): a bad option is one line at once."""
    from pgmetrics.compare import Settings, check_settings, parse_metrics

    return check_settings(Settings(
        metrics=parse_metrics(metrics), num=num, seed=seed, swd_reference_rng=swd_reference_rng,
        swd_official_warmup=swd_official_warmup, minibatch=minibatch, resize=resize, device=device,
        inception_weights=inception_weights, is_splits=is_splits, kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size, msssim_reals=msssim_reals, use_cache=not no_cache, quiet=quiet))


@app.command()
def compare(
    real: str = typer.Argument(..., help="Real set: pgshards/TFRecords dir, HDF5, image folder, .npy, .npz[:KEY]."),
    fake: str = typer.Argument(..., help="Generated set: same kinds, or a pgtrain snapshot .pt (needs --num)."),
    metrics: str = typer.Option("swd,msssim", "--metrics", "-m", help=METRICS_HELP),
    num: int = typer.Option(None, "--num", "-n", help="Images per set (default: all of the smaller set)."),
    seed: int = typer.Option(0, "--seed", help="Seed of SWD's patches/directions and of snapshot latents."),
    swd_reference_rng: bool = typer.Option(False, "--swd-reference-rng",
                                           help="Draw SWD's randomness from numpy RandomState(seed) in the "
                                                "official order: reproduces the official numbers."),
    swd_official_warmup: bool = typer.Option(False, "--swd-official-warmup",
                                             help="With --swd-reference-rng: first consume the draws of the official "
                                                  "evaluate_metrics' noise warm-up (10 minibatches), as a warmed-up "
                                                  "official run does."),
    minibatch: int = typer.Option(None, "--minibatch", help="Feed size (reference SWD default: clip(8192//H,4,256))."),
    resize: bool = typer.Option(False, "--resize", help="Resize FAKE to the real resolution when they differ."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
    inception_weights: str = typer.Option(None, "--inception-weights", help=WEIGHTS_HELP),
    is_splits: int = typer.Option(10, "--is-splits", help="IS splits (official 10, generation order)."),
    kid_subsets: int = typer.Option(100, "--kid-subsets"),
    kid_subset_size: int = typer.Option(1000, "--kid-subset-size"),
    msssim_reals: bool = typer.Option(False, "--msssim-reals", help="Also MS-SSIM of the real set (MS-SSIM_reals)."),
    json_out: Path = typer.Option(None, "--json", help="Write the result object here."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write cached real-set statistics."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Compare FAKE with REAL and print a table.

    Example: pgmetrics compare datasets/celeba128 fakes/ --metrics swd,msssim,fid --num 16384 --seed 1 --json out.json
    """
    from pgmetrics import compare as comparing
    from pgmetrics.output import check_writable, write_text
    from pgmetrics.sources import open_source

    settings = _settings(metrics, num, seed, swd_reference_rng, minibatch, resize, device, inception_weights,
                         is_splits, kid_subsets, kid_subset_size, msssim_reals, no_cache, quiet, swd_official_warmup)
    json_path = check_writable(json_out) if json_out else None
    real_source = open_source(real)
    fake_source = open_source(fake, seed=seed, labels=None)
    result = comparing.compare(real_source, fake_source, settings)
    for note in result["notes"]:
        print(f"note: {note}", file=sys.stderr)
    width = max(len(name) for name in result["metrics"])
    for name, value in result["metrics"].items():
        print(f"{name:<{width}}  {value:.6f}")
    if json_path:
        write_text(json_path, json.dumps(result, indent=1) + "\n")


@app.command()
def features(
    source: str = typer.Argument(..., help="Image set: dataset, folder, .npy, .npz[:KEY], or snapshot .pt."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .npz with pool_3 [N,2048] and logits_unbiased [N,1008]."),
    inception_weights: str = typer.Option(None, "--inception-weights", help=WEIGHTS_HELP),
    num: int = typer.Option(None, "--num", "-n", help="Images (default: all; required for snapshots)."),
    seed: int = typer.Option(0, "--seed", help="Latent seed for snapshots."),
    batch_size: int = typer.Option(64, "--batch-size"),
    device: str = typer.Option("auto", "--device"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Write TF-Inception features of every image (float32), e.g. to share real-set statistics.

    Example: pgmetrics features datasets/celebahq --inception-weights pt_inception-2015-12-05-6726825d.pth --out real.npz
    """
    from pgmetrics import inception
    from pgmetrics.compare import check_at_least, check_seed, progress, to_rgb
    from pgmetrics.device import select_device
    from pgmetrics.output import atomic_output, check_writable
    from pgmetrics.sources import open_source

    check_at_least("--num", num, 1)
    check_at_least("--batch-size", batch_size, 1)
    check_seed(seed)
    out = check_writable(out if out.suffix == ".npz" else out.with_name(out.name + ".npz"))  # as np.savez names it
    chosen = select_device(device)
    images = open_source(source, seed=seed)
    count = num if num is not None else images.num_images
    if count is None:
        raise PgmetricsError("a snapshot generates as many images as asked: give --num", source)
    if images.num_images is not None and count > images.num_images:
        raise PgmetricsError(f"has only {images.num_images} images, --num {count} asked", images.name)
    network, sha = inception.load_inception(inception_weights, chosen)
    pools, logits = [], []
    with progress(count, "features", quiet) as bar:
        for batch in images.iter_batches(batch_size, 0, count):
            pool, logit = inception.extract_features(network, to_rgb(batch, batch.shape[-1], False))
            pools.append(pool)
            logits.append(logit)
            bar.update(len(batch))
    with atomic_output(out) as file:
        np.savez(file, pool_3=np.concatenate(pools), logits_unbiased=np.concatenate(logits),
                 weights_sha256=np.array(sha))
    print(f"{out}: {sum(len(p) for p in pools)} images")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="Training run directory with network-snapshot-NNNNNN.pt files."),
    metrics: str = typer.Option("swd", "--metrics", "-m", help=METRICS_HELP),
    real: str = typer.Option(None, "--real", help="Real set (default: the run's config.json \"data\")."),
    num: int = typer.Option(None, "--num", "-n", help="Images per snapshot (default: all real images)."),
    real_passes: int = typer.Option(1, "--real-passes", min=1, max=2,
                                    help="2 adds a Reals2 row: the next NUM real images (noise floor)."),
    seed: int = typer.Option(0, "--seed"),
    swd_reference_rng: bool = typer.Option(False, "--swd-reference-rng"),
    minibatch: int = typer.Option(None, "--minibatch"),
    device: str = typer.Option("auto", "--device"),
    inception_weights: str = typer.Option(None, "--inception-weights", help=WEIGHTS_HELP),
    is_splits: int = typer.Option(10, "--is-splits", help="IS splits (official 10, generation order)."),
    kid_subsets: int = typer.Option(100, "--kid-subsets"),
    kid_subset_size: int = typer.Option(1000, "--kid-subset-size"),
    no_cache: bool = typer.Option(False, "--no-cache"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Score every snapshot of a run: metric-<name>-<num>.txt (official format) and a PNG plot per metric.

    The real set is --real, else the dataset the run trained on (config.json "data" or the path stored in its
    snapshots). Rows: Reals (each metric of the reals themselves, as the official evaluate_metrics printed),
    Reals2 with --real-passes 2, then every snapshot, newest first.

    Example: pgmetrics evaluate results/000-pgan-celebahq --metrics swd,fid --num 16384 --real-passes 2
    """
    from pgmetrics.evaluate import evaluate_run

    settings = _settings(metrics, num, seed, swd_reference_rng, minibatch, False, device, inception_weights,
                         is_splits, kid_subsets, kid_subset_size, False, no_cache, quiet)
    evaluate_run(run_dir, settings, real=real, real_passes=real_passes)


@app.command()
def version() -> None:
    """Print the version."""
    from pgmetrics import __version__

    print(__version__)


def main() -> None:
    """Console entry: user errors (pgmetrics' and pgdata's) become one line and exit status 1 (--debug: traceback)."""
    import os

    from pgdata.errors import PgdataError

    debug = "--debug" in sys.argv or os.environ.get("PGMETRICS_DEBUG") == "1"
    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
    try:
        app()  # standalone mode: typer reports usage errors itself and exits 2
    except (PgmetricsError, PgdataError) as error:
        if debug:
            raise
        print(f"pgmetrics: error: {error}", file=sys.stderr)
        sys.exit(1)
