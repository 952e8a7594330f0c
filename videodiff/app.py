"""The interactive app (``videodiff app``; ``pip install 'videodiff[app]'``): a Gradio page that serves a shipped
model offline, on a CPU, bound to localhost, with analytics off.

A thin UI layer over the library, one tab per application of the paper:

1. **Text to video** (Sec. 4.3): prompt, classifier-free guidance weight ``w`` (eq. 5), steps, sampler, seed
   (:meth:`videodiff.VideoPipeline.generate`).
2. **Extend** (Sec. 3.1, 4.4): the last generated video to N frames by the gradient method (eq. 6) beside the
   replacement method, from the same first block and the same noise (:meth:`videodiff.VideoPipeline.extend`).
3. **Super-resolution** (eq. 7): the last video downsampled to 16x16 and brought back to the model's size by
   :meth:`videodiff.VideoPipeline.upsample` with the library's settings for it, beside bicubic upsampling.

The default model is ``moving-mnist-fast-w``, the 4-step student of ``moving-mnist`` with ``w`` as an input (about a
tenth of the teacher's time per video at the same Table 3 scores, 10x on one fp32 thread of an AMD EPYC Zen 3,
docs/distillation.md): it does the text-to-video
tab. Its teacher (:meth:`videodiff.VideoPipeline.teacher`) does the extension and super-resolution tabs, where a
4-step student loses (eq. 6: block seams and speckle; eq. 7 breaks). ``--model moving-mnist`` serves the teacher
alone.

:class:`VideoApp` holds the pipeline and does the work; it knows nothing of Gradio (a bad input raises ``ValueError``
with the message the page shows). :func:`build_app` lays out the page; Gradio is imported only there.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["DEFAULT_MODEL", "AppDefaults", "VideoApp", "build_app", "launch", "make_app", "model_defaults",
           "require_gradio"]

INSTALL_HINT = "pip install 'videodiff[app]'"
LOW_SIZE = 16  # the super-resolution tab's low-resolution side
DEFAULT_MODEL = "moving-mnist-fast-w"  # the distilled student; its teacher "moving-mnist" is --model away


def require_gradio():
    """Import Gradio with analytics off, or fail with the command that installs it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError as e:
        raise ImportError(f"the app needs Gradio, an optional extra: {INSTALL_HINT} ({e})") from e
    return gr


@dataclass
class AppDefaults:
    """The values the page starts with, and the limits of its inputs."""

    prompt: str = "digit 4 moving right"
    guidance: float = 2.0  # w of eq. (5)
    steps: int = 20
    sampler: str = "dpmpp2m"
    seed: int = 0
    extend_frames: int = 48
    max_guidance: float = 20.0
    max_steps: int = 200
    max_frames: int = 128
    scale: int = 4  # nearest-neighbour upscaling of the written videos, so 32x32 frames are visible
    fps: int = 8
    # Under load (issue 29; benchmarks/app_load.py): requests run `concurrency` at a time (sampling saturates the
    # CPU cores anyway); at most `max_queue` more wait in line, with their place shown, and a request past that is
    # turned away at once with Gradio's "queue is full, try again" instead of waiting without bound.
    concurrency: int = 1
    max_queue: int = 16
    max_prompt_chars: int = 300  # the text encoder reads 32 tokens; longer prompts are refused, not cut silently
    keep_videos: int = 256  # written mp4s kept in out_dir (the oldest are deleted past that), so disk use is bounded


def _as_int(value, name: str, lo: int, hi: int) -> int:
    """``value`` (a number box gives floats, or None when empty) as an int in ``[lo, hi]``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(f"{name}: enter a whole number from {lo} to {hi}")
    if float(value) != int(value):
        raise ValueError(f"{name} must be a whole number, got {value:g}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be from {lo} to {hi}, got {value}")
    return value


class VideoApp:
    """The app's actions on one model (a :class:`videodiff.VideoPipeline`); videos go to ``out_dir`` as mp4
    files. Each action returns the path(s) of the written video(s) and a line of Markdown about them."""

    def __init__(self, pipe, out_dir: str | Path, defaults: AppDefaults | None = None, name: str = "model",
                 task_pipe=None):
        self.pipe, self.name = pipe, name
        self.cfg = pipe.config
        self.defaults = defaults or AppDefaults()
        # the extension and super-resolution tabs' model (a student's teacher) and the extension tab's start values
        self.task_pipe = task_pipe or pipe
        self.task_defaults = self.defaults if task_pipe is None else model_defaults(task_pipe.config)
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = pipe.device

    # ------------------------------------------------------------------------------------------ validation

    def _check_prompt(self, prompt: str | None, guidance) -> tuple[str | None, float]:
        prompt = (prompt or "").strip()
        d = self.defaults
        if len(prompt) > d.max_prompt_chars:
            raise ValueError(f"the prompt is {len(prompt)} characters long; keep it under {d.max_prompt_chars} "
                             f"(the model reads only its first words)")
        if guidance is None or not math.isfinite(float(guidance)) or not 0 <= float(guidance) <= d.max_guidance:
            raise ValueError(f"guidance w must be from 0 to {d.max_guidance:g}, got {guidance}")
        if self.cfg.text.enabled:
            if not prompt:
                raise ValueError("type a prompt, e.g. 'digit 7 moving left': this model draws what the caption says")
            return prompt, float(guidance)
        if prompt or float(guidance):
            raise ValueError("this model is not text-conditioned: leave the prompt empty and set guidance to 0")
        return None, 0.0

    def _check_sampling(self, steps, sampler: str, seed) -> tuple[int, str, int]:
        from .sampling import SAMPLERS

        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        return _as_int(steps, "steps", 1, self.defaults.max_steps), sampler, _as_int(seed, "seed", 0, 2**31 - 1)

    # ------------------------------------------------------------------------------------------ output

    def _write(self, videos: torch.Tensor, stem: str, nrow: int | None = None) -> str:
        """``(B, C, F, H, W)`` in [-1, 1] -> an mp4 grid, upscaled ``defaults.scale`` times (nearest)."""
        from .io import save_video_grid

        k = self.defaults.scale
        videos = videos.repeat_interleave(k, -1).repeat_interleave(k, -2)
        path = self.out_dir / f"{stem}-{uuid.uuid4().hex[:8]}.mp4"
        save_video_grid(videos, path, nrow=nrow, fps=self.defaults.fps)
        self._prune()
        return str(path)

    def _prune(self) -> None:
        """Keep the newest ``defaults.keep_videos`` mp4s of ``out_dir``; delete the rest (oldest first)."""
        def mtime(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except FileNotFoundError:  # deleted meanwhile by another worker
                return 0.0

        videos = sorted(self.out_dir.glob("*.mp4"), key=mtime)
        for p in videos[: max(0, len(videos) - self.defaults.keep_videos)]:
            p.unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------------ actions

    def generate(self, prompt: str | None, guidance, steps, sampler: str, seed) -> tuple[str, dict, str]:
        """Text to video: the video's mp4, the state that :meth:`extend` and :meth:`superres` start from, a note."""
        prompt, w = self._check_prompt(prompt, guidance)
        steps, sampler, seed = self._check_sampling(steps, sampler, seed)
        t0 = time.perf_counter()
        video = self.pipe.generate(prompt, guidance=w, steps=steps, sampler=sampler, seed=seed, progress=True)
        dt = time.perf_counter() - t0
        state = {"video": video, "prompt": prompt, "guidance": w, "steps": steps, "sampler": sampler, "seed": seed}
        caption = f"'{prompt}', w = {w:g}, " if prompt is not None else ""
        note = (f"{caption}{sampler}, {steps} steps, seed {seed}: {video.shape[2]} frames "
                f"{video.shape[-1]}x{video.shape[-1]} in {dt:.1f} s")
        return self._write(video, "t2v"), state, note

    @property
    def teacher_name(self) -> str | None:
        """The teacher that runs the extension and super-resolution tabs for a distilled student, else None."""
        return None if self.task_pipe is self.pipe else str(self.task_pipe.source)

    def _by(self) -> str:
        return "" if self.teacher_name is None else f"by the teacher {self.teacher_name}, "

    def _last(self, state: dict | None) -> dict:
        if not state or "video" not in state:
            raise ValueError("generate a video on the 'Text to video' tab first")
        return state

    def extend(self, state: dict | None, frames, steps, sampler: str, seed) -> tuple[str, str, str]:
        """The last video extended to ``frames`` frames by the gradient and the replacement method, same noise."""
        state = self._last(state)
        block = self.cfg.data.num_frames
        frames = _as_int(frames, "frames", block + 1, self.defaults.max_frames)
        steps, sampler, seed = self._check_sampling(steps, sampler, seed)
        t0 = time.perf_counter()
        paths = []
        for method in ("gradient", "replacement"):
            video = self.task_pipe.extend(state["video"], frames=frames, prompt=state["prompt"], method=method,
                                          guidance=state["guidance"], seed=seed, steps=steps, sampler=sampler,
                                          progress=True)
            paths.append(self._write(video, f"extend-{method}"))
        dt = time.perf_counter() - t0
        note = (f"{block} generated frames extended to {frames} ({block // 2} context frames per block, "
                f"{self._by()}{sampler}, {steps} steps per block, seed {seed}) by both methods in {dt:.1f} s")
        return paths[0], paths[1], note

    def superres(self, state: dict | None, steps, sampler: str, seed) -> tuple[str, str]:
        """The last video downsampled to ``LOW_SIZE`` and upsampled back by eq. (7), conditioned on its prompt
        (w = 0), with the library's super-resolution defaults: low | bicubic | eq. (7) | original."""
        from .conditional import Downsample, upsample_bicubic, upsample_nearest

        state = self._last(state)
        steps, sampler, seed = self._check_sampling(steps, sampler, seed)
        video = state["video"]  # (1, C, F, H, W)
        h = video.shape[-1]
        if h <= LOW_SIZE:
            raise ValueError(f"this model's {h}x{h} frames are not above {LOW_SIZE}x{LOW_SIZE}")
        low = Downsample(LOW_SIZE, "area")(video)
        t0 = time.perf_counter()
        ours = self.task_pipe.upsample(low, prompt=state["prompt"], guidance=0.0, steps=steps, sampler=sampler,
                                       seed=seed, progress=True)
        dt = time.perf_counter() - t0
        grid = torch.cat([upsample_nearest(low, h), upsample_bicubic(low, h), ours, video])
        down = self.task_pipe.settings("upsample", sampler=sampler, steps=steps)["down_mode"]
        note = (f"left to right: the {LOW_SIZE}x{LOW_SIZE} input, bicubic, eq. (7) ({self._by()}{down} D, "
                f"{sampler}, {steps} steps, seed {seed}, {dt:.1f} s), the original {h}x{h}")
        return self._write(grid, "superres", nrow=4), note


def _ui(fn):
    """Run ``fn``; a ``ValueError`` becomes a ``gr.Error``, which the page shows as a message."""
    gr = require_gradio()

    @functools.wraps(fn)  # keeps fn's signature: Gradio finds its gr.Progress argument there
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            raise gr.Error(str(e)) from None

    return wrapped


def build_app(app: VideoApp):
    """The Gradio page (``gr.Blocks``) over ``app``; launch it with :func:`launch`."""
    gr = require_gradio()
    from .sampling import SAMPLERS

    d, cfg = app.defaults, app.cfg
    block, size = cfg.data.num_frames, cfg.data.image_size
    text = cfg.text.enabled
    samplers = list(SAMPLERS)

    def sampling_inputs(prefix: str, steps: int = d.steps, sampler: str = d.sampler):
        with gr.Row():
            steps = gr.Number(steps, label="steps", precision=0, minimum=1, maximum=d.max_steps,
                              elem_id=f"{prefix}-steps")
            sampler = gr.Dropdown(samplers, value=sampler, label="sampler", elem_id=f"{prefix}-sampler")
            seed = gr.Number(d.seed, label="seed", precision=0, minimum=0, elem_id=f"{prefix}-seed")
        return steps, sampler, seed

    def generate(prompt, w, steps, sampler, seed, progress=gr.Progress(track_tqdm=True)):
        return app.generate(prompt, w, steps, sampler, seed)

    def extend(state, frames, steps, sampler, seed, progress=gr.Progress(track_tqdm=True)):
        return app.extend(state, frames, steps, sampler, seed)

    def superres(state, steps, sampler, seed, progress=gr.Progress(track_tqdm=True)):
        return app.superres(state, steps, sampler, seed)

    video_kw = dict(autoplay=True, loop=True, interactive=False)
    # delete_cache: Gradio's copies of served videos older than 30 min are deleted every 10 min
    with gr.Blocks(title="videodiff", analytics_enabled=False, delete_cache=(600, 1800)) as page:
        gr.Markdown(f"## videodiff: {app.name}\n{block} frames of {size}x{size} per sample"
                    f"{', text-conditioned' if text else ''}. Video Diffusion Models (Ho, Salimans et al. 2022), "
                    f"running on {app.device.type.upper()}, offline.")
        state = gr.State(None)
        with gr.Tab("Text to video"):
            with gr.Row():
                with gr.Column():
                    prompt = gr.Textbox(d.prompt if text else "", label="prompt", interactive=text,
                                        placeholder="digit 0-9 moving right / up / left / down" if text
                                        else "this model is not text-conditioned", elem_id="prompt")
                    w = gr.Slider(0, d.max_guidance, value=d.guidance if text else 0, step=0.5, interactive=text,
                                  label="guidance w (eq. 5; 0 = the plain conditional model)", elem_id="guidance")
                    t2v_sampling = sampling_inputs("t2v")
                    go = gr.Button("Generate", variant="primary", elem_id="generate")
                with gr.Column():
                    t2v_video = gr.Video(label="sample", elem_id="t2v-video", **video_kw)
                    t2v_note = gr.Markdown(elem_id="t2v-note")
            if text:
                gr.Examples([[f"digit {k} moving {m}"] for k, m in ((0, "right"), (3, "down"), (7, "left"),
                                                                     (9, "up"))], inputs=[prompt])
        with gr.Tab("Extend"):
            gr.Markdown(f"Extends the last generated video autoregressively: every new block of {block} frames is "
                        f"conditioned on the {block // 2} frames before it, by the gradient method (eq. 6) and by "
                        "the replacement method, with the same noise. The prompt and guidance are the video's."
                        + (f" A distilled student's gradient method leaves seams and speckle at its few steps, so "
                           f"this tab runs its teacher, {app.teacher_name}, from the teacher's own steps."
                           if app.teacher_name else ""))
            with gr.Row():
                frames = gr.Number(d.extend_frames, label=f"frames ({block + 1} to {d.max_frames})", precision=0,
                                   minimum=block + 1, maximum=d.max_frames, elem_id="extend-frames")
            ext_sampling = sampling_inputs("extend", app.task_defaults.steps, app.task_defaults.sampler)
            ext_go = gr.Button("Extend", variant="primary", elem_id="extend")
            with gr.Row():
                grad_video = gr.Video(label="gradient method (eq. 6)", elem_id="extend-gradient", **video_kw)
                repl_video = gr.Video(label="replacement method", elem_id="extend-replacement", **video_kw)
            ext_note = gr.Markdown()
        if size > LOW_SIZE:
            with gr.Tab("Super-resolution"):
                gr.Markdown(f"The last generated video, downsampled to {LOW_SIZE}x{LOW_SIZE}, brought back to "
                            f"{size}x{size} by the gradient method on the downsampled prediction (eq. 7), "
                            "conditioned on the video's prompt (w = 0), beside bicubic upsampling. The steps and "
                            "sampler start from the library's super-resolution defaults."
                            + (f" A distilled student's eq. (7) breaks at its few steps, so this tab runs its "
                               f"teacher, {app.teacher_name}." if app.teacher_name else ""))
                sr_d = app.task_pipe.settings("upsample")  # the library's super-resolution sampler and steps
                sr_sampling = sampling_inputs("superres", sr_d["steps"], sr_d["sampler"])
                sr_go = gr.Button("Upsample", variant="primary", elem_id="superres")
                sr_video = gr.Video(label="input | bicubic | eq. (7) | original", elem_id="superres-video",
                                    **video_kw)
                sr_note = gr.Markdown()
            sr_go.click(_ui(superres), [state, *sr_sampling], [sr_video, sr_note])
        go.click(_ui(generate), [prompt, w, *t2v_sampling], [t2v_video, state, t2v_note])
        prompt.submit(_ui(generate), [prompt, w, *t2v_sampling], [t2v_video, state, t2v_note])
        ext_go.click(_ui(extend), [state, frames, *ext_sampling], [grad_video, repl_video, ext_note])
    # `concurrency` sampling jobs at a time; up to `max_queue` others wait in line, with progress; past that the page
    # says the queue is full (try again) at once
    page.queue(default_concurrency_limit=d.concurrency, max_size=d.max_queue)
    return page


def launch(page, *, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
           block: bool = True, out_dir: str | Path | None = None):
    """Serve ``page`` on ``host:port`` (localhost by default; ``share=True`` asks Gradio for a public link, off by
    default), no analytics, no server-side rendering, system fonts only (nothing is fetched)."""
    gr = require_gradio()

    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    return page.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                       inbrowser=False, ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False,
                       theme=theme, css="video { image-rendering: pixelated; }",  # 32x32 frames stay sharp
                       allowed_paths=[str(out_dir)] if out_dir is not None else None, quiet=not block)


def model_defaults(config, **fields) -> AppDefaults:
    """The page's starting values for a model's ``config``, then ``fields``: a progressively distilled student
    (``distill.source`` set; docs/distillation.md) starts at its own sampler and steps (DDIM at the steps it was
    distilled for) and its own guidance (0: a guided teacher's w is in its weights; a student that takes w as an
    input, ``distill.guidance_range``, starts at its ``sample.guidance`` with the slider over its range), every other
    model at :class:`AppDefaults`' (DPM-Solver++(2M), 20 steps, w = 2)."""
    from .distill.config import is_student, student_guidance_range

    if is_student(config):
        s = config.sample
        fields = {"sampler": s.sampler, "steps": s.steps, "guidance": s.guidance, **fields}
        span = student_guidance_range(config)
        if span is not None:
            fields.setdefault("max_guidance", span[1])
    return AppDefaults(**fields)


def make_app(model: str = DEFAULT_MODEL, *, device: str = "cpu", defaults: AppDefaults | None = None,
             out_dir: str | Path | None = None, fields: dict | None = None):
    """Load ``model`` (a shipped name or a run directory) and build its page: ``(page, VideoApp)``. Without
    ``defaults``, the page starts at :func:`model_defaults` of the model with ``fields`` over them. A distilled
    student's extension and super-resolution tabs run its teacher when that is on this machine."""
    from .video_pipeline import VideoPipeline

    require_gradio()  # fail before loading anything
    pipe = VideoPipeline.from_pretrained(model, device=device)
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="videodiff-app-"))
    if defaults is None:
        defaults = model_defaults(pipe.config, **(fields or {}))
    # a student's teacher does the conditional tabs, from its own sampling defaults
    app = VideoApp(pipe, out, defaults, name=str(model), task_pipe=pipe.teacher())
    return build_app(app), app
