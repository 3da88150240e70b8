"""pgdata.common.images: the layouts, the official float -> uint8 conversion and grid tiling, checked by hand and
against plain element-by-element references written here (the packages use these now)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pgdata.common import images


def reference_to_uint8(values: np.ndarray, drange) -> np.ndarray:
    """convert_to_pil_image one pixel at a time: float32 scale and bias, x * scale + bias, rint, clip."""
    scale = np.float32(255) / (np.float32(drange[1]) - np.float32(drange[0]))
    bias = np.float32(0) - np.float32(drange[0]) * scale
    out = [min(max(np.rint(np.float32(v) * scale + bias), 0), 255) for v in values.ravel()]
    return np.array(out, np.uint8).reshape(values.shape)


def reference_grid(tiles: np.ndarray, columns: int, rows: int, spacing: int = 0, background=0) -> np.ndarray:
    """Cell (row, column) holds tile row * columns + column, `spacing` background pixels before each cell and
    after the last; pasted one tile at a time."""
    squeeze = tiles.ndim == 3
    tiles = tiles[:, None] if squeeze else tiles
    _, channels, height, width = tiles.shape
    sheet = np.full((channels, rows * (height + spacing) + spacing, columns * (width + spacing) + spacing),
                    background, tiles.dtype)
    for index in range(min(len(tiles), rows * columns)):
        top = spacing + (index // columns) * (height + spacing)
        left = spacing + (index % columns) * (width + spacing)
        sheet[:, top:top + height, left:left + width] = tiles[index]
    return sheet[0] if squeeze else sheet


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
def test_conversion_is_that_of_the_reference(drange) -> None:
    rng = np.random.default_rng(1)
    floats = rng.uniform(drange[0] - 0.2, drange[1] + 0.2, (3, 3, 8, 8)).astype(np.float32)
    floats.flat[:4] = np.float32(drange[0]), np.float32(drange[1]), np.nan, np.float32(np.mean(drange))
    floats = np.nan_to_num(floats)
    assert np.array_equal(images.to_uint8(floats, drange), reference_to_uint8(floats, drange))
    integers = batch(2, 3)  # uint8 pixels go through the same arithmetic unless drange is (0, 255)
    assert np.array_equal(images.to_uint8(integers, drange), reference_to_uint8(integers, drange))


@pytest.mark.parametrize("channels", [1, 3])
def test_layouts_are_those_of_pil(channels) -> None:
    image = batch(1, channels)[0]
    hwc = images.chw_to_hwc(image)
    assert hwc.flags.c_contiguous and Image.fromarray(hwc).mode == ("L" if channels == 1 else "RGB")
    assert np.array_equal(np.asarray(Image.fromarray(hwc)), hwc)
    assert np.array_equal(images.hwc_to_chw(hwc), image) and images.hwc_to_chw(hwc).flags.c_contiguous
    grey = image[0]
    assert images.chw_to_hwc(grey) is grey  # H x W already
    for y, x in ((0, 0), (2, 3), (4, 5)):
        assert hwc[y, x].tolist() == (image[:, y, x].tolist() if channels == 3 else image[0, y, x])


@pytest.mark.parametrize("channels", [1, 3])
def test_pixels_decoded_by_pil_come_back_in_the_shard_layout(channels) -> None:
    image = batch(1, channels)[0]
    buffer = io.BytesIO()
    Image.fromarray(images.chw_to_hwc(image)).save(buffer, format="PNG")
    from pgdata.formats.pgshards.layout import decode_png
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
def test_contact_sheets_are_those_of_the_reference(count, channels, columns, spacing, background) -> None:
    tiles = batch(count, max(channels, 1))
    tiles = tiles[:, 0] if channels == 0 else tiles  # N x H x W
    expected = reference_grid(tiles, *images.grid_size(count, columns), spacing, background)
    ours = images.tile_grid(tiles, columns, spacing=spacing, background=background)
    assert ours.dtype == expected.dtype and np.array_equal(ours, expected)


@pytest.mark.parametrize("count,columns,rows", [(6, 3, 2), (4, 3, 2), (9, 2, 2), (1, 4, 3), (12, 4, 3)])
def test_training_grids_are_those_of_the_reference(count, columns, rows) -> None:
    for tiles in (batch(count, 3, dtype=np.float32), batch(count, 1)):
        expected = reference_grid(tiles, columns, rows)
        ours = images.tile_grid(tiles, columns, rows)
        assert ours.dtype == expected.dtype and np.array_equal(ours, expected)
