"""Build Pillow 3.1.1 once, under pyenv's Python 3.6, as the oracle for our Pillow 3.1.1 kernels.

NVIDIA's create_celebahq demands Pillow 3.1.1; its resize(ANTIALIAS) and transform(QUAD, BILINEAR) are what
pgdata.celebahq.kernels reimplements. This tool builds that exact Pillow from its PyPI sdist (sha256
pinned) without any optional codec (no JPEG, zlib, ...: the kernels need none, and the build then needs only
a C compiler and Python 3.6's headers), into a cache folder, and runs a small server script with it.

    python tools/pillow311.py build          # once; prints the cache folder
    python tools/pillow311.py check          # exit 0 when the build is there and imports
    python tools/pillow311.py info

Settings (environment): PGDATA_PILLOW311_DIR (cache folder, default: the pillow311/ folder of pgdata's cache,
i.e. $PGDATA_CACHE/pillow311, else $XDG_CACHE_HOME/pgdata/pillow311, else ~/.cache/pgdata/pillow311),
PGDATA_PYTHON36 (the Python 3.6 interpreter; default: pyenv's 3.6.x, then python3.6 on PATH),
PGDATA_PILLOW311_SDIST (a local Pillow-3.1.1.tar.gz instead of downloading it with pip).

The oracle protocol (used by tests and tools/bench_celebahq.py): `oracle_call(requests)` writes each
request's input image as .npy, runs the worker under Python 3.6 with the built Pillow, and reads the outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from pgdata.common.cache import cache_dir as pgdata_cache_dir
from pgdata.hashing import file_sha256

SDIST_NAME = "Pillow-3.1.1.tar.gz"
SDIST_SHA256 = "486f4ccddee09429cb1c63ea56c02894aecf9d69acdcaf006c53835df2549fff"
DISABLED = ["zlib", "jpeg", "tiff", "freetype", "tcl", "lcms", "webp", "webpmux", "jpeg2000"]
# Old C under new compilers: keep what gcc >= 14 turned into errors as warnings.
LENIENT_CFLAGS = ("-Wno-error=implicit-function-declaration -Wno-error=incompatible-pointer-types "
                  "-Wno-error=int-conversion -Wno-error=implicit-int")


def cache_dir() -> Path:
    """The build folder: `build` writes it and the tests read it, both through this one rule."""
    explicit = os.environ.get("PGDATA_PILLOW311_DIR")
    return Path(explicit).expanduser() if explicit else pgdata_cache_dir("pgdata") / "pillow311"


def find_python36() -> str | None:
    """pyenv's 3.6 interpreter (CI and dev machines have 3.6.15), or PGDATA_PYTHON36, or python3.6."""
    explicit = os.environ.get("PGDATA_PYTHON36")
    if explicit:
        return explicit if Path(explicit).exists() or shutil.which(explicit) else None
    roots = [Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"]
    for root in roots:
        if root.is_dir():
            for version in sorted(root.glob("3.6.*"), reverse=True):
                candidate = version / "bin" / "python3.6"
                if candidate.exists():
                    return str(candidate)
    return shutil.which("python3.6")


def lib_dir() -> Path:
    return cache_dir() / "lib"


def is_built() -> bool:
    return (cache_dir() / "BUILD_OK").exists() and (lib_dir() / "PIL").is_dir()


def _fetch_sdist(python36: str, work: Path) -> Path:
    local = os.environ.get("PGDATA_PILLOW311_SDIST")
    cached = cache_dir() / SDIST_NAME
    if local:
        source = Path(local)
    elif cached.exists():
        source = cached
    else:
        subprocess.run([python36, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                        "--no-binary", ":all:", "pillow==3.1.1", "-d", str(work)], check=True,
                       stdout=subprocess.DEVNULL)
        source = work / SDIST_NAME
    if file_sha256(source) != SDIST_SHA256:
        raise RuntimeError(f"{source}: sha256 differs from the PyPI Pillow 3.1.1 sdist")
    if source != cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, cached)
    return cached


def build(verbose: bool = False) -> Path:
    """Build Pillow 3.1.1 into cache_dir()/lib (idempotent; takes about a minute)."""
    if is_built():
        return cache_dir()
    python36 = find_python36()
    if python36 is None:
        raise RuntimeError("no Python 3.6 interpreter (pyenv install 3.6.15, or set PGDATA_PYTHON36)")
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pillow311-") as temporary:
        work = Path(temporary)
        sdist = _fetch_sdist(python36, work)
        with tarfile.open(sdist) as archive:
            archive.extractall(work)
        tree = work / "Pillow-3.1.1"
        environment = dict(os.environ, CFLAGS=LENIENT_CFLAGS, MAX_CONCURRENCY="1")
        command = [python36, "setup.py", "build_ext", "--inplace"] + [f"--disable-{x}" for x in DISABLED]
        result = subprocess.run(command, cwd=tree, env=environment, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        if verbose or result.returncode != 0:
            sys.stderr.write(result.stdout.decode(errors="replace")[-6000:])
        if result.returncode != 0:
            raise RuntimeError(f"building Pillow 3.1.1 failed (exit {result.returncode})")
        target = lib_dir()
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        shutil.copytree(tree / "PIL", target / "PIL")
    probe = subprocess.run([python36, "-c", "import PIL, PIL.Image; print(PIL.PILLOW_VERSION)"],
                           env=_worker_env(), capture_output=True)
    version = probe.stdout.decode().strip()
    if version != "3.1.1":
        raise RuntimeError(f"built Pillow does not import: {probe.stderr.decode()[-2000:]}")
    (root / "BUILD_OK").write_text(json.dumps({"python": python36, "pillow": version}) + "\n")
    return root


def _worker_env() -> dict:
    return dict(os.environ, PYTHONPATH=str(lib_dir()), PYTHONNOUSERSITE="1")


def python36_of_build() -> str:
    return json.loads((cache_dir() / "BUILD_OK").read_text())["python"]


# Runs under Python 3.6 with the built Pillow and without numpy: reads and writes .npy (uint8, version 1.0).
WORKER_SOURCE = r'''
import ast, json, sys, time
from PIL import Image

def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    length = int.from_bytes(raw[8:10], "little")
    header = ast.literal_eval(raw[10:10 + length].decode("latin1"))
    assert header["descr"] == "|u1" and not header["fortran_order"], header
    return header["shape"], raw[10 + length:]

def save(path, shape, data):
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (tuple(shape),)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1") + data)

def to_image(shape, data):
    mode = "L" if len(shape) == 2 or shape[2] == 1 else "RGB"
    return Image.frombytes(mode, (shape[1], shape[0]), data)

def run(job, image):
    size = tuple(job["size"])
    if job["kind"] == "resize":
        return image.resize(size, Image.ANTIALIAS)
    return image.transform(size, Image.QUAD, tuple(job["data"]), Image.BILINEAR)

for job in json.load(open(sys.argv[1])):
    shape, data = load(job["input"])
    image = to_image(shape, data)
    if job["op"] == "time":
        run(job, image)
        start = time.perf_counter()
        for _ in range(job["repeat"]):
            run(job, image)
        seconds = (time.perf_counter() - start) / job["repeat"]
        save(job["output"], (8,), int(seconds * 1e9).to_bytes(8, "little"))
        continue
    out = run(job, image)
    channels = () if len(shape) == 2 else (shape[2],)
    save(job["output"], (out.size[1], out.size[0]) + channels, out.tobytes())
'''


def oracle_call(requests: list[dict]) -> list[np.ndarray]:
    """Run Pillow 3.1.1 on each request; returns the output images (uint8 H x W x C or H x W).

    A request is {"op": "resize", "image": array, "size": (w, h)} (ANTIALIAS) or
    {"op": "quad", "image": array, "size": (w, h), "data": 8 floats} (QUAD, BILINEAR), or with
    "op": "time" added by the benchmark ({"op": "time", "inner": request, "repeat": n}: returns seconds).
    """
    with tempfile.TemporaryDirectory(prefix="pillow311-call-") as temporary:
        work = Path(temporary)
        jobs = []
        for number, request in enumerate(requests):
            job = {key: value for key, value in request.items() if key not in ("image", "inner")}
            inner = request.get("inner", request)
            image_path = work / f"in{number}.npy"
            np.save(image_path, np.ascontiguousarray(inner["image"], dtype=np.uint8))
            job.update(input=str(image_path), output=str(work / f"out{number}.npy"),
                       kind=inner["op"], size=list(inner["size"]))
            if "data" in inner:
                job["data"] = [float(value) for value in inner["data"]]
            jobs.append(job)
        (work / "jobs.json").write_text(json.dumps(jobs))
        worker = work / "worker.py"
        worker.write_text(WORKER_SOURCE)
        result = subprocess.run([python36_of_build(), str(worker), str(work / "jobs.json")],
                                env=_worker_env(), capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(f"Pillow 3.1.1 worker failed: {result.stderr.decode()[-3000:]}")
        return [np.load(job["output"]) for job in jobs]


def main(argv: list[str]) -> int:
    action = argv[1] if len(argv) > 1 else "build"
    if action == "build":
        print(build(verbose="-v" in argv))
        return 0
    if action == "check":
        return 0 if is_built() else 1
    if action == "info":
        print(json.dumps({"cache_dir": str(cache_dir()), "built": is_built(), "python36": find_python36()}))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
