"""Shared pieces of the conditional commands (:mod:`videodiff.cli.conditional`): reading ``--input``, a task's
pipeline keywords from its flags, and writing the output (grid, ``--compare`` grid, ``--save-tensor``)."""

from __future__ import annotations

from pathlib import Path

from .options import check_sampler_flags, sampler_flag_values

__all__ = ["check_input", "read_input", "task_kwargs", "check_text_flags", "write"]


def check_input(path: Path | None) -> None:
    """Fail before loading any model when --input is missing."""
    if path is not None and not path.exists():
        raise FileNotFoundError(f"--input {path}: file does not exist")
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"--input {path}: not a regular file")


def read_input(path: Path, *, channels: int, size: int | None, step: int = 1, max_frames: int | None = None):
    """``--input`` as float ``(B, C, F, S, S)`` in [-1, 1]: a video file (one video, center-cropped square, resized
    to ``size`` when given) or a ``.pt`` tensor ``(B, C, F, H, W)`` / ``(C, F, H, W)``."""
    import torch

    from ..data.transforms import frames_to_clip, to_channels
    from ..io import load_tensor_file, read_video

    if path.suffix.lower() == ".pt":
        video = load_tensor_file(path, "--input")
        if not torch.is_tensor(video) or video.ndim not in (4, 5):
            raise ValueError(f"--input {path}: expected a (B, C, F, H, W) tensor")
        if not torch.isfinite(video).all():
            raise ValueError(f"--input {path}: the tensor holds NaN or infinite values")
        video = (video[None] if video.ndim == 4 else video).float()
        video = video[:, :, ::step][:, :, :max_frames]
        b, c, f, h, w = video.shape
        if h != w:
            raise ValueError(f"--input {path}: frames must be square, got {h}x{w}")
        video = to_channels(video.transpose(1, 2).flatten(0, 1), channels)  # (B*F, C, H, W)
        if size is not None and size != h:
            video = torch.nn.functional.interpolate(video, size=(size, size), mode="bilinear", antialias=True,
                                                    align_corners=False)
        return video.reshape(b, f, channels, *video.shape[-2:]).transpose(1, 2).clamp(-1, 1)
    frames = read_video(path, step=step, max_frames=max_frames)  # uint8 (F, H, W, 3); names the path on errors
    side = min(frames.shape[1:3])
    return frames_to_clip(frames, size or side, channels)[None]  # (1, C, F, S, S)


def task_kwargs(args, pipe, task: str) -> dict:
    """The keyword arguments of ``pipe.<task>(...)`` from the flags given (None: the pipeline's defaults, which
    live in :meth:`videodiff.VideoPipeline.settings`); a sampler's flag with another sampler is refused."""
    check_sampler_flags(args, pipe.settings(task, sampler=args.sampler)["sampler"])
    kw = dict(prompt=args.prompt, guidance=args.guidance, variant=args.variant, w_r=args.w_r,
              clamp=False if args.no_clamp else None, steps=args.steps, sampler=args.sampler,
              options=sampler_flag_values(args) or None, seed=args.seed, progress=True)
    if hasattr(args, "method"):
        kw["method"] = args.method
    if hasattr(args, "down"):
        kw.update(down=args.down, w_r_low=args.w_r_low)
    return kw


def check_text_flags(args) -> None:
    if args.guidance is not None and args.prompt is None:
        raise ValueError("--guidance needs --prompt (guidance strengthens a text condition)")


def write(args, videos, *, fps: int, compare_rows=None, compare_known=None) -> None:
    """The output grid (or, with --compare, the side-by-side grid) and optionally the tensor."""
    import torch

    from ..conditional import comparison_grid
    from ..io import save_video_grid, write_video

    if args.compare and compare_rows is not None:
        write_video(args.out, comparison_grid(compare_rows, compare_known), fps=fps)
    else:
        save_video_grid(videos, args.out, fps=fps)
    if args.save_tensor:
        torch.save(videos, args.out.with_suffix(".pt"))
