"""The pyramid, gather and normalisation in torch, for GPUs (the numpy modules' steps, same layout)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pgmetrics.swd.constants import CHANNELS, PATCH_RADIUS, PATCH_SIZE, PATCHES_PER_IMAGE

# 1-D factor of the official 5x5 kernel outer([1,4,6,4,1], [1,4,6,4,1]) / 256.
_BINOMIAL = (1.0 / 16, 4.0 / 16, 6.0 / 16, 4.0 / 16, 1.0 / 16)


def _torch_blur_axis(values: torch.Tensor, taps: Sequence[float], stride: int, dim: int) -> torch.Tensor:
    """5-tap filter along one axis as a sum of shifted slices, mirror borders, optional stride."""
    size = values.shape[dim]
    padded = torch.cat([values.narrow(dim, 2, 1), values.narrow(dim, 1, 1), values,
                        values.narrow(dim, size - 2, 1), values.narrow(dim, size - 3, 1)], dim=dim)
    count = (size - 1) // stride + 1
    out = None
    for tap, weight in enumerate(taps):
        part = padded.narrow(dim, tap, (count - 1) * stride + 1)
        if stride > 1:
            part = part.unfold(dim, 1, stride).squeeze(-1)
        out = part * weight if out is None else out.add_(part, alpha=weight)
    return out


def _torch_blur(images: torch.Tensor, taps: Sequence[float], stride: int) -> torch.Tensor:
    return _torch_blur_axis(_torch_blur_axis(images, taps, stride, dim=3), taps, stride, dim=2)


def torch_laplacian_pyramid(images: torch.Tensor, num_levels: int, exact: bool = False) -> list[torch.Tensor]:
    """`laplacian_pyramid` in torch for GPUs (`exact`: float64 filtering, rounded to float32 per level)."""
    compute = torch.float64 if exact else torch.float32
    gauss = [images.to(torch.float32)]
    for _ in range(num_levels - 1):
        gauss.append(_torch_blur(gauss[-1].to(compute), _BINOMIAL, stride=2).to(torch.float32))
    levels = []
    for level in range(num_levels - 1):
        low = gauss[level + 1].to(compute)
        n, c, h, w = low.shape
        spread = low.new_zeros((n, c, 2 * h, 2 * w))
        spread[:, :, ::2, ::2] = low
        upsampled = _torch_blur(spread, tuple(2 * t for t in _BINOMIAL), stride=1).to(torch.float32)
        levels.append(gauss[level] - upsampled)
    levels.append(gauss[-1])
    return levels


def torch_gather_descriptors(level: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`gather_descriptors` in torch: [K, C*49] in the official (width offset first) layout."""
    count = x.shape[0]
    offsets = torch.arange(-PATCH_RADIUS, PATCH_RADIUS + 1, device=level.device)
    image_index = (torch.arange(count, device=level.device) // PATCHES_PER_IMAGE).view(count, 1, 1)
    columns = x.to(level.device).view(count, 1, 1) + offsets.view(1, PATCH_SIZE, 1)
    rows = y.to(level.device).view(count, 1, 1) + offsets.view(1, 1, PATCH_SIZE)
    patches = level.permute(0, 2, 3, 1)[image_index, rows, columns]  # [K, 7 (width), 7 (height), C]
    return patches.permute(0, 3, 1, 2).reshape(count, -1)


def torch_normalize_descriptors(descriptors: torch.Tensor) -> torch.Tensor:
    grouped = descriptors.reshape(descriptors.shape[0], CHANNELS, -1)
    var, mean = torch.var_mean(grouped.double(), dim=(0, 2), correction=0, keepdim=True)
    out = (grouped - mean.to(torch.float32)) / var.sqrt().to(torch.float32)
    return out.reshape(descriptors.shape[0], -1)
