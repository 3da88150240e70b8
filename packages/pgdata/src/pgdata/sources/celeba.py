"""create_celeba: 128 x 128 crops of aligned CelebA (the PNG release, or the JPEG release)."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from pgdata.errors import PgdataError
from pgdata.sources.base import Source, SourceInfo
from pgdata.sources.common import SHUFFLED, check_count, parallel_chunks, shuffled_order

FULL_SIZE = 202599
PNG_FOLDER = "img_align_celeba_png"
JPEG_FOLDER = "img_align_celeba"
ALIGNED_SHAPE = (218, 178, 3)
CROP = 128


def find_images(celeba_dir: Path) -> tuple[list[Path], str]:
    """The PNG release (as the original) if present, else the JPEG release; sorted by name."""
    for folder, pattern in ((PNG_FOLDER, "*.png"), (JPEG_FOLDER, "*.jpg")):
        if (celeba_dir / folder).is_dir():
            files = sorted((path for path in (celeba_dir / folder).glob(pattern) if not path.name.startswith(".")),
                           key=lambda path: path.name)
            if not files:
                raise PgdataError(f"no {pattern} files in this folder", celeba_dir / folder)
            return files, folder
    raise PgdataError(f"neither {PNG_FOLDER}/ (aligned PNGs) nor {JPEG_FOLDER}/ (aligned JPEGs) found",
                      celeba_dir)


def decode_aligned(path: Path, warnings: list[str] | None = None) -> np.ndarray:
    """uint8 218 x 178 x 3; JPEGs through IJG libjpeg 8d (the decoder of the original environment), its
    warnings on damaged but complete files to `warnings`."""
    if path.suffix.lower() == ".jpg":
        from pgdata.jpeg import decode_jpeg_libjpeg8d

        image = decode_jpeg_libjpeg8d(path, warnings)
    else:
        import PIL.Image

        try:
            with PIL.Image.open(path) as opened:
                image = np.asarray(opened)
        except Exception as error:  # UnidentifiedImageError, truncated data
            raise PgdataError(f"cannot read image: {error}", path) from error
    if image.shape != ALIGNED_SHAPE:
        raise PgdataError(f"expected an aligned CelebA image of shape {ALIGNED_SHAPE} (H, W, C), got "
                          f"{image.shape}", path)
    return image


def decode_chunk(paths: Sequence[Path], cx: int, cy: int) -> tuple[np.ndarray, list[str]]:
    """Worker task: the window rows cy-64..cy+64, columns cx-64..cx+64 of each image, as C x 128 x 128,
    with the decoder's warnings."""
    half = CROP // 2
    warnings: list[str] = []
    crops = [decode_aligned(path, warnings)[cy - half : cy + half, cx - half : cx + half].transpose(2, 0, 1)
             for path in paths]
    return np.stack(crops), warnings


class CelebaSource(Source):
    """Shuffled 3 x 128 x 128 crops centred at (cx, cy); matches the official create_celeba."""

    def __init__(self, celeba_dir: str | Path, cx: int = 89, cy: int = 121, subset: bool = False,
                 workers: int | None = None):
        celeba_dir = Path(celeba_dir)
        self.files, folder = find_images(celeba_dir)
        height, width = ALIGNED_SHAPE[:2]
        half = CROP // 2
        if not (half <= cx <= width - half and half <= cy <= height - half):
            raise PgdataError(f"the 128x128 window centred at cx={cx}, cy={cy} leaves the {width}x{height} "
                              f"image: need {half} <= cx <= {width - half} and {half} <= cy <= {height - half}")
        self._warnings = check_count(len(self.files), FULL_SIZE, f"aligned CelebA ({folder})",
                                     celeba_dir / folder, subset)
        self.cx, self.cy = cx, cy
        self.order = shuffled_order(len(self.files))
        self.record_order = SHUFFLED
        self.workers = workers
        self.decoder_warnings: list[str] = []
        self.info = SourceInfo("celeba", 3, CROP, len(self.files))

    def iter_chunks(self, start: int = 0) -> Iterator[np.ndarray]:
        self.decoder_warnings = []
        paths = [self.files[index] for index in self.order[start:]]
        for images, warnings in parallel_chunks(functools.partial(decode_chunk, cx=self.cx, cy=self.cy), paths,
                                                workers=self.workers):
            self.decoder_warnings.extend(warnings)
            yield images

    def warnings(self) -> list[str]:
        return self._warnings + self.decoder_warnings
