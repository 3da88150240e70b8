"""The shard writer: one resolution's samples into fixed-size, byte-deterministic pgshards tar files.

Used by pgdata.exporter, which feeds it the pyramid's levels and turns the records it reports into the manifest.
Samples are laid out as pgdata.formats.pgshards.layout says; tar headers and padding come from
pgdata.formats.tarblocks, built for many samples at once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pgdata.formats import tarblocks
from pgdata.formats.pgshards.layout import (
    ShardRecord,
    encode_png,
    level_dir,
    npy_sample_bytes,
    samples_per_shard,
    shard_name,
)


@dataclass
class ShardSetWriter:
    """Writes one resolution's samples into fixed-size shards; a shard is renamed from .tmp when full.

    `skip_below`: samples with a smaller index are already on disk in complete shards (resume) and are
    dropped here, so a resumed build writes exactly the bytes of an uninterrupted one.
    `on_shard`: called with each shard's record (name, samples, bytes, sha256) right after the shard is renamed
    into place, on the thread that writes it; e.g. to log the sha256 so that --resume can check kept shards.
    """

    root: Path
    resolution: int
    channels: int
    encoding: str
    with_class: bool
    skip_below: int = 0
    shards: list[ShardRecord] = field(default_factory=list)
    on_shard: Callable[[ShardRecord], None] | None = None

    def __post_init__(self) -> None:
        self.per_shard = samples_per_shard(self.channels, self.resolution, self.with_class)
        self.directory = self.root / level_dir(self.resolution)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._npy_header = tarblocks.npy_header((self.channels, self.resolution, self.resolution))
        self._npy_size = len(self._npy_header) + self.channels * self.resolution**2
        self._file = None
        self._digest = None
        self._written = 0
        self._in_shard = 0
        self._next_index = self.skip_below

    def shard_name(self, number: int) -> str:
        return shard_name(self.resolution, number)

    def add(self, first_index: int, images: np.ndarray, digits: np.ndarray, class_blocks: np.ndarray | None):
        """Append samples first_index .. first_index + len(images) - 1 (consecutive, in order)."""
        begin = max(0, self.skip_below - first_index)
        if begin >= len(images):
            return
        if first_index + begin != self._next_index:
            raise RuntimeError("samples must arrive consecutively")
        position = begin
        while position < len(images):
            if self._file is None:
                self._open(self._next_index // self.per_shard)
            take = min(len(images) - position, self.per_shard - self._in_shard)
            part = slice(position, position + take)
            self._write(self._encode(images[part], digits[part], None if class_blocks is None else class_blocks[part]))
            self._in_shard += take
            self._next_index += take
            position += take
            if self._in_shard == self.per_shard:
                self._close()

    def _encode(self, images: np.ndarray, digits: np.ndarray, class_blocks: np.ndarray | None) -> bytes:
        n = len(images)
        if self.encoding == "npy":
            stride = npy_sample_bytes(self.channels, self.resolution, self.with_class)
            rows = np.zeros((n, stride), dtype=np.uint8)
            offset = 0
            if class_blocks is not None:
                rows[:, :2 * tarblocks.BLOCK] = class_blocks
                offset = 2 * tarblocks.BLOCK
            rows[:, offset:offset + tarblocks.BLOCK] = tarblocks.member_headers(digits, b".npy", self._npy_size)
            offset += tarblocks.BLOCK
            rows[:, offset:offset + len(self._npy_header)] = np.frombuffer(self._npy_header, dtype=np.uint8)
            offset += len(self._npy_header)
            rows[:, offset:offset + images[0].size] = images.reshape(n, -1)
            return rows.tobytes()
        parts = []
        for i in range(n):
            if class_blocks is not None:
                parts.append(class_blocks[i].tobytes())
            png = encode_png(images[i])
            parts.append(tarblocks.member_headers(digits[i:i + 1], b".png", len(png)).tobytes())
            parts.append(png + bytes(tarblocks.padded(len(png)) - len(png)))
        return b"".join(parts)

    def _open(self, number: int) -> None:
        self._number = number
        self._path = self.root / (self.shard_name(number) + ".tmp")
        self._file = open(self._path, "wb")
        self._digest = hashlib.sha256()
        self._written = 0
        self._in_shard = 0

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._digest.update(data)
        self._written += len(data)

    def _close(self) -> None:
        self._write(tarblocks.end_of_archive(self._written))
        # No fsync per shard: on this class of disk it costs more than building (a CIFAR-10 build waits
        # 1.6 s on it and computes for 1 s). The rename keeps the build atomic against the process dying;
        # after a power failure `pgdata verify` finds damaged shards and --resume keeps only full ones.
        self._file.close()
        self._file = None
        final = self.root / self.shard_name(self._number)
        os.replace(self._path, final)
        record = ShardRecord(self.shard_name(self._number), self._in_shard, self._written, self._digest.hexdigest())
        self.shards.append(record)
        if self.on_shard is not None:
            self.on_shard(record)

    def finish(self) -> None:
        if self._file is not None:
            self._close()

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
