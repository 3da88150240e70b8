"""Generation: latents -> Gs output. Pure functions, no file I/O; the official float -> uint8 conversion that
follows is pgdata.common.images.to_uint8."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from pgtrain.networks import Generator


def random_latents(num: int, latent_size: int, seed: int) -> np.ndarray:
    """float32 [num, latent_size] from numpy RandomState(seed).randn, as the official generate_fake_images.

    The official script draws one row per PNG from one RandomState(seed); the legacy generator's stream is
    the same whether drawn row by row or at once, so image i here gets the latents of the official PNG i.
    """
    return np.random.RandomState(seed).randn(num, latent_size).astype(np.float32)


@torch.no_grad()
def generate_images(Gs: Generator, latents: np.ndarray, labels: np.ndarray | None = None, lod: float = 0.0,
                    batch_size: int = 16, device: str | torch.device = "cpu") -> np.ndarray:
    """Gs's raw float32 output [N, C, R, R] at full resolution (a non-zero lod nearest-upscaled, as official)."""
    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim != 2 or latents.shape[1] != Gs.latent_size:
        raise ValueError(f"latents must be [N, {Gs.latent_size}], got {list(latents.shape)}")
    if Gs.label_size:
        if labels is None:
            raise ValueError(f"this generator is conditioned: labels [N, {Gs.label_size}] are needed")
        labels = np.asarray(labels, dtype=np.float32)
        if labels.shape != (latents.shape[0], Gs.label_size):
            raise ValueError(f"labels must be [{latents.shape[0]}, {Gs.label_size}], got {list(labels.shape)}")
    elif labels is not None and np.asarray(labels).size:
        raise ValueError("this generator has no labels (label_size 0)")
    was_training = Gs.training
    Gs.eval()
    outputs = []
    try:
        for start in range(0, latents.shape[0], batch_size):
            z = torch.from_numpy(latents[start:start + batch_size]).to(device)
            y = None if not Gs.label_size else torch.from_numpy(labels[start:start + batch_size]).to(device)
            outputs.append(Gs(z, y, lod).float().cpu().numpy())
    finally:
        Gs.train(was_training)
    if not outputs:
        return np.zeros((0, Gs.num_channels, Gs.resolution, Gs.resolution), np.float32)
    return np.concatenate(outputs)


def box_shrink(images: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor blocks of [..., H, W] (float32), the official Gs.run(out_shrink=factor).

    The official graph average-pools with a factor-sized window and stride, no padding: rows and columns past the
    last whole block are dropped, so callers check that the factor divides the resolution.
    """
    if factor == 1:
        return images
    *lead, height, width = images.shape
    blocks = images[..., :height - height % factor, :width - width % factor]
    blocks = blocks.reshape(*lead, height // factor, factor, width // factor, factor)
    return blocks.mean(axis=(-3, -1), dtype=np.float32)


def gs_output_to_uint8(images: np.ndarray, shrink: int = 1) -> np.ndarray:
    """Gs's [-1, 1] output as uint8 exactly as the official generation scripts get it from Gs.run.

    Official facts: out_mul 127.5 and out_add 127.5 in float32, then the out_shrink average pool, then round
    half to even and a saturating cast to uint8 (save_image_grid with drange [0, 255] changes nothing after
    that). Without a shrink this is `to_uint8` (the same arithmetic as convert_to_pil_image).
    """
    scaled = np.asarray(images, dtype=np.float32) * np.float32(127.5) + np.float32(127.5)
    return np.rint(box_shrink(scaled, shrink)).clip(0, 255).astype(np.uint8)


def make_deterministic(device: str | torch.device) -> None:
    """Settings under which Gs gives the same output on every run: no TF32 (the fixtures' tolerance needs full
    fp32 matmuls and convolutions), cuDNN's deterministic algorithms, no autotuning."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def grouped_outputs(Gs: Generator, groups: Iterable[tuple[np.ndarray, np.ndarray | None]], *, lod: float,
                    batch_size: int = 16, device: str | torch.device = "cpu") -> Iterator[np.ndarray]:
    """Gs's float32 output for each (latents, labels) group (one PNG's grid, one video frame), in order.

    Groups are gathered until they fill `batch_size` images (at least one group per forward pass), so 1x1
    grids still run in full batches while only one batch of images is held at a time.
    """
    pending: list[tuple[np.ndarray, np.ndarray | None]] = []
    gathered = 0
    for latents, labels in groups:
        pending.append((latents, labels))
        gathered += len(latents)
        if gathered >= batch_size:
            yield from _run_groups(Gs, pending, lod, batch_size, device)
            pending, gathered = [], 0
    if pending:
        yield from _run_groups(Gs, pending, lod, batch_size, device)


def _run_groups(Gs: Generator, groups: list[tuple[np.ndarray, np.ndarray | None]], lod: float, batch_size: int,
                device: str | torch.device) -> Iterator[np.ndarray]:
    latents = np.concatenate([group[0] for group in groups])
    labels = None if groups[0][1] is None else np.concatenate([group[1] for group in groups])
    images = generate_images(Gs, latents, labels, lod=lod, batch_size=batch_size, device=device)
    first = 0
    for group_latents, _ in groups:
        yield images[first:first + len(group_latents)]
        first += len(group_latents)
