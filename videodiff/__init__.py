"""videodiff: Video Diffusion Models (Ho, Salimans et al., 2022) in PyTorch.

``videodiff.VideoPipeline`` (:mod:`videodiff.video_pipeline`) is the Python API for every task; it is imported on
first use, so ``import videodiff`` stays light."""

__version__ = "0.1.0"
__all__ = ["VideoPipeline", "__version__"]


def __getattr__(name: str):
    if name == "VideoPipeline":
        from .video_pipeline import VideoPipeline

        return VideoPipeline
    raise AttributeError(f"module 'videodiff' has no attribute {name!r}")
