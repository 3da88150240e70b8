"""create_celebahq: CelebA-HQ as a pgdata Source, records in the original's order, built in parallel, checked by md5.

Matches the official create_celebahq: record k is image_list row `order[k]` with
order = RandomState(123).shuffle(arange(N)); every image must match its proc_md5 and, after the delta,
its final_md5. Work per record runs in worker processes (pgdata.parallel.ordered_map; the original used 4
threads), results come back in record order, and iter_chunks(start) begins at record `start` directly,
so an interrupted build resumes without redoing earlier images. The image pipeline, its kernels and the
deltas live in pgdata.celebahq.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from pgdata.celebahq import deltas
from pgdata.celebahq.inputs import CELEBA_000001_MD5, Inputs, check_reference_jpeg, read_inputs
from pgdata.common.atomic import write_text
from pgdata.errors import PgdataError
from pgdata.parallel import ordered_map
from pgdata.sources.base import Source, SourceInfo
from pgdata.sources.common import shuffled_order


@dataclass(frozen=True)
class Task:
    record: int
    idx: int
    jpeg_path: str
    orig_file: str
    landmarks: np.ndarray
    proc_md5: str
    final_md5: str
    delta_dir: str


#: Failure stages that blame the CelebA JPEG; the others blame the delta zip.
JPEG_STAGES = ("jpeg", "key", "proc")


@dataclass
class Failure:
    record: int
    idx: int
    orig_file: str
    stage: str  # jpeg, key, proc (the JPEG is blamed); zip, token, delta, bz2, shape, final (the delta zip)
    message: str
    path: str  # the file to blame: the JPEG or the delta zip

    def line(self) -> str:
        return f"idx {self.idx} ({self.orig_file}, record {self.record}): {self.stage}: {self.message}"


def _failure(task: Task, stage: str, message: str) -> Failure:
    blamed = task.jpeg_path if stage in JPEG_STAGES else str(Path(task.delta_dir) / deltas.zip_name(task.idx))
    return Failure(task.record, task.idx, task.orig_file, stage, message, blamed)


def _proc_image(task: Task) -> np.ndarray | Failure:
    """The JPEG decoded and processed (uint8 [3, 1024, 1024]), or the Failure that stopped it."""
    from pgdata.celebahq.pipeline import process_image
    from pgdata.jpeg import decode_jpeg_libjpeg8d

    try:
        pixels = decode_jpeg_libjpeg8d(task.jpeg_path)
    except PgdataError as error:
        return _failure(task, "jpeg", error.message)
    if pixels.shape[2] != 3:
        return _failure(task, "jpeg", f"{task.orig_file} has {pixels.shape[2]} channel(s); CelebA images are RGB")
    try:
        return process_image(pixels, task.landmarks)
    except MemoryError:
        return _failure(task, "proc", "out of memory while processing (use fewer --num_threads)")
    except Exception as error:  # an unexpected input shape or a pgdata bug: report it with the image
        return _failure(task, "proc", f"processing failed: {error!r} (please report it)")


def _undecryptable(task: Task, error: deltas.DeltaError) -> Failure:
    """Fernet's InvalidToken means a wrong key (this JPEG is not the official file) or a damaged delta; the
    proc_md5, which depends on the JPEG alone, tells which. Costs one processing, on failures only."""
    proc = _proc_image(task)
    if isinstance(proc, Failure):
        return _failure(task, "key", f"{error} (and the JPEG fails too: {proc.message})")
    if deltas.md5_hex(proc) != task.proc_md5:
        return _failure(task, "key", str(error))
    zip_name, member = deltas.zip_name(task.idx), deltas.member_name(task.idx)
    return _failure(task, "delta", f"{member} in {zip_name} fails its check: it does not decrypt (Fernet "
                                   f"InvalidToken) although {task.orig_file} is the official file (its processed "
                                   f"image matches proc_md5): the delta is damaged or not the official one; "
                                   f"download {zip_name} again")


def build_record(task: Task) -> np.ndarray | Failure:
    """One final CelebA-HQ image (uint8 [3, 1024, 1024]) or the Failure that stopped it.

    The delta is decrypted first: a JPEG that is not the official file fails there at once (InvalidToken),
    before the seconds of processing that then tell it from a damaged delta; a proc md5 mismatch after a
    successful decryption points at the landmarks or at pgdata, not at the JPEG.
    """
    try:
        with open(task.jpeg_path, "rb") as file:
            jpeg_bytes = file.read()
    except OSError as error:
        return _failure(task, "jpeg", f"cannot read {task.jpeg_path}: {error.strerror or error}")
    try:
        delta = deltas.decrypt_delta(deltas.read_token(task.delta_dir, task.idx), jpeg_bytes, task.orig_file)
    except deltas.DeltaError as error:
        return _undecryptable(task, error) if error.stage == "key" else _failure(task, error.stage, str(error))
    proc = _proc_image(task)
    if isinstance(proc, Failure):
        return proc
    md5 = deltas.md5_hex(proc)
    if md5 != task.proc_md5:
        return _failure(task, "proc", f"processed image md5 {md5} != proc_md5 {task.proc_md5} although the JPEG is "
                                      f"the official file (the delta decrypts): the landmark list differs from "
                                      f"CelebA's list_landmarks_celeba.txt, or pgdata has a bug (please report it)")
    final = deltas.apply_delta(proc, delta)
    md5 = deltas.md5_hex(final)
    if md5 != task.final_md5:
        return _failure(task, "final", f"final image md5 {md5} != final_md5 {task.final_md5} (proc_md5 matched): "
                                       f"the delta file is not the official one")
    return final


class CelebAHQSource(Source):
    """`pgdata create_celebahq`'s records. Construction checks the inputs (fast); iteration builds images.

    keep_going: failures do not stop the build; they are collected, written to `report_path`, and the
    iteration then raises PgdataError, so a dataset with failures is never completed. Records before the
    first failure are still yielded (their shards stay valid for --resume); later ones are only checked.
    """

    def __init__(self, celeba_dir: str | Path, delta_dir: str | Path, *, subset: bool = False,
                 keep_going: bool = False, report_path: str | Path | None = None, workers: int | None = None,
                 reference_md5: str = CELEBA_000001_MD5):
        self.inputs: Inputs = read_inputs(celeba_dir, delta_dir, subset=subset)
        warning = check_reference_jpeg(self.inputs.image_dir, reference_md5, subset)
        self._warnings = list(self.inputs.warnings) + ([warning] if warning else [])
        self.keep_going = keep_going
        self.report_path = None if report_path is None else Path(report_path)
        self.workers = workers
        self.order = shuffled_order(len(self.inputs.rows))
        self.record_order = "numpy.random.RandomState(123).shuffle(numpy.arange(N)) over image_list rows"
        self.info = SourceInfo(name="celebahq", channels=3, resolution=1024, num_images=len(self.inputs.rows))
        self.failures: list[Failure] = []
        self._check_files_exist()

    def _check_files_exist(self) -> None:
        missing = [row.orig_file for row in self.inputs.rows if not (self.inputs.image_dir / row.orig_file).is_file()]
        if missing and not self.keep_going:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise PgdataError(f"{len(missing)} image(s) of image_list.txt missing: {shown}", self.inputs.image_dir)

    def tasks(self, start: int = 0) -> Iterator[Task]:
        rows, image_dir = self.inputs.rows, self.inputs.image_dir
        for record in range(start, len(rows)):
            row = rows[int(self.order[record])]
            yield Task(record, row.idx, str(image_dir / row.orig_file), row.orig_file,
                       self.inputs.landmarks[row.orig_idx], row.proc_md5, row.final_md5,
                       str(self.inputs.delta_dir))

    def iter_chunks(self, start: int = 0) -> Iterator[np.ndarray]:
        from pgdata.celebahq import native

        native.library()  # build the compiled kernels once here, before the worker processes fork
        self.failures = []
        for result in ordered_map(partial(build_record), self.tasks(start), workers=self.workers, prefetch=2):
            if isinstance(result, Failure):
                if not self.keep_going:
                    raise PgdataError(result.line(), result.path)
                self.failures.append(result)
                continue
            if not self.failures:
                yield result[None]
        if self.failures:
            self._write_report()
            where = f"; report: {self.report_path}" if self.report_path else ""
            raise PgdataError(f"{len(self.failures)} of {len(self.inputs.rows) - start} image(s) failed, first: "
                              f"{self.failures[0].line()}{where}; the dataset was not completed")

    def _write_report(self) -> None:
        """The --report file, written whole or not at all: an earlier report is kept if this one fails."""
        if self.report_path is None:
            return
        report = {"failures": [failure.__dict__ for failure in self.failures],
                  "celeba_dir": str(self.inputs.celeba_dir), "delta_dir": str(self.inputs.delta_dir)}
        self.report_path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.report_path, json.dumps(report, indent=1) + "\n", error_type=PgdataError)

    def warnings(self) -> list[str]:
        return list(self._warnings)
