"""Hdf5Reader against h5py reads of the legacy fixtures, the original tool's hashes, and files made here."""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np
import pytest

from pgdata.errors import PgdataError
from pgdata.formats import detect_format, open_dataset
from pgdata.formats.hdf5 import Hdf5Reader
from tests.conftest import require_fixture


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _all(reader, resolution=None, batch_size=5) -> np.ndarray:
    return np.concatenate(list(reader.iter_batches(resolution, batch_size=batch_size)))


@pytest.fixture
def rgb_file():
    return require_fixture("dataset_tool", "hdf5", "legacy-rgb.h5")


@pytest.fixture
def gray_file():
    return require_fixture("dataset_tool", "hdf5", "legacy-gray.h5")


def test_fixture_metadata(rgb_file, gray_file):
    assert detect_format(rgb_file) == "hdf5"
    with open_dataset(rgb_file) as reader:
        assert isinstance(reader, Hdf5Reader) and reader.format_name == "hdf5"
        assert reader.resolutions == (4, 8, 16, 32, 64, 128)  # data1x1 and data2x2 exist but are below 4x4
        assert reader.all_resolutions == (1, 2, 4, 8, 16, 32, 64, 128)
        assert (reader.num_images, reader.channels, reader.resolution, reader.label_size) == (12, 3, 128, 10)
        assert reader.missing_resolutions() == []
    with open_dataset(gray_file) as reader:
        assert reader.resolutions == (4, 8, 16, 32)
        assert (reader.num_images, reader.channels, reader.label_size) == (9, 1, 0)
        assert reader.labels() is None


@pytest.mark.parametrize("name", ["legacy-rgb.h5", "legacy-gray.h5"])
def test_every_resolution_matches_h5py(name):
    path = require_fixture("dataset_tool", "hdf5", name)
    with h5py.File(path, "r") as file, Hdf5Reader(path) as reader:
        for resolution in reader.resolutions:
            expected = file[f"data{resolution}x{resolution}"][()]
            assert reader.num_images_at(resolution) == len(expected)
            np.testing.assert_array_equal(_all(reader, resolution), expected)
            np.testing.assert_array_equal(_all(reader, resolution, batch_size=256), expected)
            for index in (0, len(expected) - 1, 3):
                np.testing.assert_array_equal(reader.image(index, resolution), expected[index])
            got = np.concatenate(list(reader.iter_batches(resolution, batch_size=2, start=1, stop=6)))
            np.testing.assert_array_equal(got, expected[1:6])
        np.testing.assert_array_equal(reader.image(2), file[f"data{reader.resolution}x{reader.resolution}"][2])


def test_labels_are_the_npy_file(rgb_file):
    expected = np.load(rgb_file.with_name("legacy-rgb-labels.npy"))
    with Hdf5Reader(rgb_file) as reader:
        labels = reader.labels()
        assert labels.dtype == np.float32
        np.testing.assert_array_equal(labels, expected)


def test_full_resolution_matches_the_original_tools_input():
    """create_from_hdf5 takes the largest dataset as is: --shuffle 0 keeps the order, --shuffle 1 applies
    RandomState(123).shuffle. The original's lower levels are recomputed from the top one, so only the top
    resolution has to match."""
    expected = json.loads(require_fixture("dataset_tool", "expected.json").read_text())["jobs"]
    for job, name in [("hdf5-rgb-shuffle0", "legacy-rgb.h5"), ("hdf5-rgb-shuffle1", "legacy-rgb.h5"),
                      ("hdf5-gray-shuffle1", "legacy-gray.h5")]:
        entry = expected[job]
        with Hdf5Reader(require_fixture("dataset_tool", "hdf5", name)) as reader:
            images = _all(reader)
            labels = reader.labels()
        order = np.arange(len(images))
        if entry["args"].get("shuffle", 1):
            np.random.RandomState(123).shuffle(order)
        top = f"r{reader.resolution.bit_length() - 1:02d}"
        assert _sha256(images[order]) == entry["resolutions"][top]["sha256"], job
        if entry["labels"] is not None:
            assert _sha256(labels[order]) == entry["labels"]["sha256"], job


def test_range_checks(rgb_file):
    with Hdf5Reader(rgb_file) as reader:
        with pytest.raises(PgdataError, match="out of range"):
            reader.image(12)
        with pytest.raises(PgdataError, match="no 2x2 images"):
            reader.image(0, 2)
        with pytest.raises(PgdataError):
            list(reader.iter_batches(start=3, stop=20))
        assert list(reader.iter_batches(start=5, stop=5)) == []


# --- files made here --------------------------------------------------------------------------------------


def _write(path, counts: dict[int, int], channels: int = 3, seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {}
    with h5py.File(path, "w") as file:
        for resolution, count in counts.items():
            arrays[resolution] = rng.integers(0, 256, (count, channels, resolution, resolution), dtype=np.uint8)
            file.create_dataset(f"data{resolution}x{resolution}", data=arrays[resolution],
                                chunks=(1, channels, resolution, resolution))
    return arrays


def test_inconsistent_counts(tmp_path):
    path = tmp_path / "interrupted.h5"
    arrays = _write(path, {4: 7, 8: 6, 16: 5})
    with Hdf5Reader(path) as reader:
        assert reader.num_images == 5
        assert [reader.num_images_at(r) for r in (4, 8, 16)] == [7, 6, 5]
        np.testing.assert_array_equal(_all(reader, 4), arrays[4])
        np.testing.assert_array_equal(_all(reader, 8, batch_size=4), arrays[8])


def test_missing_levels_and_extension_less_labels(tmp_path):
    path = tmp_path / "gappy"
    arrays = _write(path, {1: 3, 4: 3, 16: 3}, channels=1)
    labels = np.eye(3, dtype=np.float64)
    np.save(tmp_path / "gappy-labels.npy", labels)
    with Hdf5Reader(path) as reader:
        assert reader.resolutions == (4, 16)
        assert reader.missing_resolutions() == [2, 8]
        np.testing.assert_array_equal(_all(reader, 16), arrays[16])
        assert reader.labels().dtype == np.float32
        np.testing.assert_array_equal(reader.labels(), labels)


def test_reader_finds_the_labels_create_from_hdf5_reads(tmp_path):
    """One labels_path for the reader and create_from_hdf5 (os.path.splitext, as the official code): for a
    name ending in a dot, Path.stem kept the dot and the reader looked for another file than the source."""
    from pgdata.sources.hdf5 import Hdf5Source

    path = tmp_path / "legacy."
    _write(path, {4: 3, 8: 3})
    labels = np.eye(3, dtype=np.float32)
    np.save(tmp_path / "legacy-labels.npy", labels)
    with Hdf5Reader(path) as reader:
        np.testing.assert_array_equal(reader.labels(), labels)
    assert Hdf5Source(path, shuffle=False).labels is not None


def test_label_count_mismatch(tmp_path):
    path = tmp_path / "x.h5"
    _write(path, {4: 4, 8: 4})
    np.save(tmp_path / "x-labels.npy", np.eye(3, dtype=np.float32))
    with Hdf5Reader(path) as reader, pytest.raises(PgdataError, match="3 label rows for 4 images"):
        reader.labels()


def test_not_a_legacy_file(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("images", data=np.zeros((2, 3, 4, 4), np.uint8))
    with pytest.raises(PgdataError, match="no dataNxN"):
        Hdf5Reader(path)
    with h5py.File(path, "w") as file:
        file.create_dataset("data8x8", data=np.zeros((2, 3, 4, 4), np.uint8))
    with pytest.raises(PgdataError, match="data8x8: expected uint8"):
        Hdf5Reader(path)
    with h5py.File(path, "w") as file:
        file.create_dataset("data2x2", data=np.zeros((2, 3, 2, 2), np.uint8))
    with pytest.raises(PgdataError, match="4x4"):
        Hdf5Reader(path)
