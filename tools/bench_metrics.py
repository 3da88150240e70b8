"""Benchmark pgmetrics against plain baselines in the same run: images/s for SWD and Inception features.

Baselines: SWD as the official metrics/sliced_wasserstein.py does it, restated plainly (numpy: 5x5
scipy.ndimage.convolve with mirror borders for pyr_down/pyr_up with zero insertion, flat fancy-index patch gather
drawing x then y per level and minibatch, float32 mean/std normalisation, per repeat randn(147, 128) directions,
float32 matmul, np.sort along axis 0, mean |difference|), run in a subprocess with every BLAS/OpenMP pool at one
thread (--baseline-default-threads adds a run with the environment's default BLAS threads, as the official
code would run). Not counted for either side: the official warm-up pass and the reals-vs-reals SWD that the
official `end('reals')` also computes. Ours runs the same steps as `pgmetrics compare` (DescriptorSet feed/finish,
swd_levels), timed per stage: descriptors (pyramid, patches, normalisation) and distance (projections, sorts).
Inception: an eager float32 forward of the same network without BN
folding. Throughput counts the images of both sets (real + fake) per second of the whole comparison.

    .venv/bin/python tools/bench_metrics.py --swd-images 512 --swd-images-1024 16 --inception-images 8
    # on a GPU: the issue's targets (16k images at 1024x1024 under 60 s, Inception >= 2,000 images/s)
    python tools/bench_metrics.py --device cuda --swd-images 16384 --swd-images-1024 16384 \
        --baseline-images 16 --inception-images 4096 --inception-batch 256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

BASELINE = r'''
import json, sys, time
import numpy as np, scipy.ndimage
num, res, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
k = (np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0).astype(np.float32)[None, None]
def down(x): return scipy.ndimage.convolve(x, k, mode="mirror")[:, :, ::2, ::2]
def up(x):
    r = np.zeros((x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3]), x.dtype); r[:, :, ::2, ::2] = x
    return scipy.ndimage.convolve(r, k * 4.0, mode="mirror")
def pyramid(images, levels):
    g = [images.astype(np.float32)]
    for _ in range(levels - 1): g.append(down(g[-1]))
    return [g[i] - up(g[i + 1]) for i in range(levels - 1)] + [g[-1]]
def descriptors(level, rs):
    n, c, h, w = level.shape; m = n * 128
    x = rs.randint(3, w - 3, size=(m, 1, 1, 1)); y = rs.randint(3, h - 3, size=(m, 1, 1, 1))
    idx = (np.arange(m) // 128)[:, None, None, None] * c * h * w + np.arange(c)[None, :, None, None] * h * w \
        + (y + np.arange(-3, 4)[None, None, None, :]) * w + x + np.arange(-3, 4)[None, None, :, None]
    return level.ravel()[idx]
def finalize(d):
    d = np.concatenate(d); d -= np.mean(d, axis=(0, 2, 3), keepdims=True); d /= np.std(d, axis=(0, 2, 3), keepdims=True)
    return d.reshape(d.shape[0], -1)
def swd(a, b, rs):
    out = []
    for _ in range(4):
        dirs = rs.randn(a.shape[1], 128); dirs /= np.sqrt(np.sum(np.square(dirs), axis=0, keepdims=True))
        dirs = dirs.astype(np.float32)
        pa = np.sort(np.matmul(a, dirs), axis=0); pb = np.sort(np.matmul(b, dirs), axis=0)
        out.append(np.mean(np.abs(pa - pb)))
    return np.mean(out)
rs = np.random.RandomState(seed)
real = rs.randint(0, 256, size=(num, 3, res, res), dtype=np.uint8); fake = rs.randint(0, 256, size=(num, 3, res, res), dtype=np.uint8)
levels = int(np.log2(res)) - 3; mb = int(np.clip(8192 // res, 4, 256))
start = time.time()
sets = []
for images in (real, fake):
    parts = [[] for _ in range(levels)]
    for b in range(0, num, mb):
        for l, lev in enumerate(pyramid(images[b:b + mb], levels)): parts[l].append(descriptors(lev, rs))
    sets.append([finalize(p) for p in parts])
middle = time.time()
values = [float(1e3 * swd(a, b, rs)) for a, b in zip(*sets)]
end = time.time()
print(json.dumps({"seconds": end - start, "descriptor_seconds": middle - start, "values": values}))
'''


def single_thread_env() -> dict:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[name] = "1"
    return env


def synthetic_batches(num: int, resolution: int, batch: int, seed: int, device: str):
    """Seeded uint8 batches made as they are fed (16k images at 1024x1024 are 51 GB per set), on `device`."""
    import torch

    generator = torch.Generator(device=device).manual_seed(seed)
    for begin in range(0, num, batch):
        count = min(batch, num - begin)
        yield torch.randint(0, 256, (count, 3, resolution, resolution), generator=generator, device=device,
                            dtype=torch.uint8)


def bench_swd(num: int, resolution: int, seed: int = 0, default_threads: bool = False, device: str = "cpu",
              baseline_num: int | None = None) -> dict:
    """Ours on `num` images per set on `device`; the baseline on `baseline_num` (default the same), compared per
    image."""
    import torch

    from pgmetrics import swd

    batch = swd.official_minibatch(resolution)
    # warm-up, not counted (as the baseline's imports): OpenCV import, compiled kernels, thread pool, CUDA context
    warm = next(synthetic_batches(2, resolution, 2, seed, device))
    swd.compute_swd([warm], [warm], resolution, seed=seed, device=device)
    if device != "cpu":
        torch.cuda.synchronize()
    streams = [synthetic_batches(num, resolution, batch, seed + 1 + index, device) for index in range(2)]
    if 2 * num * 3 * resolution ** 2 <= 2 << 30:  # made before the clock starts where they fit in memory
        streams = [list(stream) for stream in streams]
    started = time.time()
    rng = swd.make_rng(seed, reference=False)
    sets = []
    for stream, batches in zip(("reals", "fakes"), streams, strict=True):
        target = swd.DescriptorSet(resolution, rng, stream, device)
        for images in batches:
            target.feed(images)
        sets.append(target.finish())
    if device != "cpu":
        torch.cuda.synchronize()
    middle = time.time()
    ours = swd.swd_metrics(swd.swd_levels(*sets, rng), resolution)
    ours_s = time.time() - started
    row = {"what": f"SWD {num}+{num} images at {resolution}x{resolution} on {device}",
           "threads": torch.get_num_threads(), "ours_s": ours_s, "ours_img_s": 2 * num / ours_s,
           "ours_descriptor_s": middle - started, "ours_avg": ours["SWDx1e3_avg"]}
    baseline_num = num if baseline_num is None else baseline_num
    if baseline_num <= 0:
        return row
    done = subprocess.run([sys.executable, "-c", BASELINE, str(baseline_num), str(resolution), str(seed)],
                          capture_output=True, text=True, env=single_thread_env(), check=True)
    baseline = json.loads(done.stdout)
    scale = num / baseline_num  # baseline seconds for `num` images, if it scaled linearly
    row.update(baseline_images=baseline_num, baseline_s=baseline["seconds"],
               baseline_img_s=2 * baseline_num / baseline["seconds"],
               speedup=baseline["seconds"] * scale / ours_s,
               descriptors_speedup=baseline["descriptor_seconds"] * scale / (middle - started),
               distance_speedup=(baseline["seconds"] - baseline["descriptor_seconds"]) * scale
               / (ours_s - middle + started),
               baseline_distance_share=1 - baseline["descriptor_seconds"] / baseline["seconds"],
               baseline_avg=float(np.mean(baseline["values"])))
    if default_threads:
        done = subprocess.run([sys.executable, "-c", BASELINE, str(baseline_num), str(resolution), str(seed)],
                              capture_output=True, text=True, check=True)
        seconds = json.loads(done.stdout)["seconds"]
        row.update(baseline_default_threads_img_s=2 * baseline_num / seconds,
                   speedup_vs_default_threads=seconds * scale / ours_s)
    return row


def bench_inception(num: int, resolution: int = 128, seed: int = 0, device: str = "cpu", batch: int = 8) -> dict:
    import torch

    from pgmetrics import inception

    state = {k: v for k, v in inception.InceptionV3TF().state_dict().items()}
    generator = torch.Generator().manual_seed(seed)
    for key, value in state.items():
        if value.is_floating_point():
            state[key] = torch.rand(value.shape, generator=generator) * 0.1 + (1.0 if "running_var" in key else 0.0)
    images = np.random.RandomState(seed).randint(0, 256, size=(num, 3, resolution, resolution), dtype=np.uint8)
    results = {}
    for name, fold in (("baseline_eager", False), ("ours", True)):
        network = inception.build_inception(state, device=device, fold=fold)
        inception.extract_features(network, images[:batch])
        started = time.time()
        for begin in range(0, num, batch):
            inception.extract_features(network, images[begin:begin + batch])
        results[f"{name}_img_s"] = num / (time.time() - started)
    results["what"] = f"Inception features, {num} images at {resolution}x{resolution} on {device}, batch {batch}"
    results["speedup"] = results["ours_img_s"] / results["baseline_eager_img_s"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--swd-images", type=int, default=512, help="images per set at 128x128 (official: 16384)")
    parser.add_argument("--swd-images-1024", type=int, default=16, help="images per set at 1024x1024")
    parser.add_argument("--inception-images", type=int, default=8)
    parser.add_argument("--baseline-default-threads", action="store_true",
                        help="also time the SWD baseline with the default BLAS threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the baselines always run on the CPU)")
    parser.add_argument("--baseline-images", type=int, default=None,
                        help="SWD baseline images per set (default: as ours; 0 skips it); compared per image")
    parser.add_argument("--inception-batch", type=int, default=8)
    args = parser.parse_args()
    rows = []
    if args.swd_images:
        rows.append(bench_swd(args.swd_images, 128, default_threads=args.baseline_default_threads,
                              device=args.device, baseline_num=args.baseline_images))
    if args.swd_images_1024:
        rows.append(bench_swd(args.swd_images_1024, 1024, default_threads=args.baseline_default_threads,
                              device=args.device, baseline_num=args.baseline_images))
    if args.inception_images:
        rows.append(bench_inception(args.inception_images, device=args.device, batch=args.inception_batch))
    for row in rows:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))


if __name__ == "__main__":
    main()
