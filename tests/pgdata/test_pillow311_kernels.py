"""Our Pillow 3.1.1 kernels against Pillow 3.1.1 itself (built under Python 3.6 by tools/pillow311.py).

The fast tests use the oracle only when its build is cached (`python tools/pillow311.py build`, about a
minute); test_build_oracle_and_sweep (slow) builds it when Python 3.6 is available. Without Python 3.6
they skip. Both of our backends (compiled and numpy) must give the oracle's bytes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pgdata.celebahq import kernels, native
from tests.conftest import REPO_ROOT, load_module


def _tool():
    return load_module(REPO_ROOT / "tools" / "pillow311.py", "pillow311_tool")


def _backends() -> list[str]:
    return ["numpy", "native"] if native.library() is not None else ["numpy"]


def _random_image(rng, height, width, channels):
    shape = (height, width) if channels == 1 else (height, width, channels)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    if rng.random() < 0.5:  # smooth images exercise other rounding paths than noise
        ys, xs = np.mgrid[:height, :width]
        smooth = 127.5 + 127.5 * np.sin(xs / (3 + 7 * rng.random()) + ys / (5 + 9 * rng.random()))
        image = (np.clip(smooth, 0, 255).astype(np.uint8) if channels == 1
                 else np.repeat(smooth[:, :, None], channels, axis=2).clip(0, 255).astype(np.uint8))
    return image


def _resize_cases(rng, count):
    cases = [((64, 64, 3), (16, 16)), ((48, 40, 3), (192, 160)), ((201, 150, 3), (256, 256)),
             ((30, 40, 3), (30, 11)), ((7, 9, 1), (1, 1)), ((1, 1, 3), (5, 3)), ((90, 70, 1), (91, 69))]
    for _ in range(count):
        h, w = (int(v) for v in rng.integers(1, 120, 2))
        mode = rng.integers(0, 3)
        if mode == 0:  # downscale, integer or not
            size = (max(1, int(w / rng.uniform(1, 6))), max(1, int(h / rng.uniform(1, 6))))
        elif mode == 1:  # power-of-two upscale, as the superres step does
            factor = 2 ** int(rng.integers(1, 4))
            size = (w * factor, h * factor)
        else:
            size = tuple(int(v) for v in rng.integers(1, 160, 2))
        cases.append(((h, w, int(rng.choice([1, 3]))), size))
    return cases


def _quad_cases(rng, count):
    cases = []
    for _ in range(count):
        h, w = (int(v) for v in rng.integers(8, 90, 2))
        size = tuple(int(v) for v in rng.integers(4, 100, 2))
        if rng.random() < 0.5:  # a rotated square as create_celebahq makes, partly outside at times
            cx, cy = rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h
            angle, radius = rng.uniform(0, 2 * math.pi), rng.uniform(3, max(h, w))
            dx, dy = radius * math.cos(angle), radius * math.sin(angle)
            corners = np.float32([cx - dx + dy, cy - dy - dx, cx - dx - dy, cy - dy + dx,
                                  cx + dx - dy, cy + dy + dx, cx + dx + dy, cy + dy - dx]) + np.float32(0.5)
        else:
            corners = rng.uniform(-15, max(h, w) + 15, 8)
        cases.append((_random_image(rng, h, w, int(rng.choice([1, 3]))), size, [float(v) for v in corners]))
    return cases


def _check_against_oracle(tool, seed, resize_count, quad_count):
    rng = np.random.default_rng(seed)
    requests, ours = [], []
    for shape, size in _resize_cases(rng, resize_count):
        image = _random_image(rng, *shape)
        requests.append({"op": "resize", "image": image, "size": size})
        ours.append([kernels.resize_antialias(image, size, backend=b) for b in _backends()])
    for image, size, corners in _quad_cases(rng, quad_count):
        requests.append({"op": "quad", "image": image, "size": size, "data": corners})
        coefficients = kernels.quad_coefficients(corners, size)
        ours.append([kernels.transform_quad_bilinear(image, size, coefficients, backend=b) for b in _backends()])
    expected = tool.oracle_call(requests)
    wrong = []
    for request, mine, theirs in zip(requests, ours, expected, strict=True):
        for backend, result in zip(_backends(), mine, strict=True):
            if result.shape != theirs.shape or not np.array_equal(result, theirs):
                wrong.append((request["op"], request["image"].shape, request["size"], backend))
    assert wrong == [], wrong[:10]
    return [(request, mine[0]) for request, mine in zip(requests, ours, strict=True)]


def _assert_requested_sizes(results) -> None:
    """Each of our outputs is uint8 at the size asked (width, height), with the input's channels: checked on
    what the kernels produced, so that a comparison that matched nothing cannot pass unseen."""
    for request, result in results:
        width, height = request["size"]
        expected = (height, width, *request["image"].shape[2:])
        assert result.dtype == np.uint8 and result.shape == expected, (request["op"], result.shape, expected)


@pytest.fixture(scope="module")
def cached_oracle():
    tool = _tool()
    if not tool.is_built():
        pytest.skip("Pillow 3.1.1 oracle not built (python tools/pillow311.py build, or make test-slow)")
    return tool


@pytest.mark.oracle_pillow
def test_kernels_match_pillow311(cached_oracle):
    _assert_requested_sizes(_check_against_oracle(cached_oracle, seed=311, resize_count=40, quad_count=30))


@pytest.mark.oracle_pillow
def test_celebahq_sizes_match_pillow311(cached_oracle):
    """The exact operations of the pipeline at their real sizes: 4096 -> 1024 and a x4 superres."""
    rng = np.random.default_rng(4096)
    big = _random_image(rng, 4096, 4096, 3)
    small = _random_image(rng, 300, 260, 3)
    corners = [10.25, 30.5, 40.75, 1190.5, 1230.5, 1160.25, 1200.5, 1.5]
    requests = [{"op": "resize", "image": big, "size": (1024, 1024)},
                {"op": "resize", "image": small, "size": (1040, 1200)},
                {"op": "quad", "image": np.ascontiguousarray(big[:1300, :1300]), "size": (4096, 4096),
                 "data": corners}]
    expected = cached_oracle.oracle_call(requests)
    assert np.array_equal(kernels.resize_antialias(big, (1024, 1024)), expected[0])
    assert np.array_equal(kernels.resize_antialias(small, (1040, 1200)), expected[1])
    quad = kernels.transform_quad_bilinear(big[:1300, :1300], (4096, 4096),
                                           kernels.quad_coefficients(corners, (4096, 4096)))
    assert np.array_equal(quad, expected[2])


@pytest.mark.slow
@pytest.mark.oracle_pillow
def test_build_oracle_and_sweep():
    tool = _tool()
    if tool.find_python36() is None:
        pytest.skip("no Python 3.6 (pyenv install 3.6.15) to build Pillow 3.1.1 with")
    try:
        tool.build()
    except Exception as error:  # network or compiler trouble: say why, do not fail the suite
        pytest.skip(f"cannot build Pillow 3.1.1: {error}")
    _assert_requested_sizes(_check_against_oracle(tool, seed=2018, resize_count=200, quad_count=150))


def test_backends_agree_without_oracle():
    """The compiled loops and the numpy reference give the same bytes (runs everywhere)."""
    if native.library() is None:
        pytest.skip("no C compiler: only the numpy kernels exist here")
    rng = np.random.default_rng(7)
    for shape, size in _resize_cases(rng, 15):
        image = _random_image(rng, *shape)
        assert np.array_equal(kernels.resize_antialias(image, size, backend="numpy"),
                              kernels.resize_antialias(image, size, backend="native")), (shape, size)
    for image, size, corners in _quad_cases(rng, 15):
        coefficients = kernels.quad_coefficients(corners, size)
        assert np.array_equal(kernels.transform_quad_bilinear(image, size, coefficients, backend="numpy"),
                              kernels.transform_quad_bilinear(image, size, coefficients, backend="native"))
