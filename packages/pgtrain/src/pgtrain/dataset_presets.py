"""Dataset presets: the official config.py's "Dataset (choose one)" lines, and which one a run gets.

Facts (official TF config.py, tkarras/progressive_growing_of_gans master): each dataset line names a
`tfrecord_dir` and, for CelebA, CelebA-HQ and all 30 LSUN categories (dirs `lsun-<category>-100k`), also turns
on `train.mirror_augment`; the cifar10, cifar100, svhn, mnist and mnistrgb lines set nothing else. So training on
CelebA-HQ without mirroring is not the paper's run, and the dataset, not the user, is what decides it. Each
preset here carries exactly what its official line sets besides the dataset path: mirror augment or nothing.

Which dataset preset a run applies (at most one):

1. One named with `--preset` (including syn1024rgb): that one, and nothing is detected.
2. Otherwise the one detected from the dataset (`detect_dataset_preset`):
   - pgshards: from the manifest's producer, the pgdata command that built it (create_celebahq -> celebahq,
     create_lsun -> lsun-<category>, the category read from the LMDB folder name the manifest records, or from
     the dataset folder's name; create_from_hdf5 -> as the HDF5 file's name below). The folder name of a
     pgshards dataset is never used alone: a create_from_images dataset is not detected, whatever it is called.
   - original TFRecords: from the folder name (or the `<name>-rNN.tfrecords` file prefix, which the official
     exporter takes from the folder name), when it is one of the official `tfrecord_dir` names.
   - legacy HDF5 (the Theano-era release): from the file name, when it is one of the h5 names of the Theano
     config.py whose mirror setting the TF config keeps (celeba-hq-1024x1024.h5 -> celebahq, celeba-128x128,
     cifar-10-32x32, mnist-rgb-32x32, lsun-<category>-256x256-100k). lsun-{bedroom,dog}-256x256-full.h5 are
     not detected: the Theano config trained them without mirroring, the TF config lists no full sets.
   - anything else (synthetic, in-memory arrays): no detection.
3. "Chose otherwise": a detected preset is not applied when the user set every field it sets, through `--set`
   or through another preset named with `--preset` (e.g. `--set train.mirror_augment=false`). An explicit value
   would win anyway (presets apply before `--set`, and dataset presets before the modifier presets, as the
   official Dataset block comes first); skipping the preset keeps `config.presets` from claiming a setting the
   run does not have. A preset with no settings (cifar10 ...) is always applied: it records which official
   line the run follows.

The applied name is stored in `config.presets` (config.json, snapshot metadata), so `--resume` reuses it and never
detects again. Detection and the choice are pure functions of their arguments, for tests.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIRROR = "train.mirror_augment"

#: The LSUN categories of the official config.py, spelled as there (no separators: churchoutdoor, tvmonitor).
LSUN_CATEGORIES = (
    "airplane", "bedroom", "bicycle", "bird", "boat", "bottle", "bridge", "bus", "car", "cat", "chair",
    "churchoutdoor", "classroom", "conferenceroom", "cow", "diningroom", "diningtable", "dog", "horse", "kitchen",
    "livingroom", "motorbike", "person", "pottedplant", "restaurant", "sheep", "sofa", "tower", "train",
    "tvmonitor",
)


@dataclass(frozen=True)
class OfficialDataset:
    """One official dataset line: its preset name, `tfrecord_dir`, the pgdata command that builds it, and
    whether the line turns on mirror augmentation."""

    preset: str
    title: str
    tfrecord_dir: str
    command: str
    mirror_augment: bool

    @property
    def settings(self) -> tuple[tuple[str, Any], ...]:
        """Only what the official line sets; lines without mirroring set nothing (the default is off)."""
        return ((MIRROR, True),) if self.mirror_augment else ()

    @property
    def summary(self) -> str:
        mirror = "mirror augment on" if self.mirror_augment else "mirror augment off (sets nothing)"
        return f"{self.title}, official tfrecord_dir '{self.tfrecord_dir}' (pgdata {self.command}): {mirror}"


OFFICIAL_DATASETS: dict[str, OfficialDataset] = {d.preset: d for d in (
    OfficialDataset("celebahq", "CelebA-HQ", "celebahq", "create_celebahq", True),
    OfficialDataset("celeba", "CelebA", "celeba", "create_celeba", True),
    OfficialDataset("cifar10", "CIFAR-10", "cifar10", "create_cifar10", False),
    OfficialDataset("cifar100", "CIFAR-100", "cifar100", "create_cifar100", False),
    OfficialDataset("svhn", "SVHN", "svhn", "create_svhn", False),
    OfficialDataset("mnist", "MNIST", "mnist", "create_mnist", False),
    OfficialDataset("mnistrgb", "MNIST-RGB", "mnistrgb", "create_mnistrgb", False),
    *(OfficialDataset(f"lsun-{category}", f"LSUN {category}", f"lsun-{category}-100k", "create_lsun", True)
      for category in LSUN_CATEGORIES),
)}

_BY_COMMAND = {d.command: d.preset for d in OFFICIAL_DATASETS.values() if d.command != "create_lsun"}
_BY_TFRECORD_DIR = {d.tfrecord_dir: d.preset for d in OFFICIAL_DATASETS.values()}
#: Theano-era h5 names (file stems) whose mirror setting there equals the TF config's for the preset.
_BY_H5_NAME = {"celeba-hq-1024x1024": "celebahq", "celeba-128x128": "celeba", "cifar-10-32x32": "cifar10",
               "mnist-rgb-32x32": "mnistrgb",
               **{f"lsun-{category}-256x256-100k": f"lsun-{category}" for category in LSUN_CATEGORIES}}
# Name parts that say nothing about the category: LMDB suffix, split, size ("bedroom_train_lmdb", "-100k").
_NOISE_PART = re.compile(r"lmdb|train|val|test|full|\d+k?|\d+x\d+")


@dataclass(frozen=True)
class Detection:
    """What detection found: a preset name or None, and the evidence in words (for the run log)."""

    preset: str | None
    evidence: str


def lsun_category(name: str) -> str | None:
    """The official category an LSUN folder name holds, or None.

    LSUN downloads are `<category>_train_lmdb` (scenes) or `<category>` (objects, e.g. `tv-monitor`,
    `potted_plant`); the official dataset dirs are `lsun-<category>-100k`. Separators are dropped as the
    official names do (church_outdoor -> churchoutdoor). A trailing split, size or `lmdb` part is ignored but
    never the last remaining part, so the category `train` survives (`lsun-train-100k`).
    """
    parts = [part for part in re.split(r"[^a-z0-9]+", name.lower()) if part]
    if parts[:1] == ["lsun"]:
        parts = parts[1:]
    while len(parts) > 1 and _NOISE_PART.fullmatch(parts[-1]):
        parts.pop()
    joined = "".join(parts)
    return joined if joined in LSUN_CATEGORIES else None


def detect_from_manifest(manifest: dict[str, Any], folder_name: str) -> Detection:
    """The preset for a pgshards dataset, from the pgdata command recorded in its manifest."""
    producer = manifest.get("producer") or {}
    tool, command = producer.get("tool"), producer.get("command")
    if tool != "pgdata" or not isinstance(command, str):
        return Detection(None, "pgshards manifest without a pgdata producer command")
    made_by = f"manifest: pgdata {command}"
    if command in _BY_COMMAND:
        return Detection(_BY_COMMAND[command], made_by)
    if command == "create_lsun":
        names = [str(manifest.get("name") or ""), folder_name]
        for name in names:
            category = lsun_category(name)
            if category is not None:
                return Detection(f"lsun-{category}", f"{made_by}, category from the name '{name}'")
        return Detection(None, f"{made_by}, but no official LSUN category in the names "
                               f"{' or '.join(repr(n) for n in names if n)} (choose one: --preset lsun-<category>)")
    if command == "create_from_hdf5":
        source = detect_from_hdf5_name(str(manifest.get("name") or ""))
        return Detection(source.preset, f"{made_by}, {source.evidence}")
    return Detection(None, f"{made_by} (not an official dataset)")


def detect_from_tfrecords_name(folder_name: str, record_name: str | None = None) -> Detection:
    """The preset for an original TFRecords dataset, from its official `tfrecord_dir` name."""
    if folder_name in _BY_TFRECORD_DIR:
        return Detection(_BY_TFRECORD_DIR[folder_name], f"TFRecords folder name '{folder_name}'")
    if record_name is not None and record_name in _BY_TFRECORD_DIR:
        return Detection(_BY_TFRECORD_DIR[record_name], f"TFRecords file names '{record_name}-rNN.tfrecords'")
    return Detection(None, f"TFRecords folder '{folder_name}' is not an official tfrecord_dir name")


def detect_from_hdf5_name(stem: str) -> Detection:
    """The preset for a legacy HDF5 file (or a pgshards dataset converted from one), from its file stem."""
    if stem in _BY_H5_NAME:
        return Detection(_BY_H5_NAME[stem], f"HDF5 file name '{stem}.h5'")
    return Detection(None, f"HDF5 file name '{stem}.h5' is not an official one")


def detect_dataset_preset(format_name: str, path: str | Path, manifest: dict[str, Any] | None = None,
                          record_name: str | None = None) -> Detection:
    """The official dataset preset a dataset calls for (`.preset` None when there is none).

    `format_name` and `path` as a pgdata reader has them; `manifest` the pgshards manifest; `record_name` the
    TFRecords file prefix.
    """
    path = Path(path)
    if format_name == "pgshards":
        return detect_from_manifest(manifest or {}, path.name)
    if format_name == "tfrecords":
        return detect_from_tfrecords_name(path.name, record_name)
    if format_name == "hdf5":
        return detect_from_hdf5_name(path.stem)
    return Detection(None, f"{format_name} dataset")


def detect_for_reader(reader: Any) -> Detection:
    """`detect_dataset_preset` for an open pgdata reader (pgshards readers hold `.manifest`, TFRecords `.name`)."""
    format_name = str(getattr(reader, "format_name", "unknown"))
    manifest = getattr(reader, "manifest", None) if format_name == "pgshards" else None
    record_name = getattr(reader, "name", None) if format_name == "tfrecords" else None
    return detect_dataset_preset(format_name, reader.path, manifest, record_name)


@dataclass(frozen=True)
class DatasetChoice:
    """The dataset preset a run applies (None: none) and why, in words for the run log."""

    preset: str | None
    reason: str

    def line(self, settings: Iterable[tuple[str, Any]] = (), explicit_keys: Collection[str] = ()) -> str:
        """`Dataset preset: celebahq (detected from manifest: pgdata create_celebahq) -> train.mirror_augment=True`.

        `settings` are the applied preset's; those the user also set explicitly are marked as overridden, so
        the line never claims a value the run does not use.
        """
        if self.preset is None:
            return f"Dataset preset: none ({self.reason})"
        items = [f"{key}={value!r}" + (" (overridden)" if key in explicit_keys else "") for key, value in settings]
        arrow = "-> " + ", ".join(items) if items else "-> no settings (the official line only names the dataset)"
        return f"Dataset preset: {self.preset} ({self.reason}) {arrow}"


def choose_dataset_preset(detection: Detection, given: Collection[str],
                          explicit_keys: Mapping[str, str]) -> DatasetChoice:
    """Apply the rule of this module's docstring.

    `given`: dataset presets named with --preset (at most one, checked by the preset resolver);
    `explicit_keys`: fields the user set, each with where ('--set', 'preset demo-cpu').
    """
    if given:
        name = next(iter(given))
        ignored = (f"; detected {detection.preset} from {detection.evidence}, not applied"
                   if detection.preset not in (None, name) else "")
        return DatasetChoice(name, f"given with --preset{ignored}")
    if detection.preset is None:
        return DatasetChoice(None, f"none detected: {detection.evidence}")
    keys = [key for key, _ in OFFICIAL_DATASETS[detection.preset].settings]
    if keys and all(key in explicit_keys for key in keys):
        where = ", ".join(f"{key} set by {explicit_keys[key]}" for key in keys)
        return DatasetChoice(None, f"detected {detection.preset} from {detection.evidence}; not applied: {where}")
    return DatasetChoice(detection.preset, f"detected from {detection.evidence}")


def override_keys(overrides: Iterable[str] | None) -> dict[str, str]:
    """The fields `--set key=value` items set, each marked '--set' (malformed items are reported by
    apply_overrides)."""
    return {item.split("=", 1)[0].strip(): "--set" for item in overrides or [] if "=" in item}
