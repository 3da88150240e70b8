"""pgdata create_celebahq: CelebA-HQ rebuilt bit-exactly from CelebA and NVIDIA's deltas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pgdata.celebahq.inputs import CELEBA_000001_MD5
from pgdata.cli.app import command, option_names
from pgdata.cli.create import (
    CommonOptions,
    Encoding,
    EncodingOption,
    OutArgument,
    OverwriteOption,
    QuietOption,
    ResumeOption,
    run_export,
)
from pgdata.errors import PgdataError


@command("create_celebahq")
def create_celebahq(
    out: OutArgument,
    celeba_dir: Annotated[Path, typer.Argument(
        help="CelebA folder holding img_celeba/ (the in-the-wild JPEGs from img_celeba.7z) and "
        "Anno/list_landmarks_celeba.txt.", show_default=False)],
    delta_dir: Annotated[Path, typer.Argument(
        help="CelebA-HQ delta folder: image_list.txt and deltas00000.zip .. deltas29000.zip.",
        show_default=False)],
    num_threads: Annotated[int | None, typer.Option(
        *option_names("num_threads"), min=1,
        help="Worker processes (default: all cores; the original used 4 threads).")] = None,
    num_tasks: Annotated[int, typer.Option(
        *option_names("num_tasks"), min=1, hidden=True,
        help="Accepted for compatibility with the original; in-flight work is bounded per worker.")] = 100,
    subset: Annotated[bool, typer.Option(
        "--subset", help="Build from part of the download: the counts the original demands (202599 JPEGs, 30 "
        "zips) become warnings and exactly the image_list.txt rows whose zip is present are built.")] = False,
    keep_going: Annotated[bool, typer.Option(
        *option_names("keep_going"), help="Do not stop at the first failing image: check them all, write every "
        "failure to the report file, then fail (the dataset is never completed with failures).")] = False,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Failure report for --keep_going (JSON; default: OUT.failures.json).")] = None,
    celeba_000001_md5: Annotated[str, typer.Option(
        *option_names("celeba_000001_md5"), hidden=True,
        help="md5 of img_celeba/000001.jpg's decoded pixels (only for test data made like the fixtures).")]
    = CELEBA_000001_MD5,
    encoding: EncodingOption = Encoding.npy,
    overwrite: OverwriteOption = False,
    resume: ResumeOption = False,
    quiet: QuietOption = False,
) -> None:
    """CelebA-HQ: 30000 faces, 3 x 1024 x 1024, from CelebA's in-the-wild photos and the official deltas.

    Every image is checked against image_list.txt's proc_md5 (our processing: libjpeg 8d decoding,
    Pillow 3.1.1's resampling, reimplemented) and final_md5 (after the delta); the records are in the
    original's order, so the result equals the original tool's TFRecords image for image. It runs on
    all cores and can be resumed (--resume) after an interruption with identical bytes.

    Example: pgdata create_celebahq datasets/celebahq ~/downloads/celeba ~/downloads/celeba-hq-deltas
    """
    from pgdata.exporter import check_output, output_path
    from pgdata.sources.celebahq import CelebAHQSource

    inputs = {"celeba_dir": celeba_dir, "delta_dir": delta_dir}
    check_output(out, overwrite, inputs)  # before reading the inputs, which can take long
    out = output_path(out)
    report_path = report if report is not None else out.with_name(out.name + ".failures.json")
    if keep_going:
        check_report_path(report_path, inputs)
    source = CelebAHQSource(celeba_dir, delta_dir, subset=subset, keep_going=keep_going,
                            report_path=report_path if keep_going else None, workers=num_threads,
                            reference_md5=celeba_000001_md5.lower())
    options = CommonOptions(subset=subset, encoding=encoding.value, overwrite=overwrite, resume=resume,
                            quiet=quiet)
    run_export(source, out, "create_celebahq", {}, options, inputs)


def check_report_path(report: Path, inputs: dict[str, Path]) -> None:
    """The failure report may replace an earlier report, never an input or another file."""
    target = report.resolve()
    for path in inputs.values():
        if target.is_relative_to(Path(path).resolve()):
            raise PgdataError(f"the report would be written inside the input {path}: give --report a path "
                              "outside the inputs", report)
    if report.is_symlink() or (report.exists() and not _is_failure_report(report)):
        raise PgdataError("exists and is not an earlier failure report: --report would replace it; move it or "
                          "give another --report path", report)


def _is_failure_report(path: Path) -> bool:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and isinstance(report.get("failures"), list) and "delta_dir" in report
