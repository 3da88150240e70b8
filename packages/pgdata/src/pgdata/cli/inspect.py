"""pgdata commands that look at datasets: display, grid, extract, compare, info, verify.

Names and arguments follow the official dataset_tool.py (display, extract, compare --ignore_labels) and
h5tool.py (inspect, here `info`); every command reads any format (pgshards, original TFRecords, legacy
HDF5) through pgdata.formats.open_dataset.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from pgdata.cli.app import command, option_names
from pgdata.common.atomic import atomic_path
from pgdata.common.images import chw_to_hwc, tile_grid
from pgdata.errors import PgdataError
from pgdata.formats import DatasetReader, detect_format, open_dataset
from pgdata.parallel import ordered_map
from pgdata.progress import progress_bar

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
Resolution = Annotated[int | None, typer.Option(*option_names("resolution"),
                                                help="Resolution in pixels (default: the full one).")]

NO_SCREEN_HINT = ("to look at images here, write a contact sheet with `pgdata grid DATASET sheet.png` or PNG "
                  "files with `pgdata extract DATASET DIR`")


def _size_text(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError


def _disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def _check_range(reader: DatasetReader, resolution: int, start: int, count: int | None) -> tuple[int, int]:
    total = reader.num_images_at(resolution)
    if start < 0 or start >= total:
        raise PgdataError(f"--start {start} outside the {total} images (0 .. {total - 1})", reader.path)
    if count is not None and count < 1:
        raise PgdataError(f"--count must be at least 1, got {count}")
    return start, total if count is None else min(total, start + count)


# --- display --------------------------------------------------------------------------------------------


def screen_problem() -> str | None:
    """Why no OpenCV window can be shown here, or None when one can."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no screen to display on (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    try:
        import cv2
    except ImportError:
        return "OpenCV is not installed"
    try:
        cv2.namedWindow("pgdata")
    except cv2.error:
        return "this OpenCV has no GUI support (opencv-python-headless)"
    return None


@command("display")
def display(
    dataset: Annotated[Path, typer.Argument(help="Dataset: pgshards or TFRecords directory, or HDF5 file.")],
    resolution: Resolution = None,
) -> None:
    """Display images in dataset, one at a time (SPACE or ENTER: next, ESC: quit).

    Needs a screen and an OpenCV with GUI support; prints each image's index and label.

    Example: pgdata display datasets/mnist
    """
    reader = open_dataset(dataset)
    resolution = reader.check_resolution(resolution)
    problem = screen_problem()
    if problem is not None:
        raise PgdataError(f"cannot display: {problem}; {NO_SCREEN_HINT}")
    import cv2

    labels = reader.labels()
    print(f'Displaying "{dataset}" ({reader.num_images} images). Press SPACE or ENTER to advance, ESC to exit')
    shown = 0
    with reader:
        for index, image in enumerate(reader.iter_images(resolution)):
            label = [] if labels is None else labels[index].tolist()
            print(f"\nidx = {index:<8d}\nlabel = {label}")
            pixels = chw_to_hwc(image)
            cv2.imshow("pgdata", np.ascontiguousarray(pixels[:, :, ::-1] if pixels.ndim == 3 else pixels))
            shown += 1
            if cv2.waitKey() == 27:
                break
    cv2.destroyAllWindows()
    print(f"\nDisplayed {shown} images.")


# --- grid -----------------------------------------------------------------------------------------------


def save_image_atomically(image, path: Path) -> None:
    """Write a PIL image under a temporary name beside `path`, then rename: never a half-written file."""
    from PIL import Image

    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise PgdataError("unknown image file extension (use .png)", path)
    if not path.parent.is_dir():
        raise PgdataError("output folder does not exist", path.parent)
    with atomic_path(path) as temporary:
        image.save(temporary, format=image_format)


@command("grid")
def grid(
    dataset: Annotated[Path, typer.Argument(help="Dataset: pgshards or TFRecords directory, or HDF5 file.")],
    output: Annotated[Path, typer.Argument(help="Image file to write (PNG).")],
    resolution: Resolution = None,
    count: Annotated[int, typer.Option(*option_names("count"), help="Number of images.")] = 64,
    start: Annotated[int, typer.Option(*option_names("start"), help="Index of the first image.")] = 0,
    columns: Annotated[int | None, typer.Option(*option_names("columns"),
                                                help="Images per row (default: a square grid).")] = None,
    quiet: Quiet = False,
) -> None:
    """Write a contact sheet of consecutive images: the way to look at a dataset without a screen.

    Example: pgdata grid datasets/celebahq sheet.png --resolution 128 --count 64
    """
    from PIL import Image

    with open_dataset(dataset) as reader:
        resolution = reader.check_resolution(resolution)
        first, stop = _check_range(reader, resolution, start, count)
        bar = progress_bar(stop - first, "Reading", quiet=quiet)
        batches = []
        for batch in reader.iter_batches(resolution, batch_size=64, start=first, stop=stop):
            batches.append(batch)
            bar.update(len(batch))
        bar.close()
    if columns is not None and columns < 1:
        raise PgdataError(f"--columns must be at least 1, got {columns}")
    sheet = tile_grid(np.concatenate(batches), columns=columns)
    save_image_atomically(Image.fromarray(chw_to_hwc(sheet)), output)
    print(f'Wrote {stop - first} images ({first} .. {stop - 1}) at {resolution}x{resolution} to "{output}"')


# --- extract --------------------------------------------------------------------------------------------


def _save_pngs(job: tuple[Path, int, np.ndarray]) -> int:
    """Write one batch as img%08d.png, numbered like the official extract (grey: mode L, else RGB)."""
    from PIL import Image

    output_dir, first, batch = job
    for offset, image in enumerate(batch):
        mode = "L" if image.shape[0] == 1 else "RGB"
        Image.fromarray(chw_to_hwc(image), mode).save(output_dir / f"img{first + offset:08d}.png")
    return len(batch)


@command("extract")
def extract(
    dataset: Annotated[Path, typer.Argument(help="Dataset: pgshards or TFRecords directory, or HDF5 file.")],
    output_dir: Annotated[Path, typer.Argument(help="Directory to extract the images into.")],
    resolution: Resolution = None,
    quiet: Quiet = False,
) -> None:
    """Extract images from dataset as PNG files img00000000.png, img00000001.png, ...

    Example: pgdata extract datasets/mnist mnist-images
    """
    with open_dataset(dataset) as reader:
        resolution = reader.check_resolution(resolution)
        total = reader.num_images_at(resolution)
        if output_dir.exists() and not output_dir.is_dir():
            raise PgdataError("exists and is not a directory", output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        print(f'Extracting {total} images at {resolution}x{resolution} to "{output_dir}"')
        per_task = max(1, min(64, 2**20 // (reader.channels * resolution * resolution)))
        jobs = ((output_dir, first, batch) for first, batch in zip(
            range(0, total, per_task), reader.iter_batches(resolution, batch_size=per_task), strict=True))
        workers = 1 if total <= 2 * per_task else None  # a process pool only pays off on real work
        bar = progress_bar(total, "Extracting", quiet=quiet)
        for written in ordered_map(_save_pngs, jobs, workers=workers, prefetch=2):
            bar.update(written)
        bar.close()
    print(f"Extracted {total} images.")


# --- compare --------------------------------------------------------------------------------------------


@dataclass
class LevelComparison:
    resolution: int
    count_a: int
    count_b: int
    identical: int = 0
    different: list[int] = field(default_factory=list)

    @property
    def compared(self) -> int:
        return min(self.count_a, self.count_b)


@dataclass
class Comparison:
    levels: list[LevelComparison]
    only_a: list[int]
    only_b: list[int]
    channels: tuple[int, int]
    labels_compared: int = 0
    labels_identical: int = 0
    labels_note: str | None = None
    ignore_labels: bool = False

    @property
    def identical(self) -> bool:
        images = all(level.count_a == level.count_b and level.identical == level.compared
                     for level in self.levels)
        labels = self.ignore_labels or self.labels_identical == self.labels_compared
        return images and labels and not self.only_a and not self.only_b and bool(self.levels)


def compare_readers(a: DatasetReader, b: DatasetReader, ignore_labels: bool = False, quiet: bool = True,
                    batch_size: int = 64) -> Comparison:
    """Image by image at every shared resolution, then label rows, like the official compare (which
    compared the full resolution only)."""
    shared = [r for r in a.resolutions if r in b.resolutions]
    result = Comparison(levels=[], only_a=[r for r in a.resolutions if r not in b.resolutions],
                        only_b=[r for r in b.resolutions if r not in a.resolutions],
                        channels=(a.channels, b.channels), ignore_labels=ignore_labels)
    levels = [LevelComparison(r, a.num_images_at(r), b.num_images_at(r)) for r in shared]
    bar = progress_bar(sum(level.compared for level in levels), "Comparing", quiet=quiet)
    for level in levels:
        stop = level.compared
        batches = zip(a.iter_batches(level.resolution, batch_size, 0, stop),
                      b.iter_batches(level.resolution, batch_size, 0, stop), strict=True)
        first = 0
        for batch_a, batch_b in batches:
            if batch_a.shape == batch_b.shape:
                same = np.all((batch_a == batch_b).reshape(len(batch_a), -1), axis=1)
            else:
                same = np.zeros(len(batch_a), dtype=bool)
            level.identical += int(same.sum())
            level.different.extend((first + np.nonzero(~same)[0]).tolist())
            first += len(batch_a)
            bar.update(len(batch_a))
        result.levels.append(level)
    bar.close()
    if not ignore_labels:
        count = min(a.num_images, b.num_images)
        labels_a, labels_b = a.labels(), b.labels()
        result.labels_compared = count
        # The official reader gives an image without a label file an empty label, [N, 0].
        rows_a = np.zeros((count, 0), np.float32) if labels_a is None else labels_a[:count]
        rows_b = np.zeros((count, 0), np.float32) if labels_b is None else labels_b[:count]
        if rows_a.shape == rows_b.shape:
            result.labels_identical = int(np.all((rows_a == rows_b).reshape(count, -1), axis=1).sum())
        else:
            result.labels_note = f"label sizes differ: {rows_a.shape[1]} vs {rows_b.shape[1]}"
    return result


def _describe(reader: DatasetReader) -> str:
    labels = f"labels [{reader.label_size}]" if reader.label_size else "no labels"
    return (f"{reader.format_name}, {reader.num_images} images, {reader.channels} x "
            f"{reader.resolution}x{reader.resolution}, {labels}")


def _print_comparison(result: Comparison, list_limit: int = 10) -> None:
    if result.channels[0] != result.channels[1]:
        print(f"The datasets have different number of color channels: {result.channels[0]} vs. "
              f"{result.channels[1]}")
    for name, missing in (("first", result.only_a), ("second", result.only_b)):
        if missing:
            print(f"Resolutions only in the {name} dataset: " + ", ".join(f"{r}x{r}" for r in missing))
    if not result.levels:
        print("The datasets have no resolution in common")
    same_channels = result.channels[0] == result.channels[1]
    for level in result.levels:
        size = f"{level.resolution}x{level.resolution}"
        listed = level.different[:list_limit] if same_channels else []
        for index in listed:
            print(f"{size}: Image {index} is different")
        if len(level.different) > len(listed) and same_channels:
            print(f"{size}: ... and {len(level.different) - len(listed)} more different images")
        if level.count_a != level.count_b:
            print(f"{size}: Datasets contain different number of images: {level.count_a} vs. {level.count_b}")
        print(f"{size}: Identical images: {level.identical} / {level.compared}")
    if not result.ignore_labels:
        if result.labels_note:
            print(f"Labels differ: {result.labels_note}")
        print(f"Identical labels: {result.labels_identical} / {result.labels_compared}")


@command("compare")
def compare(
    dataset_a: Annotated[Path, typer.Argument(help="First dataset (any format).")],
    dataset_b: Annotated[Path, typer.Argument(help="Second dataset (any format).")],
    ignore_labels: Annotated[int, typer.Option(*option_names("ignore_labels"),
                                               help="Ignore labels (default: 0).")] = 0,
    quiet: Quiet = False,
) -> None:
    """Compare two datasets image by image at every resolution, and their labels.

    Works across formats (pgshards, original TFRecords, legacy HDF5).

    Exit status 0 only when both have the same resolutions, image counts, pixels and labels.

    Example: pgdata compare datasets/mydataset datasets/mnist
    """
    with open_dataset(dataset_a) as reader_a, open_dataset(dataset_b) as reader_b:
        print(f'Dataset A: "{dataset_a}" ({_describe(reader_a)})')
        print(f'Dataset B: "{dataset_b}" ({_describe(reader_b)})')
        result = compare_readers(reader_a, reader_b, ignore_labels=bool(ignore_labels), quiet=quiet)
    _print_comparison(result)
    print("The datasets are identical." if result.identical else "The datasets differ.")
    if not result.identical:
        raise typer.Exit(1)


# --- info -----------------------------------------------------------------------------------------------


def label_summary(labels: np.ndarray | None) -> str:
    """Label size, and per-class counts when the rows are one-hot (as every official create_* writes)."""
    if labels is None:
        return "none"
    text = f"{labels.shape[1]} per image"
    one_hot = labels.shape[1] > 0 and bool(np.all((labels == 0) | (labels == 1))) and bool(
        np.all(labels.sum(axis=1) == 1))
    if not one_hot:
        return text + " (not one-hot)"
    counts = np.bincount(labels.argmax(axis=1), minlength=labels.shape[1])
    if len(counts) <= 20:
        return text + ", one-hot; images per class: " + ", ".join(f"{c}: {n}" for c, n in enumerate(counts))
    return text + f", one-hot; {int(counts.min())} .. {int(counts.max())} images per class"


def consistency_warnings(reader: DatasetReader) -> list[str]:
    """Missing resolutions between 4x4 and the full one, differing image counts, missing or odd files."""
    warnings = reader.storage_problems()
    expected = [4 << k for k in range(reader.resolution.bit_length() - 3)]
    missing = [r for r in expected if r not in reader.resolutions]
    if missing:
        warnings.append("missing resolutions: " + ", ".join(f"{r}x{r}" for r in missing))
    counts = {r: reader.num_images_at(r) for r in reader.resolutions}
    if len(set(counts.values())) > 1:
        warnings.append("inconsistent number of images per resolution (" + ", ".join(
            f"{r}x{r}: {n}" for r, n in counts.items()) + "); perhaps the dataset creation was interrupted?")
    return warnings


@command("info")
def info(
    dataset: Annotated[Path, typer.Argument(help="Dataset: pgshards or TFRecords directory, or HDF5 file.")],
) -> None:
    """Show a dataset's format, size, resolutions, channels and labels, with consistency warnings.

    Like h5tool.py inspect, for every format.

    Example: pgdata info datasets/celebahq
    """
    with open_dataset(dataset) as reader:
        size = _disk_bytes(reader.path)
        image_bytes = reader.channels * reader.resolution**2
        rows = [
            ("Path", str(dataset)),
            ("Format", reader.format_name),
            ("Total size", _size_text(size)),
            ("Total images", str(reader.num_images)),
            ("Resolution", f"{reader.resolution}x{reader.resolution}"),
            ("Resolutions", ", ".join(f"{r}x{r}" for r in reader.resolutions)),
            ("Color channels", str(reader.channels)),
            ("Bytes per image", f"{image_bytes} at {reader.resolution}x{reader.resolution}, "
                                f"{sum(reader.channels * r * r for r in reader.resolutions)} in all resolutions"),
            ("Size per image", _size_text(size // max(reader.num_images, 1)) + " on disk"),
        ]
        warnings = consistency_warnings(reader)
        try:
            rows.append(("Labels", label_summary(reader.labels())))
        except PgdataError as error:
            rows.append(("Labels", "unreadable"))
            if str(error) not in warnings:  # a missing labels file is already among the file warnings
                warnings.append(str(error))
        manifest = getattr(reader, "manifest", None)
        if manifest is not None:
            rows.append(("Encoding", str(manifest.get("encoding"))))
            shard_bytes = 0
            for name, level in sorted(manifest["resolutions"].items()):
                level_bytes = sum(int(shard["bytes"]) for shard in level["shards"])
                shard_bytes += level_bytes
                rows.append((f"Shards {name}", f"{len(level['shards'])} ({_size_text(level_bytes)}, "
                                               f"{level['samples_per_shard']} images per shard)"))
            rows.append(("Shard bytes", f"{shard_bytes} ({_size_text(shard_bytes)})"))
            producer = manifest.get("producer") or {}
            if producer.get("command"):
                rows.append(("Made by", f"pgdata {producer.get('version', '?')} {producer['command']}"))
        if reader.format_name == "tfrecords":
            rows.append(("Label file", str(reader.label_file or "none")))
        if reader.format_name == "hdf5":
            rows.append(("Label file", str(reader.label_file or "none")))
            extra = [r for r in reader.all_resolutions if r < 4]
            if extra:
                rows.append(("Ignored levels", ", ".join(f"{r}x{r}" for r in extra) + " (below 4x4)"))
    for key, value in rows:
        print(f"{key:<20}{value}")
    for warning in warnings:
        print(f"Warning: {warning}")


# --- verify ---------------------------------------------------------------------------------------------


def read_everything(reader: DatasetReader, quiet: bool = True) -> list[str]:
    """Decode every image at every resolution and the labels (TFRecords: with both CRCs); problems found."""
    problems = consistency_warnings(reader)
    total = sum(reader.num_images_at(r) for r in reader.resolutions)
    bar = progress_bar(total, "Reading", quiet=quiet)
    try:
        reader.labels()
        for resolution in reader.resolutions:
            for batch in reader.iter_batches(resolution, batch_size=64):
                bar.update(len(batch))
    except PgdataError as error:
        problems.append(str(error))
    finally:
        bar.close()
    return problems


def _verify_pgshards(dataset: Path, quiet: bool) -> list[str]:
    """verify_pgshards with a progress bar over the samples of every resolution."""
    from pgdata.formats.pgshards.manifest import load_manifest
    from pgdata.formats.pgshards.verify import verify_pgshards

    try:
        manifest = load_manifest(dataset)
        total = manifest["num_images"] * len(manifest["resolutions"])
    except PgdataError:
        total = None  # verify_pgshards reports it
    bar = progress_bar(total, "Verifying", quiet=quiet)
    try:
        return verify_pgshards(dataset, progress=bar.update)
    finally:
        bar.close()


@command("verify")
def verify(
    dataset: Annotated[Path, typer.Argument(help="Dataset: pgshards or TFRecords directory, or HDF5 file.")],
    quiet: Quiet = False,
) -> None:
    """Check a dataset's integrity; exit status 1 and one line per problem if it is damaged.

    pgshards: the manifest's structure, the size and sha256 of every shard and of labels.npy, every sample
    decoded and checked against the manifest, and no unlisted shard.

    TFRecords: every record read with both CRC32C checks. HDF5: every image read.

    Example: pgdata verify datasets/celebahq
    """
    if detect_format(dataset) == "pgshards":
        problems = _verify_pgshards(dataset, quiet)
        checked = "manifest, sha256 and every sample of every shard, labels"
    else:
        with open_dataset(dataset) as reader:
            problems = read_everything(reader, quiet=quiet)
            checked = "CRC32C of every record" if reader.format_name == "tfrecords" else "every image"
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}")
        raise typer.Exit(1)
    print(f'OK: "{dataset}" ({checked})')

