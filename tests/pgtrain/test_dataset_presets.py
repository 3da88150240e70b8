"""Dataset presets: the official config.py's dataset lines, detected from pgdata manifests and official folder
names, applied unless the user chose otherwise.

The pgshards datasets here are built through pgdata's own CLI from tiny raw inputs written in tmp_path, so the
manifests are the real ones each create_* command writes.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pgdata.cli import app as pgdata_app
from pgdata.formats import open_dataset
from pgtrain.dataset_presets import (
    LSUN_CATEGORIES,
    OFFICIAL_DATASETS,
    Detection,
    detect_dataset_preset,
    detect_for_reader,
    lsun_category,
)
from pgtrain.errors import PgtrainError
from pgtrain.presets import PRESETS, resolve_config, resolve_run_config, run_description
from tests.pgdata.test_sources_bad_input import png_bytes, write_image, write_lmdb
from tests.pgdata.test_tfrecords_reader import random_levels, write_tfrecords_dataset

runner = CliRunner()
CELEBAHQ = Detection("celebahq", "manifest: pgdata create_celebahq")


def pgdata(*arguments: str | Path) -> None:
    result = runner.invoke(pgdata_app, [str(a) for a in arguments], catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output


def detect(path: Path) -> Detection:
    with open_dataset(path) as reader:
        return detect_for_reader(reader)


# The official lines

def test_the_official_dataset_lines_are_presets_with_their_mirror_setting():
    """config.py (TF master): mirror augment with CelebA, CelebA-HQ and every LSUN category, nothing else set."""
    mirrored = {"celebahq", "celeba", *(f"lsun-{c}" for c in LSUN_CATEGORIES)}
    plain = {"cifar10", "cifar100", "svhn", "mnist", "mnistrgb"}
    assert len(LSUN_CATEGORIES) == 30 and {"churchoutdoor", "tvmonitor", "train"} <= set(LSUN_CATEGORIES)
    assert set(OFFICIAL_DATASETS) == mirrored | plain
    for name in mirrored:
        assert PRESETS[name].kind == "dataset" and PRESETS[name].settings == (("train.mirror_augment", True),)
    for name in plain:
        assert PRESETS[name].kind == "dataset" and PRESETS[name].settings == ()
    assert OFFICIAL_DATASETS["lsun-airplane"].tfrecord_dir == "lsun-airplane-100k"
    assert resolve_config(["celebahq"]).train.mirror_augment is True
    assert resolve_config(["cifar10"]).train.mirror_augment is False


# Detection from real pgdata manifests

def test_detected_from_a_create_cifar100_manifest(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train").write_bytes(pickle.dumps({"data": np.zeros((4, 3072), np.uint8), "fine_labels": [0, 1, 2, 3]}))
    pgdata("create_cifar100", tmp_path / "my-data", raw, "--subset", "--quiet")
    assert detect(tmp_path / "my-data") == Detection("cifar100", "manifest: pgdata create_cifar100")


def _write_mnist(folder: Path, count: int) -> Path:
    folder.mkdir()
    header = np.array([0x803, count, 28, 28], ">u4").tobytes()
    digits = np.random.default_rng(0).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + digits.tobytes()))
    return folder


def test_detected_from_a_create_mnistrgb_manifest(tmp_path):
    raw = _write_mnist(tmp_path / "raw", 5)
    pgdata("create_mnistrgb", tmp_path / "digits", raw, "--num_images", 6, "--subset", "--quiet")
    assert detect(tmp_path / "digits").preset == "mnistrgb"


def test_lsun_category_from_the_lmdb_name_in_a_create_lsun_manifest(tmp_path):
    pytest.importorskip("pgdata.celebahq.kernels")
    image = png_bytes(np.random.default_rng(1).integers(0, 256, (12, 10, 3), dtype=np.uint8))
    lmdb_dir = tmp_path / "church_outdoor_train_lmdb"
    lmdb_dir.mkdir()
    write_lmdb(lmdb_dir, [image, image])
    pgdata("create_lsun", tmp_path / "out", lmdb_dir, "--resolution", 8, "--quiet")
    detection = detect(tmp_path / "out")
    assert detection.preset == "lsun-churchoutdoor"
    assert "create_lsun" in detection.evidence and "church_outdoor_train_lmdb" in detection.evidence


def test_a_folder_of_images_is_not_detected_whatever_its_name(tmp_path):
    images = tmp_path / "celebahq-pngs"
    images.mkdir()
    for index in range(2):
        write_image(images / f"{index}.png", np.full((8, 8, 3), index, np.uint8))
    pgdata("create_from_images", tmp_path / "celebahq", images, "--quiet")
    detection = detect(tmp_path / "celebahq")
    assert detection.preset is None and "create_from_images" in detection.evidence


@pytest.mark.parametrize("name, category", [
    ("bedroom_train_lmdb", "bedroom"), ("conference_room_val_lmdb", "conferenceroom"), ("car_lmdb", "car"),
    ("tv-monitor", "tvmonitor"), ("potted_plant", "pottedplant"), ("lsun-train-100k", "train"),
    ("train_lmdb", "train"), ("lsun-dog-256x256-100k", "dog"), ("lmdb", None), ("faces", None), ("", None),
])
def test_lsun_category_names(name, category):
    assert lsun_category(name) == category


def test_lsun_without_a_recognisable_category_is_not_detected():
    manifest = {"name": "data", "producer": {"tool": "pgdata", "command": "create_lsun", "arguments": {}}}
    detection = detect_dataset_preset("pgshards", "/datasets/mine", manifest)
    assert detection.preset is None and "--preset lsun-<category>" in detection.evidence


@pytest.mark.parametrize("manifest", [{}, {"producer": {"tool": "other", "command": "create_celebahq"}}])
def test_manifest_without_a_pgdata_producer_is_not_detected(manifest):
    assert detect_dataset_preset("pgshards", "/datasets/celebahq", manifest).preset is None


# Detection from official folder and file names

@pytest.mark.parametrize("format_name, path, preset", [
    ("tfrecords", "datasets/celebahq", "celebahq"),
    ("tfrecords", "datasets/mnistrgb", "mnistrgb"),
    ("tfrecords", "datasets/lsun-airplane-100k", "lsun-airplane"),
    ("tfrecords", "datasets/lsun-train-100k", "lsun-train"),
    ("tfrecords", "datasets/lsun-bedroom-full", None),  # not an official tfrecord_dir
    ("tfrecords", "datasets/my-faces", None),
    ("hdf5", "downloads/celeba-hq-1024x1024.h5", "celebahq"),
    ("hdf5", "downloads/lsun-cat-256x256-100k.h5", "lsun-cat"),
    ("hdf5", "downloads/lsun-bedroom-256x256-full.h5", None),  # the Theano config trained it unmirrored
    ("synthetic", "syn1024rgb", None),
])
def test_detected_from_official_names(format_name, path, preset):
    assert detect_dataset_preset(format_name, path).preset == preset


def test_tfrecords_file_prefix_names_a_renamed_folder():
    detection = detect_dataset_preset("tfrecords", "/scratch/copy", record_name="cifar10")
    assert detection.preset == "cifar10" and "cifar10-rNN.tfrecords" in detection.evidence


def test_a_real_tfrecords_folder_with_an_official_name(tmp_path):
    folder = write_tfrecords_dataset(tmp_path / "lsun-bedroom-100k", random_levels(2, 3, 8))
    assert detect(folder) == Detection("lsun-bedroom", "TFRecords folder name 'lsun-bedroom-100k'")


# The choice: detected unless the user chose otherwise

def test_detected_preset_is_applied_and_recorded():
    config, line = resolve_run_config(["v2-4gpus"], [], CELEBAHQ)
    assert config.train.mirror_augment is True
    assert config.presets == ["v2-4gpus", "fp32", "celebahq"]
    assert line == ("Dataset preset: celebahq (detected from manifest: pgdata create_celebahq) "
                    "-> train.mirror_augment=True")
    assert run_description(config, "celebahq") == "pgan-celebahq-v2-4gpus-fp32"  # the dataset named once


def test_an_explicit_dataset_preset_wins_over_detection():
    config, line = resolve_run_config(["lsun-cat"], [], CELEBAHQ)
    assert "celebahq" not in config.presets and "lsun-cat" in config.presets
    assert line.startswith("Dataset preset: lsun-cat (given with --preset; detected celebahq")


@pytest.mark.parametrize("value", [False, True])
def test_explicit_mirror_setting_wins_and_the_preset_is_not_recorded(value):
    config, line = resolve_run_config([], [f"train.mirror_augment={str(value).lower()}"], CELEBAHQ)
    assert config.train.mirror_augment is value
    assert "celebahq" not in config.presets
    assert line.startswith("Dataset preset: none (detected celebahq") and "set by --set" in line


def test_a_named_preset_that_sets_mirroring_counts_as_a_choice():
    config, line = resolve_run_config(["demo-cpu"], [], CELEBAHQ)
    assert "celebahq" not in config.presets and "set by preset demo-cpu" in line


def test_a_preset_without_settings_is_recorded_even_with_explicit_mirroring():
    config, line = resolve_run_config([], ["train.mirror_augment=true"],
                                      Detection("cifar10", "manifest: pgdata create_cifar10"))
    assert config.presets[-1] == "cifar10" and config.train.mirror_augment is True
    assert "no settings" in line


def test_explicit_preset_overridden_by_set_says_so():
    config, line = resolve_run_config(["celebahq"], ["train.mirror_augment=false"], Detection(None, "x"))
    assert config.train.mirror_augment is False and "celebahq" in config.presets
    assert line.endswith("train.mirror_augment=True (overridden)")


def test_nothing_detected_changes_nothing():
    config, line = resolve_run_config([], [], Detection(None, "TFRecords folder 'x' is not an official name"))
    assert config == resolve_config() and line.startswith("Dataset preset: none (none detected")


def test_dataset_preset_comes_before_modifiers_and_only_one_is_allowed():
    assert resolve_config(["VERBOSE", "celebahq"]).presets == ["v2-1gpu", "fp32", "celebahq", "VERBOSE"]
    with pytest.raises(PgtrainError, match="choose one dataset preset, got celebahq, lsun-cat"):
        resolve_config(["celebahq+lsun-cat"])
