"""The generator G_paper in PyTorch: the same kwargs, layers and lod semantics as the official network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pgdata.common.resolution import resolution_log2
from pgtrain.networks.common import check_feature_maps, feature_maps, split_lod
from pgtrain.networks.layers import (
    SQRT2,
    EqualizedConv2d,
    EqualizedLinear,
    FusedUpsampleConv2d,
    leaky_relu,
    pixel_norm,
    resize_nearest_or_box,
    upscale2d,
)


class GeneratorInputBlock(nn.Module):
    """The 4x4 block: dense to 16 nf(1) units, reshaped C-order to [N, nf(1), 4, 4], then a 3x3 conv.

    The dense layer's bias has one value per channel, added after the reshape, and its gain is sqrt(2)/4:
    both match the official code (TF counts 512 biases here at full size, not 8192).
    """

    def __init__(self, in_features: int, channels: int, use_wscale: bool) -> None:
        super().__init__()
        self.channels = channels
        self.dense = EqualizedLinear(in_features, channels * 16, gain=SQRT2 / 4, use_wscale=use_wscale, bias=False)
        self.dense_bias = nn.Parameter(torch.zeros(channels))
        self.conv = EqualizedConv2d(channels, channels, 3, use_wscale=use_wscale)


class GeneratorBlock(nn.Module):
    """A block at 8x8 and above: 2x upsample + 3x3 conv (fused or not), then a 3x3 conv."""

    def __init__(self, in_channels: int, channels: int, use_wscale: bool, fused_scale: bool) -> None:
        super().__init__()
        self.fused_scale = fused_scale
        if fused_scale:
            self.conv0: nn.Module = FusedUpsampleConv2d(in_channels, channels, use_wscale=use_wscale)
        else:
            self.conv0 = EqualizedConv2d(in_channels, channels, 3, use_wscale=use_wscale)
        self.conv1 = EqualizedConv2d(channels, channels, 3, use_wscale=use_wscale)


class Generator(nn.Module):
    """G_paper: latents [N, latent_size] (+ labels [N, label_size]) -> images [N, C, R, R].

    `forward(latents, labels, lod)` returns the full-resolution image like the official network (the level's
    image nearest-upscaled by 2^floor(lod), faded with the level below for a fractional lod). With
    `output_resolution` it returns that resolution directly and skips the layers above the current level.
    """

    def __init__(self, num_channels: int, resolution: int, label_size: int = 0, fmap_base: int = 8192,
                 fmap_decay: float = 1.0, fmap_max: int = 512, latent_size: int | None = None,
                 normalize_latents: bool = True, use_wscale: bool = True, use_pixelnorm: bool = True,
                 pixelnorm_epsilon: float = 1e-8, use_leakyrelu: bool = True, fused_scale: bool = True) -> None:
        super().__init__()
        self.resolution_log2 = resolution_log2(resolution)
        self.num_channels, self.resolution, self.label_size = num_channels, resolution, label_size
        self.max_lod = self.resolution_log2 - 2
        check_feature_maps(self.resolution_log2, fmap_base, fmap_decay, fmap_max)

        def nf(stage: int) -> int:
            return feature_maps(stage, fmap_base, fmap_decay, fmap_max)

        self.latent_size = nf(0) if latent_size is None else latent_size
        self.normalize_latents, self.use_pixelnorm = normalize_latents, use_pixelnorm
        self.pixelnorm_epsilon, self.use_leakyrelu = pixelnorm_epsilon, use_leakyrelu
        self.blocks = nn.ModuleList([GeneratorInputBlock(self.latent_size + label_size, nf(1), use_wscale)])
        for res in range(3, self.resolution_log2 + 1):
            self.blocks.append(GeneratorBlock(nf(res - 2), nf(res - 1), use_wscale, fused_scale))
        self.to_rgb = nn.ModuleList(
            EqualizedConv2d(nf(res - 1), num_channels, 1, gain=1.0, use_wscale=use_wscale)
            for res in range(2, self.resolution_log2 + 1))

    def _act_norm(self, x: torch.Tensor) -> torch.Tensor:
        x = leaky_relu(x) if self.use_leakyrelu else F.relu(x)
        return pixel_norm(x, self.pixelnorm_epsilon) if self.use_pixelnorm else x

    def _run_block(self, level: int, x: torch.Tensor) -> torch.Tensor:
        block = self.blocks[level]
        if level == 0:
            x = block.dense(x).reshape(x.shape[0], block.channels, 4, 4)
            x = self._act_norm(x + block.dense_bias.to(x.dtype).reshape(1, -1, 1, 1))
            return self._act_norm(block.conv(x))
        x = self._act_norm(block.conv0(x if block.fused_scale else upscale2d(x)))
        return self._act_norm(block.conv1(x))

    def level_resolution(self, lod: float) -> int:
        """The resolution of the level that `lod` trains: 2^(log2(R) - floor(lod))."""
        return 2 ** (self.resolution_log2 - split_lod(lod, self.max_lod)[0])

    def forward(self, latents: torch.Tensor, labels: torch.Tensor | None = None, lod: float = 0.0,
                output_resolution: int | None = None) -> torch.Tensor:
        if latents.ndim != 2 or latents.shape[1] != self.latent_size:
            raise ValueError(f"latents must be [N, {self.latent_size}], got {list(latents.shape)}")
        x = latents
        if self.label_size:
            if labels is None or labels.shape != (latents.shape[0], self.label_size):
                raise ValueError(f"labels must be [N, {self.label_size}] for this conditioned generator")
            x = torch.cat([x, labels.to(x.dtype)], dim=1)
        if self.normalize_latents:  # over the concatenation, labels included: matches the official TF code
            x = pixel_norm(x, self.pixelnorm_epsilon)
        level_lod, fade = split_lod(lod, self.max_lod)
        top = self.max_lod - level_lod
        output_resolution = output_resolution or self.resolution
        if output_resolution not in {2**res for res in range(2, self.resolution_log2 + 1)}:
            raise ValueError(f"output_resolution must be a power of two in [4, {self.resolution}]")
        previous = x
        for level in range(top + 1):
            previous, x = x, self._run_block(level, x)
        images = self.to_rgb[top](x)
        if fade > 0.0:  # the official fade: lerp(new, upscale(toRGB of the features below), t)
            lower = upscale2d(self.to_rgb[top - 1](previous))
            images = images + (lower - images) * fade
        return resize_nearest_or_box(images, output_resolution)
