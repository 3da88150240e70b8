"""create_from_images: a folder of images, all the same square power-of-two size (or --resolution)."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from pgdata.common.resolution import LOWEST_RESOLUTION, is_power_of_two
from pgdata.errors import PgdataError
from pgdata.sources.base import Source, SourceInfo
from pgdata.sources.common import INPUT_ORDER, SHUFFLED, parallel_chunks, shuffled_order

JPEG_DECODERS = ("libjpeg8d", "pillow")


def list_image_files(image_dir: Path) -> list[Path]:
    """Every file in the folder, sorted by name. Matches the official code, which takes glob('*') with no
    extension filter; we leave out hidden files (as glob does) and subfolders."""
    if not image_dir.is_dir():
        raise PgdataError("not a folder", image_dir)
    files = sorted((path for path in image_dir.iterdir() if not path.name.startswith(".") and path.is_file()),
                   key=lambda path: path.name)
    if not files:
        raise PgdataError("no image files in this folder", image_dir)
    return files


def decode_image(path: Path, jpeg_decoder: str = "libjpeg8d", warnings: list[str] | None = None) -> np.ndarray:
    """uint8 H x W x C (C = 1 grey, 3 RGB). JPEGs by IJG libjpeg 8d by default, as Pillow 3.1.1 decoded
    them in the original environment (modern Pillow's libjpeg-turbo differs on 4:2:0 files); libjpeg's
    warnings on damaged but complete JPEGs go to `warnings`."""
    from pgdata.jpeg import decode_jpeg_libjpeg8d, is_jpeg

    try:
        if jpeg_decoder == "libjpeg8d" and is_jpeg(path):
            image = decode_jpeg_libjpeg8d(path, warnings)
        else:
            image = _decode_pillow(path)
    except OSError as error:
        raise PgdataError(f"cannot read image: {error}", path) from error
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] not in (1, 3):
        raise PgdataError(f"has {image.shape[2]} channels; only greyscale and RGB images are supported", path)
    return image


def _decode_pillow(path: Path) -> np.ndarray:
    import PIL.Image

    try:
        with PIL.Image.open(path) as image:
            if image.mode not in ("L", "RGB"):
                raise PgdataError(f"image mode {image.mode} is not supported: convert the images to RGB "
                                  "or greyscale (L) first", path)
            return np.asarray(image)
    except PgdataError:
        raise
    except Exception as error:  # UnidentifiedImageError, truncated data, decoder errors
        raise PgdataError(f"cannot read image: {error}", path) from error


def centre_crop(image: np.ndarray) -> np.ndarray:
    """The centre square: rows (h - s) // 2 .. (h + s) // 2, same for columns (as create_lsun crops)."""
    height, width = image.shape[:2]
    side = min(height, width)
    return image[(height - side) // 2 : (height + side) // 2, (width - side) // 2 : (width + side) // 2]


def resize_square(image: np.ndarray, resolution: int) -> np.ndarray:
    """Centre crop, then Pillow 3.1.1's ANTIALIAS resize (the create_lsun filter, reimplemented in
    pgdata.celebahq.kernels so that the result does not depend on the installed Pillow)."""
    try:
        from pgdata.celebahq.kernels import resize_antialias
    except ImportError as error:
        raise PgdataError("resizing needs pgdata.celebahq.kernels.resize_antialias, which is not "
                          "available in this installation") from error
    square = np.ascontiguousarray(centre_crop(image))
    if square.shape[0] == resolution:
        return square
    return resize_antialias(square, (resolution, resolution))


def prepare(image: np.ndarray, path: Path, channels: int, resolution: int, resize: bool) -> np.ndarray:
    """H x W x C -> C x R x R, refusing images that do not fit the first one."""
    if image.shape[2] != channels:
        raise PgdataError(f"has {image.shape[2]} channel(s) but the first image has {channels}: all images "
                          "must be greyscale or all RGB", path)
    if resize:
        image = resize_square(image, resolution)
    elif image.shape[:2] != (resolution, resolution):
        raise PgdataError(f"is {image.shape[1]}x{image.shape[0]} but the first image is {resolution}x"
                          f"{resolution}: all images must have the same size (or pass --resolution)", path)
    return image.transpose(2, 0, 1)


def decode_chunk(paths: Sequence[Path], channels: int, resolution: int, resize: bool,
                 jpeg_decoder: str) -> tuple[np.ndarray, list[str]]:
    """Worker task: decode consecutive records into uint8 [n, C, R, R], with the decoder's warnings."""
    warnings: list[str] = []
    images = np.stack([prepare(decode_image(path, jpeg_decoder, warnings), path, channels, resolution, resize)
                       for path in paths])
    return images, warnings


class ImageFolderSource(Source):
    """Records from image files, shuffled (--shuffle 1) or in name order.

    Matches the official code: the first file (by name) sets the channel count and the resolution; every
    image must be square with a power-of-two side unless `resolution` is given, in which case each image is
    centre-cropped and resized to it (images already R x R are kept as they are).
    """

    def __init__(self, image_dir: str | Path, shuffle: bool = True, resolution: int | None = None,
                 jpeg_decoder: str = "libjpeg8d", workers: int | None = None):
        if jpeg_decoder not in JPEG_DECODERS:
            raise PgdataError(f"unknown JPEG decoder {jpeg_decoder!r} (choose {' or '.join(JPEG_DECODERS)})")
        self.files = list_image_files(Path(image_dir))
        first = decode_image(self.files[0], jpeg_decoder)
        channels = first.shape[2]
        self.resize = resolution is not None
        if resolution is None:
            height, width = first.shape[:2]
            if height != width:
                raise PgdataError(f"is {width}x{height}, not square: images must be square (or pass "
                                  "--resolution R to centre-crop and resize them)", self.files[0])
            resolution = height
        if not is_power_of_two(resolution, LOWEST_RESOLUTION):
            raise PgdataError(f"resolution {resolution} is not a power of two >= 4 (pass --resolution R to "
                              "resize)", self.files[0])
        self.order = shuffled_order(len(self.files)) if shuffle else np.arange(len(self.files))
        self.record_order = SHUFFLED if shuffle else INPUT_ORDER
        self.jpeg_decoder = jpeg_decoder
        self.workers = workers
        self.decoder_warnings: list[str] = []
        self.info = SourceInfo(Path(image_dir).name, channels, resolution, len(self.files))

    def iter_chunks(self, start: int = 0) -> Iterator[np.ndarray]:
        self.decoder_warnings = []
        paths = [self.files[index] for index in self.order[start:]]
        task = functools.partial(decode_chunk, channels=self.info.channels, resolution=self.info.resolution,
                                 resize=self.resize, jpeg_decoder=self.jpeg_decoder)
        for images, warnings in parallel_chunks(task, paths, workers=self.workers):
            self.decoder_warnings.extend(warnings)
            yield images

    def warnings(self) -> list[str]:
        return list(self.decoder_warnings)
