"""The pgmetrics CLI end to end on tiny arrays and folders: JSON output, official values, one-line errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

from pgdata.progress import format_time
from pgmetrics import cli
from pgmetrics.evaluate import RealStream, count_label, header_lines, row_line
from pgmetrics.sources import ImageSource
from tests.conftest import require_fixture


def run(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["pgmetrics", *map(str, args)])
    code = 0
    try:
        cli.main()
    except SystemExit as done:
        code = done.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def sets(tmp_path, monkeypatch):
    monkeypatch.setenv("PGMETRICS_CACHE", str(tmp_path / "cache"))
    images = np.load(require_fixture("metrics", "images.npz"))
    np.save(tmp_path / "a.npy", images["set_a_64"])
    np.savez(tmp_path / "b.npz", images=images["set_b_64"])
    return tmp_path, images


def test_compare_reference_rng_reproduces_official_json(sets, monkeypatch, capsys):
    folder, _ = sets
    expected = json.loads(require_fixture("metrics", "expected.json").read_text())
    want = expected["swd_api"]["runs"]["a64_vs_b64_mb16"]["per_seed"][0]["fakes"]
    out_json = folder / "out.json"
    for _ in range(2):  # the second run reads the cached real descriptors
        code, out, err = run(monkeypatch, capsys, "compare", folder / "a.npy", folder / "b.npz", "--metrics",
                             "swd,msssim", "--swd-reference-rng", "--seed", 1000, "--minibatch", 16, "--json",
                             out_json, "--quiet")
        assert code == 0, err
        result = json.loads(out_json.read_text())
        values = [result["metrics"][k] for k in ("SWDx1e3_64", "SWDx1e3_32", "SWDx1e3_16", "SWDx1e3_avg")]
        np.testing.assert_allclose(values, want, rtol=5e-5)
        assert abs(result["metrics"]["MS-SSIM"] - expected["msssim"]["api"]["set_b_64"]["value"]) < 2e-5
        assert "SWDx1e3_avg" in out
    assert "from the cache" in err


def test_compare_after_the_official_warmup(sets, monkeypatch, capsys):
    """--swd-official-warmup reproduces a warmed-up official run, also from the cache (keyed by the flag)."""
    folder, _ = sets
    expected = json.loads(require_fixture("metrics", "expected.json").read_text())
    want = expected["swd_api"]["runs"]["a64_vs_b64_mb16_with_warmup"]["fakes"]
    out_json = folder / "warm.json"
    for _ in range(2):
        code, _, err = run(monkeypatch, capsys, "compare", folder / "a.npy", folder / "b.npz", "--metrics", "swd",
                           "--swd-reference-rng", "--swd-official-warmup", "--seed", 1000, "--minibatch", 16,
                           "--json", out_json, "--quiet")
        assert code == 0, err
        result = json.loads(out_json.read_text())
        np.testing.assert_allclose(list(result["metrics"].values()), want, rtol=5e-5)
        assert result["settings"]["swd_official_warmup"] is True
    code, _, err = run(monkeypatch, capsys, "compare", folder / "a.npy", folder / "b.npz", "--metrics", "swd",
                       "--swd-official-warmup", "--quiet")
    assert code != 0 and "only applies with --swd-reference-rng" in err and len(err.strip().splitlines()) == 1


def test_folder_and_grey_sources(sets, monkeypatch, capsys):
    folder, images = sets
    pictures = folder / "pictures"
    pictures.mkdir()
    for index, image in enumerate(images["set_b_64"][:8]):
        Image.fromarray(image[0]).save(pictures / f"{index:03d}.png")  # grey
    code, _, err = run(monkeypatch, capsys, "compare", folder / "a.npy", pictures, "--metrics", "swd,msssim",
                       "--json", folder / "g.json", "--quiet")
    assert code == 0, err
    result = json.loads((folder / "g.json").read_text())
    assert result["num_images"] == 8 and result["fake"]["channels"] == 1
    assert any("tiled to RGB" in note for note in result["notes"])


@pytest.mark.parametrize("extra, message", [
    (["--num", "7", "--metrics", "msssim"], "must be even"),
    (["--num", "100"], "has only 64 images"),
    (["--metrics", "fid"], "TF-Inception weights not found"),
    (["--metrics", "swd,bogus"], "unknown metric"),
    (["--metrics", "kid", "--kid-subset-size", "16", "--inception-weights", "/nonexistent.pth"], "not found"),
    (["--metrics", "kid"], "kid needs at least 1000 images"),
])
def test_bad_input_is_one_line(sets, monkeypatch, capsys, extra, message):
    folder, _ = sets
    code, _, err = run(monkeypatch, capsys, "compare", folder / "a.npy", folder / "b.npz", *extra, "--quiet")
    assert code == 1 and message in err
    assert err.startswith("pgmetrics: error: ") and err.count("\n") == 1


def test_resolution_mismatch_and_resize(sets, monkeypatch, capsys):
    folder, images = sets
    np.save(folder / "c128.npy", images["set_a_128"])
    code, _, err = run(monkeypatch, capsys, "compare", folder / "a.npy", folder / "c128.npy", "--quiet")
    assert code == 1 and "--resize" in err
    code, _, err = run(monkeypatch, capsys, "compare", folder / "a.npy", folder / "c128.npy", "--resize",
                       "--metrics", "swd", "--quiet", "--json", folder / "r.json")
    assert code == 0, err
    assert json.loads((folder / "r.json").read_text())["num_images"] == 16


def test_corrupt_snapshot_is_one_line(sets, monkeypatch, capsys):
    folder, _ = sets
    bad = folder / "network-snapshot-000100.pt"
    bad.write_bytes(b"garbage")
    code, _, err = run(monkeypatch, capsys, "compare", folder / "a.npy", bad, "--num", 8, "--quiet")
    assert code == 1 and err.startswith("pgmetrics: error: ") and "snapshot" in err


def test_official_table_format():
    """Byte for byte what the official evaluate_metrics prints: '%-10s' title, '%-12s' time, each name padded to
    its format's width, each value in its format (left-justified, so lines keep their trailing blanks)."""
    assert format_time(5) == "5s" and format_time(83) == "1m 23s" and format_time(3725) == "1h 02m 05s"
    assert format_time(2 * 86400 + 3 * 3600 + 4 * 60) == "2d 03h 04m"
    assert count_label(16384) == "16k" and count_label(50000) == "50k" and count_label(100) == "100"
    names = ["SWDx1e3_64", "SWDx1e3_avg", "FID", "IS_mean", "KID_mean"]
    head, rule = header_lines(names)
    assert head == "Snapshot  Time_eval   SWDx1e3_64   SWDx1e3_avg  FID       IS_mean   KID_mean    "
    assert rule == "---       ---         ---          ---          ---       ---       ---         "
    values = {"SWDx1e3_64": 0.0, "SWDx1e3_avg": 1.5, "FID": 2.25, "IS_mean": 1.03125, "KID_mean": 0.0625}
    line = row_line("Reals", 3.2, names, values)
    assert line == "Reals     3s          0.0000       1.5000       2.2500    1.0312    0.062500    "
    assert row_line("10500", 83, names, values).startswith("10500     1m 23s      0.0000 ")


class Stored(ImageSource):
    """Five numbered 1x4x4 images, for the repeating real stream."""

    def __init__(self):
        self.images = np.arange(5 * 16, dtype=np.uint8).reshape(5, 1, 4, 4)
        self.name, self.num_images, self.channels, self.resolution = "stored", 5, 1, 4

    def iter_batches(self, batch_size, start=0, stop=None):
        for begin in range(start, stop, batch_size):
            yield self.images[begin:min(begin + batch_size, stop)]

    fingerprint_of_pixels = False

    def fingerprint(self, stop):
        return f"stored:{stop}"


@pytest.mark.parametrize("batch_size", [1, 3, 4, 16])
def test_real_stream_repeats_and_mirrors_independently_of_batching(batch_size):
    plain = RealStream(Stored())
    images = np.concatenate(list(plain.iter_batches(batch_size, 3, 12)))
    np.testing.assert_array_equal(images, Stored().images[[3, 4, 0, 1, 2, 3, 4, 0, 1]])
    assert [len(b) for b in plain.iter_batches(batch_size, 3, 12)] == [min(batch_size, 9 - i)
                                                                        for i in range(0, 9, batch_size)]
    mirrored = RealStream(Stored(), mirror=True, seed=7)
    flipped = np.concatenate(list(mirrored.iter_batches(batch_size, 3, 12)))
    flips = np.random.RandomState(7).rand(12)[3:] < 0.5
    assert 0 < flips.sum() < len(flips)
    np.testing.assert_array_equal(flipped[flips], images[flips][..., ::-1])
    np.testing.assert_array_equal(flipped[~flips], images[~flips])
    assert mirrored.fingerprint(12) != plain.fingerprint(12)
