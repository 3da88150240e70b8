"""pgshards v1 manifest: built from the shards the writer reports, written atomically, read and checked.

check_manifest is cheap (no file opened) and runs whenever a reader opens a dataset, so that a damaged or
forged manifest is refused in one line naming the field before any shard is trusted.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import NoReturn

from pgdata import __version__
from pgdata.common.resolution import LOWEST_RESOLUTION, is_power_of_two
from pgdata.errors import PgdataError
from pgdata.formats.pgshards.layout import (
    ENCODINGS,
    FORMAT_NAME,
    FORMAT_VERSION,
    LEVEL_DIR_NAME,
    MANIFEST,
    MAX_IMAGES,
    PLAIN_FILE_NAME,
    ShardRecord,
    level_dir,
    npy_shard_bytes,
    open_in_dataset,
    samples_per_shard,
    shard_name,
)

MAX_MANIFEST_BYTES = 256 * 2**20  # a manifest of 10**8 images at 1024x1024 is about 100 MiB
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def build_manifest(*, name: str, num_images: int, channels: int, resolution: int, encoding: str,
                   labels: dict | None, levels: dict[int, list[ShardRecord]], command: str,
                   arguments: dict, record_order: str) -> dict:
    """The manifest: everything needed to read and verify, nothing that varies between rebuilds."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "name": name,
        "num_images": num_images,
        "channels": channels,
        "resolution": resolution,
        "encoding": encoding,
        "label_size": 0 if labels is None else labels["shape"][1],
        "record_order": record_order,
        "labels": labels,
        "resolutions": {
            level_dir(r): {
                "resolution": r,
                "samples_per_shard": samples_per_shard(channels, r, labels is not None and labels["classes"]),
                "shards": [shard.as_json() for shard in shards],
            }
            for r, shards in sorted(levels.items())
        },
        "producer": {"tool": "pgdata", "version": __version__, "command": command, "arguments": arguments},
    }


def load_manifest(path: Path) -> dict:
    """The manifest of the dataset at `path`, refused in one line unless it is sound (see check_manifest)."""
    manifest_path = path / MANIFEST
    if not os.path.lexists(manifest_path):
        raise PgdataError("not a complete pgshards dataset (manifest.json missing)", path)
    with open_in_dataset(path, MANIFEST) as file:
        size = os.fstat(file.fileno()).st_size
        if size > MAX_MANIFEST_BYTES:
            raise PgdataError(f"unreadable manifest: {size} bytes, far more than a manifest holds", manifest_path)
        try:
            manifest = json.loads(file.read().decode("utf-8"))
        except (OSError, ValueError, RecursionError) as error:
            raise PgdataError(f"unreadable manifest: {error}", manifest_path) from error
    return check_manifest(manifest, manifest_path)


# --- the manifest's structure ---------------------------------------------------------------------------

_KIND_NAMES = {int: "an integer", str: "a string", bool: "true or false", list: "a list", dict: "an object"}


def shown(value: object, limit: int = 200) -> str:
    """A manifest value for an error line: its repr (one line), shortened when long."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _Fields:
    """One JSON object of a manifest, read field by field; each failure names the manifest and the field."""

    def __init__(self, value: object, where: str, manifest_path: Path):
        self.where = where
        self.manifest_path = manifest_path
        if not isinstance(value, dict):
            raise PgdataError(f"{where}: must be an object, not {shown(value)}", manifest_path)
        self.value = value

    def fail(self, key: str, problem: str) -> NoReturn:
        where = f"{self.where}.{key}" if self.where else key
        raise PgdataError(f"{where}: {problem}", self.manifest_path)

    def get(self, key: str, kind: type):
        """The field, of type `kind` (JSON true/false is not an integer here)."""
        if key not in self.value:
            self.fail(key, "missing")
        value = self.value[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.fail(key, f"must be {_KIND_NAMES[kind]}, not {shown(value)}")
        return value

    def count(self, key: str, low: int, high: int | None = None) -> int:
        value = self.get(key, int)
        if value < low or (high is not None and value > high):
            self.fail(key, f"{value} is outside {low} .. {'' if high is None else high}".rstrip())
        return value

    def child(self, key: str) -> _Fields:
        return _Fields(self.get(key, dict), f"{self.where}.{key}" if self.where else key, self.manifest_path)


def check_manifest(manifest: object, manifest_path: Path) -> dict:
    """`manifest` once it is sound enough to read by; PgdataError names the first bad field.

    Cheap (no file is opened): every field present and of its type; every resolution from 4x4 up to the full one
    and no other; in each, as many shards as num_images and samples_per_shard make, named rNN/NNNNNN.tar in order
    (plain files inside the dataset), each with its sample count, a sha256 and, for npy, the exact size its
    samples take; labels named by a plain file name and shaped [num_images, label_size].
    """
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME or \
            manifest.get("version") != FORMAT_VERSION:
        raise PgdataError(f"not a pgshards v{FORMAT_VERSION} manifest", manifest_path)
    top = _Fields(manifest, "", manifest_path)
    for key in ("name", "record_order", "encoding"):
        top.get(key, str)
    top.get("producer", dict)
    if manifest["encoding"] not in ENCODINGS:
        top.fail("encoding", f"{shown(manifest['encoding'])} is not one of {', '.join(ENCODINGS)}")
    num_images = top.count("num_images", 0, MAX_IMAGES - 1)
    if top.get("channels", int) not in (1, 3):
        top.fail("channels", f"{manifest['channels']}, expected 1 or 3")
    resolution = top.count("resolution", LOWEST_RESOLUTION)
    if not is_power_of_two(resolution, LOWEST_RESOLUTION):
        top.fail("resolution", f"{resolution} is not a power of two")
    with_class = _check_labels_entry(top, num_images, top.count("label_size", 0))
    levels = top.child("resolutions")
    expected = {level_dir(4 << k): 4 << k for k in range(resolution.bit_length() - 2)}
    for name in levels.value:
        if name not in expected:
            levels.fail(name, f"not a resolution of a {resolution}x{resolution} dataset")
    for name, level_resolution in expected.items():
        if name not in levels.value:
            levels.fail(name, f"missing (every resolution from 4x4 to {resolution}x{resolution} is needed)")
        _check_level(levels.child(name), level_resolution, manifest, with_class)
    return manifest


def _check_labels_entry(top: _Fields, num_images: int, label_size: int) -> bool:
    """The labels entry (null, or file, shape, sha256, classes); returns whether shards hold .cls members."""
    if "labels" not in top.value:
        top.fail("labels", "missing")
    if top.value["labels"] is None:
        if label_size:
            top.fail("label_size", f"{label_size}, but no labels file is listed")
        return False
    labels = top.child("labels")
    name = labels.get("file", str)
    if not PLAIN_FILE_NAME.fullmatch(name) or name == MANIFEST or LEVEL_DIR_NAME.fullmatch(name):
        labels.fail("file", f"{shown(name)} is not a plain file name inside the dataset")
    shape = labels.get("shape", list)
    if len(shape) != 2 or any(type(size) is not int for size in shape) or shape != [num_images, label_size]:
        labels.fail("shape", f"{shown(shape)}, expected [num_images, label_size] = [{num_images}, {label_size}]")
    digest = labels.value.get("sha256")
    if digest is not None and not (isinstance(digest, str) and SHA256_HEX.fullmatch(digest)):
        labels.fail("sha256", f"{shown(digest)} is not a sha256 (64 lowercase hex digits)")
    classes = labels.get("classes", bool)
    if classes and not label_size:
        labels.fail("classes", "true, but label_size is 0")
    return classes


def _check_level(level: _Fields, resolution: int, manifest: dict, with_class: bool) -> None:
    if level.get("resolution", int) != resolution:
        level.fail("resolution", f"{level.value['resolution']}, expected {resolution}")
    per_shard = level.count("samples_per_shard", 1, MAX_IMAGES)
    shards = level.get("shards", list)
    num_images = manifest["num_images"]
    count = -(-num_images // per_shard)
    if len(shards) != count:
        level.fail("shards", f"{len(shards)} listed, but {num_images} images at {per_shard} per shard make {count}")
    for number, shard in enumerate(shards):
        entry = _Fields(shard, f"{level.where}.shards[{number}]", level.manifest_path)
        _check_shard_entry(entry, resolution, number, min(per_shard, num_images - number * per_shard), manifest,
                           with_class)


def _check_shard_entry(entry: _Fields, resolution: int, number: int, samples: int, manifest: dict,
                       with_class: bool) -> None:
    name = entry.get("name", str)
    if name != shard_name(resolution, number):
        entry.fail("name", f"{shown(name)} is not {shard_name(resolution, number)} (shards are plain files inside "
                           "the dataset, named in order)")
    if entry.get("samples", int) != samples:
        entry.fail("samples", f"{entry.value['samples']}, but num_images and samples_per_shard make {samples}")
    size = entry.count("bytes", 1)
    channels = manifest["channels"]
    if manifest["encoding"] == "npy" and size != npy_shard_bytes(samples, channels, resolution, with_class):
        entry.fail("bytes", f"{size}, but {samples} npy samples of {channels}x{resolution}x{resolution}"
                            f"{' with classes' if with_class else ''} take "
                            f"{npy_shard_bytes(samples, channels, resolution, with_class)}")
    if not SHA256_HEX.fullmatch(entry.get("sha256", str)):
        entry.fail("sha256", f"{shown(entry.value['sha256'])} is not a sha256 (64 lowercase hex digits)")
