"""`pgtrain generate`: PNGs of single images or grids as the official generate_fake_images, and/or Gs's raw
float32 output. Writes as it generates: one batch of images in memory, each file complete before it is named."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from pgdata.common.atomic import atomic_file
from pgtrain.errors import PgtrainError
from pgtrain.generate import grouped_outputs, gs_output_to_uint8
from pgtrain.grids import save_image_grid
from pgtrain.networks import Generator
from pgtrain.outputs import check_output, make_folder


def default_prefix(snapshot_path: Path) -> str:
    """The official PNG prefix: the snapshot's folder and file name without its extension, joined by '-', then
    '-' (get_id_string_for_network_pkl): results/003-pgan-x/network-final.pt -> '003-pgan-x-network-final-'."""
    path = Path(snapshot_path)
    parts = [part for part in path.with_name(path.stem).parts if part not in (path.anchor, ".", "..")]
    return "-".join(parts[-2:]) + "-"


def png_paths(out_dir: Path, prefix: str, num_pngs: int) -> list[Path]:
    """`<prefix><NNNNNN>.png`, the official names, PNG index from 0."""
    return [out_dir / f"{prefix}{index:06d}.png" for index in range(num_pngs)]


@dataclass(frozen=True)
class FakeImagesJob:
    """What to write: `num_pngs` grids of columns x rows images into out_dir and/or all raw outputs into raw."""

    num_pngs: int
    columns: int
    rows: int
    shrink: int = 1
    out_dir: Path | None = None
    prefix: str = ""
    raw: Path | None = None
    overwrite: bool = False

    @property
    def cells(self) -> int:
        return self.columns * self.rows

    def check_outputs(self) -> list[Path]:
        """The PNG paths; every output checked before any work."""
        paths = png_paths(self.out_dir, self.prefix, self.num_pngs) if self.out_dir is not None else []
        for path in paths + ([self.raw] if self.raw is not None else []):
            check_output(path, self.overwrite)
        return paths


def png_groups(latents_per_png: Iterable[np.ndarray], labels: np.ndarray | None,
               cells: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(latents, labels) per PNG; labels hold one row per image of the whole run, in order."""
    for index, latents in enumerate(latents_per_png):
        yield latents, None if labels is None else labels[index * cells:(index + 1) * cells]


def write_fake_images(Gs: Generator, job: FakeImagesJob, latents_per_png: Iterable[np.ndarray],
                      labels: np.ndarray | None, *, lod: float, batch_size: int = 16,
                      device: str | torch.device = "cpu", on_png: Callable[[], None] | None = None) -> None:
    """Run Gs PNG by PNG (in shared batches) and write each PNG and the raw array as they come."""
    paths = job.check_outputs()
    if job.out_dir is not None:
        make_folder(job.out_dir)
    outputs = grouped_outputs(Gs, png_groups(latents_per_png, labels, job.cells), lod=lod, batch_size=batch_size,
                              device=device)
    if job.raw is None:
        _write_pngs(outputs, paths, job, on_png)
        return
    shape = (job.num_pngs * job.cells, Gs.num_channels, Gs.resolution, Gs.resolution)
    make_folder(job.raw.parent)
    with atomic_file(job.raw, "wb", fsync=False, error_type=PgtrainError) as file:
        _write_pngs(_append_raw(outputs, file, shape), paths, job, on_png)


def _append_raw(outputs: Iterable[np.ndarray], file: BinaryIO, shape: tuple[int, ...]) -> Iterator[np.ndarray]:
    """Stream the raw outputs into a .npy of known shape (plain writes: a full disk is an error, where a memory
    map would crash the process)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(file, header)
    for images in outputs:
        file.write(np.ascontiguousarray(images, dtype=np.float32).tobytes())
        yield images


def _write_pngs(outputs: Iterable[np.ndarray], paths: list[Path], job: FakeImagesJob,
                on_png: Callable[[], None] | None) -> None:
    for index, images in enumerate(outputs):
        if paths:
            save_image_grid(gs_output_to_uint8(images, job.shrink), paths[index], job.columns, job.rows)
        if on_png is not None:
            on_png()
