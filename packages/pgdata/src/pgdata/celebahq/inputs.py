"""Reading and checking the two input folders: CelebA (in the wild) and the CelebA-HQ deltas.

The official create_celebahq demands 202599 JPEGs in img_celeba/, the landmark list, image_list.txt and 30
delta zips; it checks the JPEG decoder by the md5 of 000001.jpg's decoded pixels. We keep those checks and
add what the original left to asserts: which files are missing or extra, and whether the folder is the
aligned CelebA by mistake. `subset` (for partial downloads and test data) turns the counts into warnings
and keeps exactly the image_list.txt rows whose zip is present.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pgdata.celebahq.deltas import zip_name
from pgdata.errors import PgdataError

EXPECTED_JPEGS = 202_599
EXPECTED_ZIPS = 30
# md5 of the decoded pixels of CelebA's real img_celeba/000001.jpg under libjpeg 8d (official code's check).
CELEBA_000001_MD5 = "9cad8178d6cb0196b36f7b34bc5eb6d3"
IMAGE_LIST_COLUMNS = ["idx", "orig_idx", "orig_file", "proc_md5", "final_md5"]
_ZIP_PATTERN = re.compile(r"^deltas(\d{5})\.zip$")


@dataclass(frozen=True)
class Row:
    """One image_list.txt row (idx is also the row position in the full list)."""

    idx: int
    orig_idx: int
    orig_file: str
    proc_md5: str
    final_md5: str


@dataclass
class Inputs:
    celeba_dir: Path
    delta_dir: Path
    rows: list[Row]  # the rows that will be built, in image_list order
    landmarks: dict[int, np.ndarray]  # orig_idx -> float32 [5, 2], for the rows above
    warnings: list[str] = field(default_factory=list)

    @property
    def image_dir(self) -> Path:
        return self.celeba_dir / "img_celeba"


def read_image_list(path: Path) -> list[Row]:
    try:
        lines = [line.split() for line in path.read_text(encoding="ascii").splitlines() if line.strip()]
    except FileNotFoundError as error:
        raise PgdataError("image_list.txt not found: give the CelebA-HQ delta folder (image_list.txt and "
                          "deltas00000.zip ... deltas29000.zip)", path) from error
    except UnicodeDecodeError as error:
        raise PgdataError("not a CelebA-HQ image_list.txt (not ASCII text)", path) from error
    if not lines or lines[0] != IMAGE_LIST_COLUMNS:
        raise PgdataError(f"expected the header {' '.join(IMAGE_LIST_COLUMNS)}", path)
    rows = []
    for number, fields in enumerate(lines[1:], start=2):
        try:
            if len(fields) != 5:
                raise ValueError
            row = Row(int(fields[0]), int(fields[1]), fields[2], fields[3].lower(), fields[4].lower())
        except ValueError as error:
            raise PgdataError(f"line {number} is not 'idx orig_idx orig_file proc_md5 final_md5'", path) from error
        if row.idx != len(rows):
            raise PgdataError(f"line {number}: idx {row.idx}, expected {len(rows)} (rows must be in idx order)",
                              path)
        rows.append(row)
    if not rows:
        raise PgdataError("image_list.txt lists no images", path)
    return rows


def read_landmarks(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """float32 [5, 2] per wanted 0-based row of list_landmarks_celeba.txt (count line, header, rows)."""
    try:
        with open(path, encoding="ascii") as file:
            lines = file.read().splitlines()[2:]
    except FileNotFoundError as error:
        raise PgdataError("landmark list not found: the CelebA folder must hold Anno/list_landmarks_celeba.txt "
                          "(the in-the-wild landmarks, not list_landmarks_align_celeba.txt)", path) from error
    except UnicodeDecodeError as error:
        raise PgdataError(f"not CelebA's landmark list: byte {error.start} is not ASCII text (a damaged "
                          "file?)", path) from error
    result = {}
    for index in sorted(wanted):
        if index >= len(lines):
            raise PgdataError(f"has {len(lines)} rows; image_list.txt needs row {index}", path)
        values = lines[index].split()[1:]
        try:
            result[index] = np.float32([float(value) for value in values]).reshape(5, 2)
        except ValueError as error:
            raise PgdataError(f"row {index + 3} is not a file name and 10 numbers", path) from error
    return result


def count_jpegs(image_dir: Path) -> int:
    with os.scandir(image_dir) as entries:
        return sum(1 for entry in entries if entry.name.endswith(".jpg"))


def check_celeba_dir(celeba_dir: Path) -> Path:
    image_dir = celeba_dir / "img_celeba"
    if not image_dir.is_dir():
        if (celeba_dir / "img_align_celeba").is_dir() or (celeba_dir / "img_align_celeba_png").is_dir():
            raise PgdataError("this is the aligned CelebA (img_align_celeba); CelebA-HQ is made from the "
                              "in-the-wild images: extract img_celeba.7z into img_celeba/", celeba_dir)
        raise PgdataError("no img_celeba/ folder: give the CelebA folder holding img_celeba/ (the "
                          "in-the-wild JPEGs) and Anno/", celeba_dir)
    return image_dir


def read_inputs(celeba_dir: str | Path, delta_dir: str | Path, subset: bool = False) -> Inputs:
    """Check both folders and return what to build; PgdataError (one line) for anything wrong."""
    celeba_dir, delta_dir = Path(celeba_dir), Path(delta_dir)
    warnings: list[str] = []
    image_dir = check_celeba_dir(celeba_dir)
    count = count_jpegs(image_dir)
    if count != EXPECTED_JPEGS:
        message = f"found {count} JPEGs, the in-the-wild CelebA has {EXPECTED_JPEGS}"
        if not subset:
            raise PgdataError(message + " (use --subset to build from part of it)", image_dir)
        warnings.append(f"{image_dir}: {message}")

    if not delta_dir.is_dir():
        raise PgdataError("delta folder not found", delta_dir)
    rows = read_image_list(delta_dir / "image_list.txt")
    needed = sorted({zip_name(row.idx) for row in rows})
    present = sorted(path.name for path in delta_dir.glob("delta*.zip"))
    missing = [name for name in needed if name not in present]
    extra = [name for name in present if name not in needed]
    if extra:
        raise PgdataError(f"unexpected zip(s) {', '.join(extra)}: image_list.txt needs only "
                          f"{needed[0]} .. {needed[-1]}", delta_dir)
    if missing or len(present) != EXPECTED_ZIPS:
        message = (f"{len(present)} delta zips, expected {EXPECTED_ZIPS}"
                   + (f"; missing {_summarize(missing)}" if missing else ""))
        if not subset:
            raise PgdataError(message + " (use --subset to build the images of the zips present)", delta_dir)
        warnings.append(f"{delta_dir}: {message}; building the {len(present)} zip(s) present")
        rows = [row for row in rows if zip_name(row.idx) in present]
        if not rows:
            raise PgdataError("no image_list.txt row has its zip here", delta_dir)

    landmarks = read_landmarks(celeba_dir / "Anno" / "list_landmarks_celeba.txt", {row.orig_idx for row in rows})
    return Inputs(celeba_dir, delta_dir, rows, landmarks, warnings)


def check_reference_jpeg(image_dir: Path, expected_md5: str, subset: bool) -> str | None:
    """The original's decoder check, reread as a dataset check: our decoder *is* libjpeg 8d, so a different
    md5 of 000001.jpg means the files are not the in-the-wild CelebA. Returns a warning or None."""
    from pgdata.celebahq.deltas import md5_hex
    from pgdata.jpeg import decode_jpeg_libjpeg8d

    path = image_dir / "000001.jpg"
    if not path.exists():
        if subset:
            return f"{path}: missing, so the CelebA check on it was skipped"
        raise PgdataError("missing (the in-the-wild CelebA starts with it)", path)
    pixels = decode_jpeg_libjpeg8d(path)
    md5 = md5_hex(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    if md5 != expected_md5:
        raise PgdataError(f"decoded pixels have md5 {md5}, expected {expected_md5}: this is not CelebA's "
                          f"in-the-wild 000001.jpg ({pixels.shape[1]}x{pixels.shape[0]}; the aligned set "
                          f"is 178x218); give the folder of img_celeba.7z", path)
    return None


def _summarize(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
