"""The pgshards exporter: a Source's records -> a complete, verified-on-write, byte-deterministic dataset.

Semantics of the original exporter (dataset_tool.TFRecordExporter): records in the source's order, every
resolution from full down to 4x4 derived by pgdata.pyramid, one-hot float32 labels in the same order.
What it adds: streaming with bounded memory, atomic output (build in `<out>.partial/`, manifest last, rename
into place), and `resume`, which keeps the complete shards of an interrupted build and writes the rest,
giving the same bytes as an uninterrupted build.

Safety (docs/pgshards.md, "Building"): only folders that carry pgdata's own marker are ever removed (a build
folder's BUILD_SPEC, a dataset's manifest); outputs that overlap the inputs, the working directory or a
non-dataset are refused before anything is written; a resume is refused when an input changed, and kept
shards are trusted only when they still have the sha256 recorded as they were written.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pgdata import __version__
from pgdata.common.atomic import os_error_reason, write_json
from pgdata.common.resolution import resolution_log2
from pgdata.errors import PgdataError
from pgdata.formats import tarblocks
from pgdata.formats.pgshards import layout
from pgdata.formats.pgshards.layout import class_indices
from pgdata.formats.pgshards.manifest import build_manifest
from pgdata.hashing import file_sha256
from pgdata.parallel import available_cores
from pgdata.progress import progress_bar
from pgdata.pyramid import pyramid_levels_threaded
from pgdata.shard_writer import ShardSetWriter
from pgdata.sources.base import Source

BUILD_SPEC = "_build.json"
#: The entry of BUILD_SPEC that marks a folder as a pgdata build: only such a `<out>.partial` is resumed or removed.
BUILD_MARKER = ("build", "pgdata partial build")
INPUTS_FILE = "_inputs.json"  # the inputs' identity when the build started (see input_fingerprint)
SHARDS_FILE = "_shards.json"  # every completed shard with the sha256 computed while writing it
#: Written into a dataset that --overwrite replaces, before it moves to `<out>.old`: only such an `<out>.old`
#: (an earlier --overwrite that stopped before removing it) is ever removed.
REPLACED_MARKER = "_replaced_by_pgdata.json"
BUILD_FILES = (BUILD_SPEC, INPUTS_FILE, SHARDS_FILE)
BATCH_BYTES = 32 * 2**20  # full-resolution bytes per pyramid batch: bounds the float32 copies
#: Inputs are identified by every file's size and mtime; files up to HASH_FILE_BYTES are also hashed, until
#: HASH_BUDGET_BYTES per input are read (lists, labels, small image folders: a second at most).
HASH_FILE_BYTES = 64 * 2**20
HASH_BUDGET_BYTES = 256 * 2**20


def partial_path(out_dir: Path) -> Path:
    return out_dir.with_name(out_dir.name + ".partial")


def old_path(out_dir: Path) -> Path:
    return out_dir.with_name(out_dir.name + ".old")


def output_path(out_dir: str | Path) -> Path:
    """OUT as given; resolved when its name is empty or '..' ('.', '/', 'a/..'), so that OUT.partial is a name."""
    out_dir = Path(out_dir)
    return out_dir.resolve() if out_dir.name in ("", "..") else out_dir


def labels_npy_bytes(labels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(labels, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_real_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def is_pgdata_dataset(path: Path) -> bool:
    """A folder whose manifest says pgdata wrote it: the only kind of OUT that --overwrite replaces."""
    manifest = _read_json(path / layout.MANIFEST)
    return (_is_real_folder(path) and isinstance(manifest, dict) and manifest.get("format") == layout.FORMAT_NAME
            and isinstance(manifest.get("producer"), dict) and manifest["producer"].get("tool") == "pgdata")


def is_partial_build(path: Path) -> bool:
    """A folder that carries BUILD_MARKER in its BUILD_SPEC: a pgdata build in progress or interrupted."""
    spec = _read_json(path / BUILD_SPEC)
    return _is_real_folder(path) and isinstance(spec, dict) and spec.get(BUILD_MARKER[0]) == BUILD_MARKER[1]


def is_replaced_dataset(path: Path) -> bool:
    """A dataset that an --overwrite moved aside (REPLACED_MARKER) and did not get to remove."""
    return is_pgdata_dataset(path) and (path / REPLACED_MARKER).is_file()


def _remove_folder(path: Path, ours: Callable[[Path], bool]) -> None:
    """Remove a folder only if it carries our marker; an empty folder holds nothing to lose."""
    if _is_real_folder(path) and not any(path.iterdir()):
        path.rmdir()
        return
    if not ours(path):
        raise PgdataError("not removed: it does not carry pgdata's marker", path)
    shutil.rmtree(path)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _is_empty_folder(path: Path) -> bool:
    return _is_real_folder(path) and not any(path.iterdir())


def check_output(out_dir: str | Path, overwrite: bool, inputs: Mapping[str, str | Path] | None = None) -> None:
    """Refuse, before anything is read or written, every OUT whose build could destroy what pgdata did not write.

    Raises PgdataError naming the path: OUT is the working directory or one of its parents, overlaps an input,
    is a file or a symbolic link, exists (without --overwrite) or is not a pgdata dataset (with it); or a
    folder OUT.partial / OUT.old that pgdata did not leave is in the way.
    """
    out_dir = output_path(out_dir)
    _refuse_working_directory(out_dir)
    _refuse_input_overlap(out_dir, inputs or {})
    _check_replaceable(out_dir, overwrite)
    _refuse_foreign_partial(partial_path(out_dir))


def _refuse_foreign_partial(partial: Path) -> None:
    if _exists(partial) and not _is_empty_folder(partial) and not is_partial_build(partial):
        raise PgdataError(f"is in the way of the build and was not left by pgdata (no {BUILD_SPEC} marker): "
                          "move or rename it", partial)


def _refuse_working_directory(out_dir: Path) -> None:
    here, target = Path.cwd().resolve(), out_dir.resolve()
    if here == target or here.is_relative_to(target):
        raise PgdataError("is the current directory or one of its parents: give a new folder for the dataset",
                          out_dir)


def _refuse_input_overlap(out_dir: Path, inputs: Mapping[str, str | Path]) -> None:
    """OUT and the folders next to it that a build writes must be neither an input, inside one, nor hold one."""
    for written in (out_dir, partial_path(out_dir), old_path(out_dir)):
        target = written.resolve()
        for path in inputs.values():
            source = Path(path).resolve()
            if target == source:
                relation = "is the input"
            elif target.is_relative_to(source):
                relation = "is inside the input"
            elif source.is_relative_to(target):
                relation = "contains the input"
            else:
                continue
            raise PgdataError(f"the output {written} {relation} {path}: write the dataset outside its inputs")


def _check_replaceable(out_dir: Path, overwrite: bool) -> None:
    """OUT may be absent or an empty folder; a non-empty one only with --overwrite and only if pgdata wrote it."""
    if out_dir.is_symlink():
        raise PgdataError("is a symbolic link: give the path it points to, or another name", out_dir)
    if not out_dir.exists() or _is_empty_folder(out_dir):
        return
    if not out_dir.is_dir():
        raise PgdataError("exists and is not a folder: choose another output name", out_dir)
    if not overwrite:
        raise PgdataError("output already exists (use --overwrite to replace it)", out_dir)
    if not is_pgdata_dataset(out_dir):
        raise PgdataError("is not a dataset written by pgdata (no pgdata manifest.json): --overwrite replaces "
                          "only those; move it or choose another output", out_dir)
    old = old_path(out_dir)
    if _exists(old) and not _is_empty_folder(old) and not is_replaced_dataset(old):
        raise PgdataError(f"is in the way of --overwrite (the old dataset moves there until the new one is in "
                          f"place) and was not left by pgdata (no {REPLACED_MARKER}): move or rename it", old)


def input_fingerprint(inputs: Mapping[str, Path]) -> dict:
    """The identity of every input, recorded when a build starts and compared on --resume and at the end.

    Per input (a file or a folder, taken whole: every non-hidden file under it, symbolic links followed):
    each file's relative name, size and mtime (ns), and the sha256 of files up to HASH_FILE_BYTES while
    HASH_BUDGET_BYTES last. Size and mtime catch a replaced or edited file; the hash also catches an edit
    that kept both, where reading the file is cheap. Missing inputs are recorded as missing.
    """
    try:
        return {name: _fingerprint(Path(path)) for name, path in sorted(inputs.items())}
    except OSError as error:
        raise PgdataError(f"cannot read input: {error.strerror or error}", error.filename) from error


def _fingerprint(path: Path) -> dict:
    if not path.exists():
        return {"path": str(path), "kind": "missing", "files": []}
    kind, files = ("file", [(path.name, path)]) if not path.is_dir() else ("folder", _walk_files(path))
    budget = HASH_BUDGET_BYTES
    entries = []
    for relative, file in files:
        status = file.stat()
        digest = None
        if status.st_size <= min(HASH_FILE_BYTES, budget):
            digest = file_sha256(file)
            budget -= status.st_size
        entries.append([relative, status.st_size, status.st_mtime_ns, digest])
    return {"path": str(path), "kind": kind, "files": entries}


def _walk_files(root: Path) -> list[tuple[str, Path]]:
    """(name relative to root, path) of every non-hidden file under root, sorted; linked folders are followed
    once (a link loop is not)."""
    found, seen, pending = [], set(), [root]
    while pending:
        folder = pending.pop()
        status = folder.stat()
        if (status.st_dev, status.st_ino) in seen:
            continue
        seen.add((status.st_dev, status.st_ino))
        for entry in folder.iterdir():
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                pending.append(entry)
            elif entry.is_file():
                found.append((entry.relative_to(root).as_posix(), entry))
    return sorted(found)


def input_change(before: dict, after: dict) -> tuple[str, str] | None:
    """(path, what changed) for the first difference between two fingerprints, or None."""
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old is None or new is None:
            return name, "the inputs are not the same ones"
        if old["kind"] != new["kind"]:
            return new["path"], _kind_change(old["kind"], new["kind"])
        old_files, new_files = ({entry[0]: entry for entry in side["files"]} for side in (old, new))
        for relative in sorted(set(old_files) | set(new_files)):
            where = new["path"] if new["kind"] == "file" else str(Path(new["path"]) / relative)
            difference = _file_change(old_files.get(relative), new_files.get(relative))
            if difference:
                return where, difference
    return None


def _kind_change(old: str, new: str) -> str:
    if old == "missing":
        return f"appeared (a {new})"
    if new == "missing":
        return "was removed"
    return f"was a {old}, is now a {new}"


def _file_change(old: list | None, new: list | None) -> str | None:
    if old is None:
        return "added"
    if new is None:
        return "removed"
    if old[1] != new[1]:
        return f"size changed from {old[1]} to {new[1]} bytes"
    if old[2] != new[2]:
        return "modified (its modification time changed)"
    if old[3] and new[3] and old[3] != new[3]:
        return "contents changed (sha256)"
    return None


def _prepare_partial(partial: Path, spec: dict, fingerprint: dict, resume: bool, quiet: bool) -> bool:
    """Create or reuse the build directory; True when an interrupted build with the same spec and inputs resumes."""
    _refuse_foreign_partial(partial)
    if _exists(partial) and not _is_empty_folder(partial):
        if resume:
            _check_resumable(partial, spec, fingerprint)
            return True
        if not quiet:
            print(f"pgdata: starting again: removing the interrupted build at {partial} (--resume would have "
                  "finished it)", file=sys.stderr)
    elif resume and not quiet:
        print(f"pgdata: nothing to resume at {partial}; starting a new build", file=sys.stderr)
    try:
        if _exists(partial):
            _remove_folder(partial, is_partial_build)
        partial.mkdir(parents=True)
        write_json(partial / BUILD_SPEC, spec)  # the marker first: the folder is ours
        write_json(partial / INPUTS_FILE, {"inputs": fingerprint})
    except OSError as error:
        raise PgdataError(f"cannot create the build folder: {_os_error_text(error)}", partial) from error
    return False


def _check_resumable(partial: Path, spec: dict, fingerprint: dict) -> None:
    """The inputs first: a changed input is the likelier cause of a changed spec, and names the file."""
    recorded = _read_json(partial / INPUTS_FILE)
    if not isinstance(recorded, dict) or not isinstance(recorded.get("inputs"), dict):
        raise PgdataError(f"the interrupted build there has no record of its inputs ({INPUTS_FILE}); run without "
                          "--resume to start again", partial)
    change = input_change(recorded["inputs"], fingerprint)
    if change is not None:
        raise PgdataError(f"{change[1]} since the interrupted build at {partial} began, whose shards may hold "
                          "the old input: run without --resume to start again", change[0])
    if _read_json(partial / BUILD_SPEC) != spec:
        raise PgdataError("the interrupted build there was made with other inputs or arguments; "
                          "run without --resume to start again", partial)


def _kept_shards(partial: Path, levels: list[int], channels: int, with_class: bool,
                 quiet: bool) -> dict[int, list[layout.ShardRecord]]:
    """The shards of an interrupted build that still hold exactly what was written (SHARDS_FILE's sha256);
    every other file of those resolutions is removed, and written again by the resumed build."""
    recorded = _read_json(partial / SHARDS_FILE)
    recorded = recorded if isinstance(recorded, dict) else {}
    kept = {}
    for resolution in levels:
        entries = recorded.get(layout.level_dir(resolution), [])
        per_shard = layout.samples_per_shard(channels, resolution, with_class)
        kept[resolution] = _verified_prefix(partial, resolution, entries if isinstance(entries, list) else [],
                                            per_shard, quiet)
        names = {record.name for record in kept[resolution]}
        for file in sorted((partial / layout.level_dir(resolution)).glob("*")):
            if file.is_file() and f"{layout.level_dir(resolution)}/{file.name}" not in names:
                file.unlink()
    return kept


def _verified_prefix(partial: Path, resolution: int, entries: list, per_shard: int,
                     quiet: bool) -> list[layout.ShardRecord]:
    """Recorded shards 0, 1, ... while each file has its recorded size and sha256 (a short shard ends a level)."""
    kept: list[layout.ShardRecord] = []
    for number, entry in enumerate(entries):
        try:
            record = layout.ShardRecord(**entry)
        except TypeError:
            break
        expected_name = layout.shard_name(resolution, number)
        if record.name != expected_name or (kept and kept[-1].samples != per_shard) or record.samples > per_shard:
            break
        path = partial / record.name
        if not path.is_file() or path.stat().st_size != record.bytes or file_sha256(path) != record.sha256:
            if path.is_file() and not quiet:
                print(f"pgdata: {path} is not the shard that was written (sha256 differs from the one recorded): "
                      "writing it again", file=sys.stderr)
            break
        kept.append(record)
    return kept


def _shard_recorder(partial: Path, done: dict, writers: dict) -> Callable[[], None]:
    """A function that stores, whenever shards were completed since its last call, every completed shard with
    the sha256 its writer computed while writing it (SHARDS_FILE): what --resume checks kept shards against."""
    stored = [-1]

    def record() -> None:
        completed = sum(len(writer.shards) for writer in writers.values())
        if completed == stored[0]:
            return
        write_json(partial / SHARDS_FILE, {
            layout.level_dir(r): [shard.as_json() for shard in done[r] + list(writers[r].shards)]
            for r in writers})
        stored[0] = completed

    return record


def _os_error_text(error: OSError) -> str:
    text = os_error_reason(error)
    return f"{error.filename}: {text}" if error.filename else text


def _kept_for_resume(error: OSError | PgdataError, partial: Path, out_dir: Path) -> PgdataError:
    """The error, plus where the build was left (one line)."""
    where = f"the partial build is kept at {partial} for --resume"
    if _exists(out_dir):
        where += f"; {out_dir} is unchanged"
    if isinstance(error, PgdataError):
        return PgdataError(f"{error.message}; {where}", error.path)
    return PgdataError(f"build stopped: {_os_error_text(error)}; {where}")


def export_dataset(source: Source, out_dir: str | Path, *, command: str, arguments: dict,
                   encoding: str = "npy", overwrite: bool = False, resume: bool = False,
                   quiet: bool = False, inputs: Mapping[str, str | Path] | None = None) -> Path:
    """Write `source` as a pgshards dataset at `out_dir`; returns the path. Raises PgdataError on bad input.

    `inputs`: every file or folder the source reads, by argument name: OUT must not overlap them, and their
    identity (input_fingerprint) is checked on --resume and before the dataset is completed.
    """
    out_dir = output_path(out_dir)
    inputs = {name: Path(path) for name, path in (inputs or {}).items()}
    info = source.info
    if encoding not in layout.ENCODINGS:
        raise PgdataError(f"unknown encoding {encoding!r} (choose from {', '.join(layout.ENCODINGS)})")
    try:
        resolution_log2(info.resolution)
    except ValueError as error:
        raise PgdataError(str(error), out_dir) from error
    if info.channels not in (1, 3):
        raise PgdataError(f"images must have 1 or 3 channels, not {info.channels}")
    check_output(out_dir, overwrite, inputs)

    labels = source.labels
    classes = None if labels is None else class_indices(labels)
    record_order = getattr(source, "record_order", "source order")
    spec = {"format": layout.FORMAT_NAME, "version": layout.FORMAT_VERSION, "pgdata": __version__,
            "command": command, "arguments": arguments, "encoding": encoding, "name": info.name,
            "channels": info.channels, "resolution": info.resolution, "num_images": info.num_images,
            "labels_shape": None if labels is None else list(labels.shape), BUILD_MARKER[0]: BUILD_MARKER[1]}
    partial = partial_path(out_dir)
    fingerprint = input_fingerprint(inputs)
    resuming = _prepare_partial(partial, spec, fingerprint, resume, quiet)
    try:
        count, shards = _write_shards(source, partial, encoding, classes, resuming, quiet)
    except (OSError, PgdataError) as error:
        raise _kept_for_resume(error, partial, out_dir) from error
    if count == 0:
        _remove_folder(partial, is_partial_build)
        raise _no_images(source, inputs)
    _check_inputs_unchanged(fingerprint, inputs, partial)
    try:
        _check_counts(count, info, labels)
        label_entry = _write_labels(partial, labels, classes is not None)
        manifest = build_manifest(
            name=info.name, num_images=count, channels=info.channels, resolution=info.resolution,
            encoding=encoding, labels=label_entry, levels=shards, command=command, arguments=arguments,
            record_order=record_order)
        write_json(partial / layout.MANIFEST, manifest)
    except (OSError, PgdataError) as error:
        raise _kept_for_resume(error, partial, out_dir) from error
    _move_into_place(partial, out_dir, overwrite)
    for warning in source.warnings():
        if not quiet:
            print(f"pgdata: warning: {warning}", file=sys.stderr)
    return out_dir


def _write_shards(source: Source, partial: Path, encoding: str, classes: np.ndarray | None, resuming: bool,
                  quiet: bool) -> tuple[int, dict[int, list[layout.ShardRecord]]]:
    """Every resolution's shards in `partial` (after the verified ones of an interrupted build); returns the
    number of records and each resolution's shards."""
    info = source.info
    levels = [info.resolution >> k for k in range(resolution_log2(info.resolution) - 1)]
    with_class = classes is not None
    done = (_kept_shards(partial, levels, info.channels, with_class, quiet) if resuming
            else {r: [] for r in levels})
    writers = {r: ShardSetWriter(partial, r, info.channels, encoding, with_class,
                                          skip_below=sum(s.samples for s in done[r])) for r in levels}
    record = _shard_recorder(partial, done, writers)
    record()
    start = min(writer.skip_below for writer in writers.values())
    count = _write_records(source, writers, classes, start, info, quiet, record)
    return count, {r: done[r] + writers[r].shards for r in levels}


def _check_counts(count: int, info, labels: np.ndarray | None) -> None:
    if info.num_images is not None and count != info.num_images:
        raise PgdataError(f"source produced {count} images, expected {info.num_images}")
    if labels is not None and len(labels) != count:
        raise PgdataError(f"{len(labels)} labels for {count} images")


def _no_images(source: Source, inputs: Mapping[str, Path]) -> PgdataError:
    """A dataset of no images is refused; the source's first warning usually says why (e.g. LSUN's skips)."""
    warnings = source.warnings()
    why = f" ({len(warnings)} warning(s), the first: {warnings[0]})" if warnings else ""
    where = next(iter(inputs.values())) if len(inputs) == 1 else None
    return PgdataError(f"no images could be read{why}; no dataset was written", where)


def _check_inputs_unchanged(fingerprint: dict, inputs: Mapping[str, Path], partial: Path) -> None:
    """A dataset is completed only if its inputs are still those it started from (nothing changed mid-build)."""
    change = input_change(fingerprint, input_fingerprint(inputs))
    if change is not None:
        _remove_folder(partial, is_partial_build)
        raise PgdataError(f"{change[1]} during the build, so its shards may mix old and new input: the build "
                          "was discarded, run it again", change[0])


def _write_labels(partial: Path, labels: np.ndarray | None, with_class: bool) -> dict | None:
    if labels is None:
        return None
    data = labels_npy_bytes(labels)
    (partial / layout.LABELS).write_bytes(data)
    return {"file": layout.LABELS, "shape": [int(d) for d in labels.shape],
            "sha256": hashlib.sha256(data).hexdigest(), "classes": with_class}


def _write_records(source: Source, writers: dict, classes: np.ndarray | None, start: int, info, quiet: bool,
                   record: Callable[[], None]) -> int:
    """Stream chunks through the pyramid into the shard writers; returns the number of records.

    Encoding, hashing and writing run on one background thread per resolution (numpy copies, hashlib
    and file writes release the GIL; each resolution's shards stay in order on its own thread), overlapping
    the next batch's pyramid, which itself runs on one thread per core; at most two batches are in flight.
    `record` stores the completed shards' hashes; it runs after each batch has reached the writers.
    """
    bar = progress_bar(info.num_images, f"building {info.name}", quiet=quiet)
    bar.update(start)
    index = start
    per_batch = max(1, BATCH_BYTES // (info.channels * info.resolution**2))
    expected_shape = (info.channels, info.resolution, info.resolution)
    in_flight: deque[list[Future]] = deque()
    cores = available_cores()
    io_threads = {r: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pgdata-writer-{r}") for r in writers}
    with ThreadPoolExecutor(max_workers=cores, thread_name_prefix="pgdata-pyramid") as pyramid_threads:
        try:
            for chunk in source.iter_chunks(start):
                if chunk.dtype != np.uint8 or chunk.shape[1:] != expected_shape:
                    raise PgdataError(f"source {info.name} gave images of shape {chunk.shape[1:]} and type "
                                      f"{chunk.dtype}, expected uint8 {expected_shape}")
                for first in range(0, len(chunk), per_batch):
                    batch = chunk[first:first + per_batch]
                    indices = np.arange(index, index + len(batch))
                    digits = tarblocks.key_digits(indices)
                    class_blocks = None
                    if classes is not None:
                        if indices[-1] >= len(classes):
                            raise PgdataError(f"source {info.name} gave more images than it has labels")
                        class_blocks = tarblocks.class_members(digits, classes[indices])
                    levels = pyramid_levels_threaded(batch, pyramid_threads, cores)
                    while len(in_flight) >= 2:
                        for future in in_flight.popleft():
                            future.result()
                        record()
                    in_flight.append([io_threads[level.shape[2]].submit(
                        writers[level.shape[2]].add, index, level, digits, class_blocks) for level in levels])
                    index += len(batch)
                    bar.update(len(batch))
            while in_flight:
                for future in in_flight.popleft():
                    future.result()
            for writer in writers.values():
                writer.finish()
            record()
        finally:
            # On an interruption, let the (at most two) batches already handed over reach their shards, so
            # that what is on disk does not depend on thread timing and --resume starts where it stopped.
            for futures in in_flight:
                for future in futures:
                    future.exception()
            _record_if_possible(record)
            for thread in io_threads.values():
                thread.shutdown()
            for writer in writers.values():
                writer.abort()
            bar.close()
    return index


def _record_if_possible(record: Callable[[], None]) -> None:
    """After a failure (a full disk, say) the record may not be writable: the error being raised says more."""
    try:
        record()
    except OSError:
        pass


def _move_into_place(partial: Path, out_dir: Path, overwrite: bool) -> None:
    """Rename the finished build into place. An existing dataset (--overwrite) is marked and moved to OUT.old
    first, put back if the rename fails, and removed only once the new one is in place."""
    try:
        _check_replaceable(out_dir, overwrite)  # again: OUT may have appeared while building
        if _is_empty_folder(out_dir):
            out_dir.rmdir()
    except (OSError, PgdataError) as error:
        raise _complete_but_not_moved(error, partial, out_dir) from error
    old = old_path(out_dir) if _exists(out_dir) else None
    if old is not None:
        try:
            _set_aside(out_dir, old)
        except (OSError, PgdataError) as error:
            _unmark(out_dir)
            raise _complete_but_not_moved(error, partial, out_dir) from error
    try:
        partial.rename(out_dir)
    except OSError as error:
        if old is not None:
            _put_back(old, out_dir, partial)
        raise _complete_but_not_moved(error, partial, out_dir) from error
    _drop_build_files(out_dir)
    if old is not None:
        try:
            _remove_folder(old, is_replaced_dataset)
        except (OSError, PgdataError) as error:
            print(f"pgdata: warning: the new dataset is in place, but the old one could not be removed from "
                  f"{old}: {_error_text(error)}", file=sys.stderr)


def _set_aside(dataset: Path, old: Path) -> None:
    """Mark the dataset being replaced and move it to OUT.old (where a marked leftover may be removed)."""
    if _exists(old):
        _remove_folder(old, is_replaced_dataset)
    write_json(dataset / REPLACED_MARKER, {"replaced_by": "pgdata --overwrite"})
    dataset.rename(old)


def _drop_build_files(dataset: Path) -> None:
    """The build's own files go last: until the rename, the marker says whose folder this is."""
    for name in BUILD_FILES:
        try:
            (dataset / name).unlink(missing_ok=True)
        except OSError:
            pass  # a leftover build file does not make the dataset any less complete


def _unmark(dataset: Path) -> None:
    try:
        (dataset / REPLACED_MARKER).unlink(missing_ok=True)
    except OSError:
        pass  # a marked dataset is still a complete dataset


def _put_back(old: Path, out_dir: Path, partial: Path) -> None:
    """Undo the move of the existing dataset after the new one could not take its place."""
    try:
        old.rename(out_dir)
    except OSError as error:
        raise PgdataError(f"the old dataset is at {old} and the new one at {partial}: neither could be moved to "
                          f"{out_dir} ({_os_error_text(error)}); rename one of them yourself") from error
    _unmark(out_dir)


def _error_text(error: OSError | PgdataError) -> str:
    return _os_error_text(error) if isinstance(error, OSError) else str(error)


def _complete_but_not_moved(error: OSError | PgdataError, partial: Path, out_dir: Path) -> PgdataError:
    unchanged = f"; {out_dir} is unchanged" if _exists(out_dir) else ""
    return PgdataError(f"the dataset is complete in {partial} but was not moved into place: "
                       f"{_error_text(error)}{unchanged}")
