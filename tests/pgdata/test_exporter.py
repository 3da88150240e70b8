"""The exporter and the pgshards reader: round trips, determinism, atomicity, resume, tar conformance."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest

from pgdata.errors import PgdataError
from pgdata.exporter import export_dataset, partial_path
from pgdata.formats import open_dataset
from pgdata.formats.pgshards.reader import PgshardsReader
from pgdata.formats.pgshards.verify import verify_pgshards
from pgdata.sources.base import Source, SourceInfo


class ArraySource(Source):
    """Records from an in-memory array, in small chunks; optionally fails after `fail_after` records."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None, chunk: int = 7,
                 fail_after: int | None = None):
        self.images = images
        self._labels = labels
        self.chunk = chunk
        self.fail_after = fail_after
        self.info = SourceInfo("array", images.shape[1], images.shape[2], len(images))

    @property
    def labels(self):
        return self._labels

    def iter_chunks(self, start: int = 0):
        for first in range(start, len(self.images), self.chunk):
            if self.fail_after is not None and first >= self.fail_after:
                raise KeyboardInterrupt
            yield self.images[first:first + self.chunk]


def random_images(n: int, channels: int = 3, resolution: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, channels, resolution, resolution), dtype=np.uint8)


def one_hot(n: int, classes: int, seed: int = 1) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[np.random.default_rng(seed).integers(0, classes, n)]


def reference_level(images: np.ndarray, factor: int) -> np.ndarray:
    """Independent restatement of the original's chain: repeated float32 2x2 means, rint per level."""
    values = images.astype(np.float32)
    while factor > 1:
        values = (values[:, :, 0::2, 0::2] + values[:, :, 1::2, 0::2] + values[:, :, 0::2, 1::2]
                  + values[:, :, 1::2, 1::2]) * np.float32(0.25)
        factor //= 2
    return np.rint(values).clip(0, 255).astype(np.uint8)


def tree_bytes(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def build(tmp_path: Path, source: Source, name: str = "out", **kwargs) -> Path:
    return export_dataset(source, tmp_path / name, command="test", arguments={"k": 1}, quiet=True, **kwargs)


@pytest.mark.parametrize("encoding", ["npy", "png"])
@pytest.mark.parametrize("channels", [1, 3])
def test_round_trip_every_resolution(tmp_path, encoding, channels):
    images = random_images(23, channels)
    labels = one_hot(23, 5)
    out = build(tmp_path, ArraySource(images, labels), encoding=encoding)
    with open_dataset(out) as reader:
        assert isinstance(reader, PgshardsReader)
        assert (reader.num_images, reader.channels, reader.resolutions) == (23, channels, (4, 8, 16))
        for resolution in reader.resolutions:
            expected = reference_level(images, 16 // resolution)
            np.testing.assert_array_equal(np.concatenate(list(reader.iter_batches(resolution, 5))), expected)
            np.testing.assert_array_equal(reader.image(17, resolution), expected[17])
            np.testing.assert_array_equal(np.concatenate(list(reader.iter_batches(resolution, 4, 3, 11))),
                                          expected[3:11])
        np.testing.assert_array_equal(reader.labels(), labels)


def test_rebuild_is_byte_identical(tmp_path):
    images, labels = random_images(40), one_hot(40, 10)
    first = tree_bytes(build(tmp_path, ArraySource(images, labels, chunk=3), "a"))
    second = tree_bytes(build(tmp_path, ArraySource(images, labels, chunk=11), "b"))
    assert first == second


def test_shards_are_plain_tar_readable_by_tarfile_and_webdataset(tmp_path):
    images, labels = random_images(9), one_hot(9, 4)
    out = build(tmp_path, ArraySource(images, labels))
    shard = out / "r04" / "000000.tar"
    with tarfile.open(shard) as archive:
        members = archive.getmembers()
        assert [m.name for m in members[:4]] == ["00000000.cls", "00000000.npy", "00000001.cls", "00000001.npy"]
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.mode == 0o644 and m.uname == "" for m in members)
        assert archive.extractfile("00000003.cls").read() == str(int(labels[3].argmax())).encode()
        import io

        np.testing.assert_array_equal(np.load(io.BytesIO(archive.extractfile("00000003.npy").read())), images[3])
    import webdataset as wds

    samples = list(wds.WebDataset(str(shard), shardshuffle=False).decode())
    assert [s["__key__"] for s in samples] == ["%08d" % i for i in range(9)]
    np.testing.assert_array_equal(samples[5]["npy"], images[5])
    assert samples[5]["cls"] == int(labels[5].argmax())


def test_manifest_lists_every_shard_with_sha256_and_no_absolute_paths(tmp_path):
    out = build(tmp_path, ArraySource(random_images(5), one_hot(5, 3)))
    text = (out / "manifest.json").read_text()
    assert str(tmp_path) not in text
    assert verify_pgshards(out) == []


def test_verify_names_a_tampered_shard(tmp_path):
    out = build(tmp_path, ArraySource(random_images(5)))
    shard = out / "r03" / "000000.tar"
    data = bytearray(shard.read_bytes())
    data[2000] ^= 1
    shard.write_bytes(bytes(data))
    problems = verify_pgshards(out)
    assert len(problems) == 1 and "r03/000000.tar" in problems[0] and "sha256" in problems[0]


def test_existing_output_is_refused_without_overwrite(tmp_path):
    out = build(tmp_path, ArraySource(random_images(5)))
    before = tree_bytes(out)
    with pytest.raises(PgdataError, match="already exists"):
        build(tmp_path, ArraySource(random_images(5, seed=9)))
    assert tree_bytes(out) == before
    build(tmp_path, ArraySource(random_images(5, seed=9)), overwrite=True)
    assert tree_bytes(out) != before


def test_interrupted_build_leaves_nothing_complete_and_resume_gives_same_bytes(tmp_path, monkeypatch):
    import pgdata.formats.pgshards.layout as pgshards_module

    monkeypatch.setattr(pgshards_module, "MAX_SAMPLES_PER_SHARD", 4)  # many shards, so some complete early
    images, labels = random_images(30, resolution=8), one_hot(30, 3)
    reference = tree_bytes(build(tmp_path, ArraySource(images, labels, chunk=5), "reference"))
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, ArraySource(images, labels, chunk=5, fail_after=17))
    out = tmp_path / "out"
    assert not (out / "manifest.json").exists()
    with pytest.raises(PgdataError, match="manifest.json missing|not a dataset"):
        open_dataset(out if out.exists() else partial_path(out))
    assert any(partial_path(out).rglob("*.tar"))
    build(tmp_path, ArraySource(images, labels, chunk=5), resume=True)
    assert tree_bytes(out) == reference
    assert not partial_path(out).exists()


def test_resume_refuses_a_build_with_other_arguments(tmp_path):
    images = random_images(12)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, ArraySource(images, fail_after=7))
    with pytest.raises(PgdataError, match="other inputs or arguments"):
        export_dataset(ArraySource(images), tmp_path / "out", command="test", arguments={"k": 2},
                       resume=True, quiet=True)


def test_source_with_wrong_shapes_is_a_clear_error(tmp_path):
    class Liar(ArraySource):
        def iter_chunks(self, start=0):
            yield self.images[:, :, :8, :8]

    with pytest.raises(PgdataError, match="shape"):
        build(tmp_path, Liar(random_images(3)))
    assert not (tmp_path / "out").exists()


def test_reader_rejects_corrupt_shard_header(tmp_path):
    out = build(tmp_path, ArraySource(random_images(5)))
    shard = out / "r04" / "000000.tar"
    data = bytearray(shard.read_bytes())
    data[0:8] = b"99999999"
    shard.write_bytes(bytes(data))
    with open_dataset(out) as reader, pytest.raises(PgdataError, match="corrupt shard"):
        reader.image(0)


def test_pyramid_matches_the_float32_chain_deep_in_a_large_pyramid():
    """Down to 4x4 from 256x256, where float32 sums stop being exact: the original's order must hold."""
    from pgdata.pyramid import pyramid_levels

    images = random_images(2, 3, 256, seed=5)
    levels = pyramid_levels(images)
    assert [level.shape[2] for level in levels] == [256, 128, 64, 32, 16, 8, 4]
    for level in levels:
        np.testing.assert_array_equal(level, reference_level(images, 256 // level.shape[2]))


def test_class_members_of_mixed_digit_counts_are_decimal_text(tmp_path):
    labels = np.eye(120, dtype=np.float32)[[3, 10, 119, 0, 57]]
    out = build(tmp_path, ArraySource(random_images(5, resolution=4), labels))
    with tarfile.open(out / "r02" / "000000.tar") as archive:
        texts = [archive.extractfile(f"{i:08d}.cls").read() for i in range(5)]
    assert texts == [b"3", b"10", b"119", b"0", b"57"]


def test_pgdata_error_keeps_its_path_across_processes():
    import pickle

    error = pickle.loads(pickle.dumps(PgdataError("bad header", "/data/x.gz")))
    assert error.path == "/data/x.gz" and str(error) == "/data/x.gz: bad header"


def test_large_image_read_path_gives_the_same_images(tmp_path, monkeypatch):
    import pgdata.formats.pgshards.reader as pgshards_module

    images = random_images(9, resolution=16)
    out = build(tmp_path, ArraySource(images))
    monkeypatch.setattr(pgshards_module, "LARGE_IMAGE_BYTES", 1)  # every image through preadv
    with open_dataset(out) as reader:
        np.testing.assert_array_equal(np.concatenate(list(reader.iter_batches(16, 4, 2, 9))), images[2:9])
        np.testing.assert_array_equal(reader.image(5, 8), reference_level(images, 2)[5])


def test_resume_rewrites_a_short_shard(tmp_path, monkeypatch):
    """A shard cut short (say by a power failure) is not trusted on resume: the same bytes come out."""
    import pgdata.formats.pgshards.layout as pgshards_module

    monkeypatch.setattr(pgshards_module, "MAX_SAMPLES_PER_SHARD", 4)
    images = random_images(20, resolution=8)
    reference = tree_bytes(build(tmp_path, ArraySource(images), "reference"))
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, ArraySource(images, chunk=4, fail_after=12))
    shard = partial_path(tmp_path / "out") / "r03" / "000001.tar"
    shard.write_bytes(shard.read_bytes()[: 3 * 1024])  # keep only part of it
    build(tmp_path, ArraySource(images, chunk=4), resume=True)
    assert tree_bytes(tmp_path / "out") == reference
