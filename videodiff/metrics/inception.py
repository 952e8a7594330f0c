"""InceptionV3 of the TF FID/IS graph (inception-2015-12-05), for FID/IS on frames (Sec. 4.2, Tables 2-3).

The architecture matches the state dict ``pt_inception-2015-12-05-6726825d.pth`` of pytorch-fid (torchvision
``Inception3`` names without AuxLogits; ``fc`` has 1008 outputs) including the quirks of the TF graph that
pytorch-fid reproduces with its FIDInceptionA/C/E blocks: average pools in Mixed_5*, Mixed_6b-e and Mixed_7b
exclude the padding from the mean (``count_include_pad=False``), and Mixed_7c's pool branch is a max pool.
Every conv is conv (no bias) -> BatchNorm(eps 1e-3) -> ReLU.

Inputs: (N, 3, H, W) with values in 0..255. They are resized to 299x299 with TF1 bilinear resize (the graph's
``ResizeBilinear``; ``resize='torch'`` gives pytorch-fid's resize) and normalised as the graph does,
``(x - 128) / 128`` (``normalize='pytorch-fid'`` gives pytorch-fid's ``x / 127.5 - 1``). Outputs: the 2048-d
``pool_3`` features (FID) and the 1008 logits (IS). The reference IS code (openai/improved-gan) computes the
logits as ``pool_3 @ W`` without the fc bias (torch-fidelity calls them ``logits_unbiased``); that is the
default here (``logits_bias=False``). ``width`` < 1 and ``resolution`` < 299 exist for fast tests only.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .i3d import file_sha256
from .preprocess import resize_frames

INCEPTION_RESOLUTION = 299


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg3(x):  # TF's SAME average pool: the mean over the valid cells only
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class InceptionA(nn.Module):  # Mixed_5b-d (FIDInceptionA)
    def __init__(self, cin, pool, w):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, w(64), 1)
        self.branch5x5_1, self.branch5x5_2 = BasicConv2d(cin, w(48), 1), BasicConv2d(w(48), w(64), 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, w(64), 1)
        self.branch3x3dbl_2 = BasicConv2d(w(64), w(96), 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(w(96), w(96), 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool, 1)

    def forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg3(x))], 1)


class InceptionB(nn.Module):  # Mixed_6a
    def __init__(self, cin, w):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, w(384), 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, w(64), 1)
        self.branch3x3dbl_2 = BasicConv2d(w(64), w(96), 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(w(96), w(96), 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, 2)], 1)


class InceptionC(nn.Module):  # Mixed_6b-e (FIDInceptionC)
    def __init__(self, cin, c7, w):
        super().__init__()
        o = w(192)
        self.branch1x1 = BasicConv2d(cin, o, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, o, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, o, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, o, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x))], 1)


class InceptionD(nn.Module):  # Mixed_7a
    def __init__(self, cin, w):
        super().__init__()
        self.branch3x3_1, self.branch3x3_2 = BasicConv2d(cin, w(192), 1), BasicConv2d(w(192), w(320), 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, w(192), 1)
        self.branch7x7x3_2 = BasicConv2d(w(192), w(192), (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(w(192), w(192), (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(w(192), w(192), 3, stride=2)

    def forward(self, x):
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, 2)], 1)


class InceptionE(nn.Module):  # Mixed_7b (FIDInceptionE_1, avg pool) and Mixed_7c (FIDInceptionE_2, max pool)
    def __init__(self, cin, w, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, w(320), 1)
        self.branch3x3_1 = BasicConv2d(cin, w(384), 1)
        self.branch3x3_2a = BasicConv2d(w(384), w(384), (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(w(384), w(384), (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, w(448), 1)
        self.branch3x3dbl_2 = BasicConv2d(w(448), w(384), 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(w(384), w(384), (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(w(384), w(384), (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, w(192), 1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        a = torch.cat([self.branch3x3_2a(a), self.branch3x3_2b(a)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        p = F.max_pool2d(x, 3, 1, 1) if self.max_pool else _avg3(x)
        return torch.cat([self.branch1x1(x), a, d, self.branch_pool(p)], 1)


class InceptionV3(nn.Module):
    """FID InceptionV3. ``forward(x)`` -> (pool features (N, 2048*width), logits (N, num_classes))."""

    def __init__(self, num_classes: int = 1008, width: float = 1.0, resize: str = "tf1",
                 normalize: str = "tf", logits_bias: bool = False, resolution: int = INCEPTION_RESOLUTION):
        super().__init__()
        if normalize not in ("tf", "pytorch-fid"):
            raise ValueError(f"normalize must be 'tf' or 'pytorch-fid', got {normalize!r}")
        w = (lambda c: max(1, int(round(c * width))))  # noqa: E731
        self.resize, self.normalize, self.logits_bias = resize, normalize, logits_bias
        self.resolution = resolution  # 299 for every reference number; smaller only to test fast
        self.Conv2d_1a_3x3 = BasicConv2d(3, w(32), 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(w(32), w(32), 3)
        self.Conv2d_2b_3x3 = BasicConv2d(w(32), w(64), 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(w(64), w(80), 1)
        self.Conv2d_4a_3x3 = BasicConv2d(w(80), w(192), 3)
        a_out = lambda pool: w(64) + w(64) + w(96) + pool  # noqa: E731
        self.Mixed_5b = InceptionA(w(192), w(32), w)
        self.Mixed_5c = InceptionA(a_out(w(32)), w(64), w)
        self.Mixed_5d = InceptionA(a_out(w(64)), w(64), w)
        c_in = a_out(w(64))
        self.Mixed_6a = InceptionB(c_in, w)
        c6 = w(384) + w(96) + c_in
        self.Mixed_6b = InceptionC(c6, w(128), w)
        self.Mixed_6c = InceptionC(4 * w(192), w(160), w)
        self.Mixed_6d = InceptionC(4 * w(192), w(160), w)
        self.Mixed_6e = InceptionC(4 * w(192), w(192), w)
        self.Mixed_7a = InceptionD(4 * w(192), w)
        c7 = w(320) + w(192) + 4 * w(192)
        self.Mixed_7b = InceptionE(c7, w, max_pool=False)
        e_out = w(320) + 4 * w(384) + w(192)
        self.Mixed_7c = InceptionE(e_out, w, max_pool=True)
        self.fc = nn.Linear(e_out, num_classes)
        self.num_features = e_out
        self.eval()

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in 0..255 -> resized to 299x299 and normalised as the reference graph does."""
        x = resize_frames(x.float(), (self.resolution, self.resolution), self.resize)
        return (x - 128.0) / 128.0 if self.normalize == "tf" else x / 127.5 - 1.0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prepare(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, 2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, 2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        pool = x.mean(dim=(2, 3))  # (N, 2048): pool_3
        logits = self.fc(pool) if self.logits_bias else pool @ self.fc.weight.t()  # (N, 1008)
        return pool, logits


def load_inception(path: str, **kw) -> InceptionV3:
    """InceptionV3 from pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (a local file; no download)."""
    from ..io import load_tensor_file

    sd = load_tensor_file(path, "Inception weights")
    if not isinstance(sd, dict) or "fc.bias" not in {str(k).removeprefix("module.") for k in sd}:
        raise ValueError(f"Inception weights {path}: not an FID Inception state dict (pt_inception-2015-12-05 .pth)")
    sd = {k.removeprefix("module."): v for k, v in sd.items() if not k.startswith("AuxLogits.")}
    model = InceptionV3(num_classes=sd["fc.bias"].shape[0], **kw)
    try:
        missing, unexpected = model.load_state_dict(sd, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise ValueError(f"Inception weights {path}: not an FID Inception state dict ({str(e).splitlines()[0]})") from e
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"Inception weights {path}: not an FID Inception state dict: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    model.eval().requires_grad_(False)
    model.weights_path, model.weights_sha256 = path, file_sha256(path)
    return model
