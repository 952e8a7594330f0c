"""Shared pieces of the conditional commands (:mod:`videodiff.cli.conditional`): reading ``--input``, the
sampling keywords of a task from its flags and :data:`videodiff.conditional.TASK_DEFAULTS`, the prompt condition,
and writing the output (grid, ``--compare`` grid, ``--save-tensor``)."""

from __future__ import annotations

from pathlib import Path

from .options import check_sampler_flags, sampler_flag_values

__all__ = ["check_input", "read_input", "sampling_options", "check_text_flags", "text_denoiser", "seeded_generator",
           "write", "device_of", "sampling_overrides"]


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


def sampling_options(args, cfg, task: str) -> dict:
    """The library call's sampling keywords: the flags given, else :data:`videodiff.conditional.TASK_DEFAULTS`."""
    from ..conditional import task_options

    return task_options(task, cfg.sample, **sampling_overrides(args, cfg, task))


def sampling_overrides(args, cfg, task: str) -> dict:
    """The sampling flags given (None: the task default), checked against the sampler they apply to: the
    ``overrides`` of :func:`videodiff.conditional.task_options`."""
    from ..conditional import TASK_DEFAULTS

    check_sampler_flags(args, args.sampler or TASK_DEFAULTS[task].resolve(cfg.sample).sampler)
    over = dict(sampler=args.sampler, steps=args.steps, w_r=args.w_r, clamp=False if args.no_clamp else None,
                **sampler_flag_values(args))
    if hasattr(args, "down"):
        over.update(down=args.down, w_r_low=args.w_r_low)
    return over


def check_text_flags(args) -> None:
    if args.guidance is not None and args.prompt is None:
        raise ValueError("--guidance needs --prompt (guidance strengthens a text condition)")


def text_denoiser(loaded, prompt: str | None, num: int, guidance: float | None):
    """``(denoiser, denoiser keywords)`` for ``prompt`` and ``num`` videos (:func:`videodiff.pipeline.prompt_denoiser`);
    guidance weight ``None``: the run's ``sample.guidance``."""
    from ..pipeline import prompt_denoiser

    cfg = loaded.config
    return prompt_denoiser(loaded.denoiser, cfg, prompt, num, cfg.sample.guidance if guidance is None else guidance)


def seeded_generator(seed: int, device):
    import torch

    return torch.Generator(device=device).manual_seed(seed)


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


def device_of(loaded):
    return next(loaded.denoiser.parameters()).device
