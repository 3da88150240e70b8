"""Labels for conditioned generators, from `--labels`: class indices or a .npy table, cycled over the images.

The official scripts feed an empty [N, 0] label array, i.e. they only run unconditioned networks; a conditioned
network here needs labels named by the user: image i gets row i mod k of the k rows given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pgtrain.errors import PgtrainError


def one_hot(classes: list[int], label_size: int) -> np.ndarray:
    """float32 [len(classes), label_size] one-hot rows (the datasets' label format)."""
    for value in classes:
        if not 0 <= value < label_size:
            raise ValueError(f"class {value} is out of range for a network with {label_size} classes")
    return np.eye(label_size, dtype=np.float32)[classes]


def parse_classes(text: str) -> list[int]:
    """'3' or '0,2,5' -> [0, 2, 5]."""
    try:
        classes = [int(part) for part in text.split(",")]
    except ValueError as error:
        raise ValueError(f"--labels takes class indices such as 0,2,5 or a .npy file, got {text!r}") from error
    return classes


def read_label_table(path: Path, label_size: int) -> np.ndarray:
    """A float32 [k, label_size] (or [label_size]) .npy file as rows."""
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise PgtrainError(f"{path}: cannot read labels as a .npy array ({error})") from error
    table = np.atleast_2d(np.asarray(table, np.float32))
    if table.ndim != 2 or table.shape[1] != label_size or table.shape[0] == 0:
        raise PgtrainError(f"{path}: labels must be [N, {label_size}] (or [{label_size}]), got {list(table.shape)}")
    return table


def cycle_rows(table: np.ndarray, count: int) -> np.ndarray:
    """float32 [count, label_size]: image i gets row i mod len(table)."""
    return table[np.arange(count) % len(table)]


def resolve_labels(spec: str | None, label_size: int, count: int) -> np.ndarray | None:
    """Labels for `count` images from a `--labels` value, or None for an unconditioned network."""
    if label_size == 0:
        if spec is not None:
            raise PgtrainError("--labels given, but this network is not conditioned (label_size 0)")
        return None
    if spec is None:
        raise PgtrainError(f"this network is conditioned ({label_size} classes): give --labels CLASS[,CLASS...] "
                           "or --labels FILE.npy")
    if spec.endswith(".npy") or Path(spec).is_file():
        return cycle_rows(read_label_table(Path(spec), label_size), count)
    try:
        return cycle_rows(one_hot(parse_classes(spec), label_size), count)
    except ValueError as error:
        raise PgtrainError(str(error)) from error
