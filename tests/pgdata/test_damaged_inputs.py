"""Damaged raw inputs are refused with one line naming the file: never stored silently, never a crash.

Truncated JPEGs (refused as the original's Pillow refused them, nothing printed by libjpeg), truncated LSUN
LMDBs (no SIGBUS), tampered CelebA-HQ deltas (the delta is blamed, not the JPEG), legacy HDF5 files with
gaps or short levels, .npy and TFRecords headers that claim more data than the file holds, and the
same class of fault in the other raw readers.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import PIL.Image
import pytest

from pgdata.errors import PgdataError
from pgdata.jpeg import decode_jpeg_libjpeg8d, truncation
from pgdata.sources.celeba import CelebaSource
from pgdata.sources.cifar import Cifar10Source
from pgdata.sources.hdf5 import Hdf5Source
from pgdata.sources.images import ImageFolderSource
from pgdata.sources.mnist import MnistSource
from tests.pgdata.test_sources_bad_input import assert_one_line_error, build, png_bytes, write_lmdb
from tests.pgdata.test_tfrecords_reader import (
    example_bytes,
    frame,
    length_delimited,
    random_levels,
    write_tfrecords_dataset,
)

#: Far more than any test input: a bound that only a huge allocation can break.
ALLOCATION_LIMIT = 64 << 20


def run_cli(*args: object) -> subprocess.CompletedProcess:
    """The installed entry point in a fresh process (a crash shows as a signal, not as an exception)."""
    return subprocess.run([sys.executable, "-c", "from pgdata.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def assert_one_cli_error_line(result: subprocess.CompletedProcess, path: Path, *words: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pgdata: error: ") and str(path) in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def jpeg_bytes(seed: int = 0, size: tuple[int, int] = (32, 32), **options) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, format="JPEG", quality=90, **options)
    return buffer.getvalue()


def pillow_refuses(data: bytes) -> bool:
    """The original's judgement: Pillow (LOAD_TRUNCATED_IMAGES off) raises on data that ends too soon."""
    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            np.asarray(image)
    except OSError:
        return True
    return False


def corrupt_but_complete(data: bytes) -> bytes:
    """Zero 40 bytes of entropy-coded data (no 0xFF made or removed): libjpeg warns, Pillow decodes."""
    damaged = bytearray(data)
    start = data.index(b"\xff\xda") + 20
    for position in range(start, start + 40):
        if damaged[position] != 0xFF and damaged[position - 1] != 0xFF:
            damaged[position] = 0
    return bytes(damaged)


def absurd_npy(path: Path, shape: tuple[int, ...]) -> Path:
    """A float32 .npy file of 4 x 4 values whose header claims `shape`."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    path.write_bytes(buffer.getvalue() + np.eye(4, dtype=np.float32).tobytes())
    return path


def allocation_peak(function, *args) -> int:
    """Peak bytes allocated (numpy included) while function(*args) runs; its PgdataError is swallowed."""
    tracemalloc.start()
    try:
        function(*args)
    except PgdataError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


# --- 1. truncated JPEGs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"restart_marker_blocks": 1}],
                         ids=["baseline", "progressive", "restarts"])
def test_truncation_check_agrees_with_pillow_at_every_cut(options):
    """The original refused exactly what Pillow refuses; the check says so for every prefix of the file,
    and accepts the whole file and the whole file with bytes after its end-of-image marker."""
    data = jpeg_bytes(1, (24, 32), **options)
    assert truncation(data) is None and truncation(data + b"trailing\x00\xff") is None
    assert not pillow_refuses(data + b"trailing\x00\xff")
    for cut in range(2, len(data)):
        assert pillow_refuses(data[:cut]), cut
        assert truncation(data[:cut]) is not None, cut


@pytest.mark.parametrize("decoder", ["libjpeg8d", "pillow"])
@pytest.mark.parametrize("cut", ["half", "no end marker"])
def test_truncated_jpeg_is_refused_naming_the_file(tmp_path, capfd, decoder, cut):
    data = jpeg_bytes()
    (tmp_path / "a.jpg").write_bytes(data)
    broken = tmp_path / "b.jpg"
    broken.write_bytes(data[: len(data) // 2] if cut == "half" else data[:-2])
    with pytest.raises(PgdataError) as error:
        build(ImageFolderSource, tmp_path, shuffle=False, workers=1, jpeg_decoder=decoder)
    assert_one_line_error(error, broken, "truncated")
    assert capfd.readouterr().err == ""  # libjpeg printed nothing


def test_truncated_jpeg_in_the_aligned_celeba_jpeg_release(tmp_path):
    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    data = jpeg_bytes(2, (218, 178))
    (folder / "000001.jpg").write_bytes(data)
    broken = folder / "000002.jpg"
    broken.write_bytes(data[: len(data) * 3 // 4])
    with pytest.raises(PgdataError) as error:
        build(CelebaSource, tmp_path, subset=True, workers=1)
    assert_one_line_error(error, broken, "truncated")


def test_damaged_but_complete_jpeg_in_the_celeba_jpeg_release_is_said(tmp_path):
    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    damaged = folder / "000001.jpg"
    damaged.write_bytes(corrupt_but_complete(jpeg_bytes(2, (218, 178))))
    source = CelebaSource(tmp_path, subset=True, workers=1)
    assert len(np.concatenate(list(source.iter_chunks()))) == 1
    assert any(str(damaged) in warning and "libjpeg" in warning for warning in source.warnings())


def test_create_from_images_refuses_a_truncated_jpeg_with_one_line(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    data = jpeg_bytes(3)
    (images / "a.jpg").write_bytes(data)
    (images / "b.jpg").write_bytes(data[: len(data) // 2])
    result = run_cli("create_from_images", tmp_path / "out", images, "--quiet")
    assert_one_cli_error_line(result, images / "b.jpg", "truncated")
    assert "Premature end" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_damaged_but_complete_jpeg_is_stored_with_a_warning(tmp_path, capfd):
    """libjpeg's warnings that Pillow 3.1.1 ignored keep the original's pixels, said once, naming the file."""
    damaged = tmp_path / "a.jpg"
    damaged.write_bytes(corrupt_but_complete(jpeg_bytes(4, (32, 32))))
    assert not pillow_refuses(damaged.read_bytes())
    source = ImageFolderSource(tmp_path, shuffle=False, workers=1)
    images = np.concatenate(list(source.iter_chunks()))
    np.testing.assert_array_equal(images[0], decode_jpeg_libjpeg8d(damaged).transpose(2, 0, 1))
    assert capfd.readouterr().err == ""
    warnings = source.warnings()
    assert len(warnings) == 1 and str(damaged) in warnings[0] and "Corrupt JPEG data" in warnings[0]


def test_valid_jpeg_pixels_are_libjpeg8d_as_before(tmp_path):
    import jpeglib

    path = tmp_path / "valid.jpg"
    path.write_bytes(jpeg_bytes(5, (40, 56), progressive=True))
    with jpeglib.version("8d"):
        expected = jpeglib.read_spatial(str(path), dct_method=jpeglib.JDCT_ISLOW).spatial
    np.testing.assert_array_equal(decode_jpeg_libjpeg8d(path), expected)


# --- 2. truncated LSUN LMDB -----------------------------------------------------------------------------


def lsun_lmdb(folder: Path, count: int = 40) -> Path:
    rng = np.random.default_rng(6)
    return write_lmdb(folder, [png_bytes(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)) for _ in range(count)])


def test_truncated_lmdb_is_refused_not_a_sigbus(tmp_path):
    """Reading a memory-mapped page past the end of a truncated data.mdb kills the process (SIGBUS, exit
    135) without a word; the file is checked against its meta page before it is mapped."""
    pytest.importorskip("pgdata.celebahq.kernels")
    folder = lsun_lmdb(tmp_path / "lmdb")
    data = folder / "data.mdb"
    os.truncate(data, data.stat().st_size // 2)
    result = run_cli("create_lsun", tmp_path / "out", folder, "--resolution", 8, "--quiet", "--max_images", 30)
    assert result.returncode not in (135, -7)
    assert_one_cli_error_line(result, data, "truncated LMDB")


def test_lmdb_meta_page_gives_the_size_in_use(tmp_path):
    from pgdata.sources.lsun import lmdb_pages_needed

    data = lsun_lmdb(tmp_path / "lmdb") / "data.mdb"
    pages, page_size = lmdb_pages_needed(data.read_bytes()[: 2 * 65536])
    assert pages * page_size == data.stat().st_size and page_size == 4096
    assert lmdb_pages_needed(bytes(range(256)) * 64) is None  # not an LMDB: LMDB's own error applies


def test_lsun_damaged_jpeg_value_is_stored_with_a_warning(tmp_path, capfd):
    """OpenCV (the original's decoder) decodes it and its libjpeg warns on stderr; ours says it by key."""
    pytest.importorskip("pgdata.celebahq.kernels")
    from pgdata.sources.lsun import LsunSource

    folder = write_lmdb(tmp_path / "lmdb", [jpeg_bytes(7, (16, 16)), corrupt_but_complete(jpeg_bytes(8, (16, 16)))])
    source = LsunSource(folder, resolution=8, workers=1)
    assert sum(len(chunk) for chunk in source.iter_chunks()) == 2
    assert capfd.readouterr().err == ""
    warnings = source.warnings()
    assert len(warnings) == 1 and "value 1 (key" in warnings[0] and "Corrupt JPEG data" in warnings[0]


# --- 3. tampered CelebA-HQ delta ------------------------------------------------------------------------


def tamper(token: bytes) -> bytes:
    """Change one base64 character inside the ciphertext: still a well-formed Fernet token."""
    middle = len(token) // 2
    return token[:middle] + (b"A" if token[middle:middle + 1] != b"A" else b"B") + token[middle + 1:]


def test_tampered_delta_names_the_delta_file(tmp_path):
    from tests.pgdata.test_celebahq_cli import _invoke, _mini

    celeba, delta, md5_option = _mini(tmp_path, [5], token_edits={0: tamper})
    result = _invoke("create_celebahq", tmp_path / "out", celeba, delta, "--subset", "--quiet", *md5_option)
    error = result.exception
    assert isinstance(error, PgdataError), result.output
    assert error.path == str(delta / "deltas00000.zip") and "\n" not in str(error)
    assert "delta: delta00000.dat in deltas00000.zip fails its check" in str(error)
    assert "differs from the official" not in str(error)


# --- 4. legacy HDF5 with a gap or a short level ---------------------------------------------------------


def write_hdf5(path: Path, counts: dict[int, int]) -> Path:
    rng = np.random.default_rng(9)
    with h5py.File(path, "w") as file:
        for resolution, count in counts.items():
            file.create_dataset(f"data{resolution}x{resolution}",
                                data=rng.integers(0, 256, (count, 3, resolution, resolution), dtype=np.uint8))
    return path


def test_hdf5_missing_middle_level_is_reported_at_open(tmp_path):
    """What a trainer checks when a run starts: `resolutions` holds the levels present, `check_resolution`
    refuses a missing one with one line naming the file and the level."""
    from pgdata.formats.hdf5 import Hdf5Reader

    path = write_hdf5(tmp_path / "gap.h5", {1: 2, 2: 2, 4: 2, 16: 2, 32: 2})
    with Hdf5Reader(path) as reader:
        assert reader.resolutions == (4, 16, 32) and reader.missing_resolutions() == [8]
        with pytest.raises(PgdataError) as error:
            reader.check_resolution(8)
        assert_one_line_error(error, path, "no 8x8 images")


def test_hdf5_num_images_is_what_every_level_holds(tmp_path):
    """A level shorter than the top one: num_images counts only the images every level has, so reading
    0 .. num_images - 1 at each level works (not an out-of-range error days into a run)."""
    from pgdata.formats.hdf5 import Hdf5Reader

    with Hdf5Reader(write_hdf5(tmp_path / "short.h5", {4: 3, 8: 5, 16: 5})) as reader:
        assert reader.num_images == 3 and [reader.num_images_at(r) for r in (4, 8, 16)] == [3, 5, 5]
        for resolution in reader.resolutions:
            assert len(np.concatenate(list(reader.iter_batches(resolution, stop=reader.num_images)))) == 3


def test_hdf5_level_that_cannot_be_opened_is_refused(tmp_path):
    """h5py's items() skips a dangling link silently: a damaged level must not pass for a missing one,
    nor a damaged top level let a smaller dataset pass for the largest."""
    from pgdata.formats.hdf5 import Hdf5Reader

    path = write_hdf5(tmp_path / "links.h5", {4: 2, 16: 2})
    with h5py.File(path, "a") as file:
        file["data8x8"] = h5py.SoftLink("/nowhere")
        file["data32x32"] = h5py.ExternalLink("missing.h5", "/data32x32")
    with pytest.raises(PgdataError) as error:
        Hdf5Reader(path)
    assert_one_line_error(error, path, "cannot be opened")
    with pytest.raises(PgdataError) as error:
        Hdf5Source(path)
    assert_one_line_error(error, path, "cannot be opened")


# --- 5. .npy and TFRecords headers claiming more than the file holds ------------------------------------


def test_npy_labels_with_absurd_or_negative_shapes(tmp_path):
    from pgdata.formats.hdf5 import Hdf5Reader

    path = write_hdf5(tmp_path / "legacy.h5", {4: 4, 8: 4})
    labels = tmp_path / "legacy-labels.npy"
    for shape in ((20000, 20000), (-4, 4), (10**9, 10**9)):
        absurd_npy(labels, shape)
        for read in (lambda: Hdf5Source(path), lambda: Hdf5Reader(path).labels()):
            with pytest.raises(PgdataError) as error:
                read()
            assert_one_line_error(error, labels, "header")
            assert allocation_peak(read) < ALLOCATION_LIMIT


def test_tfrecords_labels_with_an_absurd_shape(tmp_path):
    from pgdata.formats.tfrecords import TfrecordsReader

    directory = write_tfrecords_dataset(tmp_path / "set", random_levels(4, 3, 8))
    labels = absurd_npy(directory / "set-rxx.labels", (30000, 30000))
    reader = TfrecordsReader(directory)
    with pytest.raises(PgdataError) as error:
        reader.labels()
    assert_one_line_error(error, labels, "header")
    assert allocation_peak(reader.labels) < ALLOCATION_LIMIT


def test_tfrecords_record_longer_than_its_image_can_be(tmp_path):
    """A record (valid CRCs) far longer than a 3 x 4 x 4 Example: refused when the file is indexed, before it
    is read, instead of reading (and allocating) whatever the length field says."""
    from pgdata.formats import tfrecords

    image = np.zeros((3, 4, 4), np.uint8)
    padding = length_delimited(2, bytes(16 << 20))  # an unknown field of 16 MiB: decoders skip it
    file = tmp_path / "set" / "set-r02.tfrecords"
    file.parent.mkdir()
    file.write_bytes(frame(example_bytes(image, False) + padding))
    with pytest.raises(PgdataError) as error:
        tfrecords.TfrecordsReader(file.parent)
    assert_one_line_error(error, file, "record 0", "length")
    assert allocation_peak(tfrecords.TfrecordsReader, file.parent) < 4 << 20


def test_tfrecords_length_beyond_the_file_size(tmp_path):
    from pgdata.formats import tfrecords
    from pgdata.formats.crc32c import crc32c

    file = tmp_path / "set" / "set-r02.tfrecords"
    file.parent.mkdir()
    length = (1 << 62).to_bytes(8, "little")
    file.write_bytes(length + struct.pack("<I", tfrecords.masked_crc(crc32c(length))) + bytes(64))
    with pytest.raises(PgdataError) as error:
        tfrecords.TfrecordsReader(file.parent)
    assert_one_line_error(error, file, "record 0")
    assert allocation_peak(tfrecords.TfrecordsReader, file.parent) < ALLOCATION_LIMIT


# --- 6. the same class of fault in the other raw readers ------------------------------------------------


def write_idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes) -> None:
    path.write_bytes(gzip.compress(struct.pack(f">{1 + len(dims)}I", magic, *dims) + payload))


def test_mnist_images_of_another_size(tmp_path):
    images = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(images, 0x803, (2, 32, 32), bytes(2 * 32 * 32))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", 0x801, (2,), bytes(2))
    with pytest.raises(PgdataError) as error:
        MnistSource(tmp_path, subset=True)
    assert_one_line_error(error, images, "[32, 32]", "[28, 28]")


def test_mnist_files_swapped(tmp_path):
    images = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(images, 0x801, (100,), bytes(100))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", 0x803, (2, 28, 28), bytes(2 * 28 * 28))
    with pytest.raises(PgdataError) as error:
        MnistSource(tmp_path, subset=True)
    assert_one_line_error(error, images, "magic")


def test_pickle_claiming_an_absurd_length(tmp_path):
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.PROTO + b"\x04" + pickle.BINBYTES8 + struct.pack("<Q", 10**15) + b"x")
    with pytest.raises(PgdataError) as error:
        Cifar10Source(tmp_path, subset=True)
    assert_one_line_error(error, batch, "damaged")


def test_celebahq_landmark_list_that_is_not_text(tmp_path):
    from pgdata.celebahq.inputs import read_landmarks

    path = tmp_path / "list_landmarks_celeba.txt"
    path.write_bytes(b"2\nlefteye_x\n000001.jpg 1 2 3 4 5 6 7 8 9 10\n\xff\xfe garbage\n")
    with pytest.raises(PgdataError) as error:
        read_landmarks(path, {0})
    assert_one_line_error(error, path, "ASCII")
