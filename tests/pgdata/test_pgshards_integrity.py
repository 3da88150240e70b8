"""A pgshards dataset is trusted only once checked: the manifest against the shards, names kept inside the
dataset, nothing but regular files opened.

Each test builds a tiny dataset, tampers with a copy of it and checks what `pgdata verify`, `info`, `extract` and
the reader (pgdata.formats.open_dataset) make of it: a reader refuses an inconsistent manifest in one line when it
opens, verify names every problem, and nothing hangs on a FIFO or reads outside the dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from pgdata.errors import PgdataError
from pgdata.exporter import export_dataset
from pgdata.formats import open_dataset
from pgdata.formats.base import load_labels_file
from pgdata.formats.pgshards.verify import verify_pgshards
from pgdata.shard_writer import ShardSetWriter
from tests.pgdata.test_inspect_cli import ArraySource, make_images, make_labels, run

COUNT = 10  # images; 16x16 RGB, so levels r02, r03, r04 with one shard each


def build(path: Path, labels: bool = True, encoding: str = "npy") -> Path:
    return export_dataset(ArraySource(make_images(), make_labels() if labels else None), path, command="test",
                          arguments={}, encoding=encoding, quiet=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("built")
    return {"labels": build(root / "labels"), "plain": build(root / "plain", labels=False),
            "png": build(root / "png", encoding="png")}


@pytest.fixture
def dataset(tmp_path, built) -> Path:
    """A fresh copy of the dataset with one-hot labels, to tamper with."""
    return Path(shutil.copytree(built["labels"], tmp_path / "data"))


def edit_manifest(dataset: Path, change) -> None:
    manifest = json.loads((dataset / "manifest.json").read_text())
    change(manifest)
    (dataset / "manifest.json").write_text(json.dumps(manifest))


def relist(dataset: Path, name: str) -> None:
    """Record a shard's current size and sha256 in the manifest, as a forger (or a buggy writer) would."""
    data = (dataset / name).read_bytes()

    def change(manifest):
        for level in manifest["resolutions"].values():
            for shard in level["shards"]:
                if shard["name"] == name:
                    shard.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())

    edit_manifest(dataset, change)


def failures(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("FAILED: ")]


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 1
    assert err.startswith("pgdata: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err


@pytest.fixture
def no_hang():
    """Turns a hang (opening a FIFO blocks until a writer comes) into a test failure instead of a stuck run."""

    def give_up(signum, frame):
        raise TimeoutError("blocked opening a file: a FIFO was opened for reading")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# --- 1. verify checks the manifest against the shards ---------------------------------------------------


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(manifest):
        target = manifest
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _drop_level(manifest):
    del manifest["resolutions"]["r03"]


MANIFEST_EDITS = {
    "num_images": (_set("num_images", 7), "labels.shape: [10, 4], expected [num_images, label_size] = [7, 4]"),
    "samples_per_shard": (_set("resolutions", "r03", "samples_per_shard", 3),
                          "resolutions.r03.shards: 1 listed, but 10 images at 3 per shard make 4"),
    "dropped resolution": (_drop_level, "resolutions.r03: missing"),
    "extra resolution": (_set("resolutions", "r05", {"resolution": 32, "samples_per_shard": 1, "shards": []}),
                         "resolutions.r05: not a resolution of a 16x16 dataset"),
    "shard samples": (_set("resolutions", "r02", "shards", 0, "samples", 9), "resolutions.r02.shards[0].samples: 9"),
    "label rows": (_set("labels", "shape", [9, 4]), "labels.shape: [9, 4]"),
    "label size": (_set("label_size", 3), "labels.shape: [10, 4], expected [num_images, label_size] = [10, 3]"),
}


@pytest.mark.parametrize("edit", MANIFEST_EDITS)
def test_verify_refuses_a_manifest_that_contradicts_the_shards(monkeypatch, capsys, dataset, edit):
    change, message = MANIFEST_EDITS[edit]
    edit_manifest(dataset, change)
    code, out, err = run(monkeypatch, capsys, "verify", dataset, "-q")
    assert code == 1 and "Traceback" not in err
    assert len(failures(out)) == 1 and failures(out)[0].startswith(f"FAILED: {dataset / 'manifest.json'}: {message}")


@pytest.mark.parametrize("edit", MANIFEST_EDITS)
def test_reader_refuses_an_inconsistent_manifest_when_it_opens(dataset, edit):
    change, message = MANIFEST_EDITS[edit]
    edit_manifest(dataset, change)
    with pytest.raises(PgdataError) as error:
        open_dataset(dataset)
    assert str(error.value).startswith(f"{dataset / 'manifest.json'}: {message}") and "\n" not in str(error.value)


def test_random_access_after_a_wrong_samples_per_shard_is_refused_not_a_traceback(dataset):
    edit_manifest(dataset, _set("resolutions", "r03", "samples_per_shard", 3))
    with pytest.raises(PgdataError, match="samples_per_shard|per shard"):
        open_dataset(dataset).image(9, 8)  # was an IndexError: shard 3 of a list of one


@pytest.mark.parametrize("kind", ["labels", "png"])
def test_verify_decodes_every_sample_against_a_wrong_channel_count(monkeypatch, capsys, tmp_path, built, kind):
    dataset = Path(shutil.copytree(built[kind], tmp_path / "data"))
    edit_manifest(dataset, _set("channels", 1))  # npy: the 4x4 and 8x8 shards keep their sizes
    code, out, _ = run(monkeypatch, capsys, "verify", dataset, "-q")
    assert code == 1
    problem = {"labels": "r02/000000.tar: 00000000.npy: not a uint8 1x4x4 .npy array",
               "png": "r02/000000.tar: 00000000.png: RGB 4x4 PNG, expected L 4x4"}[kind]
    assert any(problem in line for line in failures(out)), out


def test_reader_names_the_shard_when_the_manifest_is_wrong_about_it(monkeypatch, capsys, tmp_path, built):
    dataset = Path(shutil.copytree(built["png"], tmp_path / "data"))
    edit_manifest(dataset, _set("channels", 1))
    code, _, err = run(monkeypatch, capsys, "extract", dataset, tmp_path / "out", "-q")
    assert_one_line_error(code, err, str(dataset / "r04" / "000000.tar"), "RGB 16x16 PNG, expected L 16x16")


def test_verify_decodes_samples_between_the_first_and_the_last(monkeypatch, capsys, dataset):
    """A sample in the middle whose .npy header says another shape, with the manifest's sha256 made to match."""
    shard = dataset / "r03" / "000000.tar"
    data = bytearray(shard.read_bytes())
    header = [match.start() for match in re.finditer(rb"\(3, 8, 8\)", data)][5]  # sample 5's .npy header
    data[header:header + 9] = b"(8, 3, 8)"
    shard.write_bytes(bytes(data))
    relist(dataset, "r03/000000.tar")
    code, out, _ = run(monkeypatch, capsys, "verify", dataset, "-q")
    assert code == 1 and failures(out) == [f"FAILED: {shard}: 00000005.npy: not a uint8 3x8x8 .npy array"]


def test_verify_checks_class_members_against_the_labels(monkeypatch, capsys, dataset):
    shard = dataset / "r02" / "000000.tar"
    data = bytearray(shard.read_bytes())
    position = data.index(b"00000004.cls") + 512  # the member's data: the class as decimal text
    data[position:position + 1] = b"3" if data[position:position + 1] != b"3" else b"2"
    shard.write_bytes(bytes(data))
    relist(dataset, "r02/000000.tar")
    code, out, _ = run(monkeypatch, capsys, "verify", dataset, "-q")
    assert code == 1
    assert len(failures(out)) == 1 and "00000004.cls: class" in out and "row 4 of the labels is one-hot at 0" in out


def test_verify_checks_the_labels_file_even_without_a_recorded_sha256(monkeypatch, capsys, dataset):
    np.save(dataset / "labels.npy", make_labels(count=COUNT - 1))
    edit_manifest(dataset, lambda manifest: manifest["labels"].pop("sha256"))
    code, out, _ = run(monkeypatch, capsys, "verify", dataset, "-q")
    assert code == 1
    assert failures(out) == [f"FAILED: {dataset / 'labels.npy'}: labels are float32 [9, 4], the manifest says "
                             f"float32 [10, 4]"]


def test_verify_reports_what_claims_to_be_a_shard_without_being_listed(monkeypatch, capsys, tmp_path, built):
    dataset = Path(shutil.copytree(built["plain"], tmp_path / "data"))
    shutil.copytree(dataset / "r04", dataset / "r05")
    shutil.copy(dataset / "r02" / "000000.tar", dataset / "r02" / "000001.tar")
    np.save(dataset / "labels.npy", make_labels())
    code, out, _ = run(monkeypatch, capsys, "verify", dataset, "-q")
    assert code == 1
    assert sorted(failures(out)) == sorted(f"FAILED: {dataset / name}: not listed in the manifest"
                                           for name in ("r05", "labels.npy", "r02/000001.tar"))


@pytest.mark.parametrize("kind", ["labels", "plain", "png"])
def test_verify_accepts_sound_datasets(monkeypatch, capsys, built, kind):
    code, out, err = run(monkeypatch, capsys, "verify", built[kind], "-q")
    assert code == 0 and out.startswith("OK: ") and err == ""


def test_reader_refuses_a_shard_of_another_size_than_listed(dataset):
    with open(dataset / "r04" / "000000.tar", "ab") as file:
        file.write(bytes(10240))
    with open_dataset(dataset) as reader, pytest.raises(PgdataError) as error:
        reader.image(0)
    assert str(error.value) == f"{dataset / 'r04' / '000000.tar'}: shard holds 40960 bytes, the manifest says 30720"


def test_info_warns_about_missing_and_odd_shards(monkeypatch, capsys, dataset):
    (dataset / "r03" / "000000.tar").unlink()
    with open(dataset / "r04" / "000000.tar", "ab") as file:
        file.write(b"x")
    code, out, err = run(monkeypatch, capsys, "info", dataset)
    assert code == 0, err
    warnings = [line for line in out.splitlines() if line.startswith("Warning: ")]
    assert warnings == [f"Warning: {dataset / 'r03' / '000000.tar'}: missing",
                        f"Warning: {dataset / 'r04' / '000000.tar'}: 30721 bytes, the manifest says 30720"]


# --- 2. names and files: inside the dataset, regular files only --------------------------------------------


@pytest.mark.parametrize("name", ["../outside.tar", "{outside}", "r02/../../outside.tar", "r02/sub/000000.tar",
                                  "r02/000000.tar/", "r02\\000000.tar", "000000.tar"])
def test_shard_names_outside_the_dataset_are_refused(monkeypatch, capsys, tmp_path, dataset, name):
    outside = tmp_path / "outside.tar"
    shutil.copy(dataset / "r02" / "000000.tar", outside)  # same bytes and sha256: only the name is wrong
    name = name.format(outside=outside)
    edit_manifest(dataset, _set("resolutions", "r02", "shards", 0, "name", name))
    code, _, err = run(monkeypatch, capsys, "extract", dataset, tmp_path / "out", "-q")
    assert_one_line_error(code, err, f"{dataset / 'manifest.json'}: resolutions.r02.shards[0].name: {name!r}")
    code, out, _ = run(monkeypatch, capsys, "verify", dataset, "-q")
    assert code == 1 and f"resolutions.r02.shards[0].name: {name!r}" in failures(out)[0]


@pytest.mark.parametrize("name", ["../labels.npy", "/etc/passwd", "sub/labels.npy", "..", ".hidden.npy",
                                  "manifest.json", "r02"])
def test_labels_file_names_outside_the_dataset_are_refused(tmp_path, dataset, name):
    edit_manifest(dataset, _set("labels", "file", name))
    with pytest.raises(PgdataError, match=r"labels\.file: .* is not a plain file name inside the dataset"):
        open_dataset(dataset)


@pytest.mark.parametrize("name", ["r02/000000.tar", "labels.npy"])
def test_symbolic_links_out_of_the_dataset_are_not_followed(monkeypatch, capsys, tmp_path, dataset, name):
    outside = tmp_path / "elsewhere"
    shutil.move(dataset / name, outside)
    os.symlink(outside, dataset / name)
    code, out, _ = run(monkeypatch, capsys, "verify", dataset, "-q")
    assert code == 1 and failures(out) == [f"FAILED: {dataset / name}: leads outside the dataset directory"]
    code, out, _ = run(monkeypatch, capsys, "info", dataset)
    assert code == 0 and f"Warning: {dataset / name}: leads outside the dataset directory" in out
    with open_dataset(dataset) as reader, pytest.raises(PgdataError, match="leads outside the dataset"):
        reader.image(0, 4) if name.endswith(".tar") else reader.labels()


def test_a_dataset_reached_through_a_symbolic_link_reads(tmp_path, dataset):
    os.symlink(dataset, tmp_path / "link")
    assert verify_pgshards(tmp_path / "link") == []
    with open_dataset(tmp_path / "link") as reader:
        assert reader.images(np.arange(COUNT), 16).shape == (COUNT, 3, 16, 16)


def test_extract_refuses_a_fifo_in_place_of_a_shard(monkeypatch, capsys, tmp_path, dataset, no_hang):
    shard = dataset / "r04" / "000000.tar"
    shard.unlink()
    os.mkfifo(shard)
    code, _, err = run(monkeypatch, capsys, "extract", dataset, tmp_path / "out", "-q")
    assert_one_line_error(code, err, f"{shard}: not a regular file")
    code, out, _ = run(monkeypatch, capsys, "verify", dataset, "-q")
    assert code == 1 and failures(out) == [f"FAILED: {shard}: not a regular file"]


def test_info_refuses_a_fifo_in_place_of_the_labels(monkeypatch, capsys, dataset, no_hang):
    (dataset / "labels.npy").unlink()
    os.mkfifo(dataset / "labels.npy")
    code, out, err = run(monkeypatch, capsys, "info", dataset)
    assert code == 0, err
    assert "Labels              unreadable" in out
    assert [line for line in out.splitlines() if line.startswith("Warning")] == [
        f"Warning: {dataset / 'labels.npy'}: not a regular file"]


def test_a_fifo_in_place_of_the_manifest_is_named(monkeypatch, capsys, dataset, no_hang):
    (dataset / "manifest.json").unlink()
    os.mkfifo(dataset / "manifest.json")
    code, _, err = run(monkeypatch, capsys, "info", dataset)
    assert_one_line_error(code, err, f"{dataset / 'manifest.json'}: not a regular file")


# --- 3. the same class of fault elsewhere -----------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("not json", "unreadable manifest: Expecting value"),
    ("[" * 100_000 + "]" * 100_000, "unreadable manifest: maximum recursion depth"),
    ('["pgshards", 1]', "not a pgshards v1 manifest"),
])
def test_a_manifest_that_is_not_a_json_object_is_one_line(monkeypatch, capsys, dataset, text, message):
    (dataset / "manifest.json").write_text(text)
    code, _, err = run(monkeypatch, capsys, "info", dataset)
    assert_one_line_error(code, err, f"{dataset / 'manifest.json'}: {message}")


def _drop(key):
    return lambda manifest: manifest.pop(key)


@pytest.mark.parametrize("change, message", [
    (_set("num_images", 10**12), "num_images: 1000000000000 is outside 0 .. 99999999"),
    (_set("num_images", "10"), "num_images: must be an integer, not '10'"),
    (_set("channels", True), "channels: must be an integer, not True"),
    (_set("channels", 4), "channels: 4, expected 1 or 3"),
    (_set("resolution", 12), "resolution: 12 is not a power of two"),
    (_set("encoding", "jpeg"), "encoding: 'jpeg' is not one of npy, png"),
    (_drop("producer"), "producer: missing"),
    (_set("resolutions", []), "resolutions: must be an object, not []"),
    (_set("resolutions", "r02", "shards", 0, "sha256", "0" * 63), "resolutions.r02.shards[0].sha256: '000"),
    (_set("resolutions", "r02", "shards", 0, "bytes", 2**70), "resolutions.r02.shards[0].bytes: 1180591620717411303424,"),
    (_set("resolutions", "r02", "shards", [None]), "resolutions.r02.shards[0]: must be an object, not None"),
    (_set("labels", "classes", "yes"), "labels.classes: must be true or false, not 'yes'"),
    (_set("labels", None), "label_size: 4, but no labels file is listed"),
])
def test_fields_of_the_wrong_type_or_size_are_refused_in_one_line(dataset, change, message):
    edit_manifest(dataset, change)
    with pytest.raises(PgdataError) as error:
        open_dataset(dataset)
    assert str(error.value).startswith(f"{dataset / 'manifest.json'}: {message}"), str(error.value)


def test_legacy_labels_whose_header_promises_more_than_the_file_holds(tmp_path):
    """A -labels.npy file whose header claims 10**11 rows: refused, not a 3.6 TiB allocation."""
    path = tmp_path / "legacy-labels.npy"
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": "<f4", "fortran_order": False, "shape": (10**11, 10)})
        file.write(bytes(400))
    with pytest.raises(PgdataError) as error:
        load_labels_file(path, COUNT)
    assert str(error.value).startswith(f"{path}: the .npy file holds 400 bytes of data, its header")


def test_legacy_labels_file_that_is_a_fifo(tmp_path, no_hang):
    os.mkfifo(tmp_path / "legacy-labels.npy")
    with pytest.raises(PgdataError, match="not a regular file"):
        load_labels_file(tmp_path / "legacy-labels.npy", COUNT)


def test_pgshards_labels_header_is_checked_before_reading(dataset):
    with open(dataset / "labels.npy", "wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": "<f4", "fortran_order": False, "shape": (10**11, 4)})
        file.write(bytes(160))
    with open_dataset(dataset) as reader, pytest.raises(PgdataError, match="holds 160 bytes of data"):
        reader.labels()


# --- the writer's hook for --resume -----------------------------------------------------------------------


def test_shard_writer_reports_each_completed_shard(tmp_path, monkeypatch):
    import pgdata.formats.pgshards.layout as pgshards_module
    from pgdata.formats import tarblocks

    monkeypatch.setattr(pgshards_module, "MAX_SAMPLES_PER_SHARD", 4)
    completed = []
    writer = ShardSetWriter(tmp_path, 4, 3, "npy", False, on_shard=completed.append)
    images = make_images(count=COUNT, resolution=4)
    writer.add(0, images[:6], tarblocks.key_digits(np.arange(6)), None)
    assert [record.name for record in completed] == ["r02/000000.tar"]  # the second shard is not full yet
    writer.add(6, images[6:], tarblocks.key_digits(np.arange(6, COUNT)), None)
    writer.finish()
    assert completed == writer.shards and [record.samples for record in completed] == [4, 4, 2]
    for record in completed:
        assert record.sha256 == hashlib.sha256((tmp_path / record.name).read_bytes()).hexdigest()
