"""The discriminator D_paper in PyTorch: the same kwargs, layers and lod semantics as the official network."""

from __future__ import annotations

import torch
from torch import nn

from pgdata.common.resolution import resolution_log2
from pgtrain.networks.common import check_feature_maps, feature_maps, split_lod
from pgtrain.networks.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    FusedConv2dDownsample,
    downscale2d,
    leaky_relu,
    minibatch_stddev,
)


class DiscriminatorBlock(nn.Module):
    """A block at 8x8 and above: 3x3 conv, then 3x3 conv + 2x box downscale.

    Fused (`Conv1_down`): lrelu(avgpool(conv(x)) + b), pool before bias; not fused (`Conv1`):
    avgpool(lrelu(conv(x) + b)), pool after the activation. Both orders match the official code.
    """

    def __init__(self, channels: int, out_channels: int, use_wscale: bool, fused_scale: bool) -> None:
        super().__init__()
        self.fused_scale = fused_scale
        self.conv0 = EqualizedConv2d(channels, channels, 3, use_wscale=use_wscale)
        if fused_scale:
            self.conv1: nn.Module = FusedConv2dDownsample(channels, out_channels, use_wscale=use_wscale)
        else:
            self.conv1 = EqualizedConv2d(channels, out_channels, 3, use_wscale=use_wscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = leaky_relu(self.conv0(x))
        if self.fused_scale:
            return leaky_relu(self.conv1(x))
        return downscale2d(leaky_relu(self.conv1(x)))


class DiscriminatorOutputBlock(nn.Module):
    """The 4x4 block: minibatch stddev, 3x3 conv, dense (C-order flatten) to nf(0), dense to 1 + label_size."""

    def __init__(self, channels: int, hidden: int, outputs: int, mbstd_group_size: int, use_wscale: bool) -> None:
        super().__init__()
        self.mbstd_group_size = mbstd_group_size
        extra = 1 if mbstd_group_size > 1 else 0
        self.conv = EqualizedConv2d(channels + extra, channels, 3, use_wscale=use_wscale)
        self.dense0 = EqualizedLinear(channels * 16, hidden, use_wscale=use_wscale)
        self.dense1 = EqualizedLinear(hidden, outputs, gain=1.0, use_wscale=use_wscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size)
        x = leaky_relu(self.conv(x))
        x = leaky_relu(self.dense0(x.flatten(1)))
        return self.dense1(x)


class Discriminator(nn.Module):
    """D_paper: images [N, C, r, r] -> (scores [N, 1], label logits [N, label_size]).

    r may be the full resolution R (official semantics: box-downscaled by 2^floor(lod)) or any level
    resolution >= the current level's; at the current level's resolution the layers above are skipped,
    which gives the scores of the official D fed the nearest-upscaled image. A gradient w.r.t. a level-resolution
    input is f^2 times the per-pixel gradient w.r.t. that upscaled image (f = its upscale factor), so its norm
    is f times larger: see pgtrain.loss for the gradient penalty.
    """

    def __init__(self, num_channels: int, resolution: int, label_size: int = 0, fmap_base: int = 8192,
                 fmap_decay: float = 1.0, fmap_max: int = 512, mbstd_group_size: int = 4, use_wscale: bool = True,
                 fused_scale: bool = True) -> None:
        super().__init__()
        self.resolution_log2 = resolution_log2(resolution)
        self.num_channels, self.resolution, self.label_size = num_channels, resolution, label_size
        self.max_lod = self.resolution_log2 - 2
        check_feature_maps(self.resolution_log2, fmap_base, fmap_decay, fmap_max)

        def nf(stage: int) -> int:
            return feature_maps(stage, fmap_base, fmap_decay, fmap_max)

        # Index = level (0 is 4x4), so from_rgb[level] is the official FromRGB_lod{max_lod - level}.
        self.from_rgb = nn.ModuleList(
            EqualizedConv2d(num_channels, nf(res - 1), 1, use_wscale=use_wscale)
            for res in range(2, self.resolution_log2 + 1))
        self.blocks = nn.ModuleList([DiscriminatorOutputBlock(nf(1), nf(0), 1 + label_size, mbstd_group_size,
                                                              use_wscale)])
        for res in range(3, self.resolution_log2 + 1):
            self.blocks.append(DiscriminatorBlock(nf(res - 1), nf(res - 2), use_wscale, fused_scale))

    def level_resolution(self, lod: float) -> int:
        """The resolution of the level that `lod` trains: 2^(log2(R) - floor(lod))."""
        return 2 ** (self.resolution_log2 - split_lod(lod, self.max_lod)[0])

    def forward(self, images: torch.Tensor, lod: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        level_lod, fade = split_lod(lod, self.max_lod)
        top = self.max_lod - level_lod
        level_res = 2 ** (top + 2)
        size = images.shape[-1]
        if images.ndim != 4 or images.shape[1] != self.num_channels or images.shape[-2] != size \
                or size < level_res or size > self.resolution or size & (size - 1):
            raise ValueError(f"images must be [N, {self.num_channels}, r, r] with r a power of two in "
                             f"[{level_res}, {self.resolution}] at lod {lod}, got {list(images.shape)}")
        images = downscale2d(images, size // level_res)
        x = self.blocks[top](leaky_relu(self.from_rgb[top](images)))
        if fade > 0.0:  # the official fade acts on block r's output: lerp(x, fromRGB(downscale2(images)), t)
            lower = leaky_relu(self.from_rgb[top - 1](downscale2d(images)))
            x = x + (lower - x) * fade
        for level in range(top - 1, -1, -1):
            x = self.blocks[level](x)
        return x[:, :1], x[:, 1:]
