"""`make demo`: build a small shapes dataset, train a progressive GAN on it on the CPU, and score it, in minutes.

The dataset (generated, deterministic, about 4 MB as pgshards): 32x32 images of one coloured disc or square on a plain
background of another colour. The run grows 4x4 -> 8x8 -> 16x16 -> 32x32 with the paper's fade-ins, using the
`demo-cpu` preset (a narrow network; everything else is the paper's training: WGAN-GP, minibatch groups of 4,
Adam resets, Gs EMA), and scores each network snapshot as it is written (`pgtrain run --metrics swd`). It ends with
the SWD (and FID when the TF-Inception weights are found) of the untrained generator beside the trained one's,
both scored by `pgmetrics compare` against the real shards on the same fixed latents: the images of the first and
the last fakes grid. The tools are run through their command lines, as a user would.
Usage: .venv/bin/python tools/demo.py [--kimg 32] [--out demo]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from pgdata.common.atomic import atomic_path
from pgdata.exporter import export_dataset
from pgdata.sources.base import Source, SourceInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reproduce_celebahq import inception_weights_found  # noqa: E402 - the sibling script, found through the line above

RESOLUTION = 32
NUM_IMAGES = 512
RUN_NAME = "pgan-shapes-demo-cpu"  # fixed: `make demo` again finds the finished run and skips the training
FAKES_PATTERN = re.compile(r"fakes(\d+)\.png$")


class ShapesSource(Source):
    """Coloured discs and squares on plain backgrounds (unlabelled: the demo trains unconditionally)."""

    def __init__(self, num_images: int = NUM_IMAGES, resolution: int = RESOLUTION, seed: int = 2018):
        self.info = SourceInfo(name="shapes", channels=3, resolution=resolution, num_images=num_images)
        self.seed = seed
        self._images = self._draw()

    def _draw(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        n, r = self.info.num_images, self.info.resolution
        y, x = np.mgrid[0:r, 0:r] + 0.5
        images = np.empty((n, 3, r, r), np.uint8)
        kinds = rng.integers(0, 2, n)
        for i in range(n):
            background = rng.uniform(0, 110, 3)  # dark backgrounds, bright shapes: easy to tell apart
            colour = rng.uniform(0, 1, 3)
            colour = 140 + 115 * colour / colour.max()
            size = rng.uniform(0.18, 0.32) * r
            cy, cx = rng.uniform(size, r - size, 2)
            if kinds[i] == 0:
                inside = (y - cy) ** 2 + (x - cx) ** 2 <= size**2
            else:
                inside = (np.abs(y - cy) <= size * 0.85) & (np.abs(x - cx) <= size * 0.85)
            image = np.where(inside[None], colour[:, None, None], background[:, None, None])
            images[i] = np.rint(image).clip(0, 255).astype(np.uint8)
        return images

    def iter_chunks(self, start: int = 0) -> Iterator[np.ndarray]:
        for first in range(start, self.info.num_images, 256):
            yield self._images[first:first + 256]


def tool(name: str) -> str:
    """The venv's console script of a tool (pgtrain, pgmetrics), as a user would run it."""
    return str(Path(sys.executable).parent / name)


def build_dataset(dataset: Path) -> None:
    if not (dataset / "manifest.json").is_file():
        print(f"Building the shapes dataset in {dataset} ({NUM_IMAGES} images, {RESOLUTION}x{RESOLUTION}) ...")
        export_dataset(ShapesSource(), dataset, command="tools/demo.py", arguments={"num_images": NUM_IMAGES},
                       overwrite=False, quiet=True)


def train(dataset: Path, run_dir: Path, metrics: str, kimg: float | None) -> int:
    """`pgtrain run` into the fixed run directory, scoring every network snapshot as it is written."""
    command = [tool("pgtrain"), "run", "--preset", "demo-cpu", "--data", str(dataset), "--run-dir", str(run_dir),
               "--device", "cpu", "--cpu-threads", "1", "--metrics", metrics, "--metrics-num", str(NUM_IMAGES)]
    if kimg is not None:
        command += ["--set", f"train.total_kimg={kimg}"]
    print("Training:", " ".join(command), flush=True)
    return subprocess.run(command).returncode


def fakes_grids(run_dir: Path) -> list[Path]:
    """The fakes grids by kimg: the first is the untrained generator (written before the first step)."""
    found = sorted((int(m.group(1)), p) for p in run_dir.glob("fakes*.png") if (m := FAKES_PATTERN.match(p.name)))
    return [path for _, path in found]


def grid_images(grid: Path, resolution: int) -> np.ndarray:
    """The grid's cells as uint8 [N, C, H, W], row by row (pgtrain's grids are cells side by side, no gaps)."""
    pixels = np.asarray(Image.open(grid).convert("RGB"))
    rows, columns = pixels.shape[0] // resolution, pixels.shape[1] // resolution
    cells = pixels[:rows * resolution, :columns * resolution].reshape(rows, resolution, columns, resolution, 3)
    return np.ascontiguousarray(cells.transpose(0, 2, 4, 1, 3).reshape(rows * columns, 3, resolution, resolution))


def score(dataset: Path, grid: Path, metrics: str, scores_dir: Path) -> dict[str, float]:
    """`pgmetrics compare` of the real shards with the grid's images (same count, seed and settings for every
    grid, so the numbers compare)."""
    images = scores_dir / (grid.stem + ".npy")
    with atomic_path(images) as temporary:
        with open(temporary, "wb") as file:
            np.save(file, grid_images(grid, RESOLUTION))
    command = [tool("pgmetrics"), "compare", str(dataset), str(images), "--metrics", metrics,
               "--num", str(NUM_IMAGES), "--seed", "0", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"demo: {' '.join(command)} failed: {result.stderr.strip()}")
    return parse_scores(result.stdout)


def parse_scores(text: str) -> dict[str, float]:
    """`pgmetrics compare`'s table: one 'NAME  VALUE' line per column."""
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                values[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return values


def print_scores(before: dict[str, float], after: dict[str, float], first: Path, last: Path) -> None:
    width = max(len(name) for name in after)
    print(f"\nScores against the real shards ({NUM_IMAGES} images each; lower is better; SWD x1e3 per level):")
    print(f"  {'':<{width}}  {'untrained':>10}  {'trained':>10}")
    for name, value in after.items():
        print(f"  {name:<{width}}  {before.get(name, float('nan')):>10.3f}  {value:>10.3f}")
    print(f"  (untrained: the {first.name} grid, the generator before its first step; trained: {last.name})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo"), help="dataset and runs go here (default: demo/)")
    parser.add_argument("--kimg", type=float, default=None, help="training length (default: the preset's)")
    args = parser.parse_args()

    start = time.time()
    dataset = args.out / "shapes"
    build_dataset(dataset)
    run_dir = args.out / "results" / RUN_NAME
    metrics = "swd,fid" if inception_weights_found([]) else "swd"
    status = train(dataset, run_dir, metrics, args.kimg)
    if status:
        return status
    grids = fakes_grids(run_dir)
    scores_dir = args.out / "scores"
    scores_dir.mkdir(parents=True, exist_ok=True)
    print("Scoring the untrained and the trained generator (pgmetrics compare) ...", flush=True)
    before, after = (score(dataset, grid, metrics, scores_dir) for grid in (grids[0], grids[-1]))
    print_scores(before, after, grids[0], grids[-1])
    if metrics == "swd":
        print("  FID: no TF-Inception weights found (docs/metrics.md says where to get them)")
    print(f"\nDone in {(time.time() - start) / 60:.1f} minutes. Look at {run_dir}:")
    print("  reals.png         the training images: one bright disc or square on a dark plain background")
    print(f"  {grids[-1].name}  the final Gs output on fixed latents: the same structure, one bright shape per "
          "cell on a plain dark background (soft edges and fewer colours than the reals after so short a run)")
    print("  fakes000000.png … the progress, one grid per tick: noise, then 4x4 and 8x8 blobs, shapes at 16x16, "
          "cleaner edges at 32x32")
    print(f"  metric-swd-{NUM_IMAGES}.txt/.png  SWD of every network snapshot, written during training")
    print("  log.txt (tick lines), stats.jsonl (losses, lod, learning rates, timing), network-final.pt "
          "(pgtrain generate, or pgtrain.checkpoint.load_snapshot)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
