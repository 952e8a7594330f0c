"""The comparison model: ``Unet3D`` of ``video-diffusion-pytorch`` 0.7.0, the best-known PyTorch port of the paper.

Install it beside this project's torch without letting pip touch torch (``pip install -e '.[bench]'`` does not
do this for you; use ``--no-deps``, as ``make bench`` does)::

    pip install --no-deps video-diffusion-pytorch==0.7.0 einops einops-exts rotary-embedding-torch

Its module imports ``torchvision`` at the top only for its GIF/data helpers (``transforms``, ``utils``), which the
U-Net never touches. A torchvision wheel from PyPI is built against a specific torch and does not load with every
torch build, so when ``import torchvision`` fails :func:`import_port` puts a *stub* ``torchvision`` (two empty
submodules whose every name is an inert placeholder) in ``sys.modules`` for the duration of the import and removes it afterwards. The port's U-Net then runs
on exactly the torch build this project runs on.
"""

from __future__ import annotations

import importlib
import sys
import types

__all__ = ["PORT_PACKAGE", "PORT_VERSION", "port_available", "import_port", "build_port_unet", "port_notes"]

PORT_PACKAGE = "video-diffusion-pytorch"
PORT_VERSION = "0.7.0"
_MISSING_HINT = (f"{PORT_PACKAGE} is not installed; install it with `pip install --no-deps "
                 f"{PORT_PACKAGE}=={PORT_VERSION} einops einops-exts rotary-embedding-torch` (or `make bench`)")


class _Unavailable:
    """Stands in for any torchvision name; constructible (the port builds ``T.ToTensor()`` as a default argument)
    but fails loudly if used."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError("torchvision is stubbed by videodiff.bench.port: the port's GIF/data helpers are unavailable")


def _stub_getattr(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Unavailable


def _stub_torchvision() -> list[str]:
    """Insert an empty ``torchvision`` (with ``transforms`` and ``utils``) if the real one cannot be imported."""
    try:
        import torchvision  # noqa: F401

        return []
    except Exception:  # not installed, or built for another torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    root = types.ModuleType("torchvision")
    root.__doc__ = "stub inserted by videodiff.bench.port: the port imports torchvision only for GIF helpers"
    for sub in ("transforms", "utils"):
        mod = types.ModuleType(f"torchvision.{sub}")
        mod.__getattr__ = _stub_getattr  # every name (ToTensor, Compose, ...) is a placeholder
        setattr(root, sub, mod)
        sys.modules[mod.__name__] = mod
    sys.modules["torchvision"] = root
    return ["torchvision", "torchvision.transforms", "torchvision.utils"]


def port_available() -> tuple[bool, str]:
    """(True, version) if the port can be imported, else (False, a one-line reason with the install command)."""
    try:
        from importlib.metadata import version

        v = version(PORT_PACKAGE)
    except Exception:
        return False, _MISSING_HINT
    try:
        import_port()
    except Exception as e:  # a missing small dependency, typically
        return False, f"{PORT_PACKAGE} {v} is installed but does not import ({type(e).__name__}: {e}). {_MISSING_HINT}"
    return True, v


def import_port() -> types.ModuleType:
    """The port's ``video_diffusion_pytorch.video_diffusion_pytorch`` module (with the torchvision stub if needed)."""
    stubbed = _stub_torchvision()
    try:
        return importlib.import_module("video_diffusion_pytorch.video_diffusion_pytorch")
    finally:
        for name in stubbed:
            sys.modules.pop(name, None)


def build_port_unet(channels: int, dim: int = 64, dim_mults: tuple[int, ...] = (1, 2, 4, 8)):
    """``Unet3D(dim, dim_mults, channels)`` with the port's default attention settings (8 heads of 32 channels)."""
    return import_port().Unet3D(dim=dim, dim_mults=tuple(dim_mults), channels=channels)


def port_notes(dim: int = 64, dim_mults: tuple[int, ...] = (1, 2, 4, 8)) -> str:
    """How the port's attention differs from ours at the matched configuration (its defaults, read from its code)."""
    return (f"port Unet3D(dim={dim}, dim_mults={tuple(dim_mults)}): 2 ResNet blocks per level (RMSNorm), "
            "at EVERY level a linear (softmax-kernel) spatial attention and a full temporal attention with 8 heads x "
            "32 channels (256 inner channels, rotary + bucketed relative bias), plus temporal attention on the "
            "input features (64 ch, full resolution); full spatial attention only in the middle (8 x 32); "
            "4x4 stride-2 (transposed) convolutions between levels; no attention-free downsampling blocks")
