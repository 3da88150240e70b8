"""FLOPs from layer shapes: a hand count of a tiny network, then the trainer's real steps as torch counts them."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from pgtrain.flops import (
    DevicePeak,
    discriminator_layers,
    find_device_peak,
    generator_layers,
    iteration_flops,
    peak_tflops,
)
from pgtrain.networks import Discriminator, Generator
from tests.pgtrain.test_loop import tiny_reader, tiny_trainer


class DispatchedFlops(TorchDispatchMode):
    """FLOPs of every matmul and convolution (forward and backward) dispatched inside the block, by the formulas
    of torch.utils.flop_counter. (FlopCounterMode itself cannot watch autograd.grad: its module hooks refuse.)"""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def tiny_networks(fused: bool = True, label_size: int = 0):
    """resolution 8, fmap_base 16, fmap_max 8: nf(0) = nf(1) = 8, nf(2) = 4; latent size 4."""
    kwargs = dict(num_channels=3, resolution=8, label_size=label_size, fmap_base=16, fmap_max=8, fused_scale=fused)
    return Generator(latent_size=4, **kwargs), Discriminator(**kwargs)


def test_layer_multiply_adds_by_hand_for_a_tiny_network():
    G, D = tiny_networks()
    assert [(layer.name, layer.macs) for layer in generator_layers(G, 0.0)] == [
        ("4x4 dense", 4 * 8 * 16),  # latents -> 8 channels x 4x4
        ("4x4 conv", 8 * 8 * 9 * 4 * 4),
        ("8x8 conv0_up", 8 * 4 * 16 * 4 * 4),  # fused: a 4x4 transposed conv over the 4x4 input
        ("8x8 conv1", 4 * 4 * 9 * 8 * 8),
        ("toRGB 8x8", 4 * 3 * 8 * 8)]
    assert [(layer.name, layer.macs) for layer in discriminator_layers(D, 0.0)] == [
        ("fromRGB 8x8", 3 * 4 * 8 * 8),
        ("8x8 conv0", 4 * 4 * 9 * 8 * 8),
        ("8x8 conv1_down", 4 * 8 * 16 * 4 * 4),  # fused: a stride-2 4x4 conv, 4x4 output
        ("4x4 conv", 9 * 8 * 9 * 4 * 4),  # 8 channels + the minibatch-stddev map
        ("dense0", 8 * 16 * 8),
        ("dense1", 8 * 1)]
    g, d, d_first, d_last, g_first = 27904, 29576, 768, 8, 512  # the sums of the rows above
    penalty = d + d + (2 * d - d_last) + 2 * (d - d_last)  # forward, gradient, double backward, forward graph
    d_step = g + 2 * (2 * d + (d - d_first)) + penalty
    g_step = 2 * g + (g - g_first) + d + d
    flops = iteration_flops(G, D, 0.0)
    assert (flops.G_forward, flops.D_forward, flops.D_step, flops.G_step) == (2 * g, 2 * d, 2 * d_step, 2 * g_step)
    assert flops.per_iteration(minibatch=4, D_repeats=2) == 4 * (2 * 2 * d_step + 2 * g_step)


def test_unfused_layers_and_the_fade_in_by_hand():
    G, D = tiny_networks(fused=False)
    g = {layer.name: layer.macs for layer in generator_layers(G, 0.5)}
    d = {layer.name: layer.macs for layer in discriminator_layers(D, 0.5)}
    assert g["8x8 conv0_up"] == 8 * 4 * 9 * 8 * 8  # upsample, then a 3x3 conv at 8x8
    assert g["toRGB 4x4 (fade)"] == 8 * 3 * 4 * 4
    assert d["8x8 conv1_down"] == 4 * 8 * 9 * 8 * 8  # a 3x3 conv at 8x8, then the downscale
    assert d["fromRGB 4x4 (fade)"] == 3 * 8 * 4 * 4
    assert [layer.name for layer in generator_layers(G, 1.0)] == ["4x4 dense", "4x4 conv", "toRGB 4x4"]


@pytest.mark.parametrize("lod", [0.0, 0.5, 1.0, 1.25, 2.0])
@pytest.mark.parametrize("overrides", [[], ["G.fused_scale=false", "D.fused_scale=false"]], ids=["fused", "unfused"])
@pytest.mark.parametrize("labels", [False, True], ids=["unconditioned", "labels"])
def test_counts_equal_what_the_trainer_steps_dispatch(lod, overrides, labels):
    presets = ["cond"] if labels else []
    trainer = tiny_trainer(overrides=overrides, presets=presets, reader=tiny_reader(labels=labels))
    sched = dataclasses.replace(trainer.schedule(), lod=lod, resolution=trainer.G.level_resolution(lod), minibatch=4)
    trainer.data.configure(sched.resolution, sched.minibatch)
    with DispatchedFlops() as d_step:
        trainer.discriminator_step(sched)
    with DispatchedFlops() as g_step:
        trainer.generator_step(sched)
    expected = iteration_flops(trainer.G, trainer.D, lod)
    assert (d_step.total, g_step.total) == (4 * expected.D_step, 4 * expected.G_step)


def test_forward_counts_equal_what_the_networks_dispatch():
    G, D = tiny_networks(label_size=2)
    for lod in (0.0, 0.3, 1.0):
        size = G.level_resolution(lod)
        with torch.no_grad(), DispatchedFlops() as g:
            G(torch.randn(2, 4), torch.zeros(2, 2), lod, output_resolution=size)
        with torch.no_grad(), DispatchedFlops() as d:
            D(torch.randn(2, 3, size, size), lod)
        flops = iteration_flops(G, D, lod)
        assert (g.total, d.total) == (2 * flops.G_forward, 2 * flops.D_forward)


def test_device_peaks_by_name_and_precision():
    h100 = find_device_peak("NVIDIA H100 80GB HBM3")
    assert h100.name == "NVIDIA H100 SXM"
    assert find_device_peak("NVIDIA H100 PCIe").name == "NVIDIA H100 PCIe"
    assert find_device_peak("NVIDIA H200").name == "NVIDIA H200 SXM"
    assert find_device_peak("NVIDIA A100-SXM4-80GB").name == "NVIDIA A100"
    assert find_device_peak("Tesla V100-SXM2-16GB").name == "NVIDIA V100 SXM2"
    assert find_device_peak("Tesla V100-PCIE-32GB").name == "NVIDIA V100 PCIe"
    assert find_device_peak("NVIDIA GeForce RTX 4090").name == "NVIDIA GeForce RTX 4090"
    assert find_device_peak("NVIDIA L4").name == "NVIDIA L4"
    assert find_device_peak("AMD Instinct MI300X") is None
    assert peak_tflops(h100, "bf16", True) == (989.4, "bf16")
    assert peak_tflops(h100, "fp32", True) == (494.7, "tf32")  # cuDNN runs fp32 convolutions in TF32
    assert peak_tflops(h100, "fp32", False) == (67.0, "fp32")
    volta = DevicePeak("V100", 15.7, None, 125.0, None)
    assert peak_tflops(volta, "fp32", True) == (15.7, "fp32") and peak_tflops(volta, "bf16", True) == (None, "bf16")
