"""pgmetrics never serves wrong results from its cache, never scores an empty or damaged set, reports user
mistakes in one line before any work, writes its outputs atomically and keeps the results it finished."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib import format as npy_format
from PIL import Image

from pgdata.common.atomic import atomic_file, write_text
from pgdata.exporter import export_dataset
from pgmetrics import cache, inception
from pgmetrics.errors import PgmetricsError
from pgmetrics.sources import ArraySource, FolderSource, ImageSource, open_source
from tests.pgmetrics.test_evaluate_e2e import BlobSource
from tests.pgmetrics.test_evaluate_e2e import pgmetrics as run  # the CLI's exit code, stdout and stderr

NUM = 16


def one_line_error(code: int, err: str, *fragments: str) -> bool:
    return (code == 1 and err.startswith("pgmetrics: error: ") and err.count("\n") == 1
            and all(fragment in err for fragment in fragments))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return export_dataset(BlobSource(n=32), tmp_path_factory.mktemp("data") / "blobs", command="test",
                          arguments={}, quiet=True)


def flatten_pixels(shard: Path) -> None:
    """Overwrite every image of an npy-encoded shard with zeros, keeping its tar and .npy headers (a damaged copy
    that still parses; constant images make SWD's normalisation divide by zero)."""
    data = bytearray(shard.read_bytes())
    position = data.find(npy_format.MAGIC_PREFIX)
    while position >= 0:
        stream = io.BytesIO(bytes(data[position:position + 4096]))
        npy_format.read_magic(stream)
        shape, _, _ = npy_format.read_array_header_1_0(stream)
        start = position + stream.tell()
        data[start:start + int(np.prod(shape))] = bytes(int(np.prod(shape)))
        position = data.find(npy_format.MAGIC_PREFIX, start)
    shard.write_bytes(bytes(data))


def swd_of(monkeypatch, capsys, real, fake, *extra) -> tuple[int, str, dict]:
    out_json = Path(str(real).rstrip("/") + ".json")
    code, _, err = run(monkeypatch, capsys, "compare", real, fake, "--metrics", "swd", "--num", NUM, "--quiet",
                       "--json", out_json, *extra)
    return code, err, json.loads(out_json.read_text())["metrics"] if code == 0 else {}


# --- 1. the cache is keyed on what was read, and every part of it is checked ---------------------------------


def test_a_damaged_copy_is_refused_and_cannot_poison_the_clean_datasets_cache(dataset, fakes, env, monkeypatch,
                                                                               capsys):
    damaged = env / "damaged"
    shutil.copytree(dataset, damaged)
    flatten_pixels(damaged / "r04" / "000000.tar")
    code, err, _ = swd_of(monkeypatch, capsys, damaged, fakes)
    assert one_line_error(code, err, "r04/000000.tar", "sha256", "manifest")
    code, err, clean = swd_of(monkeypatch, capsys, dataset, fakes)
    assert code == 0, err
    code, err, uncached = swd_of(monkeypatch, capsys, dataset, fakes, "--no-cache")
    assert code == 0, err
    assert np.isfinite(clean["SWDx1e3_avg"]) and clean == uncached
    code, err, _ = swd_of(monkeypatch, capsys, damaged, fakes, "--no-cache")  # never scored, cache or not
    assert one_line_error(code, err, "r04/000000.tar")


def test_a_folder_holding_only_the_manifest_is_refused_even_with_a_warm_cache(dataset, fakes, env, monkeypatch,
                                                                               capsys):
    code, err, _ = swd_of(monkeypatch, capsys, dataset, fakes)
    assert code == 0, err
    lonely = env / "manifest-only"
    lonely.mkdir()
    shutil.copy(dataset / "manifest.json", lonely)
    code, err, _ = swd_of(monkeypatch, capsys, lonely, fakes)
    assert one_line_error(code, err, "missing shard", "r04/000000.tar")


def test_a_manifest_listing_too_few_shards_or_no_images_is_one_line(dataset, fakes, env, monkeypatch, capsys):
    broken = env / "few-shards"
    shutil.copytree(dataset, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["resolutions"]["r04"]["shards"] = []
    (broken / "manifest.json").write_text(json.dumps(manifest))
    code, err, _ = swd_of(monkeypatch, capsys, broken, fakes, "--no-cache")
    assert one_line_error(code, err, "manifest.json")  # pgdata's reader or our shard check, whichever sees it
    manifest["num_images"] = 0
    for level in manifest["resolutions"].values():
        level["shards"] = []
    (broken / "manifest.json").write_text(json.dumps(manifest))
    code, err, _ = swd_of(monkeypatch, capsys, broken, fakes)
    assert one_line_error(code, err, "holds no 16x16 images")
    np.save(env / "empty.npy", np.zeros((0, 3, 16, 16), np.uint8))
    code, _, err = run(monkeypatch, capsys, "features", env / "empty.npy", "--out", env / "f.npz",
                       "--inception-weights", env / "none.pth")
    assert one_line_error(code, err, "no images")


def test_non_finite_statistics_are_never_cached_nor_served(fakes, env, monkeypatch, capsys):
    np.save(env / "flat.npy", np.full((NUM, 3, 16, 16), 7, np.uint8))
    code, err, metrics = swd_of(monkeypatch, capsys, env / "flat.npy", fakes)
    assert code == 0 and "not finite" in err and "not cached" in err
    assert not list((env / "cache").rglob("swd-*.npz"))
    assert cache.save("swd-poisoned", {"level0": np.array([np.nan], np.float32)}, env / "stats") is None
    (env / "stats").mkdir()
    np.savez(env / "stats" / "swd-poisoned.npz", level0=np.array([np.inf], np.float32))
    assert cache.load("swd-poisoned", env / "stats") is None


def test_cache_entries_of_the_wrong_shape_are_recomputed(dataset, fakes, env, monkeypatch, capsys):
    code, err, first = swd_of(monkeypatch, capsys, dataset, fakes)
    assert code == 0, err
    (entry,) = (env / "cache" / "stats").glob("swd-*.npz")
    np.savez(entry, level0=np.zeros((3, 147), np.float32))
    code, err, again = swd_of(monkeypatch, capsys, dataset, fakes)
    assert code == 0 and "from the cache" not in err and again == first


def test_the_fingerprint_covers_exactly_the_images_read(env):
    images = BlobSource(n=8).images
    np.save(env / "a.npy", images)
    changed = images.copy()
    changed[6] ^= 1
    np.save(env / "b.npy", changed)
    first, second = ArraySource(env / "a.npy"), ArraySource(env / "b.npy")
    assert first.fingerprint(6) == second.fingerprint(6)  # image 6 is not read
    assert first.fingerprint(7) != second.fingerprint(7)
    np.savez_compressed(env / "c.npz", images=images.transpose(0, 2, 3, 1))  # same pixels, other container
    assert ArraySource(env / "c.npz").fingerprint(7) == first.fingerprint(7)


class Shifty(ImageSource):
    """A set whose pixels change between the fingerprint and the statistics pass (a file rewritten meanwhile)."""

    def __init__(self):
        self.name, self.num_images, self.channels, self.resolution = "shifty", NUM, 3, 16
        self.reads = 0

    def iter_batches(self, batch_size, start=0, stop=None):
        self.reads += 1
        images = BlobSource(n=NUM).images + np.uint8(self.reads)
        for begin in range(start, stop, batch_size):
            yield images[begin:min(begin + batch_size, stop)]


def test_a_set_that_changes_while_it_is_read_is_refused_and_not_cached(env, fakes):
    from pgmetrics.compare import Settings, compare

    with pytest.raises(PgmetricsError, match="changed while it was being read"):
        compare(Shifty(), open_source(fakes), Settings(metrics=["swd"], num=NUM, quiet=True))
    assert not list((env / "cache").rglob("*.npz"))


def test_a_folder_image_that_changes_after_hashing_is_refused(env):
    folder = env / "pictures"
    folder.mkdir()
    for index, image in enumerate(BlobSource(n=4).images):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{index}.png")
    source = FolderSource(folder)
    source.fingerprint(4)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "2.png")
    with pytest.raises(PgmetricsError, match="changed while"):
        list(source.iter_batches(4, 0, 4))


# --- 2. outputs: checked before any work, written atomically -------------------------------------------------


def test_an_unwritable_json_path_is_refused_before_any_work(fakes, env, monkeypatch, capsys):
    missing_real = env / "not-there"  # opening it would be the first piece of work
    code, _, err = run(monkeypatch, capsys, "compare", missing_real, fakes, "--json", env / "nope" / "out.json")
    assert one_line_error(code, err, "nope", "no such folder")
    (env / "taken").mkdir()
    code, _, err = run(monkeypatch, capsys, "compare", missing_real, fakes, "--json", env / "taken")
    assert one_line_error(code, err, "is a directory")
    code, _, err = run(monkeypatch, capsys, "features", fakes, "--out", env / "nope" / "f.npz",
                       "--inception-weights", env / "none.pth")
    assert one_line_error(code, err, "nope", "no such folder")


def test_outputs_appear_whole_or_not_at_all(fakes, env, monkeypatch, capsys):
    target = env / "result.json"
    target.write_text("previous\n")
    with pytest.raises(RuntimeError), atomic_file(target, "w", error_type=PgmetricsError) as file:
        file.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "previous\n"
    write_text(target, "new\n", error_type=PgmetricsError)
    assert target.read_text() == "new\n"
    code, _, err = run(monkeypatch, capsys, "compare", fakes, fakes, "--metrics", "msssim", "--quiet", "--json",
                       target)
    assert code == 0, err
    assert "MS-SSIM" in json.loads(target.read_text())["metrics"]
    assert [p.name for p in env.iterdir() if p.name.startswith(".")] == []  # no temporary left behind


def test_a_features_file_that_fails_midway_leaves_the_previous_one(fakes, env, monkeypatch, capsys):
    """The disk fills up while the .npz is written: the previous file stays whole, one line, exit 1."""
    monkeypatch.setattr(inception, "load_inception", lambda *args, **kwargs: (None, "0" * 64))
    monkeypatch.setattr(inception, "extract_features", lambda network, images: (
        np.zeros((len(images), 2048), np.float32), np.zeros((len(images), 1008), np.float32)))

    def disk_full(file, **arrays):
        with open(file, "wb") if isinstance(file, (str, Path)) else contextlib.nullcontext(file) as handle:
            handle.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    out = env / "features.npz"
    out.write_bytes(b"previous")
    code, _, err = run(monkeypatch, capsys, "features", fakes, "--out", out, "--num", 4, "--quiet")
    assert one_line_error(code, err, "features.npz", "No space left on device")
    assert out.read_bytes() == b"previous"
    assert [p.name for p in env.iterdir() if p.name.startswith(".")] == []


# --- 3. arrays: only what is needed is read, headers are checked first ---------------------------------------


def npy_bytes(shape, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def test_npz_members_are_streamed_up_to_num_only(env):
    big = np.zeros((1500, 3, 64, 64), np.uint8)  # 18 MB, compressed to a few kB
    big[:5] = BlobSource(n=5, resolution=64).images
    np.savez_compressed(env / "big.npz", images=big)
    tracemalloc.start()
    try:
        source = open_source(env / "big.npz")
        images = np.concatenate(list(source.iter_batches(2, 1, 5)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(images, big[1:5])
    assert peak < 2 * 2**20, peak  # the whole member would be 18 MB


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "grey", "rgba"])
def test_streamed_npz_images_equal_the_stored_ones(env, layout):
    images = BlobSource(n=7).images
    stored = {"nchw": images, "nhwc": images.transpose(0, 2, 3, 1), "grey": images[:, 0],
              "rgba": np.concatenate([images, np.full((7, 1, 16, 16), 255, np.uint8)], 1).transpose(0, 2, 3, 1)}
    np.savez_compressed(env / "set.npz", other=np.zeros(3), images=stored[layout])
    np.save(env / "set.npy", stored[layout])
    want = images[:, :1] if layout == "grey" else images
    for spec in (env / "set.npy", f"{env / 'set.npz'}:images", env / "set.npz"):
        source = open_source(spec)
        assert (source.num_images, source.channels, source.resolution) == (7, want.shape[1], 16)
        for start, stop, batch in ((0, 7, 3), (2, 6, 4), (5, 7, 1)):
            np.testing.assert_array_equal(np.concatenate(list(source.iter_batches(batch, start, stop))),
                                          want[start:stop])


@pytest.mark.parametrize("name, content, message", [
    ("negative.npy", npy_bytes((-5, 3, 16, 16), bytes(100)), "impossible shape"),
    ("absurd.npy", npy_bytes((10**9, 3, 64, 64), bytes(100)), "only 100 bytes follow"),
    ("float.npy", npy_bytes((2, 3, 16, 16)).replace(b"|u1", b"<f4"), "expected uint8"),
    ("garbage.npy", b"not an array at all", "not a readable .npy"),
])
def test_bad_npy_headers_are_one_line_without_allocating(env, fakes, monkeypatch, capsys, name, content, message):
    (env / name).write_bytes(content)
    code, _, err = run(monkeypatch, capsys, "compare", env / name, fakes, "--quiet")
    assert one_line_error(code, err, name, message)


def test_an_npz_header_asking_for_terabytes_is_one_line(env, fakes, monkeypatch, capsys):
    with zipfile.ZipFile(env / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images.npy", npy_bytes((10**9, 3, 64, 64), bytes(3 * 64 * 64 * 2)))
    code, _, err = run(monkeypatch, capsys, "compare", env / "bomb.npz", fakes, "--quiet")
    assert one_line_error(code, err, "bomb.npz:images", "truncated file or damaged header")


# --- 4. evaluate keeps the snapshots it scored ---------------------------------------------------------------


def tiny_snapshot(path: Path, seed: int) -> Path:
    from pgtrain.checkpoint import save_snapshot
    from pgtrain.networks import Discriminator, Generator

    kwargs = {"num_channels": 3, "resolution": 16, "fmap_base": 32, "fmap_max": 8}
    torch.manual_seed(seed)
    G, D, Gs = Generator(**kwargs), Discriminator(**kwargs), Generator(**kwargs)
    return save_snapshot(path, network_kwargs={"G": kwargs, "D": kwargs}, G_state=G.state_dict(),
                         D_state=D.state_dict(), Gs_state=Gs.state_dict())


def test_evaluate_keeps_the_rows_it_finished_when_a_snapshot_is_refused(fakes, env, monkeypatch, capsys):
    run_dir = env / "run"
    run_dir.mkdir()
    for kimg in (1, 3):
        tiny_snapshot(run_dir / f"network-snapshot-{kimg:06d}.pt", kimg)
    (run_dir / "network-snapshot-000002.pt").write_bytes(b"garbage")
    code, out, err = run(monkeypatch, capsys, "evaluate", run_dir, "--real", fakes, "--metrics", "swd", "--num",
                         NUM, "--quiet")
    assert one_line_error(code, err, "1 of 3 snapshots could not be scored", "the other 2")
    assert [line.split()[0] for line in out.splitlines() if line.startswith("00000")] == ["000003", "000002",
                                                                                         "000001"]
    assert "000002 refused: " in out and "network-snapshot-000002.pt" in out
    table = (run_dir / f"metric-swd-{NUM}.txt").read_text().splitlines()
    assert [line.split()[0] for line in table[2:] if line.strip()] == ["Reals", "3", "1"]
    assert (run_dir / f"metric-swd-{NUM}.png").is_file()


def test_evaluate_checks_its_outputs_before_any_work(fakes, env, monkeypatch, capsys):
    run_dir = env / "run"
    run_dir.mkdir()
    (run_dir / "network-snapshot-000001.pt").write_bytes(b"never loaded")
    (run_dir / f"metric-swd-{NUM}.txt").mkdir()
    code, out, err = run(monkeypatch, capsys, "evaluate", run_dir, "--real", fakes, "--metrics", "swd", "--num",
                         NUM, "--quiet")
    assert one_line_error(code, err, f"metric-swd-{NUM}.txt", "is a directory") and "000001" not in out


# --- 5. argument mistakes: one line before any work ----------------------------------------------------------


@pytest.mark.parametrize("extra, message", [
    (["--num", "-3"], "--num must be at least 1, got -3"),
    (["--num", "0"], "--num must be at least 1, got 0"),
    (["--minibatch", "0"], "--minibatch must be at least 1"),
    (["--seed", "-1"], "--seed must be in 0 .."),
    (["--metrics", "swd,bogus"], "unknown metric(s) bogus"),
    (["--metrics", "is", "--is-splits", "0"], "--is-splits must be at least 1"),
    (["--metrics", "kid", "--kid-subset-size", "1"], "--kid-subset-size must be at least 2"),
    (["--metrics", "msssim", "--num", "7"], "must be even"),
])
def test_argument_mistakes_are_one_line_before_any_work(env, monkeypatch, capsys, extra, message):
    missing = env / "not-there"  # opening a source would be the first piece of work
    code, _, err = run(monkeypatch, capsys, "compare", missing, missing, *extra)
    assert one_line_error(code, err, message) and "not-there" not in err
    code, _, err = run(monkeypatch, capsys, "evaluate", missing, *extra)
    assert one_line_error(code, err, message) and "not-there" not in err


@pytest.mark.parametrize("extra, message", [
    (["--num", "0"], "--num must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--seed", "-2"], "--seed must be in"),
])
def test_features_argument_mistakes_come_before_the_weights(env, monkeypatch, capsys, extra, message):
    code, _, err = run(monkeypatch, capsys, "features", env / "not-there", "--out", env / "f.npz",
                       "--inception-weights", env / "none.pth", *extra)
    assert one_line_error(code, err, message)


# --- 6. the same class of fault elsewhere -------------------------------------------------------------------


def test_inception_weights_with_non_finite_values_are_refused(env):
    torch.save({"fc.weight": torch.tensor([[1.0, float("nan")]])}, env / "weights.pth")
    with pytest.raises(PgmetricsError, match=r"non-finite values \(fc.weight\)"):
        inception.load_weights(env / "weights.pth", verify=False)


def test_truncated_inception_weights_are_one_line(env, monkeypatch):
    torch.save({"fc.weight": torch.ones(64, 64)}, env / "weights.pth")
    data = (env / "weights.pth").read_bytes()
    (env / "weights.pth").write_bytes(data[:len(data) // 2])
    with pytest.raises(PgmetricsError, match="not the TF-Inception 2015-12-05 weights"):
        inception.load_weights(env / "weights.pth")
    with pytest.raises(PgmetricsError, match="cannot read the weights file"):
        inception.load_weights(env / "weights.pth", verify=False)


def test_a_decompression_bomb_in_a_folder_is_one_line(env, fakes, monkeypatch, capsys):
    folder = env / "pictures"
    folder.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "0.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64 // 4)  # 64x64 is then over twice the limit
    code, _, err = run(monkeypatch, capsys, "compare", fakes, folder, "--quiet")
    assert one_line_error(code, err, "0.png", "cannot decode")


def test_a_run_config_that_is_not_an_object_is_one_line(fakes, env, monkeypatch, capsys):
    run_dir = env / "run"
    run_dir.mkdir()
    (run_dir / "network-snapshot-000001.pt").write_bytes(b"never loaded")
    (run_dir / "config.json").write_text("[1, 2]")
    code, _, err = run(monkeypatch, capsys, "evaluate", run_dir, "--metrics", "swd", "--num", NUM, "--quiet")
    assert one_line_error(code, err, "config.json", "expected a JSON object")
