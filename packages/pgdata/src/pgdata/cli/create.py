"""pgdata create_* commands: the original dataset_tool.py commands (except create_celebahq), same names and
arguments, writing pgshards. `run_export` is the shared tail every create_* command ends with."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from pgdata.cli.app import command, option_names
from pgdata.errors import PgdataError
from pgdata.sources.base import Source


class Encoding(str, Enum):
    npy = "npy"
    png = "png"


@dataclass(frozen=True)
class CommonOptions:
    """The options every create_* command takes besides its own."""

    subset: bool = False
    encoding: str = "npy"
    overwrite: bool = False
    resume: bool = False
    quiet: bool = False


OutArgument = Annotated[Path, typer.Argument(help="The dataset directory to create (pgshards).",
                                             show_default=False)]
SubsetOption = Annotated[bool, typer.Option(
    "--subset", help="Accept fewer (or more) images than the full dataset: the original refuses anything but "
    "the full count; this turns that check into a warning and changes nothing else.")]
EncodingOption = Annotated[Encoding, typer.Option(
    "--encoding", help="How shards store each image: npy (fastest to read) or png (smaller).")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")]
ResumeOption = Annotated[bool, typer.Option(
    "--resume", help="Finish an interrupted build of OUT (same inputs and arguments), keeping its complete "
    "shards; the result is identical to an uninterrupted build.")]
QuietOption = Annotated[bool, typer.Option("--quiet", help="No progress bar and no warnings.")]
ShuffleOption = Annotated[int, typer.Option(
    *option_names("shuffle"), min=0, max=1,
    help="1: the original's shuffled record order (RandomState(123)); 0: input order.")]


def run_export(source: Source, out: Path, command_name: str, arguments: dict[str, Any],
               options: CommonOptions, inputs: dict[str, Path] | None = None) -> Path:
    """Write `source` to `out` with the common options; the exporter prints the source's warnings.

    `arguments` are the command's non-path arguments, recorded in the manifest; `inputs` every file or folder
    the source reads (OUT may not overlap them; --resume checks that they did not change).
    """
    from pgdata.exporter import export_dataset

    try:
        path = export_dataset(source, out, command=command_name, arguments=arguments, encoding=options.encoding,
                              overwrite=options.overwrite, resume=options.resume, quiet=options.quiet,
                              inputs=inputs)
    except KeyboardInterrupt:
        _say_how_to_resume(out)
        raise
    if not options.quiet:
        print(f"pgdata: wrote {path}", file=sys.stderr)
    return path


def _say_how_to_resume(out: Path) -> None:
    """On Ctrl-C: one line saying that the complete shards are kept and how to finish the build."""
    from pgdata.exporter import is_partial_build, output_path, partial_path

    partial = partial_path(output_path(out))
    if is_partial_build(partial):
        print(f"pgdata: interrupted; the build so far is kept in {partial}: run the same command with --resume "
              "to finish it", file=sys.stderr)


def source_inputs(function: str, path_args: dict[str, str | Path]) -> dict[str, Path]:
    """Every file or folder a create_* command reads: its path arguments, and create_from_hdf5's labels file."""
    inputs = {name: Path(value) for name, value in path_args.items()}
    if function == "create_from_hdf5":
        from pgdata.formats.hdf5 import labels_path

        inputs["labels"] = labels_path(inputs["hdf5_filename"])
    return inputs


def build_source(function: str, path_args: dict[str, str | Path], args: dict[str, Any], *,
                 subset: bool = False, workers: int | None = None) -> Source:
    """The Source for an original dataset_tool call: function name (`create_cifar10`), its path arguments
    and other arguments by their original names (as in the fixtures' expected.json)."""
    from pgdata.sources import celeba, cifar, hdf5, images, lsun, mnist, svhn

    paths = {name: Path(value) for name, value in path_args.items()}
    if function == "create_mnist":
        return mnist.MnistSource(paths["mnist_dir"], subset=subset)
    if function == "create_mnistrgb":
        return mnist.MnistRgbSource(paths["mnist_dir"], num_images=int(args.get("num_images", 1000000)),
                                    random_seed=int(args.get("random_seed", 123)), subset=subset)
    if function == "create_cifar10":
        return cifar.Cifar10Source(paths["cifar10_dir"], subset=subset)
    if function == "create_cifar100":
        return cifar.Cifar100Source(paths["cifar100_dir"], subset=subset)
    if function == "create_svhn":
        return svhn.SvhnSource(paths["svhn_dir"], subset=subset)
    if function == "create_lsun":
        max_images = args.get("max_images")
        return lsun.LsunSource(paths["lmdb_dir"], resolution=int(args.get("resolution", 256)),
                               max_images=None if max_images is None else int(max_images), workers=workers)
    if function == "create_celeba":
        return celeba.CelebaSource(paths["celeba_dir"], cx=int(args.get("cx", 89)), cy=int(args.get("cy", 121)),
                                   subset=subset, workers=workers)
    if function == "create_from_images":
        resolution = args.get("resolution")
        return images.ImageFolderSource(paths["image_dir"], shuffle=bool(int(args.get("shuffle", 1))),
                                        resolution=None if resolution is None else int(resolution),
                                        jpeg_decoder=str(args.get("jpeg_decoder", "libjpeg8d")),
                                        workers=workers)
    if function == "create_from_hdf5":
        return hdf5.Hdf5Source(paths["hdf5_filename"], shuffle=bool(int(args.get("shuffle", 1))))
    raise PgdataError(f"unknown dataset_tool function {function!r}")


def _create(function: str, out: Path, path_args: dict[str, Path], args: dict[str, Any],
            options: CommonOptions) -> None:
    from pgdata.exporter import check_output

    inputs = source_inputs(function, path_args)
    check_output(out, options.overwrite, inputs)  # before reading the inputs, which can take long
    source = build_source(function, path_args, args, subset=options.subset)
    recorded = {name: value for name, value in args.items() if value is not None}
    run_export(source, out, function, recorded, options, inputs)


@command("create_mnist")
def create_mnist(
    out: OutArgument,
    mnist_dir: Annotated[Path, typer.Argument(help="Folder with train-images-idx3-ubyte.gz and "
                                              "train-labels-idx1-ubyte.gz.", show_default=False)],
    subset: SubsetOption = False, encoding: EncodingOption = Encoding.npy, overwrite: OverwriteOption = False,
    resume: ResumeOption = False, quiet: QuietOption = False,
) -> None:
    """MNIST training digits, 1 x 32 x 32 (padded from 28 x 28), shuffled, with 10 one-hot labels.

    Example: pgdata create_mnist datasets/mnist ~/downloads/mnist
    """
    _create("create_mnist", out, {"mnist_dir": mnist_dir}, {},
            CommonOptions(subset, encoding.value, overwrite, resume, quiet))


@command("create_mnistrgb")
def create_mnistrgb(
    out: OutArgument,
    mnist_dir: Annotated[Path, typer.Argument(help="Folder with train-images-idx3-ubyte.gz.",
                                              show_default=False)],
    num_images: Annotated[int, typer.Option(*option_names("num_images"), min=1,
                                            help="Number of images to generate.")] = 1000000,
    random_seed: Annotated[int, typer.Option(*option_names("random_seed"),
                                             help="Seed of the digit draws.")] = 123,
    subset: SubsetOption = False, encoding: EncodingOption = Encoding.npy, overwrite: OverwriteOption = False,
    resume: ResumeOption = False, quiet: QuietOption = False,
) -> None:
    """MNIST-RGB: 3 x 32 x 32 images whose R, G, B planes are three random MNIST digits (no labels).

    The draws are numpy.random.RandomState(random_seed).randint(N, size=3) per image, as the original.

    Example: pgdata create_mnistrgb datasets/mnistrgb ~/downloads/mnist --num_images 1000000 --random_seed 123
    """
    _create("create_mnistrgb", out, {"mnist_dir": mnist_dir},
            {"num_images": num_images, "random_seed": random_seed},
            CommonOptions(subset, encoding.value, overwrite, resume, quiet))


@command("create_cifar10")
def create_cifar10(
    out: OutArgument,
    cifar10_dir: Annotated[Path, typer.Argument(help="The extracted cifar-10-batches-py folder (data_batch_1 "
                                                "to data_batch_5).", show_default=False)],
    subset: SubsetOption = False, encoding: EncodingOption = Encoding.npy, overwrite: OverwriteOption = False,
    resume: ResumeOption = False, quiet: QuietOption = False,
) -> None:
    """CIFAR-10 training set, 3 x 32 x 32, shuffled, with 10 one-hot labels.

    Example: pgdata create_cifar10 datasets/cifar10 ~/downloads/cifar-10-batches-py
    """
    _create("create_cifar10", out, {"cifar10_dir": cifar10_dir}, {},
            CommonOptions(subset, encoding.value, overwrite, resume, quiet))


@command("create_cifar100")
def create_cifar100(
    out: OutArgument,
    cifar100_dir: Annotated[Path, typer.Argument(help="The extracted cifar-100-python folder (the `train` "
                                                 "pickle).", show_default=False)],
    subset: SubsetOption = False, encoding: EncodingOption = Encoding.npy, overwrite: OverwriteOption = False,
    resume: ResumeOption = False, quiet: QuietOption = False,
) -> None:
    """CIFAR-100 training set, 3 x 32 x 32, shuffled, with 100 one-hot fine labels.

    Example: pgdata create_cifar100 datasets/cifar100 ~/downloads/cifar-100-python
    """
    _create("create_cifar100", out, {"cifar100_dir": cifar100_dir}, {},
            CommonOptions(subset, encoding.value, overwrite, resume, quiet))


@command("create_svhn")
def create_svhn(
    out: OutArgument,
    svhn_dir: Annotated[Path, typer.Argument(help="Folder with train_1.pkl .. train_3.pkl (the original's "
                                             "input) or the official train_32x32.mat.", show_default=False)],
    subset: SubsetOption = False, encoding: EncodingOption = Encoding.npy, overwrite: OverwriteOption = False,
    resume: ResumeOption = False, quiet: QuietOption = False,
) -> None:
    """SVHN training set, 3 x 32 x 32, shuffled, with 10 one-hot labels.

    The pickles' labels are used as given. From train_32x32.mat (used when the pickles are absent), label
    10 (the official code for the digit 0) becomes 0, so that each label is its digit.

    Example: pgdata create_svhn datasets/svhn ~/downloads/svhn
    """
    _create("create_svhn", out, {"svhn_dir": svhn_dir}, {},
            CommonOptions(subset, encoding.value, overwrite, resume, quiet))


@command("create_lsun")
def create_lsun(
    out: OutArgument,
    lmdb_dir: Annotated[Path, typer.Argument(help="An LSUN category's LMDB folder (with data.mdb), e.g. "
                                             "bedroom_train_lmdb; opened read-only, no lock file.",
                                             show_default=False)],
    resolution: Annotated[int, typer.Option(*option_names("resolution"),
                                            help="Output resolution (a power of two).")] = 256,
    max_images: Annotated[int | None, typer.Option(*option_names("max_images"), min=1,
                                                   help="Stop after this many stored images (skipped values do "
                                                   "not count).")] = None,
    subset: SubsetOption = False, encoding: EncodingOption = Encoding.npy, overwrite: OverwriteOption = False,
    resume: ResumeOption = False, quiet: QuietOption = False,
) -> None:
    """An LSUN category from its LMDB, 3 x R x R, in key order (no labels).

    Each value is decoded (OpenCV, then Pillow), centre-cropped to a square and resized with Pillow
    3.1.1's ANTIALIAS filter, as the original. Values the original could not decode (including GIF, which
    its OpenCV 3.4 could not read) are skipped with a warning each; --max_images counts stored images.

    Example: pgdata create_lsun datasets/lsun-bedroom-100k ~/downloads/lsun/bedroom_train_lmdb --resolution 256 --max_images 100000
    """
    _create("create_lsun", out, {"lmdb_dir": lmdb_dir}, {"resolution": resolution, "max_images": max_images},
            CommonOptions(subset, encoding.value, overwrite, resume, quiet))


@command("create_celeba")
def create_celeba(
    out: OutArgument,
    celeba_dir: Annotated[Path, typer.Argument(help="CelebA folder holding img_align_celeba_png/ (aligned "
                                               "PNGs) or img_align_celeba/ (aligned JPEGs).",
                                               show_default=False)],
    cx: Annotated[int, typer.Option("--cx", help="Centre column of the 128 x 128 window.")] = 89,
    cy: Annotated[int, typer.Option("--cy", help="Centre row of the 128 x 128 window.")] = 121,
    subset: SubsetOption = False, encoding: EncodingOption = Encoding.npy, overwrite: OverwriteOption = False,
    resume: ResumeOption = False, quiet: QuietOption = False,
) -> None:
    """CelebA 3 x 128 x 128: crops of the aligned 178 x 218 images centred at (cx, cy), shuffled.

    The original reads the PNG release (img_align_celeba_png/). Without it, the JPEG release
    (img_align_celeba/*.jpg) is read, decoded with IJG libjpeg 8d. The two releases differ in pixels (the
    PNGs were made from the same sources but are not the JPEGs decoded), so a JPEG-based dataset differs
    from the paper's PNG-based CelebA.

    Example: pgdata create_celeba datasets/celeba ~/downloads/celeba --cx 89 --cy 121
    """
    _create("create_celeba", out, {"celeba_dir": celeba_dir}, {"cx": cx, "cy": cy},
            CommonOptions(subset, encoding.value, overwrite, resume, quiet))


class JpegDecoder(str, Enum):
    libjpeg8d = "libjpeg8d"
    pillow = "pillow"


@command("create_from_images")
def create_from_images(
    out: OutArgument,
    image_dir: Annotated[Path, typer.Argument(help="Folder of images (every file, sorted by name; any format "
                                              "Pillow reads; greyscale or RGB, not mixed).",
                                              show_default=False)],
    shuffle: ShuffleOption = 1,
    resolution: Annotated[int | None, typer.Option(
        *option_names("resolution"),
        help="Centre-crop each image to a square and resize it to this power of two with Pillow 3.1.1's "
        "ANTIALIAS (Lanczos-3) filter, as create_lsun does; images already this size are kept as they are. "
        "Without it every image must be square, a power of two, and as large as the first.")] = None,
    jpeg_decoder: Annotated[JpegDecoder, typer.Option(
        *option_names("jpeg_decoder"),
        help="libjpeg8d: decode JPEGs exactly as the original environment did (IJG libjpeg 8d); pillow: the "
        "installed Pillow's libjpeg-turbo, faster, but 4:2:0 JPEGs differ by up to ~64 levels.")]
    = JpegDecoder.libjpeg8d,
    subset: SubsetOption = False, encoding: EncodingOption = Encoding.npy, overwrite: OverwriteOption = False,
    resume: ResumeOption = False, quiet: QuietOption = False,
) -> None:
    """A dataset from a folder of images; the first file (by name) sets the size and channel count.

    Example: pgdata create_from_images datasets/faces ~/pictures/faces-256 --shuffle 1
    """
    args: dict[str, Any] = {"shuffle": shuffle, "resolution": resolution}
    if jpeg_decoder is not JpegDecoder.libjpeg8d:
        args["jpeg_decoder"] = jpeg_decoder.value
    _create("create_from_images", out, {"image_dir": image_dir}, args,
            CommonOptions(subset, encoding.value, overwrite, resume, quiet))


@command("create_from_hdf5")
def create_from_hdf5(
    out: OutArgument,
    hdf5_filename: Annotated[Path, typer.Argument(help="A legacy h5tool.py HDF5 file (datasets data4x4 .. "
                                                  "dataNxN); labels are read from <file>-labels.npy if "
                                                  "present.", show_default=False)],
    shuffle: ShuffleOption = 1,
    subset: SubsetOption = False, encoding: EncodingOption = Encoding.npy, overwrite: OverwriteOption = False,
    resume: ResumeOption = False, quiet: QuietOption = False,
) -> None:
    """A dataset from the largest resolution of a legacy HDF5 file (the Theano-era release's format).

    Example: pgdata create_from_hdf5 datasets/celebahq ~/downloads/celeba-hq-1024x1024.h5 --shuffle 1
    """
    _create("create_from_hdf5", out, {"hdf5_filename": hdf5_filename}, {"shuffle": shuffle},
            CommonOptions(subset, encoding.value, overwrite, resume, quiet))
