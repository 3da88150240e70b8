"""TfrecordsReader against TFRecord files written here by an independent minimal writer.

The writer below builds tf.train.Example bytes by hand (protobuf wire format), in both feature orders that
TensorFlow produces and with packed or unpacked int64 lists, and frames them with a bit-by-bit CRC32C:
nothing is shared with the reader's code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pgdata.errors import PgdataError
from pgdata.formats import crc32c as crc32c_module
from pgdata.formats import detect_format, open_dataset
from pgdata.formats.crc32c import crc32c, crc32c_rows
from pgdata.formats.tfrecords import TfrecordsReader

# --- an independent writer -------------------------------------------------------------------------------


def reference_crc32c(data: bytes) -> int:
    """Bit-by-bit CRC32C (reflected 0x82F63B78), the textbook definition."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def reference_mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def example_bytes(image: np.ndarray, data_first: bool, packed: bool = True) -> bytes:
    """tf.train.Example{features{feature{'shape': int64_list}, feature{'data': bytes_list}}}."""
    if packed:
        int64_list = length_delimited(1, b"".join(varint(v) for v in image.shape))
    else:
        int64_list = b"".join(varint(1 << 3 | 0) + varint(v) for v in image.shape)
    shape_feature = length_delimited(3, int64_list)  # Feature.int64_list = 3
    data_feature = length_delimited(1, length_delimited(1, image.tobytes()))  # Feature.bytes_list = 1
    entries = [length_delimited(1, length_delimited(1, b"shape") + length_delimited(2, shape_feature)),
               length_delimited(1, length_delimited(1, b"data") + length_delimited(2, data_feature))]
    if data_first:
        entries.reverse()
    return length_delimited(1, b"".join(entries))  # Example.features = 1


def frame(record: bytes) -> bytes:
    length = len(record).to_bytes(8, "little")
    return (length + reference_mask(reference_crc32c(length)).to_bytes(4, "little") + record
            + reference_mask(reference_crc32c(record)).to_bytes(4, "little"))


def write_tfrecords_dataset(directory: Path, levels: dict[int, np.ndarray], labels: np.ndarray | None = None,
                            name: str | None = None, data_first=None, packed=None) -> Path:
    """Write `<dir>/<name>-rNN.tfrecords` for each resolution's uint8 [N, C, R, R] array.

    data_first / packed: callables record index -> bool (default: alternate feature orders, all packed).
    """
    directory.mkdir(parents=True, exist_ok=True)
    name = name or directory.name
    data_first = data_first or (lambda index: index % 3 == 1)
    packed = packed or (lambda index: True)
    for resolution, images in levels.items():
        log2 = resolution.bit_length() - 1
        with open(directory / f"{name}-r{log2:02d}.tfrecords", "wb") as file:
            for index, image in enumerate(images):
                file.write(frame(example_bytes(image, data_first(index), packed(index))))
    if labels is not None:
        save_npy(directory / f"{name}-rxx.labels", labels)
    return directory


def save_npy(path: Path, array: np.ndarray) -> None:
    """np.save through a file object, as the official exporter does (np.save(path) would add '.npy')."""
    with open(path, "wb") as file:
        np.save(file, array)


def random_levels(count: int, channels: int, resolution: int, seed: int = 0) -> dict[int, np.ndarray]:
    """Independent random images per resolution (the reader must return what each file holds)."""
    rng = np.random.default_rng(seed)
    levels = {}
    size = 4
    while size <= resolution:
        levels[size] = rng.integers(0, 256, (count, channels, size, size), dtype=np.uint8)
        size *= 2
    return levels


def one_hot(count: int, classes: int, seed: int = 0) -> np.ndarray:
    labels = np.zeros((count, classes), np.float32)
    labels[np.arange(count), np.random.default_rng(seed).integers(0, classes, count)] = 1
    return labels


@pytest.fixture
def rgb(tmp_path):
    levels = random_levels(11, 3, 32, seed=1)
    labels = one_hot(11, 10)
    return write_tfrecords_dataset(tmp_path / "rgbset", levels, labels), levels, labels


# --- CRC32C ----------------------------------------------------------------------------------------------


def test_crc32c_known_vector():
    assert crc32c(b"123456789") == 0xE3069283
    assert reference_crc32c(b"123456789") == 0xE3069283


@pytest.fixture(params=["google-crc32c", "numpy"])
def crc_implementation(request, monkeypatch):
    """Both CRC32C paths: the hardware library for long rows, and the numpy tables that replace it."""
    if request.param == "numpy":
        monkeypatch.setattr(crc32c_module, "_HARDWARE_CRC32C", None)
    elif crc32c_module._HARDWARE_CRC32C is None:
        pytest.skip("google-crc32c's compiled implementation is not installed")
    return request.param


@pytest.mark.parametrize("length", [0, 1, 3, 7, 8, 9, 63, 64, 65, 200, 255, 256, 1000, 4099, 20000])
def test_crc32c_matches_bitwise_definition(length, crc_implementation):
    data = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8).tobytes()
    assert crc32c(data) == reference_crc32c(data)


@pytest.mark.parametrize("shape", [(9, 333), (300, 5), (200, 8), (3, 12), (40, 1030)])
def test_crc32c_rows_vectorised_across_records(shape, crc_implementation):
    rows = np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8)
    assert crc32c_rows(rows).tolist() == [reference_crc32c(row.tobytes()) for row in rows]


# --- reading -----------------------------------------------------------------------------------------------


def test_metadata(rgb):
    path, levels, labels = rgb
    assert detect_format(path) == "tfrecords"
    with open_dataset(path) as reader:
        assert isinstance(reader, TfrecordsReader)
        assert reader.format_name == "tfrecords"
        assert reader.resolutions == (4, 8, 16, 32)
        assert reader.resolution == 32
        assert reader.num_images == 11
        assert reader.channels == 3
        assert reader.label_size == 10
        assert all(reader.num_images_at(r) == 11 for r in levels)


def test_random_access_every_image_every_resolution(rgb):
    path, levels, _ = rgb
    with TfrecordsReader(path) as reader:
        for resolution, images in levels.items():
            for index in (5, 0, 10, 3):  # out of order: uses the offset index
                image = reader.image(index, resolution)
                assert image.dtype == np.uint8
                np.testing.assert_array_equal(image, images[index])
        np.testing.assert_array_equal(reader.image(7), levels[32][7])


@pytest.mark.parametrize("batch_size", [1, 4, 256])
def test_iter_batches_every_resolution(rgb, batch_size):
    path, levels, _ = rgb
    with TfrecordsReader(path) as reader:
        for resolution, images in levels.items():
            batches = list(reader.iter_batches(resolution, batch_size=batch_size))
            assert all(len(b) <= batch_size for b in batches)
            np.testing.assert_array_equal(np.concatenate(batches), images)


def test_large_batches_are_read_in_spans(rgb, monkeypatch):
    import pgdata.formats.tfrecords as tfrecords

    monkeypatch.setattr(tfrecords, "_READ_BYTES", 5000)  # about one 32x32 record per span
    path, levels, _ = rgb
    with TfrecordsReader(path) as reader:
        for resolution, images in levels.items():
            batches = list(reader.iter_batches(resolution, batch_size=6, start=1))
            assert [len(b) for b in batches] == [6, 4]
            np.testing.assert_array_equal(np.concatenate(batches), images[1:])


def test_iter_batches_start_stop(rgb):
    path, levels, _ = rgb
    with TfrecordsReader(path) as reader:
        got = np.concatenate(list(reader.iter_batches(8, batch_size=3, start=2, stop=9)))
        np.testing.assert_array_equal(got, levels[8][2:9])
        assert list(reader.iter_batches(8, start=4, stop=4)) == []
        with pytest.raises(PgdataError):
            list(reader.iter_batches(8, start=0, stop=12))
        with pytest.raises(PgdataError, match="no 64x64"):
            list(reader.iter_batches(64))
        np.testing.assert_array_equal(np.stack(list(reader.iter_images(16, start=9))), levels[16][9:])


def test_labels(rgb):
    path, _, labels = rgb
    with TfrecordsReader(path) as reader:
        got = reader.labels()
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, labels)


def test_no_labels_and_greyscale(tmp_path):
    levels = random_levels(5, 1, 16, seed=2)
    path = write_tfrecords_dataset(tmp_path / "grey", levels)
    with TfrecordsReader(path) as reader:
        assert reader.labels() is None and reader.label_size == 0
        assert reader.channels == 1
        for resolution, images in levels.items():
            np.testing.assert_array_equal(np.concatenate(list(reader.iter_batches(resolution))), images)


@pytest.mark.parametrize("layout", ["shape_first", "data_first", "alternating", "packed_and_unpacked"])
def test_feature_orders_and_int64_encodings(tmp_path, layout):
    levels = random_levels(7, 3, 8, seed=3)
    data_first, packed = {
        "shape_first": (lambda i: False, lambda i: True),
        "data_first": (lambda i: True, lambda i: True),
        "alternating": (lambda i: i % 2 == 0, lambda i: True),
        # packed and unpacked int64 encode to different lengths: the reader's non-uniform path
        "packed_and_unpacked": (lambda i: i % 2 == 0, lambda i: i % 3 != 0),
    }[layout]
    path = write_tfrecords_dataset(tmp_path / layout, levels, data_first=data_first, packed=packed)
    with TfrecordsReader(path) as reader:
        for resolution, images in levels.items():
            np.testing.assert_array_equal(np.concatenate(list(reader.iter_batches(resolution, 4))), images)
            np.testing.assert_array_equal(reader.image(6, resolution), images[6])


def test_inconsistent_counts_per_file(tmp_path):
    levels = random_levels(6, 3, 16, seed=4)
    levels[4] = levels[4][:4]
    path = write_tfrecords_dataset(tmp_path / "short", levels)
    with TfrecordsReader(path) as reader:
        assert reader.num_images == 6
        assert reader.num_images_at(4) == 4
        np.testing.assert_array_equal(np.concatenate(list(reader.iter_batches(4))), levels[4])


# --- damaged files ---------------------------------------------------------------------------------------


def _corrupt(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_bad_data_crc_names_file_and_record(rgb):
    path, levels, _ = rgb
    file = path / "rgbset-r04.tfrecords"
    frame_size = file.stat().st_size // 11
    _corrupt(file, 7 * frame_size + frame_size // 2)  # inside record 7's image bytes
    with TfrecordsReader(path) as reader:
        np.testing.assert_array_equal(reader.image(6, 16), levels[16][6])
        with pytest.raises(PgdataError, match=r"rgbset-r04\.tfrecords: record 7: data CRC mismatch"):
            reader.image(7, 16)
        with pytest.raises(PgdataError, match="record 7: data CRC"):
            list(reader.iter_batches(16, batch_size=4))
        # other resolutions are unaffected
        np.testing.assert_array_equal(np.concatenate(list(reader.iter_batches(8))), levels[8])


def test_bad_stored_crc_is_detected(rgb):
    path, _, _ = rgb
    file = path / "rgbset-r03.tfrecords"
    frame_size = file.stat().st_size // 11
    _corrupt(file, 3 * frame_size + frame_size - 2)  # record 3's stored data CRC
    with TfrecordsReader(path) as reader, pytest.raises(PgdataError, match="record 3: data CRC"):
        list(reader.iter_batches(8))


def test_bad_length_crc(rgb):
    path, _, _ = rgb
    file = path / "rgbset-r02.tfrecords"
    frame_size = file.stat().st_size // 11
    _corrupt(file, 2 * frame_size + 9)  # record 2's length CRC
    with TfrecordsReader(path) as reader, pytest.raises(PgdataError, match=r"r02\.tfrecords: record 2: length CRC"):
        list(reader.iter_batches(4))


def test_truncated_file(rgb):
    path, _, _ = rgb
    file = path / "rgbset-r05.tfrecords"
    file.write_bytes(file.read_bytes()[:-10])
    with pytest.raises(PgdataError, match=r"rgbset-r05\.tfrecords: truncated file: record 10"):
        TfrecordsReader(path)  # the full resolution is indexed on opening


def test_labels_count_mismatch(rgb):
    path, _, labels = rgb
    save_npy(path / "rgbset-rxx.labels", labels[:5])
    with TfrecordsReader(path) as reader, pytest.raises(PgdataError, match="5 label rows for 11 images"):
        reader.labels()


def test_not_an_example(tmp_path):
    directory = tmp_path / "junk"
    directory.mkdir()
    (directory / "junk-r02.tfrecords").write_bytes(frame(b"\x0a\x05hello"))
    with pytest.raises(PgdataError, match="record 0: not a valid tf.train.Example"):
        TfrecordsReader(directory)


def test_unexpected_file_names(tmp_path):
    directory = write_tfrecords_dataset(tmp_path / "a", random_levels(2, 3, 4))
    (directory / "other.tfrecords").write_bytes(b"")
    with pytest.raises(PgdataError, match="unexpected file name"):
        TfrecordsReader(directory)
