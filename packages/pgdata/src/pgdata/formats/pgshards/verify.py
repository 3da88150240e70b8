"""pgshards v1 verification (`pgdata verify`): everything about a dataset that can be checked, one line per problem.

Unlike the reader, which checks what it needs as it goes, verify reads every byte: every listed file's size and
sha256, every sample decoded against the manifest, the labels, and files that claim to belong without being listed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pgdata.errors import PgdataError
from pgdata.formats import tarblocks
from pgdata.formats.pgshards.layout import (
    LABELS,
    LEVEL_DIR_NAME,
    class_indices,
    decode_png,
    first_unexpected_member,
    member_names,
    open_in_dataset,
)
from pgdata.formats.pgshards.manifest import load_manifest, shown
from pgdata.formats.pgshards.reader import read_labels
from pgdata.hashing import CHUNK_BYTES


def verify_pgshards(path: str | Path, progress: Callable[[int], None] | None = None) -> list[str]:
    """Everything about a dataset that can be checked; one line per problem, none when it is sound.

    The manifest's structure (check_manifest); every listed file a regular file inside the dataset with its
    size and sha256; every sample decoded and checked against the manifest (check_samples); the labels' shape,
    dtype and sha256, one-hot exactly when shards hold classes; no unlisted file where shards live.
    `progress` is called with each shard's sample count once it is checked.
    """
    path = Path(path)
    try:
        manifest = load_manifest(path)
    except PgdataError as error:
        return [str(error)]
    labels, problems = _verify_labels(path, manifest)
    classes = labels.argmax(axis=1) if labels is not None and manifest["labels"]["classes"] else None
    for level in manifest["resolutions"].values():
        for number, entry in enumerate(level["shards"]):
            problem = _verify_shard(path, manifest, level, number, classes)
            if problem is not None:
                problems.append(problem)
            if progress is not None:
                progress(entry["samples"])
    return problems + _unlisted_files(path, manifest)


def _file_sha256(file: BinaryIO) -> str:
    """sha256 of an open file from its start. (pgdata.hashing.file_sha256 opens a path itself, which would give up
    the regular-file check made on this descriptor.)"""
    digest = hashlib.sha256()
    file.seek(0)
    while block := file.read(CHUNK_BYTES):
        digest.update(block)
    return digest.hexdigest()


def _sha256_problem(path: Path, actual: str, listed: str) -> str:
    return f"{path}: sha256 {actual[:16]}… differs from the manifest's {listed[:16]}…"


def _verify_labels(root: Path, manifest: dict) -> tuple[np.ndarray | None, list[str]]:
    """The labels (None when absent or faulty) and the problems found with them."""
    entry = manifest["labels"]
    if entry is None:
        return None, []
    path = root / entry["file"]
    try:
        with open_in_dataset(root, entry["file"]) as file:
            if entry.get("sha256") is not None:
                actual = _file_sha256(file)
                if actual != entry["sha256"]:
                    return None, [_sha256_problem(path, actual, entry["sha256"])]
                file.seek(0)
            labels = read_labels(file, entry, path)
    except PgdataError as error:
        return None, [str(error)]
    one_hot = class_indices(labels) is not None
    if one_hot != entry["classes"]:
        return None, [f"{path}: the rows are {'' if one_hot else 'not '}one-hot, but the manifest's labels.classes "
                      f"is {str(entry['classes']).lower()} (shards hold .cls members exactly when every row is one-hot)"]
    return labels, []


def _verify_shard(root: Path, manifest: dict, level: dict, number: int, classes: np.ndarray | None) -> str | None:
    entry = level["shards"][number]
    path = root / entry["name"]
    try:
        with open_in_dataset(root, entry["name"]) as file:
            size = os.fstat(file.fileno()).st_size
            if size != entry["bytes"]:
                return f"{path}: {size} bytes, the manifest says {entry['bytes']}"
            actual = _file_sha256(file)
            if actual != entry["sha256"]:
                return _sha256_problem(path, actual, entry["sha256"])
            data = np.memmap(file, dtype=np.uint8, mode="r")
    except PgdataError as error:
        return str(error)
    except (OSError, ValueError) as error:
        return f"{path}: cannot read: {error}"
    shape = (manifest["channels"], level["resolution"], level["resolution"])
    with_class = manifest["labels"] is not None and manifest["labels"]["classes"]
    try:
        check_samples(data, manifest["encoding"], shape, number * level["samples_per_shard"], entry["samples"],
                      with_class, classes)
    except ValueError as error:
        return f"{path}: {error}"
    return None


def check_samples(data, encoding: str, shape: tuple[int, int, int], first_key: int, samples: int, with_class: bool,
                  classes: np.ndarray | None) -> None:
    """Every sample of a shard decoded and checked against the manifest; ValueError names the first bad one.

    The members are exactly [<key>.cls,] <key>.<encoding> for the shard's keys, in order; an .npy member is a
    uint8 C x H x W array with the header pgdata writes; a .png decodes to that mode and size; a .cls holds the
    decimal class of the labels' row (`classes`, when known); padding is zero, and after the last member come
    only the zero blocks that end a tar archive, up to a whole 10240-byte record.
    """
    view = memoryview(data)  # slicing a memmap costs microseconds per member, a memoryview next to nothing
    try:
        members = tarblocks.scan_members(view)
    except ValueError as error:
        raise ValueError(f"not a readable tar file ({error})") from error
    problem = first_unexpected_member([name for name, _, _ in members],
                                member_names(first_key, samples, "." + encoding, with_class))
    if problem is not None:
        raise ValueError(problem)
    header = tarblocks.npy_header(shape)
    npy_size = len(header) + shape[0] * shape[1] * shape[2]
    class_list = None if classes is None else classes.tolist()
    for name, offset, size in members:
        try:
            if name.endswith(".cls"):
                _check_class(bytes(view[offset:offset + size]), class_list, int(name[:tarblocks.KEY_DIGITS]))
            elif encoding == "npy" and (size != npy_size or bytes(view[offset:offset + len(header)]) != header):
                raise ValueError("not a uint8 %dx%dx%d .npy array" % shape)
            elif encoding == "png":
                decode_png(bytes(view[offset:offset + size]), shape)
            padding = tarblocks.padded(size) - size
            if padding and bytes(view[offset + size:offset + size + padding]) != bytes(padding):
                raise ValueError("nonzero bytes in the padding after it")
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from error
    end = members[-1][1] + tarblocks.padded(members[-1][2]) if members else 0
    if len(data) - end < 2 * tarblocks.BLOCK or len(data) % tarblocks.RECORD or np.any(data[end:]):
        raise ValueError("does not end with the zero blocks of a tar archive, padded to whole 10240-byte records")


def _check_class(text: bytes, classes: list[int] | None, key: int) -> None:
    if not text.isdigit() or (len(text) > 1 and text.startswith(b"0")):
        raise ValueError(f"class {shown(text)} is not a decimal number")
    if classes is not None and int(text) != classes[key]:
        raise ValueError(f"class {int(text)}, but row {key} of the labels is one-hot at {classes[key]}")


def _unlisted_files(root: Path, manifest: dict) -> list[str]:
    """What claims to be part of the dataset without being listed: folders of other resolutions, other files
    among a level's shards, a labels file the manifest does not name."""
    listed = {shard["name"] for level in manifest["resolutions"].values() for shard in level["shards"]}
    problems = []
    for name in _folder_names(root, problems):
        if (LEVEL_DIR_NAME.fullmatch(name) and name not in manifest["resolutions"]) or \
                (name == LABELS and manifest["labels"] is None):
            problems.append(f"{root / name}: not listed in the manifest")
    for level in manifest["resolutions"]:
        if (root / level).is_dir():
            problems.extend(f"{root / level / name}: not listed in the manifest"
                            for name in _folder_names(root / level, problems) if f"{level}/{name}" not in listed)
    return problems


def _folder_names(folder: Path, problems: list[str]) -> list[str]:
    """The sorted names in `folder`; none, and one problem, when it cannot be listed."""
    try:
        return sorted(os.listdir(folder))
    except OSError as error:
        problems.append(f"{folder}: cannot list: {error.strerror}")
        return []
