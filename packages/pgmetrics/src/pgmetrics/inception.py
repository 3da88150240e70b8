"""The TF-Inception (2015-12-05) network of FID, IS and KID, with TensorFlow's input pipeline reproduced.

Pipeline (as TensorFlow ran it, and as torch-fidelity's TF-faithful port does): uint8 images at their native size,
TF1 `ResizeBilinear(align_corners=False)` to 299x299 (source = dst * in/out, no half-pixel centres, no
antialiasing), `(x - 128) / 128`, the Inception-v3 graph with TF's average pools (padding excluded from the
count) and a max pool in the last block, `pool_3` (2048) for FID/KID and the logits without bias (1008) for IS.
Weights: the PyTorch conversion of the TF graph (`pt_inception-2015-12-05-6726825d.pth`), loaded from a file
the user supplies; nothing is downloaded. Any other file is refused (its sha256 lacks the published prefix) unless
verification is turned off (--allow-unverified-weights): it must still load, be finite and fit the network, and
one warning line says that its scores are not comparable with published ones.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pgdata.common.cache import cache_dir
from pgdata.hashing import file_sha256
from pgmetrics.errors import PgmetricsError

INPUT_SIZE = 299
POOL_FEATURES = 2048  # pool_3, FID's and KID's features
LOGITS = 1008  # the bias-free logits, IS's
WEIGHTS_FILENAMES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
WEIGHTS_SHA256_PREFIX = "6726825d"
WEIGHTS_URLS = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
)
WEIGHTS_ENV = "PGMETRICS_INCEPTION_WEIGHTS"


# --- the TF1 resize -----------------------------------------------------------------------------------------


def _tf1_axis(in_size: int, out_size: int, device: torch.device):
    """Source indices and weights along one axis: src = dst * (in / out) in float32, lo = floor, hi = lo + 1
    clamped, weight = src - lo (TensorFlow 1.x image_resizer_state / resize_bilinear_op)."""
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    source = torch.arange(out_size, dtype=torch.float32) * scale
    low = source.long()
    high = (low + 1).clamp_max(in_size - 1)
    frac = source - low.float()
    return low.to(device), high.to(device), frac.to(device)


def resize_bilinear_tf1(images: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """TF1 bilinear resize of float NCHW images (no antialiasing; interpolates as top + (bottom - top) * dy)."""
    _, _, h, w = images.shape
    y_low, y_high, dy = _tf1_axis(h, size, images.device)
    x_low, x_high, dx = _tf1_axis(w, size, images.device)
    top = images[:, :, y_low, :]
    bottom = images[:, :, y_high, :]
    top_left, top_right = top[:, :, :, x_low], top[:, :, :, x_high]
    bottom_left, bottom_right = bottom[:, :, :, x_low], bottom[:, :, :, x_high]
    dx = dx.view(1, 1, 1, size)
    upper = top_left + (top_right - top_left) * dx
    lower = bottom_left + (bottom_right - bottom_left) * dx
    return upper + (lower - upper) * dy.view(1, 1, size, 1)


# --- the network --------------------------------------------------------------------------------------------


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001, TF's), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x: torch.Tensor) -> torch.Tensor:
    """TF's 3x3 SAME average pool divides by the number of real (unpadded) pixels."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_tf(x)),
        ], 1)


class InceptionB(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class InceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            double,
            self.branch_pool(_avg_pool_tf(x)),
        ], 1)


class InceptionD(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = x
        for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            seven = layer(seven)
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            seven,
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class InceptionE(nn.Module):
    """Mixed_7b pools by average (TF's, padding excluded); Mixed_7c by max (as in the TF graph)."""

    def __init__(self, in_channels: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool_tf(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(single), self.branch3x3_2b(single),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(pooled),
        ], 1)


class InceptionV3TF(nn.Module):
    """Inception-v3 as in the TF 2015-12-05 graph; parameter names follow its usual PyTorch conversion."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(POOL_FEATURES, max_pool=True)
        self.fc = nn.Linear(POOL_FEATURES, LOGITS)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 [N, 3, H, W] at any size -> (pool_3 [N, 2048], logits_unbiased [N, 1008]), float32."""
        if images.dtype != torch.uint8:
            raise PgmetricsError(f"Inception expects uint8 images, got {images.dtype}")
        x = images.to(torch.float32)
        x = resize_bilinear_tf1(x, INPUT_SIZE)
        x = (x - 128) / 128
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        pool3 = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        logits_unbiased = pool3.mm(self.fc.weight.t())
        return pool3, logits_unbiased


def fold_batch_norm(network: nn.Module) -> nn.Module:
    """Fold every eval-mode batch norm into its convolution (same function, fewer passes over memory).

    Changes results by float32 rounding only (about 1e-6 relative).
    """
    for module in network.modules():
        if isinstance(module, BasicConv2d) and isinstance(module.bn, nn.BatchNorm2d):
            bn = module.bn
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv = module.conv
            fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                              bias=True).to(conv.weight.device)
            with torch.no_grad():
                fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
                fused.bias.copy_(bn.bias - bn.running_mean * scale)
            module.conv = fused
            module.bn = nn.Identity()
    return network


def build_inception(state_dict: Mapping[str, torch.Tensor | np.ndarray], device: torch.device | str = "cpu",
                    fold: bool = True) -> InceptionV3TF:
    """The network with the given weights (the conversion's key layout), eval mode, no gradients.

    `fold` (ours) folds batch norm into the convolutions and keeps activations channels-last (measured 1.5-1.8x
    on the CPU, tools/bench_metrics.py; cuDNN's tensor-core kernels also prefer NHWC); without it the network
    is the plain eager float32 one, the benchmark's baseline."""
    network = InceptionV3TF()
    tensors = {key: torch.as_tensor(np.asarray(value)) if isinstance(value, np.ndarray) else value
               for key, value in state_dict.items()}
    try:
        network.load_state_dict(tensors)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise PgmetricsError(f"weights do not fit the TF-Inception network ({first})") from error
    network.eval().requires_grad_(False)
    if fold:
        fold_batch_norm(network)
        network = network.to(memory_format=torch.channels_last)
    return network.to(device)


# --- weights ------------------------------------------------------------------------------------------------


def _missing_weights_message(looked: list[Path]) -> str:
    places = ", ".join(str(p) for p in looked)
    return (f"TF-Inception weights not found (looked in: {places}). Download "
            f"{WEIGHTS_FILENAMES[0]} (sha256 {WEIGHTS_SHA256_PREFIX}...) from {WEIGHTS_URLS[0]} "
            f"(or {WEIGHTS_URLS[1]}) and pass --inception-weights FILE, set {WEIGHTS_ENV}=FILE, or put it in "
            f"{cache_dir('pgmetrics')}")


def find_weights(path: str | Path | None = None) -> Path:
    """The weights file: the explicit path, else $PGMETRICS_INCEPTION_WEIGHTS, else either name in the cache."""
    if path:
        path = Path(path).expanduser()
        if not path.is_file():
            raise PgmetricsError(_missing_weights_message([path]))
        return path
    looked = []
    if os.environ.get(WEIGHTS_ENV):
        candidate = Path(os.environ[WEIGHTS_ENV]).expanduser()
        if candidate.is_file():
            return candidate
        looked.append(candidate)
    for name in WEIGHTS_FILENAMES:
        candidate = cache_dir("pgmetrics") / name
        if candidate.is_file():
            return candidate
        looked.append(candidate)
    raise PgmetricsError(_missing_weights_message(looked))


def is_verified(sha: str) -> bool:
    """Whether a sha256 is that of the TF-Inception 2015-12-05 weights (the published prefix)."""
    return sha.startswith(WEIGHTS_SHA256_PREFIX)


def check_verified(sha: str, path: Path) -> None:
    """Refuse weights that are not the TF-Inception ones: their scores cannot be compared with published ones."""
    if not is_verified(sha):
        raise PgmetricsError(f"not the TF-Inception 2015-12-05 weights: sha256 {sha[:16]}..., expected "
                             f"{WEIGHTS_SHA256_PREFIX}... (get {WEIGHTS_FILENAMES[0]} from {WEIGHTS_URLS[0]}, or "
                             "pass --allow-unverified-weights to score with these anyway)", path)


def weights_sha256(path: str | Path | None = None, verify: bool = True) -> str:
    """The sha256 of the weights file that would be loaded, checked as load_weights checks it (without loading)."""
    found = find_weights(path)
    try:
        sha = file_sha256(found)
    except OSError as error:
        raise PgmetricsError(f"cannot read the weights file ({error.strerror or error})", found) from error
    if verify:
        check_verified(sha, found)
    return sha


def warn_unverified(path: str | Path | None, sha: str) -> None:
    """One line on stderr when unverified weights are used (--allow-unverified-weights)."""
    if not is_verified(sha):
        print(f"pgmetrics: warning: {find_weights(path)}: unverified Inception weights (sha256 {sha[:16]}...): "
              "FID, IS and KID are not comparable with published scores", file=sys.stderr)


def load_weights(path: str | Path | None = None, verify: bool = True) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict, sha256) of the weights file, checked against the known sha256 prefix unless `verify` is off.

    The bytes are read once, hashed and loaded from memory (about 95 MB), so the hash checked is that of the
    weights used; a truncated or damaged file fails the check, or the load, or the finiteness test."""
    path = find_weights(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PgmetricsError(f"cannot read the weights file ({error.strerror or error})", path) from error
    sha = hashlib.sha256(data).hexdigest()
    if verify:
        check_verified(sha, path)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is a user error here
        raise PgmetricsError(f"cannot read the weights file ({type(error).__name__}: {error})", path) from error
    if not isinstance(state, Mapping):
        raise PgmetricsError("the weights file holds no state dict", path)
    broken = next((key for key, value in state.items()
                   if isinstance(value, torch.Tensor) and value.is_floating_point() and not value.isfinite().all()),
                  None)
    if broken is not None:
        raise PgmetricsError(f"the weights hold non-finite values ({broken})", path)
    return dict(state), sha


def load_inception(path: str | Path | None = None, device: torch.device | str = "cpu",
                   verify: bool = True) -> tuple[InceptionV3TF, str]:
    """The network and its weights' sha256; with `verify` off, other weights that load and fit are accepted
    and one warning line says so."""
    state, sha = load_weights(path, verify=verify)
    network = build_inception(state, device)
    warn_unverified(path, sha)
    return network, sha


@torch.inference_mode()
def extract_features(network: InceptionV3TF, images: np.ndarray | torch.Tensor,
                     device: torch.device | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(pool_3 [N, 2048], logits_unbiased [N, 1008]) float32 numpy for a uint8 RGB batch."""
    batch = torch.as_tensor(images)
    if device is None:
        device = next(network.parameters()).device
    pool3, logits = network(batch.to(device))
    return pool3.cpu().numpy(), logits.cpu().numpy()
