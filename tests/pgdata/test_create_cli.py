"""create_* end to end: the original command lines (from expected.json, verbatim) through the pgdata CLI,
the written pgshards read back with open_dataset, compared with what the original tool made."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pgdata.cli import app
from pgdata.formats import open_dataset
from tests.conftest import fixtures_root, require_fixture

runner = CliRunner()


def load_jobs() -> dict:
    path = fixtures_root() / "dataset_tool" / "expected.json"
    return json.loads(path.read_text())["jobs"] if path.is_file() else {}


JOBS = load_jobs()


def one_job_per_command() -> list[str]:
    """For each create_* command, the job with the most arguments (original spellings like --max_images)."""
    chosen: dict[str, str] = {}
    for name in sorted(JOBS):
        function = JOBS[name]["function"]
        if function not in chosen or len(JOBS[name]["args"]) > len(JOBS[chosen[function]]["args"]):
            chosen[function] = name
    return sorted(chosen.values())


def command_line(job: dict, out: Path) -> list[str]:
    """The job's original command with OUT and the fixture paths filled in."""
    words = shlex.split(job["command"])
    relative = set(job["path_args"].values())
    return [str(out) if word == "OUT" else str(fixtures_root() / word) if word in relative else word
            for word in words]


def run_cli(arguments: list[str]):
    result = runner.invoke(app, arguments, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def assert_dataset_matches(out: Path, job: dict) -> None:
    with open_dataset(out) as reader:
        assert reader.num_images == job["num_images"]
        assert reader.channels == job["channels"]
        assert reader.resolution == job["resolution"]
        for key, expected in job["resolutions"].items():
            resolution = 2 ** int(key[1:])
            digest = hashlib.sha256()
            for batch in reader.iter_batches(resolution):
                digest.update(np.ascontiguousarray(batch).tobytes())
            assert digest.hexdigest() == expected["sha256"], key
        labels = reader.labels()
        if job["labels"] is None:
            assert labels is None
        else:
            assert labels is not None and list(labels.shape) == job["labels"]["shape"]
            labels = np.ascontiguousarray(labels, dtype=np.float32)
            assert hashlib.sha256(labels.tobytes()).hexdigest() == job["labels"]["sha256"]


@pytest.mark.parametrize("name", one_job_per_command() or [pytest.param("none", marks=pytest.mark.skip("no fixtures"))])
def test_original_command_line(name: str, tmp_path: Path) -> None:
    require_fixture("dataset_tool", "expected.json")
    job = JOBS[name]
    out = tmp_path / "out"
    run_cli([*command_line(job, out), "--subset", "--quiet"])
    assert_dataset_matches(out, job)


def test_hyphenated_spellings_and_png_encoding(tmp_path: Path) -> None:
    require_fixture("dataset_tool", "expected.json")
    job = next((job for job in JOBS.values() if job["function"] == "create_mnistrgb"), None)
    if job is None:
        pytest.skip("no create_mnistrgb job in expected.json")
    out = tmp_path / "out"
    run_cli(["create-mnistrgb", str(out), str(fixtures_root() / job["path_args"]["mnist_dir"]),
             "--num-images", str(job["args"].get("num_images", 1000000)),
             "--random-seed", str(job["args"].get("random_seed", 123)),
             "--subset", "--quiet", "--encoding", "png"])
    assert_dataset_matches(out, job)


def test_count_check_refuses_without_subset(tmp_path: Path) -> None:
    """Through the installed entry point: one line naming the folder, exit status 1, nothing written."""
    mnist = require_fixture("dataset_tool", "mnist")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", "from pgdata.cli import main; main()", "create_mnist",
                             str(out), str(mnist)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pgdata: error: ") and str(mnist) in lines[0]
    assert "60000" in lines[0] and "--subset" in lines[0]
    assert not out.exists() and not any(tmp_path.iterdir())


def dataset_files(root: Path) -> dict[str, bytes]:
    """Every file of a dataset by relative name: manifest, shards, labels."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_refuses_existing_output_unless_overwrite(tmp_path: Path) -> None:
    hdf5 = require_fixture("dataset_tool", "hdf5", "legacy-gray.h5")
    out = tmp_path / "out"
    run_cli(["create_from_hdf5", str(out), str(hdf5), "--quiet"])
    old = dataset_files(out)
    result = runner.invoke(app, ["create_from_hdf5", str(out), str(hdf5), "--quiet"])
    assert result.exception is not None and "--overwrite" in str(result.exception)
    assert dataset_files(out) == old  # refused: untouched
    run_cli(["create_from_hdf5", str(out), str(hdf5), "--quiet", "--overwrite", "--shuffle", "0"])
    with open_dataset(out) as reader:
        assert reader.num_images > 0
    fresh = tmp_path / "fresh"
    run_cli(["create_from_hdf5", str(fresh), str(hdf5), "--quiet", "--shuffle", "0"])
    replaced = dataset_files(out)
    assert replaced == dataset_files(fresh)  # the new dataset, byte for byte, and nothing of the old one
    manifest, old_manifest = (json.loads(files["manifest.json"]) for files in (replaced, old))
    assert manifest["producer"]["arguments"] == {"shuffle": 0} != old_manifest["producer"]["arguments"]
    shard_hashes = [[shard["sha256"] for shard in manifest["resolutions"][level]["shards"]]
                    for level in sorted(manifest["resolutions"])]
    old_shard_hashes = [[shard["sha256"] for shard in old_manifest["resolutions"][level]["shards"]]
                        for level in sorted(old_manifest["resolutions"])]
    assert all(new != previous for new, previous in zip(shard_hashes, old_shard_hashes, strict=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "out"]  # no old copy or partial build left


@pytest.mark.parametrize("name", ["create_mnist", "create_mnistrgb", "create_cifar10", "create_cifar100",
                                  "create_svhn", "create_lsun", "create_celeba", "create_from_images",
                                  "create_from_hdf5"])
def test_help_explains_inputs_with_an_example(name: str) -> None:
    result = runner.invoke(app, [name, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Example: pgdata " + name in result.output
    assert "--subset" in result.output and "--encoding" in result.output


def test_celeba_jpeg_release(tmp_path: Path) -> None:
    """Without img_align_celeba_png/, create_celeba reads img_align_celeba/*.jpg through libjpeg 8d."""
    import PIL.Image

    from pgdata.jpeg import decode_jpeg_libjpeg8d
    from pgdata.sources.common import shuffled_order

    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(11)
    for index in range(3):
        pixels = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        PIL.Image.fromarray(pixels).save(folder / f"{index + 1:06d}.jpg", quality=80, subsampling=2)
    out = tmp_path / "out"
    run_cli(["create_celeba", str(out), str(tmp_path / "celeba"), "--cx", "80", "--cy", "100", "--subset",
             "--quiet"])
    files = sorted(folder.glob("*.jpg"))
    expected = np.stack([decode_jpeg_libjpeg8d(files[index])[36:164, 16:144].transpose(2, 0, 1)
                         for index in shuffled_order(3)])
    with open_dataset(out) as reader:
        np.testing.assert_array_equal(np.concatenate(list(reader.iter_batches())), expected)


def test_from_images_pillow_decoder_and_resolution(tmp_path: Path) -> None:
    """--jpeg-decoder pillow decodes with the installed Pillow; --resolution resizes odd-sized images."""
    pytest.importorskip("pgdata.celebahq.kernels")
    import PIL.Image

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(12)
    for index in range(3):
        PIL.Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(folder / f"{index}.jpg")
    out = tmp_path / "out"
    run_cli(["create_from_images", str(out), str(folder), "--shuffle", "0", "--jpeg-decoder", "pillow",
             "--resolution", "16", "--quiet"])
    with open_dataset(out) as reader:
        assert (reader.num_images, reader.channels, reader.resolution) == (3, 3, 16)
        first = reader.image(0)
    from pgdata.celebahq.kernels import resize_antialias

    decoded = np.asarray(PIL.Image.open(folder / "0.jpg"))[:, 8:32]
    np.testing.assert_array_equal(first, resize_antialias(decoded, (16, 16)).transpose(2, 0, 1))
