"""pgdata.common.images: the layouts, the official float -> uint8 conversion and grid tiling give the values of
the copies they replace (pgdata's contact sheet, pgtrain's grids and generation, the pgshards PNG layout)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pgdata.common import images
from tests.common.copies import current_copy


def batch(count: int, channels: int, size: int = 5, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, channels, size, size + 1)).astype(dtype)


def test_official_conversion_by_hand() -> None:
    """x * 127.5 + 127.5 in float32, then round half to even: 0.5 -> 0 and 1.5 -> 2 (the official rint)."""
    values = np.float32([-1.0, -0.99607843, -0.99215686, 0.0, 1.0, 2.0, -3.0])
    assert images.to_uint8(values).tolist() == [0, 0, 1, 128, 255, 255, 0]
    assert images.to_uint8(np.float32([0.5, 1.5, 2.5, 254.5, 300.0]), (0, 255)).tolist() == [0, 2, 2, 254, 255]
    already = batch(2, 3)
    assert images.to_uint8(already, (0, 255)) is already


@pytest.mark.parametrize("drange", [(-1.0, 1.0), (0, 255), (0.0, 1.0), (-0.5, 2.0)])
def test_conversion_is_that_of_pgtrain(drange) -> None:
    rng = np.random.default_rng(1)
    floats = rng.uniform(drange[0] - 0.2, drange[1] + 0.2, (3, 3, 8, 8)).astype(np.float32)
    floats.flat[:4] = np.float32(drange[0]), np.float32(drange[1]), np.nan, np.float32(np.mean(drange))
    floats = np.nan_to_num(floats)
    images_to_uint8 = current_copy("images_to_uint8", "pgtrain.generate")
    grids_to_uint8 = current_copy("to_uint8", "pgtrain.grids")
    ours = images.to_uint8(floats, drange)
    assert np.array_equal(ours, images_to_uint8(floats, drange)) and np.array_equal(ours, grids_to_uint8(floats, drange))
    integers = batch(2, 3)
    assert np.array_equal(images.to_uint8(integers, drange), grids_to_uint8(integers, drange))


@pytest.mark.parametrize("channels", [1, 3])
def test_layouts_are_those_of_pil_and_the_copies(channels) -> None:
    image = batch(1, channels)[0]
    hwc = images.chw_to_hwc(image)
    assert hwc.flags.c_contiguous and Image.fromarray(hwc).mode == ("L" if channels == 1 else "RGB")
    assert np.array_equal(np.asarray(Image.fromarray(hwc)), hwc)
    assert np.array_equal(images.hwc_to_chw(hwc), image) and images.hwc_to_chw(hwc).flags.c_contiguous
    assert np.array_equal(hwc, current_copy("to_pil_layout", "pgtrain.generate")(image))
    grey = image[0]
    assert images.chw_to_hwc(grey) is grey  # H x W already
    # pgdata.contact_sheet's copy was migrated away: last, so that its skip leaves the checks above run
    assert np.array_equal(hwc, current_copy("to_hwc", "pgdata.contact_sheet")(image))


@pytest.mark.parametrize("channels", [1, 3])
def test_pixels_decoded_by_pil_come_back_in_the_shard_layout(channels) -> None:
    image = batch(1, channels)[0]
    buffer = io.BytesIO()
    Image.fromarray(images.chw_to_hwc(image)).save(buffer, format="PNG")
    decode_png = current_copy("decode_png", "pgdata.formats.pgshards.layout", "pgdata.formats.pgshards")
    decoded = images.hwc_to_chw(np.asarray(Image.open(io.BytesIO(buffer.getvalue()))))
    assert np.array_equal(decoded, image) and np.array_equal(decoded, decode_png(buffer.getvalue(), image.shape))


def test_grid_by_hand() -> None:
    tiles = np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1)
    assert images.tile_grid(tiles).tolist() == [[[0, 1, 2], [3, 4, 0]]]  # ceil(sqrt(5)) = 3 columns
    assert images.tile_grid(tiles, columns=2, rows=2).tolist() == [[[0, 1], [2, 3]]]  # the 5th left out
    assert images.tile_grid(tiles[:2, 0], columns=1, spacing=1, background=9).tolist() == [
        [9, 9, 9], [9, 0, 9], [9, 9, 9], [9, 1, 9], [9, 9, 9]]  # N x H x W in, H' x W' out, framed
    assert images.grid_size(10) == (4, 3) and images.grid_size(0) == (1, 1) and images.grid_size(7, 2) == (2, 4)
    with pytest.raises(ValueError, match="columns must be at least 1"):
        images.grid_size(3, 0)


@pytest.mark.parametrize("count,channels,columns,spacing,background",
                         [(1, 3, None, 0, 0), (7, 3, None, 0, 0), (7, 1, 3, 2, 255), (9, 3, 4, 1, 17),
                          (16, 1, None, 0, 0), (5, 0, 2, 3, 0)])
def test_grid_is_that_of_the_contact_sheet(count, channels, columns, spacing, background) -> None:
    contact_sheet = current_copy("contact_sheet", "pgdata.contact_sheet")
    tiles = batch(count, max(channels, 1))
    tiles = tiles[:, 0] if channels == 0 else tiles  # N x H x W
    expected = contact_sheet(tiles, columns, spacing, background)
    ours = images.tile_grid(tiles, columns, spacing=spacing, background=background)
    assert ours.dtype == expected.dtype and np.array_equal(ours, expected)


@pytest.mark.parametrize("count,columns,rows", [(6, 3, 2), (4, 3, 2), (9, 2, 2), (1, 4, 3), (12, 4, 3)])
def test_grid_is_that_of_pgtrain_image_grids(count, columns, rows) -> None:
    image_grid = current_copy("image_grid", "pgtrain.grids")
    for tiles in (batch(count, 3, dtype=np.float32), batch(count, 1)):
        expected = image_grid(tiles, columns, rows)
        ours = images.tile_grid(tiles, columns, rows)
        assert ours.dtype == expected.dtype and np.array_equal(ours, expected)
