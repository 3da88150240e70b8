"""The data stage: real minibatches at the current level's resolution, in a resumable shuffled order.

Reading: only the resolution the schedule asks for is ever read (pgshards and TFRecords keep every level).
A level that fits in `buffer_mb` is read once, sequentially, into memory (the official shuffle buffer is
4096 MB, the whole dataset at low resolutions) and minibatches are gathered from it by index; a larger
level is read by index in worker threads, each with its own reader, a few minibatches ahead.

Order: the dataset is shuffled by a fresh permutation per epoch and repeated forever, the same order at
every resolution. The permutation is a pure function of (seed, epoch), so the whole data state is one
integer (images drawn so far), saved in training states: a resumed run reads exactly what an uninterrupted one
would. With several devices each rank takes its slice of every global minibatch.

Processing on the device (`process_reals`) follows the official process_reals: [0, 255] -> [-1, 1], mirror
augment per sample, and the FadeLOD crossfade with the 2x box-downsampled image.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pgdata.common.resolution import LOWEST_RESOLUTION, is_power_of_two, resolution_log2
from pgdata.formats.base import DatasetReader
from pgtrain.errors import PgtrainError


class SyntheticReader(DatasetReader):
    """Black images at every resolution, no I/O: the official SyntheticDataset (`syn1024rgb`)."""

    format_name = "synthetic"

    def __init__(self, resolution: int = 1024, channels: int = 3):
        self.path = Path(f"syn{resolution}{'rgb' if channels == 3 else 'gray'}")
        self._resolution_log2 = resolution_log2(resolution)
        self._channels = channels

    @property
    def num_images(self) -> int:
        return 1

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(2**k for k in range(2, self._resolution_log2 + 1))

    def labels(self) -> np.ndarray | None:
        return None

    def image(self, index: int, resolution: int | None = None) -> np.ndarray:
        resolution = self.check_resolution(resolution)
        return np.zeros((self._channels, resolution, resolution), np.uint8)

    def iter_batches(self, resolution=None, batch_size=256, start=0, stop=None) -> Iterator[np.ndarray]:
        resolution = self.check_resolution(resolution)
        stop = self.num_images if stop is None else stop
        for first in range(start, stop, batch_size):
            yield np.zeros((min(batch_size, stop - first), self._channels, resolution, resolution), np.uint8)


class ArrayReader(DatasetReader):
    """A dataset held in memory: uint8 [N, C, R, R] plus optional labels, levels made by pgdata's pyramid
    (the official exporter's 2x2 float32 chain). For tests and notebooks."""

    format_name = "array"

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None, name: str = "array"):
        from pgdata.pyramid import pyramid_levels

        self.path = Path(name)
        self._levels = {level.shape[-1]: level for level in pyramid_levels(images)}
        self._labels = None if labels is None else np.asarray(labels, np.float32)
        self.reads: list[int] = []  # resolutions read, in order (lets tests check what was decoded)

    @property
    def num_images(self) -> int:
        return len(next(iter(self._levels.values())))

    @property
    def channels(self) -> int:
        return int(next(iter(self._levels.values())).shape[1])

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(sorted(self._levels))

    def labels(self) -> np.ndarray | None:
        return self._labels

    def image(self, index: int, resolution: int | None = None) -> np.ndarray:
        resolution = self.check_resolution(resolution)
        self.reads.append(resolution)
        return self._levels[resolution][index]

    def iter_batches(self, resolution=None, batch_size=256, start=0, stop=None) -> Iterator[np.ndarray]:
        resolution = self.check_resolution(resolution)
        self.reads.append(resolution)
        stop = self.num_images if stop is None else min(stop, self.num_images)
        for first in range(start, stop, batch_size):
            yield self._levels[resolution][first:min(first + batch_size, stop)]


def check_full_resolution(resolution: int, where: str | Path) -> None:
    """The networks need a power-of-two resolution >= 4: anything else is one line naming the dataset."""
    if not is_power_of_two(resolution, LOWEST_RESOLUTION):
        raise PgtrainError(f"{where}: resolution {resolution} is not a power of two >= {LOWEST_RESOLUTION}")


def open_training_data(path: str | Path | None, synthetic: dict[str, int] | None = None) -> DatasetReader:
    """The reader a run trains on: a synthetic dataset, or any format pgdata reads."""
    if synthetic:
        resolution = int(synthetic.get("resolution", 1024))
        check_full_resolution(resolution, "dataset.synthetic")
        return SyntheticReader(resolution, int(synthetic.get("channels", 3)))
    if path is None:
        raise PgtrainError("no dataset: give --data DIR (a pgshards, TFRecords or HDF5 dataset)")
    from pgdata.formats import open_dataset

    reader = open_dataset(path)
    check_full_resolution(reader.resolution, path)
    if reader.channels not in (1, 3):
        raise PgtrainError(f"{path}: {reader.channels} channels (expected 1 or 3)")
    return reader


def check_levels(reader: DatasetReader, resolutions: list[int]) -> None:
    """Refuse a dataset that lacks a level the run will train, when the run starts rather than days later when
    the schedule reaches it (a legacy HDF5 file can miss a middle level)."""
    present = set(reader.resolutions)
    missing = [resolution for resolution in resolutions if resolution not in present]
    if missing:
        have = ", ".join(str(r) for r in sorted(present)) or "none"
        raise PgtrainError(f"{reader.path}: no {missing[0]}x{missing[0]} level, which this run trains "
                           f"(levels present: {have})")


def select_labels(labels: np.ndarray | None, num_images: int, max_label_size: int | str) -> np.ndarray:
    """float32 [N, L] as the official dataset: 0 = no labels, 'full' = all, k = the first k components."""
    if labels is None or max_label_size == 0:
        return np.zeros((num_images, 0), np.float32)
    if max_label_size != "full":
        labels = labels[:, : int(max_label_size)]
    return np.ascontiguousarray(labels, dtype=np.float32)


def epoch_permutation(seed: int, epoch: int, num_images: int) -> np.ndarray:
    """The order of one pass over the dataset: a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(num_images)


def order_indices(seed: int, num_images: int, position: int, count: int) -> np.ndarray:
    """Dataset indices of images position … position+count−1 of the infinite shuffled stream."""
    out = np.empty(count, np.int64)
    filled = 0
    while filled < count:
        epoch, offset = divmod(position + filled, num_images)
        take = min(count - filled, num_images - offset)
        out[filled:filled + take] = epoch_permutation(seed, epoch, num_images)[offset:offset + take]
        filled += take
    return out


@dataclass
class RealBatch:
    images: np.ndarray  # uint8 [n, C, r, r]
    labels: np.ndarray  # float32 [n, L]


class DataStage:
    """Yields this rank's share of each global minibatch at the configured resolution, in stream order.

    `position` (images of the global stream consumed) is the whole resumable state.
    """

    def __init__(self, reader: DatasetReader, *, seed: int, max_label_size: int | str = 0,
                 buffer_mb: int = 4096, workers: int = 2, prefetch: int = 4, rank: int = 0, world_size: int = 1,
                 position: int = 0):
        self.reader = reader
        self.seed = seed
        self.labels = select_labels(reader.labels(), reader.num_images, max_label_size)
        self.buffer_bytes = buffer_mb * 2**20
        self.workers = max(1, workers)
        self.prefetch = max(1, prefetch)
        self.rank, self.world_size = rank, world_size
        self.position = position
        self.resolution: int | None = None
        self.minibatch = 0
        self._level: np.ndarray | None = None
        self._level_resolution: int | None = None
        self._pending: deque[tuple[int, Future]] = deque()
        self._executor: ThreadPoolExecutor | None = None
        self._local = threading.local()

    @property
    def num_images(self) -> int:
        return self.reader.num_images

    @property
    def label_size(self) -> int:
        return int(self.labels.shape[1])

    def configure(self, resolution: int, minibatch: int) -> None:
        """Switch resolution or global minibatch; queued reads for the old setting are dropped."""
        if minibatch % self.world_size:
            raise PgtrainError(f"minibatch {minibatch} does not split evenly over {self.world_size} devices")
        if (resolution, minibatch) == (self.resolution, self.minibatch):
            return
        self.reader.check_resolution(resolution)
        self._drop_pending()
        self.resolution, self.minibatch = resolution, minibatch
        if resolution != self._level_resolution:
            self._level, self._level_resolution = None, resolution
            if self._level_bytes(resolution) <= self.buffer_bytes:
                self._level = self._read_level(resolution)

    def next_batch(self) -> RealBatch:
        """The next minibatch (this rank's share); advances `position` by the global minibatch."""
        if self.resolution is None:
            raise RuntimeError("DataStage.configure() must be called first")
        self._fill_queue()
        position, future = self._pending.popleft()
        assert position == self.position
        self.position += self.minibatch
        self._fill_queue()
        return future.result()

    def close(self) -> None:
        self._drop_pending()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- internals ---------------------------------------------------------------------------------------

    def _level_bytes(self, resolution: int) -> int:
        return self.num_images * self.reader.channels * resolution * resolution

    def _read_level(self, resolution: int) -> np.ndarray:
        level = np.empty((self.num_images, self.reader.channels, resolution, resolution), np.uint8)
        filled = 0
        for batch in self.reader.iter_batches(resolution, batch_size=1024):
            level[filled:filled + len(batch)] = batch
            filled += len(batch)
        if filled != self.num_images:
            raise PgtrainError(f"{self.reader.path}: {filled} images at {resolution}x{resolution}, "
                               f"expected {self.num_images}")
        return level

    def _share(self, position: int) -> np.ndarray:
        per_rank = self.minibatch // self.world_size
        indices = order_indices(self.seed, self.num_images, position, self.minibatch)
        return indices[self.rank * per_rank:(self.rank + 1) * per_rank]

    def _fill_queue(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="pgtrain-data")
        next_position = self._pending[-1][0] + self.minibatch if self._pending else self.position
        while len(self._pending) < self.prefetch:
            indices = self._share(next_position)
            self._pending.append((next_position, self._executor.submit(self._load, indices, self.resolution,
                                                                          self._level)))
            next_position += self.minibatch

    def _load(self, indices: np.ndarray, resolution: int, level: np.ndarray | None) -> RealBatch:
        if level is not None:
            images = level[indices]
        else:
            reader = self._thread_reader()
            gather = getattr(reader, "images", None)  # pgshards gathers a batch in one call
            images = gather(indices, resolution) if gather is not None else \
                np.stack([reader.image(int(i), resolution) for i in indices])
        return RealBatch(images, self.labels[indices])

    def _thread_reader(self) -> DatasetReader:
        """One reader per worker thread for the file formats: their readers need not be thread-safe."""
        reader = getattr(self._local, "reader", None)
        if reader is None:
            if self.reader.format_name not in ("pgshards", "tfrecords", "hdf5"):
                reader = self.reader  # in-memory readers (synthetic, arrays) are shared
            else:
                from pgdata.formats import open_dataset

                reader = open_dataset(self.reader.path)
            self._local.reader = reader
        return reader

    def _drop_pending(self) -> None:
        for _, future in self._pending:
            future.cancel()
        for _, future in self._pending:
            if not future.cancelled():
                future.exception()  # wait, so no worker still reads the old level
        self._pending.clear()


def process_reals(images: torch.Tensor, lod: float, mirror_mask: torch.Tensor | None) -> torch.Tensor:
    """uint8 reals at the current level's resolution -> float32 network input in [-1, 1].

    Matches the official process_reals: dynamic range x·(2/255) − 1; samples whose mirror mask is True are
    flipped left-right (the official draws u ~ U[0,1) and flips where u ≥ 0.5); then FadeLOD, a lerp toward
    the nearest-upsampled 2x box-downsample with weight lod − floor(lod). The official code then
    nearest-upsamples to full size and D box-downsamples it back; our networks take the level's resolution
    directly, which gives D the same scores. The gradient penalty's norm is the one exception (its gradient is
    taken w.r.t. the image D is fed): pgtrain.loss rescales it to the official full-resolution norm.
    """
    x = images.float() * (2.0 / 255.0) - 1.0
    if mirror_mask is not None:
        x = torch.where(mirror_mask.view(-1, 1, 1, 1), x.flip(3), x)
    alpha = lod - float(np.floor(lod))
    if alpha > 0:
        y = F.avg_pool2d(x, 2)
        y = y.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        x = torch.lerp(x, y, alpha)
    return x
