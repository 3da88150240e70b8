"""Image sources: snapshots generate at the stored lod (as the official tools run Gs); original datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pgdata.common.images import to_uint8 as images_to_uint8
from pgmetrics.sources import SnapshotSource, open_source
from pgtrain.checkpoint import save_snapshot
from pgtrain.generate import generate_images, random_latents
from pgtrain.networks import Discriminator, Generator

KWARGS = {"num_channels": 3, "resolution": 16, "fmap_base": 32, "fmap_max": 8}




def _snapshot(tmp_path: Path, name: str, **extra) -> tuple[Path, Generator]:
    torch.manual_seed(0)
    G, D, Gs = Generator(**KWARGS), Discriminator(**KWARGS), Generator(**KWARGS)
    path = save_snapshot(tmp_path / name, network_kwargs={"G": KWARGS, "D": KWARGS}, G_state=G.state_dict(),
                         D_state=D.state_dict(), Gs_state=Gs.state_dict(), **extra)
    return path, Gs


def _expected(Gs: Generator, num: int, seed: int, lod: float) -> np.ndarray:
    return images_to_uint8(generate_images(Gs, random_latents(num, Gs.latent_size, seed), lod=lod))


def _all(source, batch_size: int, num: int) -> np.ndarray:
    return np.concatenate(list(source.iter_batches(batch_size, 0, num)))


@pytest.mark.parametrize("extra", [{"metadata": {"lod": {"Gs": 1.5}}}, {"training_state": {"lod": 1.5}}],
                         ids=["imported-metadata", "trainer-state"])
def test_snapshot_source_generates_at_the_stored_lod(tmp_path, extra):
    path, Gs = _snapshot(tmp_path, "mid_fade.pt", **extra)
    source = open_source(path, seed=3)
    assert isinstance(source, SnapshotSource) and source.lod == 1.5 and source.resolution == 16
    images = _all(source, 4, 6)
    assert images.shape == (6, 3, 16, 16) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, _expected(Gs, 6, 3, 1.5))
    assert not np.array_equal(images, _expected(Gs, 6, 3, 0.0))  # the lod matters for this network
    np.testing.assert_array_equal(np.concatenate(list(source.iter_batches(4, 2, 6))), images[2:])


def test_snapshot_without_a_stored_lod_generates_at_full_resolution(tmp_path):
    path, Gs = _snapshot(tmp_path, "final.pt")
    source = SnapshotSource(path, seed=0)
    assert source.lod == 0.0
    np.testing.assert_array_equal(_all(source, 3, 3), _expected(Gs, 3, 0, 0.0))


def test_original_tfrecords_and_legacy_hdf5_sources(tmp_path):
    """The original datasets through pgdata's readers: every resolution's images in order, fingerprints that
    follow the content and the resolution, and a clear error for a resolution the dataset lacks."""
    from pgdata.errors import PgdataError
    from tests.conftest import require_fixture
    from tests.pgdata.test_tfrecords_reader import random_levels, write_tfrecords_dataset

    levels = random_levels(5, 3, 16, seed=4)
    folder = write_tfrecords_dataset(tmp_path / "tf", levels)
    for resolution in (4, 16):
        source = open_source(folder, resolution=resolution)
        assert (source.num_images, source.channels, source.resolution) == (5, 3, resolution)
        np.testing.assert_array_equal(_all(source, 2, 5), levels[resolution])
    assert open_source(folder).resolution == 16  # default: the full resolution
    fingerprints = {open_source(folder, resolution=r).fingerprint(5) for r in (8, 16)}
    assert len(fingerprints) == 2
    before = open_source(folder, resolution=16).fingerprint(5)
    other = random_levels(5, 3, 16, seed=5)
    write_tfrecords_dataset(tmp_path / "tf", other)
    assert open_source(folder, resolution=16).fingerprint(5) != before
    with pytest.raises(PgdataError, match="no 32x32 images"):  # the CLI prints it as one line
        open_source(folder, resolution=32)

    hdf5 = require_fixture("dataset_tool", "hdf5", "legacy-rgb.h5")
    source = open_source(hdf5)
    h5py = pytest.importorskip("h5py")
    with h5py.File(hdf5, "r") as file:
        key = max((k for k in file if k.startswith("data")), key=lambda k: file[k].shape[-1])
        want = file[key][:]
    assert source.resolution == want.shape[-1] and source.num_images == len(want)
    np.testing.assert_array_equal(_all(source, 3, len(want)), want)
