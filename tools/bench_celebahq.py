"""Benchmark create_celebahq: seconds per image on one core, images/s on all cores, and Pillow 3.1.1's C
kernels on the very same inputs in the same run as the baseline.

    python tools/bench_celebahq.py [CELEBA_DIR DELTA_DIR] [--images 8] [--celeba_000001_md5 ...]

Default inputs: the CelebA-HQ fixture (PG_FIXTURES or ../shared/fixtures). Per image it times the full
pipeline (JPEG decode, geometry, shrink / superres / pad / 4096^2 quad / 1024 resize, key derivation,
decryption, md5 checks) and, separately, our four kernel kinds; the same kernel calls (same input arrays,
sizes and quads, recorded during the run) are then timed in Pillow 3.1.1 under Python 3.6
(tools/pillow311.py; skipped with a note when it cannot be built). The pad step's Gaussian blur and
median (ours in C, the original's scipy.ndimage.gaussian_filter and np.median on the whole image) are
timed both ways on the same input too. "Original-equivalent"
per image is our pipeline time minus our kernel time plus the original's: the rest (decode, numpy padding
and blends, crypto) is the same work in both. The estimate for the 30,000-image rebuild assumes linear scaling over cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from pgdata.celebahq import kernels, pipeline
from pgdata.parallel import available_cores, ordered_map
from pgdata.sources.celebahq import CelebAHQSource, Failure, build_record

TOOLS = Path(__file__).resolve().parent


def _pillow_tool():
    spec = importlib.util.spec_from_file_location("pillow311_tool", TOOLS / "pillow311.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class KernelRecorder:
    """Wraps the kernels the pipeline calls: records inputs (for the Pillow run) and our time per call."""

    def __init__(self):
        self.calls: list[dict] = []
        self.seconds = 0.0
        self.blur_seconds = 0.0  # ours, inside the pad step: the Gaussian blur and the median
        self.scipy_blur_seconds = 0.0  # the original's scipy.ndimage.gaussian_filter and np.median, same inputs
        self._blur, self._median = pipeline.gaussian_blur, pipeline._median
        self._resize, self._quad, self._coefficients = (kernels.resize_antialias, kernels.transform_quad_bilinear,
                                                        kernels.quad_coefficients)
        self._last_corners = None

    def __enter__(self):
        def resize(image, size, **kwargs):
            start = time.perf_counter()
            out = self._resize(image, size, **kwargs)
            self.seconds += time.perf_counter() - start
            self.calls.append({"op": "resize", "image": image, "size": tuple(size)})
            return out

        def coefficients(corners, size, float32_corners=False):
            self._last_corners = [float(value) for value in np.asarray(corners).reshape(-1)]
            return self._coefficients(corners, size, float32_corners)

        def quad(image, size, coefficients, **kwargs):
            start = time.perf_counter()
            out = self._quad(image, size, coefficients, **kwargs)
            self.seconds += time.perf_counter() - start
            self.calls.append({"op": "quad", "image": image, "size": tuple(size), "data": self._last_corners})
            return out

        def blur(image, sigma, pad=None, need=None):
            import scipy.ndimage

            start = time.perf_counter()
            out = self._blur(image, sigma, pad, need)
            self.blur_seconds += time.perf_counter() - start
            start = time.perf_counter()
            scipy.ndimage.gaussian_filter(image, [sigma, sigma, 0])
            self.scipy_blur_seconds += time.perf_counter() - start
            return out

        def median(image):
            start = time.perf_counter()
            out = self._median(image)
            self.blur_seconds += time.perf_counter() - start
            start = time.perf_counter()
            np.median(image, axis=(0, 1))
            self.scipy_blur_seconds += time.perf_counter() - start
            return out

        kernels.resize_antialias, kernels.transform_quad_bilinear, kernels.quad_coefficients = (
            resize, quad, coefficients)
        pipeline.gaussian_blur, pipeline._median = blur, median
        return self

    def __exit__(self, *exc):
        kernels.resize_antialias, kernels.transform_quad_bilinear, kernels.quad_coefficients = (
            self._resize, self._quad, self._coefficients)
        pipeline.gaussian_blur, pipeline._median = self._blur, self._median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("celeba_dir", nargs="?", type=Path)
    parser.add_argument("delta_dir", nargs="?", type=Path)
    parser.add_argument("--images", type=int, default=8, help="images timed on one core (default 8)")
    parser.add_argument("--parallel_images", type=int, default=None,
                        help="images for the all-cores run (default: 2 per core, at least --images)")
    parser.add_argument("--celeba_000001_md5", default=None)
    parser.add_argument("--no_pillow", action="store_true", help="skip the Pillow 3.1.1 baseline")
    args = parser.parse_args(argv)

    fixture = Path(os.environ.get("PG_FIXTURES", TOOLS.parent.parent / "shared" / "fixtures")) / "celebahq"
    celeba_dir = args.celeba_dir or fixture
    delta_dir = args.delta_dir or fixture / "deltas"
    reference = args.celeba_000001_md5
    if reference is None and args.celeba_dir is None:
        import json

        reference = json.loads((fixture / "expected.json").read_text())["celeba_000001_libjpeg8d_md5"]
    extra = {} if reference is None else {"reference_md5": reference}
    source = CelebAHQSource(celeba_dir, delta_dir, subset=True, workers=1, **extra)
    tasks = list(source.tasks(0))
    from pgdata.celebahq import native

    backend = "compiled (_ckernels.c)" if native.library() is not None else "numpy (no C compiler)"
    print(f"inputs: {celeba_dir} ({len(tasks)} images listed); kernels: {backend}; cores: {available_cores()}")

    # One core: full pipeline per image, with the kernel calls recorded and then timed in Pillow 3.1.1.
    tool = None
    if not args.no_pillow:
        tool = _pillow_tool()
        try:
            tool.build()
        except Exception as error:  # no Python 3.6 / no network for the sdist: report without baseline
            print(f"Pillow 3.1.1 baseline unavailable: {error}")
            tool = None
    rows, pillow_seconds = [], []
    for task in tasks[: args.images]:
        build_record(task)  # warm-up per image size: coefficient caches, page cache
        with KernelRecorder() as recorder:
            start = time.perf_counter()
            result = build_record(task)
            total = time.perf_counter() - start - recorder.scipy_blur_seconds
        if isinstance(result, Failure):
            print(f"FAILED: {result.line()}")
            return 1
        rows.append({"task": task, "total": total, "kernels": recorder.seconds + recorder.blur_seconds,
                     "original_kernels": recorder.scipy_blur_seconds})
        if tool is None:
            pillow_seconds.append(None)
            continue
        timings = tool.oracle_call([{"op": "time", "repeat": 1, "inner": call} for call in recorder.calls])
        pillow_seconds.append(sum(int.from_bytes(t.tobytes(), "little") / 1e9 for t in timings)
                              + recorder.scipy_blur_seconds)

    print(f"\n{'idx':>5} {'file':>11} {'steps':<26} {'ours s':>7} {'ours k':>8} {'orig k':>9} {'orig-eq s':>9}")
    print("(k = the kernels: Pillow resizes + quad transform + the pad step's Gaussian blur and median; orig k = "
          "Pillow 3.1.1's C code + scipy.ndimage.gaussian_filter + np.median on the same inputs)")
    for row, pillow in zip(rows, pillow_seconds, strict=True):
        b = pipeline.plan_image(*_size(row["task"]), row["task"].landmarks).branches
        steps = ",".join(name for name, on in (("shrink", b.shrink), ("crop", b.crop), ("sr%s" % b.superres, b.superres),
                                               ("pad", b.pad)) if on) or "-"
        original = None if pillow is None else row["total"] - row["kernels"] + pillow
        print(f"{row['task'].idx:>5} {row['task'].orig_file:>11} {steps:<26} {row['total']:7.2f} {row['kernels']:8.2f} "
              f"{'-' if pillow is None else f'{pillow:9.2f}':>9} {'-' if original is None else f'{original:9.2f}':>9}")
    ours = statistics.mean(row["total"] for row in rows)
    ours_kernels = sum(row["kernels"] for row in rows)
    print(f"\none core: {ours:.2f} s/image (mean of {len(rows)}), median {statistics.median(r['total'] for r in rows):.2f}")
    if None not in pillow_seconds:
        print(f"kernels only: ours {ours_kernels:.2f} s, original (Pillow 3.1.1 C + scipy) {sum(pillow_seconds):.2f} s "
              f"(ratio {ours_kernels / sum(pillow_seconds):.2f})")
        original = statistics.mean(r["total"] - r["kernels"] + p for r, p in zip(rows, pillow_seconds, strict=True))
        print(f"original-equivalent pipeline: {original:.2f} s/image")

    # All cores.
    cores = available_cores()
    count = args.parallel_images or max(2 * cores, args.images)
    parallel_tasks = [tasks[k % len(tasks)] for k in range(count)]
    start = time.perf_counter()
    for result in ordered_map(build_record, parallel_tasks, workers=cores, prefetch=2):
        if isinstance(result, Failure):
            print(f"FAILED: {result.line()}")
            return 1
    elapsed = time.perf_counter() - start
    print(f"all {cores} cores: {count / elapsed:.2f} images/s ({count} images in {elapsed:.1f} s)")
    print(f"estimate, 30000 images: {30000 * ours / 8 / 3600:.2f} h on 8 cores at {ours:.2f} s/image/core; "
          f"{30000 / (count / elapsed) / 3600:.2f} h at this machine's measured all-core rate")
    return 0


def _size(task) -> tuple[int, int]:
    from pgdata.jpeg import decode_jpeg_libjpeg8d

    pixels = decode_jpeg_libjpeg8d(task.jpeg_path)
    return pixels.shape[1], pixels.shape[0]


if __name__ == "__main__":
    sys.exit(main())
