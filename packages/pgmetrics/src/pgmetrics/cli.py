"""The pgmetrics command line: compare, features, evaluate, version. Thin wrappers over pgmetrics.compare and
pgmetrics.evaluate; every default comes from pgmetrics.settings.DEFAULTS, the table the Python API uses too."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from pgdata.common.cli import run_cli
from pgmetrics.errors import PgmetricsError
from pgmetrics.settings import DEFAULTS

app = typer.Typer(name="pgmetrics", help="Compare generated and real image sets: the Progressive GAN paper's SWD "
                  "and MS-SSIM exactly, plus FID, IS and KID.", no_args_is_help=True, add_completion=False)

METRICS_HELP = "Comma-separated: swd, msssim, fid, is, kid."
WEIGHTS_HELP = ("TF-Inception weights (pt_inception-2015-12-05-6726825d.pth); default $PGMETRICS_INCEPTION_WEIGHTS "
                "or the cache folder ($PGMETRICS_CACHE, else $XDG_CACHE_HOME/pgmetrics, else ~/.cache/pgmetrics).")
UNVERIFIED_HELP = ("Accept Inception weights other than the TF-Inception ones (they must still load and fit): "
                   "warns that the scores are not comparable with published ones and records the file's sha256.")

# Options that several commands share, declared once.
Num = Annotated[int | None, typer.Option("--num", "-n", help="Images per set (default: all of the smaller set; "
                                                                  "snapshots need it).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of SWD's patches/directions and of snapshot latents.")]
SwdReferenceRng = Annotated[bool, typer.Option(
    "--swd-reference-rng", help="Draw SWD's randomness from numpy RandomState(seed) in the official order: "
                                "reproduces the official numbers.")]
Minibatch = Annotated[int | None, typer.Option(
    "--minibatch", help="Feed size (default 64; with --swd-reference-rng the official clip(8192//H,4,256)).")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N.")]
Weights = Annotated[str | None, typer.Option("--inception-weights", help=WEIGHTS_HELP)]
AllowUnverified = Annotated[bool, typer.Option("--allow-unverified-weights", help=UNVERIFIED_HELP)]
IsSplits = Annotated[int, typer.Option("--is-splits", help="IS splits (official 10, generation order).")]
KidSubsets = Annotated[int, typer.Option("--kid-subsets", help="KID: number of random subsets.")]
KidSubsetSize = Annotated[int, typer.Option("--kid-subset-size", help="KID: images per subset.")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Do not read or write cached real-set statistics.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


@app.command()
def compare(
    real: Annotated[str, typer.Argument(help="Real set: pgshards/TFRecords dir, HDF5, image folder, .npy, "
                                             ".npz[:KEY].")],
    fake: Annotated[str, typer.Argument(help="Generated set: same kinds, or a pgtrain snapshot .pt (needs --num).")],
    metrics: Annotated[str, typer.Option("--metrics", "-m", help=METRICS_HELP)] = "swd,msssim",
    num: Num = DEFAULTS["num"],
    seed: Seed = DEFAULTS["seed"],
    swd_reference_rng: SwdReferenceRng = DEFAULTS["swd_reference_rng"],
    swd_official_warmup: Annotated[bool, typer.Option(
        "--swd-official-warmup", help="With --swd-reference-rng: first consume the draws of the official "
                                      "evaluate_metrics' noise warm-up (10 minibatches), as a warmed-up official "
                                      "run does.")] = DEFAULTS["swd_official_warmup"],
    minibatch: Minibatch = DEFAULTS["minibatch"],
    resize: Annotated[bool, typer.Option("--resize", help="Resize FAKE to the real resolution when they differ.")
                      ] = DEFAULTS["resize"],
    device: Device = DEFAULTS["device"],
    inception_weights: Weights = DEFAULTS["inception_weights"],
    allow_unverified_weights: AllowUnverified = DEFAULTS["allow_unverified_weights"],
    is_splits: IsSplits = DEFAULTS["is_splits"],
    kid_subsets: KidSubsets = DEFAULTS["kid_subsets"],
    kid_subset_size: KidSubsetSize = DEFAULTS["kid_subset_size"],
    msssim_reals: Annotated[bool, typer.Option("--msssim-reals", help="Also MS-SSIM of the real set "
                                                                      "(MS-SSIM_reals).")] = DEFAULTS["msssim_reals"],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result object here.")] = None,
    no_cache: NoCache = not DEFAULTS["use_cache"],
    quiet: Quiet = DEFAULTS["quiet"],
) -> None:
    """Compare FAKE with REAL and print a table.

    Example: pgmetrics compare datasets/celeba128 fakes/ --metrics swd,msssim,fid --num 16384 --seed 1 --json out.json
    """
    from pgdata.common.atomic import write_text
    from pgmetrics import compare as comparing
    from pgmetrics.output import check_writable
    from pgmetrics.settings import make_settings
    from pgmetrics.sources import open_source

    settings = make_settings(
        metrics, num=num, seed=seed, swd_reference_rng=swd_reference_rng, swd_official_warmup=swd_official_warmup,
        minibatch=minibatch, resize=resize, device=device, inception_weights=inception_weights,
        allow_unverified_weights=allow_unverified_weights, is_splits=is_splits, kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size, msssim_reals=msssim_reals, use_cache=not no_cache, quiet=quiet)
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
        write_text(json_path, json.dumps(result, indent=1) + "\n", error_type=PgmetricsError)


@app.command()
def features(
    source: Annotated[str, typer.Argument(help="Image set: dataset, folder, .npy, .npz[:KEY], or snapshot .pt.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .npz with pool_3 [N,2048], logits_unbiased "
                                                          "[N,1008] and the weights' sha256.")],
    inception_weights: Weights = DEFAULTS["inception_weights"],
    allow_unverified_weights: AllowUnverified = DEFAULTS["allow_unverified_weights"],
    num: Annotated[int | None, typer.Option("--num", "-n", help="Images (default: all; required for snapshots).")
                   ] = DEFAULTS["num"],
    seed: Annotated[int, typer.Option("--seed", help="Latent seed for snapshots.")] = DEFAULTS["seed"],
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per Inception batch.")] = 64,
    device: Device = DEFAULTS["device"],
    quiet: Quiet = DEFAULTS["quiet"],
) -> None:
    """Write TF-Inception features of every image (float32), e.g. to share real-set statistics.

    Example: pgmetrics features datasets/celebahq --inception-weights pt_inception-2015-12-05-6726825d.pth --out real.npz
    """
    from pgdata.common.atomic import atomic_file
    from pgdata.common.device import select_device
    from pgmetrics import inception
    from pgmetrics.compare import progress, to_rgb
    from pgmetrics.output import check_writable
    from pgmetrics.settings import check_at_least, check_seed
    from pgmetrics.sources import open_source

    check_at_least("--num", num, 1)
    check_at_least("--batch-size", batch_size, 1)
    check_seed(seed)
    out = check_writable(out if out.suffix == ".npz" else out.with_name(out.name + ".npz"))  # as np.savez names it
    chosen = select_device(device, PgmetricsError)
    images = open_source(source, seed=seed)
    count = num if num is not None else images.num_images
    if count is None:
        raise PgmetricsError("a snapshot generates as many images as asked: give --num", source)
    if images.num_images is not None and count > images.num_images:
        raise PgmetricsError(f"has only {images.num_images} images, --num {count} asked", images.name)
    network, sha = inception.load_inception(inception_weights, chosen, verify=not allow_unverified_weights)
    pools, logits = [], []
    with progress(count, "features", quiet) as bar:
        for batch in images.iter_batches(batch_size, 0, count):
            pool, logit = inception.extract_features(network, to_rgb(batch, batch.shape[-1], False))
            pools.append(pool)
            logits.append(logit)
            bar.update(len(batch))
    with atomic_file(out, error_type=PgmetricsError) as file:
        np.savez(file, pool_3=np.concatenate(pools), logits_unbiased=np.concatenate(logits),
                 weights_sha256=np.array(sha), weights_verified=np.array(inception.is_verified(sha)))
    print(f"{out}: {sum(len(p) for p in pools)} images")


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="Training run directory with network-snapshot-NNNNNN.pt files.")],
    metrics: Annotated[str, typer.Option("--metrics", "-m", help=METRICS_HELP)] = "swd",
    real: Annotated[str | None, typer.Option(
        "--real", help="Real set (default: the run's config.json \"data\", else the dataset its snapshots name).")
    ] = None,
    num: Annotated[int | None, typer.Option("--num", "-n", help="Images per snapshot (default: all real images).")
                   ] = DEFAULTS["num"],
    real_passes: Annotated[int, typer.Option("--real-passes", min=1, max=2,
                                             help="2 adds a Reals2 row: the next NUM real images (noise floor).")
                           ] = 1,
    seed: Seed = DEFAULTS["seed"],
    swd_reference_rng: SwdReferenceRng = DEFAULTS["swd_reference_rng"],
    minibatch: Minibatch = DEFAULTS["minibatch"],
    device: Device = DEFAULTS["device"],
    inception_weights: Weights = DEFAULTS["inception_weights"],
    allow_unverified_weights: AllowUnverified = DEFAULTS["allow_unverified_weights"],
    is_splits: IsSplits = DEFAULTS["is_splits"],
    kid_subsets: KidSubsets = DEFAULTS["kid_subsets"],
    kid_subset_size: KidSubsetSize = DEFAULTS["kid_subset_size"],
    no_cache: NoCache = not DEFAULTS["use_cache"],
    quiet: Quiet = DEFAULTS["quiet"],
) -> None:
    """Score every new snapshot of a run: metric-<name>-<num>.txt (official format), .png and .json per metric.

    The .json record holds the settings (the Inception weights' sha256 among them) and each row's snapshot
    sha256: snapshots already scored with the same settings keep their rows; when nothing is new, one line per
    metric says it is up to date.

    The real set is --real, else the dataset the run trained on (config.json "data" or the path stored in its
    snapshots). Rows: Reals (each metric of the reals themselves, as the official evaluate_metrics printed),
    Reals2 with --real-passes 2, then every snapshot, newest first.

    Example: pgmetrics evaluate results/000-pgan-celebahq --metrics swd,fid --num 16384 --real-passes 2
    """
    from pgmetrics.evaluate import evaluate_run
    from pgmetrics.settings import make_settings

    settings = make_settings(
        metrics, num=num, seed=seed, swd_reference_rng=swd_reference_rng, minibatch=minibatch, device=device,
        inception_weights=inception_weights, allow_unverified_weights=allow_unverified_weights,
        is_splits=is_splits, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, use_cache=not no_cache,
        quiet=quiet)
    evaluate_run(run_dir, settings, real=real, real_passes=real_passes)


@app.command()
def version() -> None:
    """Print the version.

    Example: pgmetrics version
    """
    from pgmetrics import __version__

    print(__version__)


def main() -> None:
    """Console entry (pgdata.common.cli.run_cli): the toolkit's user errors (pgmetrics', pgdata's) become one
    line and exit status 1; --debug (or PG_DEBUG=1, PGMETRICS_DEBUG=1) shows the traceback with its whole chain.
    An OSError that reaches it stays a traceback, as before: pgmetrics words the ones it expects itself."""
    run_cli(app, "pgmetrics", os_errnos=())
