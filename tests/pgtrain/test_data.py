"""The data stage: current-resolution reads only, a resumable shuffled order, labels, ranks, process_reals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pgtrain.data import (
    ArrayReader,
    DataStage,
    SyntheticReader,
    open_training_data,
    order_indices,
    process_reals,
    select_labels,
)


def _reader(n=10, resolution=16, labels=True):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, 3, resolution, resolution), dtype=np.uint8)
    table = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)] if labels else None
    return ArrayReader(images, table)


def test_order_is_a_fresh_permutation_per_epoch_and_repeats():
    first = order_indices(7, 10, 0, 10)
    second = order_indices(7, 10, 10, 10)
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert not np.array_equal(first, second)
    whole = order_indices(7, 10, 0, 35)
    np.testing.assert_array_equal(whole[:20], np.concatenate([first, second]))
    np.testing.assert_array_equal(order_indices(7, 10, 13, 9), whole[13:22])  # any position, same stream


@pytest.mark.parametrize("buffer_mb", [4096, 0])  # whole level in memory / read by index in worker threads
def test_batches_follow_the_order_and_carry_labels(buffer_mb):
    reader = _reader()
    stage = DataStage(reader, seed=3, max_label_size="full", buffer_mb=buffer_mb)
    stage.configure(8, 4)
    batches = [stage.next_batch() for _ in range(4)]
    indices = order_indices(3, 10, 0, 16)
    for k, batch in enumerate(batches):
        expected = indices[4 * k:4 * k + 4]
        np.testing.assert_array_equal(batch.images, np.stack([reader._levels[8][i] for i in expected]))
        np.testing.assert_array_equal(batch.labels, reader.labels()[expected])
    assert stage.position == 16
    stage.close()


def test_in_memory_and_streamed_reads_agree_across_a_resolution_switch():
    out = {}
    for buffer_mb in (4096, 0):
        stage = DataStage(_reader(), seed=5, buffer_mb=buffer_mb)
        stage.configure(4, 6)
        got = [stage.next_batch().images for _ in range(3)]
        stage.configure(8, 6)
        got += [stage.next_batch().images for _ in range(3)]
        stage.close()
        out[buffer_mb] = got
    for a, b in zip(out[4096], out[0], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("buffer_mb", [4096, 0])
def test_only_the_current_resolution_is_read(buffer_mb):
    reader = _reader()
    stage = DataStage(reader, seed=0, buffer_mb=buffer_mb)
    stage.configure(8, 4)
    for _ in range(3):
        stage.next_batch()
    stage.close()
    assert set(reader.reads) == {8}  # never the full 16x16 level to train at 8x8


def test_resuming_at_a_position_continues_the_same_stream():
    stage = DataStage(_reader(), seed=9)
    stage.configure(8, 4)
    for _ in range(3):
        stage.next_batch()
    position = stage.position
    expected = stage.next_batch().images
    stage.close()
    resumed = DataStage(_reader(), seed=9, position=position)
    resumed.configure(8, 4)
    np.testing.assert_array_equal(resumed.next_batch().images, expected)
    resumed.close()


def test_ranks_split_each_global_minibatch():
    full = DataStage(_reader(), seed=2)
    full.configure(8, 6)
    whole = [full.next_batch().images for _ in range(2)]
    parts = []
    for rank in range(2):
        stage = DataStage(_reader(), seed=2, rank=rank, world_size=2)
        stage.configure(8, 6)
        parts.append([stage.next_batch().images for _ in range(2)])
        stage.close()
    for step in range(2):
        np.testing.assert_array_equal(np.concatenate([parts[0][step], parts[1][step]]), whole[step])
    full.close()


def test_select_labels():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert select_labels(table, 4, 0).shape == (4, 0)
    assert select_labels(None, 4, "full").shape == (4, 0)
    np.testing.assert_array_equal(select_labels(table, 4, 1), table[:, :1])
    np.testing.assert_array_equal(select_labels(table, 4, "full"), table)


def test_process_reals_range_mirror_and_fade():
    images = torch.tensor([[[[0, 255], [255, 255]]]], dtype=torch.uint8)  # 1 x 1 x 2 x 2
    x = process_reals(images, lod=3.0, mirror_mask=None)
    torch.testing.assert_close(x, torch.tensor([[[[-1.0, 1.0], [1.0, 1.0]]]]))
    mirrored = process_reals(images, lod=3.0, mirror_mask=torch.tensor([True]))
    torch.testing.assert_close(mirrored, torch.tensor([[[[1.0, -1.0], [1.0, 1.0]]]]))
    # lod 2.25: lerp toward the 2x2 box mean (0.5) with weight 0.25, as the official FadeLOD
    faded = process_reals(images, lod=2.25, mirror_mask=None)
    expected = torch.tensor([[[[-1.0 + 0.25 * 1.5, 1.0 - 0.25 * 0.5], [1.0 - 0.25 * 0.5, 1.0 - 0.25 * 0.5]]]])
    torch.testing.assert_close(faded, expected)


def test_synthetic_reader_is_black_at_every_level():
    reader = open_training_data(None, {"resolution": 64, "channels": 3})
    assert isinstance(reader, SyntheticReader) and reader.resolutions == (4, 8, 16, 32, 64)
    stage = DataStage(reader, seed=0)
    stage.configure(16, 8)
    batch = stage.next_batch()
    assert batch.images.shape == (8, 3, 16, 16) and not batch.images.any()
    stage.close()


def test_not_a_dataset_is_a_one_line_error(tmp_path):
    from pgdata.errors import PgdataError

    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(PgdataError, match="not a dataset") as info:
        open_training_data(tmp_path)
    assert "\n" not in str(info.value)


def test_a_dataset_missing_a_level_the_run_trains_is_refused_at_start():
    """A legacy HDF5 file can lack a middle level: found when the run starts, not when the schedule gets there."""
    from pgtrain.errors import PgtrainError
    from tests.pgtrain.test_loop import tiny_reader, tiny_trainer

    class MissingLevel(type(tiny_reader())):
        @property
        def resolutions(self):
            return tuple(r for r in super().resolutions if r != 8)

    reader = tiny_reader()
    reader.__class__ = MissingLevel
    with pytest.raises(PgtrainError, match=r"tiny: no 8x8 level, which this run trains \(levels present: 4, 16\)"):
        tiny_trainer(reader=reader)


@pytest.mark.parametrize("resolution", [4, 16])
def test_ranks_and_reader_threads_see_each_image_once_per_pass_also_across_a_resume(resolution):
    """2 ranks x 2 reader threads (levels read by index: buffer 0 MB), 12 images, global minibatch 4: every image
    exactly once per pass, with a resume of both ranks in the middle of the second pass."""
    reader = _reader(n=12)
    level = {reader._levels[resolution][i].tobytes(): i for i in range(12)}

    def stage(rank, position=0):
        made = DataStage(_reader(n=12), seed=5, rank=rank, world_size=2, buffer_mb=0, workers=2, position=position)
        made.configure(resolution, 4)
        return made

    stages = [stage(0), stage(1)]
    seen = []
    for step in range(6):  # two passes of 3 global minibatches
        if step == 4:  # resume both ranks from the saved position
            position = stages[0].position
            for old in stages:
                old.close()
            stages = [stage(0, position), stage(1, position)]
        for rank_stage in stages:
            seen.extend(level[image.tobytes()] for image in rank_stage.next_batch().images)
    for rank_stage in stages:
        rank_stage.close()
    assert sorted(seen[:12]) == list(range(12)) and sorted(seen[12:]) == list(range(12))
