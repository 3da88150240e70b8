"""pgshards v1 reader: O(1) random access into npy shards, strided copies for sequential reads.

Nothing on disk is trusted unchecked: the manifest is checked when the reader opens, each shard when it is
first used (a regular file inside the dataset, of the listed size, with the members its keys call for).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pgdata.errors import PgdataError
from pgdata.formats import tarblocks
from pgdata.formats.base import DatasetReader, read_npy
from pgdata.formats.pgshards.layout import (
    FORMAT_NAME,
    decode_png,
    first_unexpected_member,
    member_names,
    npy_sample_bytes,
    open_in_dataset,
)
from pgdata.formats.pgshards.manifest import load_manifest

LARGE_IMAGE_BYTES = 256 * 1024  # from here on the reader preads images instead of copying from the memmap


def read_labels(file: BinaryIO, entry: dict, path: Path) -> np.ndarray:
    """float32 labels from an open labels file, shaped as the manifest's entry says."""
    labels = read_npy(file, path)
    if labels.dtype != np.float32 or list(labels.shape) != entry["shape"]:
        raise PgdataError(f"labels are {labels.dtype} {list(labels.shape)}, the manifest says float32 "
                          f"{entry['shape']}", path)
    return labels


class _Shard:
    """One shard opened for reading: memory-mapped once its size matches the manifest, with every sample's offset."""

    def __init__(self, root: Path, entry: dict, encoding: str, shape: tuple[int, int, int], first_key: int,
                 with_class: bool):
        self.root = root
        self.name = entry["name"]
        self.path = root / self.name
        self.samples = entry["samples"]
        self.encoding = encoding
        self.shape = shape
        self.first_key = first_key
        with open_in_dataset(root, self.name) as file:
            size = os.fstat(file.fileno()).st_size
            if size != entry["bytes"]:
                raise PgdataError(f"shard holds {size} bytes, the manifest says {entry['bytes']}", self.path)
            try:
                self.data = np.memmap(file, dtype=np.uint8, mode="r")
            except (OSError, ValueError) as error:
                raise PgdataError(f"cannot open shard: {error}", self.path) from error
        if encoding == "npy":
            self._index_npy(with_class)
        else:
            self._index_scan(with_class)

    def _index_npy(self, with_class: bool) -> None:
        """Fixed-size samples: validate the first and last sample's members, then index by arithmetic."""
        channels, height, width = self.shape
        header = tarblocks.npy_header(self.shape)
        self.stride = npy_sample_bytes(channels, height, with_class)
        self.base = (2 * tarblocks.BLOCK if with_class else 0) + tarblocks.BLOCK + len(header)
        if len(self.data) < self.samples * self.stride:
            raise PgdataError("shard is truncated", self.path)
        for sample in {0, self.samples - 1}:
            key = self.first_key + sample
            start = sample * self.stride
            if with_class:
                self._expect_member(start, "%08d.cls" % key)
                start += 2 * tarblocks.BLOCK
            self._expect_member(start, "%08d.npy" % key)
            if bytes(self.data[start + tarblocks.BLOCK:start + tarblocks.BLOCK + len(header)]) != header:
                raise PgdataError(f"corrupt shard: {key:08d}.npy is not a uint8 {channels}x{height}x{width} array",
                                  self.path)

    def _expect_member(self, offset: int, expected: str) -> None:
        try:
            name, _ = tarblocks.parse_header(bytes(self.data[offset:offset + tarblocks.BLOCK]))
        except ValueError as error:
            raise PgdataError(f"corrupt shard: {error}", self.path) from error
        if name != expected:
            raise PgdataError(f"corrupt shard: unexpected member {name!r} where {expected!r} belongs", self.path)

    def _index_scan(self, with_class: bool) -> None:
        try:
            members = tarblocks.scan_members(memoryview(self.data))
        except ValueError as error:
            raise PgdataError(f"corrupt shard: {error}", self.path) from error
        expected = member_names(self.first_key, self.samples, "." + self.encoding, with_class)
        problem = first_unexpected_member([name for name, _, _ in members], expected)
        if problem is not None:
            raise PgdataError(f"corrupt shard: {problem}", self.path)
        self.offsets = [(offset, size) for name, offset, size in members if name.endswith("." + self.encoding)]

    def images(self, start: int, stop: int) -> np.ndarray:
        if self.encoding == "npy" and self.shape[0] * self.shape[1] * self.shape[2] >= LARGE_IMAGE_BYTES:
            return self._read_large(start, stop)
        if self.encoding == "npy":
            view = np.ndarray((self.samples, *self.shape), dtype=np.uint8, buffer=self.data, offset=self.base,
                              strides=(self.stride, self.shape[1] * self.shape[2], self.shape[2], 1))
            return np.array(view[start:stop])
        return np.stack([self.png_image(i) for i in range(start, stop)]) if stop > start else \
            np.zeros((0, *self.shape), np.uint8)

    def _read_large(self, start: int, stop: int) -> np.ndarray:
        """Large images: one pread straight into the result per image, instead of faulting in the memmap's
        pages one by one (4x faster at 1024^2)."""
        out = np.empty((max(0, stop - start), *self.shape), dtype=np.uint8)
        with open_in_dataset(self.root, self.name) as file:
            for position, sample in enumerate(range(start, stop)):
                target = memoryview(out[position]).cast("B")
                if os.preadv(file.fileno(), [target], sample * self.stride + self.base) != len(target):
                    raise PgdataError(f"shard is truncated at sample {sample}", self.path)
        return out

    def png_image(self, sample: int) -> np.ndarray:
        offset, size = self.offsets[sample]
        try:
            return decode_png(bytes(self.data[offset:offset + size]), self.shape)
        except ValueError as error:
            raise PgdataError(f"sample {self.first_key + sample:08d}: {error}", self.path) from error


class PgshardsReader(DatasetReader):
    """Reads a pgshards dataset: O(1) random access for npy shards, strided copies for sequential reads.

    The manifest is checked when the reader opens (check_manifest), each shard when it is first used (a
    regular file inside the dataset, of the listed size, with the members its keys call for).
    """

    format_name = FORMAT_NAME

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.manifest = load_manifest(self.path)
        self._levels = {level["resolution"]: level for level in self.manifest["resolutions"].values()}
        self._with_class = self.manifest["labels"] is not None and self.manifest["labels"]["classes"]
        self._shards: dict[tuple[int, int], _Shard] = {}
        self._labels: np.ndarray | None = None

    @property
    def num_images(self) -> int:
        return self.manifest["num_images"]

    @property
    def channels(self) -> int:
        return self.manifest["channels"]

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(sorted(self._levels))

    @property
    def label_size(self) -> int:
        return self.manifest["label_size"]

    def labels(self) -> np.ndarray | None:
        entry = self.manifest["labels"]
        if entry is None:
            return None
        if self._labels is None:
            with open_in_dataset(self.path, entry["file"]) as file:
                self._labels = read_labels(file, entry, self.path / entry["file"])
        return self._labels

    def listed_files(self) -> list[tuple[str, int | None]]:
        """(name, bytes) of every file the manifest lists: the shards, then the labels (size not listed)."""
        files = [(shard["name"], shard["bytes"]) for level in self.manifest["resolutions"].values()
                 for shard in level["shards"]]
        if self.manifest["labels"] is not None:
            files.append((self.manifest["labels"]["file"], None))
        return files

    def storage_problems(self) -> list[str]:
        """Listed files that are missing, not regular files, outside the dataset or of another size than
        listed; one line each. Cheap: every file is opened, none is read."""
        problems = []
        for name, listed_size in self.listed_files():
            try:
                with open_in_dataset(self.path, name) as file:
                    size = os.fstat(file.fileno()).st_size
            except PgdataError as error:
                problems.append(str(error))
                continue
            if listed_size is not None and size != listed_size:
                problems.append(f"{self.path / name}: {size} bytes, the manifest says {listed_size}")
        return problems

    def _shard(self, resolution: int, number: int) -> _Shard:
        key = (resolution, number)
        if key not in self._shards:
            level = self._levels[resolution]
            self._shards[key] = _Shard(self.path, level["shards"][number], self.manifest["encoding"],
                                       (self.channels, resolution, resolution),
                                       number * level["samples_per_shard"], self._with_class)
        return self._shards[key]

    def image(self, index: int, resolution: int | None = None) -> np.ndarray:
        resolution = self.check_resolution(resolution)
        index = self.check_index(index, resolution)
        per_shard = self._levels[resolution]["samples_per_shard"]
        shard = self._shard(resolution, index // per_shard)
        return shard.images(index % per_shard, index % per_shard + 1)[0]

    def images(self, indices: np.ndarray, resolution: int | None = None) -> np.ndarray:
        """Gather arbitrary indices (random minibatches) into one batch N x C x H x W."""
        resolution = self.check_resolution(resolution)
        out = np.empty((len(indices), self.channels, resolution, resolution), dtype=np.uint8)
        for position, index in enumerate(indices):
            out[position] = self.image(int(index), resolution)
        return out

    def iter_batches(self, resolution: int | None = None, batch_size: int = 256, start: int = 0,
                     stop: int | None = None) -> Iterator[np.ndarray]:
        resolution = self.check_resolution(resolution)
        start, stop = self.check_range(start, stop, resolution)
        per_shard = self._levels[resolution]["samples_per_shard"]
        index = start
        while index < stop:
            shard = self._shard(resolution, index // per_shard)
            first = index % per_shard
            last = min(shard.samples, first + batch_size, first + stop - index)
            yield shard.images(first, last)
            index += last - first

    def close(self) -> None:
        self._shards.clear()
