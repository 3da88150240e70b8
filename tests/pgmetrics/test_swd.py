"""SWD against the official code's outputs (fixtures/metrics): stages, reference-RNG values, statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pgmetrics import native, swd
from pgmetrics.errors import PgmetricsError
from tests.conftest import require_fixture


@pytest.fixture(scope="module")
def data():
    folder = require_fixture("metrics")
    return (np.load(folder / "images.npz"), np.load(folder / "swd_stages.npz"),
            json.loads((folder / "expected.json").read_text()))


@pytest.fixture(params=["compiled", "numpy"])
def kernels(request, monkeypatch):
    """Run a test with the compiled SWD kernels and again with the numpy code they replace."""
    if request.param == "numpy":
        monkeypatch.setitem(native._state, "lib", None)
    elif native.library() is None:
        pytest.skip("no C compiler: the compiled SWD kernels are not built")
    return request.param


def batches(images, size):
    return [images[i:i + size] for i in range(0, len(images), size)]


def test_levels_and_minibatch():
    assert swd.swd_resolutions(128) == [128, 64, 32, 16]
    assert len(swd.swd_resolutions(1024)) == 7
    assert swd.official_minibatch(128) == 64 and swd.official_minibatch(1024) == 8
    assert swd.official_minibatch(16) == 256
    with pytest.raises(PgmetricsError, match="power-of-two"):
        swd.swd_resolutions(96)
    assert swd.swd_resolutions(16) == [16]
    with pytest.raises(PgmetricsError, match=r"at least 16x16, got 8x8 \(use --resize\)$"):
        swd.swd_resolutions(8)


@pytest.mark.parametrize("exact", [True, False])
def test_pyramid_matches_official(data, exact):
    images, stages, _ = data
    levels = swd.laplacian_pyramid(images["set_a_64"][0:2], 3, exact=exact)
    for level, got in enumerate(levels):
        want = stages[f"pyr_a64_l{level}"]
        assert got.dtype == np.float32 and got.shape == want.shape
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, atol=1e-4)
    c1 = swd.laplacian_pyramid(torch.from_numpy(images["set_a_128"][0:1]), 4, exact=True)
    for level, got in enumerate(c1):
        np.testing.assert_array_equal(got, stages[f"pyr_a128_l{level}"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pyr_up_and_down_stages(data, dtype):
    """float64 filtering is exact everywhere; float32 with integer weights is exact for down(uint8) and up of
    the first Gaussian level (the sums fit 24 bits), which the fast pyramid relies on."""
    images, stages, _ = data
    np.testing.assert_array_equal(swd.pyr_down(images["set_a_64"][0:2], dtype), stages["gauss_a64_l1"])
    np.testing.assert_array_equal(swd.pyr_up(stages["gauss_a64_l1"], dtype), stages["pyrup_of_gauss_a64_l1"])
    gauss2 = swd.pyr_down(stages["gauss_a64_l1"], dtype)
    np.testing.assert_array_equal(gauss2, swd.pyr_down(stages["gauss_a64_l1"].astype(np.float64), np.float64))


def test_pyramid_against_scipy_on_odd_content():
    """Mirror borders and both pyr_up phases against the official formulation (scipy.ndimage.convolve) on
    random data with extreme values at the edges, all levels of a 64x64 image."""
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    kernel = (np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0).astype(np.float32)[None, None]

    def down(x):
        return scipy_ndimage.convolve(x, kernel, mode="mirror")[:, :, ::2, ::2]

    def up(x):
        spread = np.zeros((x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3]), x.dtype)
        spread[:, :, ::2, ::2] = x
        return scipy_ndimage.convolve(spread, kernel * 4.0, mode="mirror")

    rng = np.random.RandomState(7)
    images = rng.randint(0, 256, size=(2, 3, 64, 64)).astype(np.uint8)
    images[:, :, 0, :] = 255
    images[:, :, :, -1] = 0
    gauss = [images.astype(np.float32)]
    for _ in range(2):
        gauss.append(down(gauss[-1]))
    want = [gauss[0] - up(gauss[1]), gauss[1] - up(gauss[2]), gauss[2]]
    for got, expected in zip(swd.laplacian_pyramid(images, 3, exact=True), want, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_torch_path_matches_official(data):
    """The GPU (torch) pyramid and gather, run on the CPU, against the same stages."""
    images, stages, _ = data
    levels = swd.torch_laplacian_pyramid(torch.from_numpy(images["set_a_64"][0:2]), 3, exact=True)
    rng = swd.ReferenceRng(101)
    for index, level in enumerate(levels):
        np.testing.assert_array_equal(level.numpy(), stages[f"pyr_a64_l{index}"])
        x, y = rng.positions(256, level.shape[-1], "reals")
        got = swd.torch_gather_descriptors(level, torch.from_numpy(x), torch.from_numpy(y))
        want = stages[f"desc_a64_l{index}"]
        np.testing.assert_array_equal(got.numpy(), want.reshape(len(want), -1))
        np.testing.assert_allclose(swd.torch_normalize_descriptors(got).numpy(), stages[f"fin_a64_l{index}"],
                                   rtol=1e-5, atol=1e-5)


def test_positions_descriptors_and_normalisation(data, kernels):
    images, stages, _ = data
    rng = swd.ReferenceRng(101)
    for name in ("a", "b"):
        levels = swd.laplacian_pyramid(images[f"set_{name}_64"][0:2], 3, exact=True)
        for index, level in enumerate(levels):
            x, y = rng.positions(256, level.shape[-1], "reals")
            positions = stages[f"pos_{name}64_l{index}"]
            np.testing.assert_array_equal(x, positions[:, 0])
            np.testing.assert_array_equal(y, positions[:, 1])
            descriptors = swd.gather_descriptors(level, x, y)
            want = stages[f"desc_{name}64_l{index}"]
            np.testing.assert_array_equal(descriptors, want.reshape(len(want), -1))
            normalised = swd.normalize_descriptors(descriptors)
            np.testing.assert_allclose(normalised, stages[f"fin_{name}64_l{index}"], rtol=1e-5, atol=1e-5)


def test_directions_and_stage_distances(data):
    _, stages, expected = data
    np.testing.assert_array_equal(swd.ReferenceRng(202).directions(), stages["dirs_l0_r0"])
    rng = swd.ReferenceRng(202)
    real = [torch.from_numpy(stages[f"fin_a64_l{i}"]) for i in range(3)]
    fake = [torch.from_numpy(stages[f"fin_b64_l{i}"]) for i in range(3)]
    got = swd.swd_levels(real, fake, rng)
    np.testing.assert_allclose(got, expected["swd_stages"]["sliced_wasserstein"]["value_per_level"], rtol=5e-5)
    assert swd.swd_levels(real, real, swd.ReferenceRng(202)) == [0.0, 0.0, 0.0]


RUNS_FAST = ["a64_vs_b64_mb128", "a64_vs_b64_mb16", "a128_vs_b128_mb8", "a64_vs_a64_mb128"]


def _check_run(data, run_name, seeds=None):
    images, _, expected = data
    run = expected["swd_api"]["runs"][run_name]
    real, fake, minibatch = images[run["reals"]], images[run["fakes"]], run["minibatch"]
    for entry in run["per_seed"]:
        if seeds is not None and entry["seed"] not in seeds:
            continue
        result = swd.compute_swd(batches(real, minibatch), batches(fake, minibatch), real.shape[-1],
                                 seed=entry["seed"], reference_rng=True)
        assert list(result.metrics) == run["names"]
        np.testing.assert_allclose(list(result.metrics.values()), entry["fakes"], rtol=5e-5)


@pytest.mark.parametrize("run_name", RUNS_FAST)
def test_reference_rng_reproduces_official_values(data, run_name, kernels):
    _check_run(data, run_name, seeds={1000})


@pytest.mark.slow
@pytest.mark.parametrize("run_name", ["a128_vs_a128_mb64", "a128_vs_a128_mb8", "a128_vs_b128_mb64",
                                      "a128_vs_b128_mb8", "a64_vs_a64_mb128", "a64_vs_a64_mb16",
                                      "a64_vs_b64_mb128", "a64_vs_b64_mb16"])
def test_reference_rng_all_runs_and_seeds(data, run_name):
    _check_run(data, run_name)


def test_reference_rng_after_the_official_warmup(data):
    """evaluate_metrics' noise warm-up (10 minibatches, then end('warmup')) consumed before the reals."""
    images, _, expected = data
    run = expected["swd_api"]["runs"]["a64_vs_b64_mb16_with_warmup"]  # "fakes" holds the values here
    real, fake, minibatch = images[run["reals"]], images["set_b_64"], run["minibatch"]
    result = swd.compute_swd(batches(real, minibatch), batches(fake, minibatch), real.shape[-1], seed=run["seed"],
                             reference_rng=True, official_warmup=minibatch)
    np.testing.assert_allclose(list(result.metrics.values()), run["fakes"], rtol=5e-5)
    plain = swd.compute_swd(batches(real, minibatch), batches(fake, minibatch), real.shape[-1], seed=run["seed"],
                            reference_rng=True)
    assert not np.allclose(list(plain.metrics.values()), run["fakes"], rtol=5e-5)


def test_cached_real_descriptors_replay_the_stream(data, kernels):
    images, _, expected = data
    run = expected["swd_api"]["runs"]["a64_vs_b64_mb16"]
    real, fake = images["set_a_64"], images["set_b_64"]
    first = swd.compute_swd(batches(real, 16), batches(fake, 16), 64, seed=1000, reference_rng=True)
    again = swd.compute_swd(None, batches(fake, 16), 64, seed=1000, reference_rng=True,
                            real_descriptors=first.real_descriptors, real_batch_sizes=[16] * 4)
    assert again.metrics == first.metrics
    np.testing.assert_allclose(list(again.metrics.values()), run["per_seed"][0]["fakes"], rtol=5e-5)


@pytest.mark.parametrize("num_seeds", [2, pytest.param(10, marks=pytest.mark.slow)])
def test_fast_rng_follows_official_distribution(data, num_seeds, kernels):
    """Own RNG: K seeds' mean within mean +- 4 std / sqrt(K) (+ the table's own uncertainty), per level."""
    images, _, expected = data
    stats = expected["swd_api"]["stats"]["a64_vs_b64"]
    seeds = range(num_seeds)
    values = np.array([list(swd.compute_swd([images["set_a_64"]], [images["set_b_64"]], 64, seed=s).metrics.values())
                       for s in seeds])
    mean, std = np.array(stats["mean"]), np.array(stats["std_ddof1"])
    bound = 4 * std / np.sqrt(len(seeds)) + 4 * std / np.sqrt(len(stats["seeds"]))
    assert np.all(np.abs(values.mean(axis=0) - mean) < bound), (values.mean(axis=0), mean, bound)
    same = swd.compute_swd([images["set_a_64"]], [images["set_b_64"]], 64, seed=0).metrics
    split = swd.compute_swd(batches(images["set_a_64"], 8), batches(images["set_b_64"], 8), 64, seed=0).metrics
    np.testing.assert_allclose(list(split.values()), list(same.values()), rtol=1e-5)  # batching-independent


def test_unequal_sets_and_bad_shapes_are_refused(data):
    images, _, _ = data
    with pytest.raises(PgmetricsError, match="equally many"):
        swd.compute_swd([images["set_a_64"][:4]], [images["set_b_64"][:2]], 64, seed=0)
    with pytest.raises(PgmetricsError, match="expects 3x64x64"):
        swd.compute_swd([images["set_a_128"][:2]], [images["set_b_64"][:2]], 64, seed=0)


@pytest.mark.parametrize("exact", [True, False])
def test_patchwise_descriptors_equal_full_levels(data, exact, monkeypatch, kernels):
    """The fast paths (pyr_up only at the patches: compiled, or numpy for large levels, here forced from 32x32
    on; image slices in threads) give the same descriptors as gathering from the whole Laplacian levels; exact
    mode bit for bit against the official. The statistics come along."""
    monkeypatch.setattr(swd.descriptors, "PATCHWISE_MIN_SIZE", 32)
    images, stages, _ = data
    batch = images["set_b_128"][0:3]
    sizes = swd.swd_resolutions(128)
    rng = swd.ReferenceRng(5)
    positions = [rng.positions(3 * swd.PATCHES_PER_IMAGE, size, "reals") for size in sizes]
    levels = swd.laplacian_pyramid(batch, len(sizes), exact=exact)
    for got, level, (x, y) in zip(swd.batch_descriptors(batch, sizes, positions, exact), levels, positions,
                                  strict=True):
        if exact:
            np.testing.assert_array_equal(got, swd.gather_descriptors(level, x, y))
        else:  # float32 sums of the deeper levels round in a different order
            np.testing.assert_allclose(got, swd.gather_descriptors(level, x, y), atol=1e-4)
    monkeypatch.setattr(swd.parallel, "workers", lambda: 2)
    pieces, stats = swd.threaded_batch_descriptors(batch, sizes, positions, exact)
    for got, got_stats, want in zip(pieces, stats, swd.batch_descriptors(batch, sizes, positions, exact),
                                    strict=True):
        assert len(got) == 2
        np.testing.assert_array_equal(np.concatenate(got), want)
        np.testing.assert_allclose(got_stats, swd.descriptor_stats(want), rtol=1e-12)
    single = swd.batch_descriptors(images["set_a_128"][0:1], sizes, [(p[0][:128], p[1][:128]) for p in positions],
                                   True)
    official = [stages[f"pyr_a128_l{i}"] for i in range(4)]
    for got, level, (x, y) in zip(single, official, positions, strict=True):
        np.testing.assert_array_equal(got, swd.gather_descriptors(level, x[:128], y[:128]))


def test_distance_blocks_agree(monkeypatch):
    """Direction blocks in threads or not: one value (the official definition)."""
    generator = np.random.RandomState(3)
    a, b = generator.randn(2, 3000, swd.DESCRIPTOR_SIZE).astype(np.float32)
    rng = swd.ReferenceRng(4)
    directions = [rng.directions() for _ in range(swd.DIRECTION_REPEATS)]
    matrix = np.concatenate(directions, axis=1)
    want = np.mean([np.mean(np.abs(np.sort(a @ d, axis=0) - np.sort(b @ d, axis=0))) for d in directions])
    got = [swd.sliced_wasserstein(a, b, directions)]
    monkeypatch.setattr(swd.parallel, "workers", lambda: 2)
    monkeypatch.setattr(swd.distance, "BLOCK_BYTES", 8 * 3000 * 16)  # 16 directions per block
    got.append(swd.sliced_wasserstein(a, b, directions))
    assert matrix.shape[1] == 512
    np.testing.assert_allclose(got, [want, want], rtol=1e-5)


@pytest.mark.parametrize("exact", [True, False])
def test_torch_backend_equals_numpy_backend(data, exact):
    """The GPU steps (torch pyramid, gather, normalisation, sorted projections), run on the CPU, give the numpy
    backend's descriptors and distances."""
    images, _, _ = data
    sets = {}
    for backend in ("numpy", "torch"):
        rng = swd.make_rng(7, reference=exact)
        sets[backend] = []
        for stream, name in (("reals", "set_a_64"), ("fakes", "set_b_64")):
            target = swd.DescriptorSet(64, rng, stream, "cpu", backend=backend)
            for batch in batches(images[name][:12], 5):
                target.feed(batch)
            sets[backend].append(target.finish())
    for level_numpy, level_torch in zip(sets["numpy"][0] + sets["numpy"][1], sets["torch"][0] + sets["torch"][1],
                                        strict=True):
        np.testing.assert_allclose(level_torch.numpy(), level_numpy.numpy(), rtol=1e-4, atol=2e-4 if not exact else 1e-5)
    rng = swd.ReferenceRng(3)
    directions = [rng.directions() for _ in range(swd.DIRECTION_REPEATS)]
    real, fake = sets["numpy"][0][0], sets["numpy"][1][0]
    np.testing.assert_allclose(swd.distance.torch_sliced_wasserstein(real, fake, directions),
                               swd.sliced_wasserstein(real, fake, directions), rtol=1e-5)
    with pytest.raises(ValueError, match="cannot run"):
        swd.DescriptorSet(64, rng, "reals", "meta", backend="numpy")
