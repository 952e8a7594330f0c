"""C3D on UCF101, as used for FID/IS in Table 1 (Sec. 4.1: "the C3D model [37] as implemented at
github.com/pfnet-research/tgan2"), re-implemented in PyTorch from tgan2's ``C3DVersion1UCF101``.

tgan2's pipeline for 16-frame clips ``(N, 3, 16, H, W)`` in [-1, 1] (RGB):
  pre: RGB -> BGR and x * 128; bilinear resize of every frame to 112x112 (Chainer ``resize_images``, which
  samples with align_corners=True); add ``128 - mean[:, :, 8:120, 8:120]`` (the per-pixel Caffe mean clip),
  i.e. ``(x + 1) * 128 - mean``;
  conv1a(64) pool1(1x2x2) conv2a(128) pool2 conv3a/b(256) pool3 conv4a/b(512) pool4 conv5a/b(512) pool5 ->
  fc6(4096) fc7(4096) fc8(101); 3x3x3 convs with padding 1 and ReLU; max pools with stride = kernel and
  Chainer's ``cover_all=True`` (= ``ceil_mode=True``), so pool5 maps 7x7 to 4x4 and fc6 sees 512*1*4*4.
FID uses ``fc7`` (after ReLU, 4096-d), IS the softmax of ``fc8`` (tgan2 ``get_feature`` / ``__call__``).

Weights: the Chainer ``.npz`` tgan2 converts from the Caffe model (``conv3d_deepnetA_ucf.npz``; arrays
``conv1a/W``, ``conv1a/b``, ..., ``fc8/b``) and the mean clip ``mean2.npz`` (array ``mean``, BGR). Both are
user-provided files; nothing is downloaded. ``width`` < 1 thins the network (tests only).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .i3d import file_sha256

C3D_FRAMES, C3D_RESOLUTION = 16, 112
_CONVS = [("conv1a", 64), ("conv2a", 128), ("conv3a", 256), ("conv3b", 256), ("conv4a", 512), ("conv4b", 512),
          ("conv5a", 512), ("conv5b", 512)]
_POOL_AFTER = {"conv1a": (1, 2, 2), "conv2a": (2, 2, 2), "conv3b": (2, 2, 2), "conv4b": (2, 2, 2),
               "conv5b": (2, 2, 2)}


class C3D(nn.Module):
    """``forward(x)`` on (N, 3, 16, H, W) in [-1, 1] -> (fc7 features (N, 4096), fc8 logits (N, 101))."""

    def __init__(self, num_classes: int = 101, mean: np.ndarray | None = None, width: float = 1.0):
        super().__init__()
        w = (lambda c: max(1, int(round(c * width))))  # noqa: E731
        cin = 3
        for name, c in _CONVS:
            self.add_module(name, nn.Conv3d(cin, w(c), 3, 1, 1))
            cin = w(c)
        self.fc6 = nn.Linear(cin * 1 * 4 * 4, w(4096))
        self.fc7 = nn.Linear(w(4096), w(4096))
        self.fc8 = nn.Linear(w(4096), num_classes)
        mean = np.zeros((3, C3D_FRAMES, 128, 128), np.float32) if mean is None else np.asarray(mean, np.float32)
        if mean.ndim == 5:
            mean = mean[0]
        if mean.shape[:2] != (3, C3D_FRAMES) or min(mean.shape[2:]) < 120:
            raise ValueError(f"C3D mean clip must be (3, 16, >=120, >=120), got {mean.shape}")
        self.register_buffer("mean", torch.from_numpy(np.ascontiguousarray(mean[:, :, 8:120, 8:120])))
        self.eval()

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """tgan2 ``pre``: [-1, 1] RGB -> BGR, 112x112 (align_corners=True), (x + 1) * 128 - mean."""
        n, c, t, h, wd = x.shape
        if c != 3 or t != C3D_FRAMES:
            raise ValueError(f"C3D expects (N, 3, {C3D_FRAMES}, H, W) clips, got {tuple(x.shape)}")
        x = x.float().flip(1) * 128.0  # RGB -> BGR, scale
        frames = x.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, wd)
        frames = F.interpolate(frames, (C3D_RESOLUTION, C3D_RESOLUTION), mode="bilinear", align_corners=True)
        x = frames.reshape(n, t, c, C3D_RESOLUTION, C3D_RESOLUTION).permute(0, 2, 1, 3, 4)
        return x + (128.0 - self.mean)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prepare(x)
        for name, _ in _CONVS:
            x = F.relu(getattr(self, name)(x))
            if name in _POOL_AFTER:
                k = _POOL_AFTER[name]
                x = F.max_pool3d(x, k, k, ceil_mode=True)  # Chainer cover_all=True
        x = x.flatten(1)  # (N, 512 * 1 * 4 * 4)
        fc7 = F.relu(self.fc7(F.relu(self.fc6(x))))  # dropout is the identity at test time
        return fc7, self.fc8(fc7)


_LAYERS = [name for name, _ in _CONVS] + ["fc6", "fc7", "fc8"]


def load_c3d(weights_path: str, mean_path: str, **kw) -> C3D:
    """C3D from tgan2's Chainer npz (``<layer>/W``, ``<layer>/b``) and the mean clip npz (``mean``)."""
    with np.load(mean_path) as z:
        mean = z["mean"]
    with np.load(weights_path) as z:
        arrays = {k.lstrip("/"): z[k] for k in z.files}

    def find(layer, p):
        keys = [k for k in arrays if k == f"{layer}/{p}" or k.endswith(f"/{layer}/{p}")]
        if len(keys) != 1:
            raise KeyError(f"C3D weights: expected one array for {layer}/{p}, found {keys}")
        return torch.from_numpy(np.asarray(arrays[keys[0]], np.float32))

    kw.setdefault("width", find("conv1a", "W").shape[0] / 64)  # 1.0 for the real weights; thinned test networks
    model = C3D(num_classes=find("fc8", "b").shape[0], mean=mean, **kw)
    sd = {f"{layer}.{'weight' if p == 'W' else 'bias'}": find(layer, p) for layer in _LAYERS for p in ("W", "b")}
    sd["mean"] = model.mean
    model.load_state_dict(sd)
    model.eval().requires_grad_(False)
    model.weights_path, model.weights_sha256 = weights_path, file_sha256(weights_path)
    return model


def save_c3d_npz(model: C3D, path: str) -> None:
    """Writes ``model``'s weights in tgan2's Chainer npz layout (for round trips and conversions)."""
    arrays = {}
    for layer in _LAYERS:
        mod = getattr(model, layer)
        arrays[f"{layer}/W"] = mod.weight.detach().cpu().numpy()
        arrays[f"{layer}/b"] = mod.bias.detach().cpu().numpy()
    np.savez(path, **arrays)
