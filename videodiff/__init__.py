"""videodiff: Video Diffusion Models (Ho, Salimans et al., 2022) in PyTorch."""

__version__ = "0.1.0"
