"""The inspection commands (display, grid, extract, compare, info, verify) on datasets made in the test.

Each command runs through pgdata.cli.main, as the console script does, so user errors show up as the one
line on stderr and the exit status a user sees.
"""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest
from PIL import Image

from pgdata.cli import main
from pgdata.common.images import grid_size
from pgdata.common.images import tile_grid as contact_sheet
from pgdata.exporter import export_dataset
from pgdata.pyramid import pyramid_levels
from pgdata.sources.base import Source, SourceInfo
from tests.pgdata.test_tfrecords_reader import save_npy, write_tfrecords_dataset

COUNT, CHANNELS, RESOLUTION = 10, 3, 16


def run(monkeypatch, capsys, *arguments: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["pgdata", *map(str, arguments)])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def make_images(count=COUNT, channels=CHANNELS, resolution=RESOLUTION, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, channels, resolution, resolution), np.uint8)


def make_labels(count=COUNT, classes=4) -> np.ndarray:
    labels = np.zeros((count, classes), np.float32)
    labels[np.arange(count), np.arange(count) % classes] = 1
    return labels


def levels_of(images: np.ndarray) -> dict[int, np.ndarray]:
    return {level.shape[2]: level for level in pyramid_levels(images)}


def write_hdf5(path, levels: dict[int, np.ndarray], labels=None):
    with h5py.File(path, "w") as file:
        for resolution, images in levels.items():
            file.create_dataset(f"data{resolution}x{resolution}", data=images)
    if labels is not None:
        np.save(path.with_name(path.stem + "-labels.npy"), labels)
    return path


class ArraySource(Source):
    def __init__(self, images, labels=None):
        self.images = images
        self._labels = labels
        self.info = SourceInfo("test", images.shape[1], images.shape[2], len(images))

    def iter_chunks(self, start=0):
        for first in range(start, len(self.images), 4):
            yield self.images[first:first + 4]

    @property
    def labels(self):
        return self._labels


def write_pgshards(path, images, labels=None):
    return export_dataset(ArraySource(images, labels), path, command="test", arguments={}, quiet=True)


@pytest.fixture
def datasets(tmp_path):
    """The same images and labels as TFRecords, HDF5 and pgshards."""
    images, labels = make_images(), make_labels()
    levels = levels_of(images)
    return {
        "images": images,
        "labels": labels,
        "tfrecords": write_tfrecords_dataset(tmp_path / "tf", levels, labels),
        "hdf5": write_hdf5(tmp_path / "legacy.h5", levels, labels),
        "pgshards": write_pgshards(tmp_path / "shards", images, labels),
    }


# --- contact sheet -------------------------------------------------------------------------------------


def test_contact_sheet_layout_matches_official_grid():
    images = make_images(count=7, resolution=4)
    sheet = contact_sheet(images)
    assert grid_size(7) == (3, 3)
    assert sheet.shape == (3, 12, 12) and sheet.dtype == np.uint8
    for index in range(9):
        row, column = divmod(index, 3)
        tile = sheet[:, row * 4:row * 4 + 4, column * 4:column * 4 + 4]
        np.testing.assert_array_equal(tile, images[index] if index < 7 else 0)


def test_contact_sheet_columns_spacing_and_greyscale():
    images = make_images(count=5, channels=1, resolution=4)[:, 0]
    sheet = contact_sheet(images, columns=5, spacing=2, background=255)
    assert sheet.shape == (2 + 4 + 2, 2 + 5 * 6)
    for index in range(5):
        np.testing.assert_array_equal(sheet[2:6, 2 + 6 * index:6 + 6 * index], images[index])
    assert np.all(sheet[:2] == 255) and np.all(sheet[:, :2] == 255) and np.all(sheet[6:] == 255)
    with pytest.raises(ValueError):
        contact_sheet(images[0])


# --- grid ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tfrecords", "hdf5", "pgshards"])
def test_grid_writes_the_requested_images(monkeypatch, capsys, tmp_path, datasets, kind):
    output = tmp_path / "sheet.png"
    code, out, err = run(monkeypatch, capsys, "grid", datasets[kind], output, "--resolution", 8,
                         "--count", 5, "--start", 3, "--quiet")
    assert code == 0, err
    sheet = np.asarray(Image.open(output))
    assert sheet.shape == (2 * 8, 3 * 8, 3)  # 5 tiles: 3 columns, 2 rows
    expected = levels_of(datasets["images"])[8][3:8]
    for index in range(5):
        row, column = divmod(index, 3)
        np.testing.assert_array_equal(sheet[row * 8:row * 8 + 8, column * 8:column * 8 + 8],
                                      expected[index].transpose(1, 2, 0))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_grid_clips_count_and_rejects_bad_start(monkeypatch, capsys, tmp_path, datasets):
    output = tmp_path / "all.png"
    code, _, _ = run(monkeypatch, capsys, "grid", datasets["hdf5"], output, "--count", 1000)
    assert code == 0
    assert Image.open(output).size == (4 * RESOLUTION, 3 * RESOLUTION)  # 10 images: 4 x 3
    code, _, err = run(monkeypatch, capsys, "grid", datasets["hdf5"], tmp_path / "x.png", "--start", 10)
    assert code == 1 and "--start 10 outside the 10 images" in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


# --- extract -------------------------------------------------------------------------------------------


def test_extract_names_modes_and_pixels(monkeypatch, capsys, tmp_path, datasets):
    output = tmp_path / "png"
    code, out, err = run(monkeypatch, capsys, "extract", datasets["tfrecords"], output, "--quiet")
    assert code == 0, err
    names = sorted(p.name for p in output.iterdir())
    assert names == [f"img{i:08d}.png" for i in range(COUNT)]
    for index in (0, 9):
        image = Image.open(output / names[index])
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), datasets["images"][index].transpose(1, 2, 0))
    assert "Extracted 10 images." in out


def test_extract_greyscale_at_a_lower_resolution(monkeypatch, capsys, tmp_path):
    images = make_images(count=3, channels=1, resolution=8)
    dataset = write_hdf5(tmp_path / "grey.h5", levels_of(images))
    code, _, err = run(monkeypatch, capsys, "extract", dataset, tmp_path / "out", "--resolution", 4, "-q")
    assert code == 0, err
    image = Image.open(tmp_path / "out" / "img00000002.png")
    assert image.mode == "L"
    np.testing.assert_array_equal(np.asarray(image), levels_of(images)[4][2, 0])


# --- compare -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", [("tfrecords", "hdf5"), ("pgshards", "tfrecords"), ("hdf5", "pgshards")])
def test_compare_identical_across_formats(monkeypatch, capsys, datasets, pair):
    code, out, err = run(monkeypatch, capsys, "compare", datasets[pair[0]], datasets[pair[1]], "-q")
    assert code == 0, out + err
    for resolution in (4, 8, 16):
        assert f"{resolution}x{resolution}: Identical images: {COUNT} / {COUNT}" in out
    assert f"Identical labels: {COUNT} / {COUNT}" in out
    assert "The datasets are identical." in out


def test_compare_reports_different_images(monkeypatch, capsys, tmp_path, datasets):
    images = datasets["images"].copy()
    images[6, 0, 0, 0] ^= 1
    other = write_hdf5(tmp_path / "other.h5", levels_of(images), datasets["labels"])
    code, out, _ = run(monkeypatch, capsys, "compare", datasets["tfrecords"], other, "-q")
    assert code == 1
    assert "16x16: Image 6 is different" in out
    assert f"16x16: Identical images: {COUNT - 1} / {COUNT}" in out
    assert "The datasets differ." in out


def test_compare_labels_and_ignore_labels(monkeypatch, capsys, tmp_path, datasets):
    labels = datasets["labels"].copy()
    labels[[1, 2]] = labels[[2, 1]]
    other = write_hdf5(tmp_path / "relabelled.h5", levels_of(datasets["images"]), labels)
    code, out, _ = run(monkeypatch, capsys, "compare", datasets["hdf5"], other, "-q")
    assert code == 1 and f"Identical labels: {COUNT - 2} / {COUNT}" in out
    for spelling in ("--ignore_labels", "--ignore-labels"):
        code, out, _ = run(monkeypatch, capsys, "compare", datasets["hdf5"], other, spelling, 1, "-q")
        assert code == 0 and "Identical labels" not in out


def test_compare_missing_labels_count_as_different(monkeypatch, capsys, tmp_path, datasets):
    unlabelled = write_hdf5(tmp_path / "plain.h5", levels_of(datasets["images"]))
    code, out, _ = run(monkeypatch, capsys, "compare", datasets["tfrecords"], unlabelled, "-q")
    assert code == 1 and f"Identical labels: 0 / {COUNT}" in out and "label sizes differ: 4 vs 0" in out


def test_compare_different_counts_and_resolutions(monkeypatch, capsys, tmp_path, datasets):
    fewer = write_hdf5(tmp_path / "fewer.h5", levels_of(datasets["images"][:7]), datasets["labels"][:7])
    code, out, _ = run(monkeypatch, capsys, "compare", datasets["pgshards"], fewer, "-q")
    assert code == 1
    assert "16x16: Datasets contain different number of images: 10 vs. 7" in out
    assert "16x16: Identical images: 7 / 7" in out

    smaller = {r: level for r, level in levels_of(datasets["images"]).items() if r <= 8}
    small = write_tfrecords_dataset(tmp_path / "small", smaller, datasets["labels"])
    code, out, _ = run(monkeypatch, capsys, "compare", datasets["hdf5"], small, "-q")
    assert code == 1
    assert "Resolutions only in the first dataset: 16x16" in out
    assert f"8x8: Identical images: {COUNT} / {COUNT}" in out


# --- info ----------------------------------------------------------------------------------------------

INFO_FIELDS = ("Path", "Format", "Total size", "Total images", "Resolutions", "Resolution", "Color channels",
               "Bytes per image", "Size per image", "Labels", "Encoding", "Shard bytes", "Made by", "Label file",
               "Ignored levels")


def info_fields(out: str) -> dict[str, str]:
    """`pgdata info`'s fields by name, whatever the spacing between name and value; every line that is not a
    warning must be a known field ("Shards rNN" per level)."""
    fields = {}
    for line in out.splitlines():
        if line.startswith("Warning: "):
            continue
        name = next((n for n in INFO_FIELDS if line.startswith(n) and line[len(n):len(n) + 1].isspace()), None)
        if name is None and line.startswith("Shards r"):
            name = line.split()[0] + " " + line.split()[1]
        assert name is not None, f"not a field of pgdata info: {line!r}"
        fields[name] = line[len(name):].strip()
    return fields


def test_info_every_format(monkeypatch, capsys, datasets):
    for kind in ("tfrecords", "hdf5", "pgshards"):
        code, out, err = run(monkeypatch, capsys, "info", datasets[kind])
        assert code == 0, err
        fields = info_fields(out)
        assert fields["Format"] == kind
        assert fields["Total images"] == str(COUNT)
        assert fields["Resolution"] == "16x16"
        assert fields["Resolutions"] == "4x4, 8x8, 16x16"
        assert fields["Color channels"] == "3"
        assert fields["Bytes per image"].startswith(f"{3 * 16 * 16} at 16x16")
        assert fields["Labels"] == "4 per image, one-hot; images per class: 0: 3, 1: 3, 2: 2, 3: 2"
        assert "Warning" not in out
    code, out, _ = run(monkeypatch, capsys, "info", datasets["pgshards"])
    fields = info_fields(out)
    assert "Shards r02" in fields and "Shard bytes" in fields
    shard_bytes = sum(p.stat().st_size for p in datasets["pgshards"].rglob("*.tar"))
    assert fields["Shard bytes"].split()[0] == str(shard_bytes)


def test_info_warns_about_inconsistent_legacy_files(monkeypatch, capsys, tmp_path):
    images = make_images(count=6)
    levels = levels_of(images)
    with h5py.File(tmp_path / "broken.h5", "w") as file:
        file.create_dataset("data4x4", data=levels[4])
        file.create_dataset("data16x16", data=levels[16][:4])
    code, out, _ = run(monkeypatch, capsys, "info", tmp_path / "broken.h5")
    assert code == 0
    assert info_fields(out)["Total images"] == "4"
    assert "Warning: missing resolutions: 8x8" in out
    assert "Warning: inconsistent number of images per resolution (4x4: 6, 16x16: 4)" in out


def test_info_reports_unreadable_labels(monkeypatch, capsys, datasets):
    save_npy(datasets["tfrecords"] / "tf-rxx.labels", make_labels(count=3))
    code, out, _ = run(monkeypatch, capsys, "info", datasets["tfrecords"])
    assert code == 0
    assert info_fields(out)["Labels"] == "unreadable" and "3 label rows for 10 images" in out


# --- verify --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tfrecords", "hdf5", "pgshards"])
def test_verify_ok(monkeypatch, capsys, datasets, kind):
    code, out, err = run(monkeypatch, capsys, "verify", datasets[kind], "--quiet")
    assert code == 0, out + err
    assert out.startswith("OK:")


def test_verify_pgshards_names_the_damaged_shard(monkeypatch, capsys, datasets):
    shard = sorted((datasets["pgshards"] / "r03").glob("*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[700] ^= 0xFF
    shard.write_bytes(bytes(data))
    code, out, _ = run(monkeypatch, capsys, "verify", datasets["pgshards"], "-q")
    assert code == 1
    failures = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failures) == 1 and str(shard) in failures[0]


def test_verify_tfrecords_names_file_and_record(monkeypatch, capsys, datasets):
    file = datasets["tfrecords"] / "tf-r03.tfrecords"
    frame_size = file.stat().st_size // COUNT
    data = bytearray(file.read_bytes())
    data[4 * frame_size + frame_size // 2] ^= 0x01
    file.write_bytes(bytes(data))
    code, out, _ = run(monkeypatch, capsys, "verify", datasets["tfrecords"], "-q")
    assert code == 1
    assert "FAILED:" in out and "tf-r03.tfrecords: record 4: data CRC mismatch" in out


def test_verify_hdf5_reports_inconsistent_counts(monkeypatch, capsys, tmp_path):
    levels = levels_of(make_images(count=5))
    levels[8] = levels[8][:3]
    path = write_hdf5(tmp_path / "short.h5", levels)
    code, out, _ = run(monkeypatch, capsys, "verify", path, "-q")
    assert code == 1 and "FAILED: inconsistent number of images" in out


# --- display and bad input ------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the DISPLAY check applies to Linux")
def test_display_without_a_screen_points_to_grid_and_extract(monkeypatch, capsys, datasets):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, out, err = run(monkeypatch, capsys, "display", datasets["hdf5"])
    assert code == 1
    assert err.startswith("pgdata: error: cannot display: no screen")
    assert "pgdata grid" in err and "pgdata extract" in err
    assert err.count("\n") == 1


def test_display_with_a_headless_opencv(monkeypatch, capsys, datasets):
    cv2 = pytest.importorskip("cv2")
    try:
        cv2.namedWindow("probe")
        cv2.destroyAllWindows()
        pytest.skip("this OpenCV has GUI support")
    except cv2.error:
        pass
    monkeypatch.setenv("DISPLAY", ":0")
    code, _, err = run(monkeypatch, capsys, "display", datasets["tfrecords"])
    assert code == 1 and "no GUI support" in err and "pgdata grid" in err


@pytest.mark.parametrize("command", ["info", "verify", "display"])
def test_bad_input_is_one_line(monkeypatch, capsys, tmp_path, command):
    code, _, err = run(monkeypatch, capsys, command, tmp_path / "nothing")
    assert code == 1
    assert err == f"pgdata: error: {tmp_path / 'nothing'}: no such file or directory\n"
