"""FLOPs of one training iteration, counted from the layer shapes of G and D, and the peaks of known GPUs.

Only convolutions and dense layers are counted (2 FLOPs per multiply-add); activations, pixel norm, minibatch
stddev, resampling and the optimizer are elementwise and left out, as in every published FLOP count. A layer
costs what it executes: the fused upsample-conv is a stride-2 transposed convolution with a 4x4 kernel
(16·in·out multiply-adds per *input* pixel), the fused conv-downsample a stride-2 4x4 convolution (16·in·out per
output pixel); unfused, a 3x3 convolution at the larger resolution.

Backward (per layer, M = its forward multiply-adds): the weight gradient costs M and the input gradient M, the
latter skipped where nothing upstream needs it (the first layer, fed latents or reals). The gradient penalty
of D (WGAN-GP: ‖∇x̂ D(x̂)‖ in the loss) costs, per layer of D:

    forward on the mixed images                                   M
    autograd.grad w.r.t. the mixed images (input gradients only)    M
    backward through that gradient graph (create_graph=True): each input-gradient op g_in = Wᵀ·g_out is
      differentiated w.r.t. W (M) and w.r.t. g_out (M)              2M
    backward through the forward graph: leaky ReLU's double backward hands the forward activations a
      gradient (zeros, still computed), and minibatch stddev a real one: weight + input gradients   2M

so 6× D's forward, less three times its output layer (its g_out is the constant 1 of the summed scores, and
its forward output feeds no loss term). Per image, with G and D the forward FLOPs at the level:
D step = G + 3D (reals) + 3D (fakes) + 6D (penalty) = G + 12D, G step = 3G + 2D (D's input gradients only),
an iteration ≈ 4G + 14D. tests/pgtrain/test_flops.py checks these counts against the FLOPs that torch's own
counter (torch.utils.flop_counter's formulas) sees the trainer's real steps dispatch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from pgtrain.networks import Discriminator, Generator
from pgtrain.networks.common import split_lod
from pgtrain.networks.layers import FusedConv2dDownsample, FusedUpsampleConv2d


@dataclass(frozen=True)
class Layer:
    """One convolution or dense layer as it runs for one image."""

    name: str
    macs: int  # multiply-adds per image
    reads_input: bool = False  # fed the network's input (latents, images): no input gradient unless it needs one


def conv_macs(in_channels: int, out_channels: int, kernel: int, output_size: int) -> int:
    """A square convolution: every output pixel sums kernel² · in_channels products, per output channel."""
    return in_channels * out_channels * kernel * kernel * output_size * output_size


def transposed_conv_macs(in_channels: int, out_channels: int, kernel: int, input_size: int) -> int:
    """A transposed convolution scatters every input pixel through the whole kernel."""
    return in_channels * out_channels * kernel * kernel * input_size * input_size


def dense_macs(in_features: int, out_features: int) -> int:
    return in_features * out_features


def _conv(name: str, module: nn.Module, output_size: int, reads_input: bool = False) -> Layer:
    """An EqualizedConv2d ([out, in, k, k]) at `output_size`."""
    out_channels, in_channels, kernel, _ = module.weight.shape
    return Layer(name, conv_macs(in_channels, out_channels, kernel, output_size), reads_input)


def _upsample_conv(name: str, module: nn.Module, output_size: int) -> Layer:
    """G's 2x upsample + 3x3 conv: fused, a 4x4 transposed conv on the half-size input ([in, out, 3, 3])."""
    if isinstance(module, FusedUpsampleConv2d):
        in_channels, out_channels = module.weight.shape[:2]
        return Layer(name, transposed_conv_macs(in_channels, out_channels, 4, output_size // 2))
    return _conv(name, module, output_size)


def _conv_downsample(name: str, module: nn.Module, input_size: int) -> Layer:
    """D's 3x3 conv + 2x downscale: fused, a stride-2 4x4 conv with a half-size output."""
    if isinstance(module, FusedConv2dDownsample):
        out_channels, in_channels = module.weight.shape[:2]
        return Layer(name, conv_macs(in_channels, out_channels, 4, input_size // 2))
    return _conv(name, module, input_size)


def _dense(name: str, module: nn.Module, reads_input: bool = False) -> Layer:
    out_features, in_features = module.weight.shape
    return Layer(name, dense_macs(in_features, out_features), reads_input)


def generator_layers(G: Generator, lod: float) -> list[Layer]:
    """The layers G runs at `lod` up to the level's resolution (the trainer's output_resolution), in order."""
    level_lod, fade = split_lod(lod, G.max_lod)
    top = G.max_lod - level_lod
    first = G.blocks[0]
    layers = [_dense("4x4 dense", first.dense, reads_input=True), _conv("4x4 conv", first.conv, 4)]
    for level in range(1, top + 1):
        size, block = 2 ** (level + 2), G.blocks[level]
        layers += [_upsample_conv(f"{size}x{size} conv0_up", block.conv0, size),
                   _conv(f"{size}x{size} conv1", block.conv1, size)]
    size = 2 ** (top + 2)
    layers.append(_conv(f"toRGB {size}x{size}", G.to_rgb[top], size))
    if fade > 0.0:
        layers.append(_conv(f"toRGB {size // 2}x{size // 2} (fade)", G.to_rgb[top - 1], size // 2))
    return layers


def discriminator_layers(D: Discriminator, lod: float) -> list[Layer]:
    """The layers D runs at `lod` on level-resolution images, in order; the last one writes the scores."""
    level_lod, fade = split_lod(lod, D.max_lod)
    top = D.max_lod - level_lod
    size = 2 ** (top + 2)
    layers = [_conv(f"fromRGB {size}x{size}", D.from_rgb[top], size, reads_input=True)]
    for level in range(top, 0, -1):
        size, block = 2 ** (level + 2), D.blocks[level]
        layers += [_conv(f"{size}x{size} conv0", block.conv0, size),
                   _conv_downsample(f"{size}x{size} conv1_down", block.conv1, size)]
        if level == top and fade > 0.0:
            layers.append(_conv(f"fromRGB {size // 2}x{size // 2} (fade)", D.from_rgb[top - 1], size // 2,
                                reads_input=True))
    last = D.blocks[0]
    layers += [_conv("4x4 conv", last.conv, 4), _dense("dense0", last.dense0), _dense("dense1", last.dense1)]
    return layers


def forward_macs(layers: list[Layer]) -> int:
    return sum(layer.macs for layer in layers)


def input_gradient_macs(layers: list[Layer], input_needs_gradient: bool) -> int:
    """Every layer's input gradient, but those of layers fed the network's input when nothing needs it."""
    return sum(layer.macs for layer in layers if input_needs_gradient or not layer.reads_input)


def penalty_macs(D_layers: list[Layer]) -> int:
    """The gradient penalty's forward, gradient and double backward (module docstring): 6 D − 3 output layer."""
    forward, output = forward_macs(D_layers), D_layers[-1].macs
    gradient = input_gradient_macs(D_layers, True)
    double_backward = 2 * forward - output
    through_forward = 2 * (forward - output)
    return forward + gradient + double_backward + through_forward


@dataclass(frozen=True)
class IterationFlops:
    """FLOPs per image of the parts of one training iteration at one lod."""

    G_forward: int
    D_forward: int
    D_step: int  # fakes (G forward), D on reals and fakes with weight gradients, the gradient penalty
    G_step: int  # G forward and backward, D forward with input gradients only

    def per_iteration(self, minibatch: int, D_repeats: int = 1) -> int:
        """An iteration as the loop runs it: D_repeats D steps, then one G step, each on `minibatch` images."""
        return minibatch * (D_repeats * self.D_step + self.G_step)


def iteration_flops(G: Generator, D: Discriminator, lod: float) -> IterationFlops:
    """Per-image FLOPs (2 per multiply-add) of the trainer's D step and G step at `lod`."""
    g, d = generator_layers(G, lod), discriminator_layers(D, lod)
    g_forward, d_forward = forward_macs(g), forward_macs(d)
    d_on_batch = 2 * d_forward + input_gradient_macs(d, False)  # forward, weight and input gradients
    d_step = g_forward + 2 * d_on_batch + penalty_macs(d)
    g_step = 2 * g_forward + input_gradient_macs(g, False) + d_forward + input_gradient_macs(d, True)
    return IterationFlops(2 * g_forward, 2 * d_forward, 2 * d_step, 2 * g_step)


# -- device peaks ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DevicePeak:
    """Dense (no sparsity) peak TFLOP/s of one GPU model at boost clock, from NVIDIA's data sheets."""

    name: str
    fp32: float
    tf32: float | None
    fp16: float | None  # tensor cores with fp32 accumulation (what autocast uses)
    bf16: float | None


# Order matters: the first pattern that matches torch.cuda.get_device_name() wins.
DEVICE_PEAKS: tuple[tuple[str, DevicePeak], ...] = (
    (r"H200", DevicePeak("NVIDIA H200 SXM", 67.0, 494.7, 989.4, 989.4)),
    (r"H100.*PCIe", DevicePeak("NVIDIA H100 PCIe", 51.2, 378.0, 756.0, 756.0)),
    (r"H100.*NVL", DevicePeak("NVIDIA H100 NVL", 60.0, 417.5, 835.5, 835.5)),
    (r"H100", DevicePeak("NVIDIA H100 SXM", 67.0, 494.7, 989.4, 989.4)),
    (r"A100", DevicePeak("NVIDIA A100", 19.5, 156.0, 312.0, 312.0)),
    (r"L40S", DevicePeak("NVIDIA L40S", 91.6, 183.0, 362.1, 362.1)),
    (r"\bL4\b", DevicePeak("NVIDIA L4", 30.3, 60.0, 121.0, 121.0)),
    (r"\bA10\b", DevicePeak("NVIDIA A10", 31.2, 62.5, 125.0, 125.0)),
    (r"V100S", DevicePeak("NVIDIA V100S PCIe", 16.4, None, 130.0, None)),
    (r"V100.*PCIE", DevicePeak("NVIDIA V100 PCIe", 14.0, None, 112.0, None)),
    (r"V100", DevicePeak("NVIDIA V100 SXM2", 15.7, None, 125.0, None)),
    (r"T4\b", DevicePeak("NVIDIA T4", 8.1, None, 65.0, None)),
    (r"RTX 4090", DevicePeak("NVIDIA GeForce RTX 4090", 82.6, 82.6, 165.2, 165.2)),
    (r"RTX 3090", DevicePeak("NVIDIA GeForce RTX 3090", 35.6, 35.6, 71.0, 71.0)),
)


def find_device_peak(device_name: str) -> DevicePeak | None:
    """The table row for a device name as torch reports it ('NVIDIA H100 80GB HBM3'), or None."""
    for pattern, peak in DEVICE_PEAKS:
        if re.search(pattern, device_name, re.IGNORECASE):
            return peak
    return None


def peak_tflops(peak: DevicePeak, precision: str, tf32_convolutions: bool) -> tuple[float | None, str]:
    """(peak TFLOP/s, the number type it is for) of a training precision. fp32 training runs its convolutions
    in TF32 where cuDNN is allowed to (torch.backends.cudnn.allow_tf32, on by default) and the chip has it."""
    if precision == "fp32":
        if tf32_convolutions and peak.tf32 is not None:
            return peak.tf32, "tf32"
        return peak.fp32, "fp32"
    value = peak.fp16 if precision == "fp16" else peak.bf16
    return value, precision
