"""The one-command demo (``videodiff demo``, ``make demo``): a shipped model, no training, about a minute on a CPU.

It writes a page (``index.html``, plus ``summary.png``, one still image of everything) with

1. text-to-video samples for a few prompts at a few classifier-free guidance weights (eq. 5, Sec. 4.3): each
   column uses the same noise, so columns differ only in ``w``;
2. one autoregressive extension (Sec. 3.1, 4.4) of a 16-frame sample to 64 frames by the gradient method (eq. 6)
   next to the replacement method, from the same first block and the same noise;
3. spatial super-resolution of a held-out clip by eq. (7) beside bicubic upsampling and the real clip, and temporal
   interpolation x4 of another by the gradient method beside the replacement method and linear blending
   (:mod:`videodiff.demo_tasks`, with the commands' defaults);
4. video prediction at the paper's 64x64 (Sec. 3.1, 4.4): a held-out Stochastic Moving MNIST clip of the benchmark's
   test split continued from 5 given frames to 15 with the shipped ``smmnist-64`` by its default method (its
   explicitly trained conditional), beside the ground truth.

The default model is the 4-step distilled student ``moving-mnist-fast-w`` (docs/distillation.md) for the text-to-video
rows, where it matches its teacher's Table 3 scores at a tenth of the time (on an AMD EPYC Zen 3, fp32); rows 2 and
3 are conditional sampling, where a 4-step student loses (eq. 6 extension: block seams and speckle; interpolation and
super-resolution: 3-6 dB), so they run its teacher ``moving-mnist`` (``task_model``). ``model="moving-mnist"`` gives
the teacher's page.
"""

from __future__ import annotations

import dataclasses
import html
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["DemoConfig", "run_demo"]


@dataclass
class DemoConfig:
    # a shipped model name, or a run directory / checkpoint. The default is the guidance-distilled 4-step student of
    # `moving-mnist` (docs/distillation.md): text to video at ~1/10 of the teacher's time with the same Table 3
    # scores; `model="moving-mnist"` is the teacher's demo
    model: str = "moving-mnist-fast-w"
    prompts: tuple[str, ...] = ("digit 0 moving right", "digit 4 moving up", "digit 7 moving left")
    weights: tuple[float, ...] = (0.0, 1.0, 4.0)  # guidance weights w of eq. (5)
    # None: DPM-Solver++(2M) with 20 steps (docs/results.md compares it with DDIM on moving-mnist), or a distilled
    # student's own grid (its sample.sampler / sample.steps: DDIM, 4 steps for moving-mnist-fast-w)
    sampler: str | None = None
    steps: int | None = None
    extend_prompt: str = "digit 3 moving down"
    extend_guidance: float = 1.0
    extend_frames: int = 64
    seed: int = 0
    scale: int = 3  # nearest-neighbour upscaling of the written GIFs, so 32x32 frames are visible
    fps: int = 8
    device: str = "cpu"
    precision: str = "auto"  # auto | fp32 | bf16 (videodiff/precision.py): bf16 where the CPU has native bf16
    compile: bool = False
    methods: tuple[str, ...] = field(default=("gradient", "replacement"))
    tasks: bool = True  # the super-resolution and interpolation rows
    task_steps: int | None = None  # their sampling steps (None: the commands' defaults, TASK_DEFAULTS)
    # the model of the conditional rows, extension included (None: a distilled model's teacher, which keeps the 3-6
    # dB a 4-step student loses in interpolation and super-resolution and the gradient method's clean extension
    # (docs/distillation.md); the model itself when it is no student or its teacher is not on this machine)
    task_model: str | None = None
    predict_model: str | None = "smmnist-64"  # the 64x64 prediction row (None: left out)
    predict_samples: int = 2


def _upscale(videos: torch.Tensor, k: int) -> torch.Tensor:
    return videos if k == 1 else videos.repeat_interleave(k, -1).repeat_interleave(k, -2)


def _gif(videos: torch.Tensor, path: Path, cfg: DemoConfig, nrow: int | None = None) -> str:
    from .io import save_video_grid

    save_video_grid(_upscale(videos, cfg.scale), path, nrow=nrow, fps=cfg.fps)
    return path.name


def _task_section(files: dict[str, dict[str, str]], info: dict) -> str:
    esc = html.escape

    def table(row: dict[str, str]) -> str:
        return ("<table><tr>" + "".join(f"<th>{esc(k)}</th>" for k in row) + "</tr><tr>"
                + "".join(f'<td><img src="{f}"></td>' for f in row.values()) + "</tr></table>")

    parts = []
    if "superres" in files:
        parts.append(f"""<h2>Spatial super-resolution by eq. (7) (Sec. 3.1)</h2>
<p>A held-out clip, area-downsampled by 2, upsampled back by the model <code>{esc(info.get('task_model', ''))}</code>
without a prompt, guided through a differentiable downsampling (eq. 7), beside bicubic upsampling and the real
clip.</p>{table(files['superres'])}""")
    if "interpolation" in files:
        parts.append(f"""<h2>Temporal interpolation (Sec. 3.1)</h2>
<p>Only the key frames of another held-out clip are given; <code>{esc(info.get('task_model', ''))}</code> fills the
frames between them by the gradient
method (eq. 6) or the replacement method ({esc(info['task_sampler'])}), beside linear blending of the key frames.</p>
{table(files['interpolation'])}""")
    if "predict" in files:
        parts.append(f"""<h2>Video prediction at 64x64 (Sec. 3.1, 4.4)</h2>
<p>Test clip 0 of the Stochastic Moving MNIST benchmark split: the first 5 frames are given, the model
<code>{esc(info.get('predict_model') or '')}</code> continues them to 15 by {esc(info.get('predict_method', ''))}, beside the
ground truth (docs/results.md, "Stochastic Moving MNIST", has its scores).</p>{table(files['predict'])}""")
    return "\n".join(parts) + "\n" if parts else ""


def _page(cfg: DemoConfig, cells: list[list[str]], ext: dict[str, str], info: dict,
          task_files: dict[str, dict[str, str]] | None = None) -> str:
    esc = html.escape
    head = "".join(f"<th>w = {w:g}</th>" for w in cfg.weights)
    rows = "".join(f"<tr><th>{esc(p)}</th>" + "".join(f'<td><img src="{c}"></td>' for c in row) + "</tr>"
                   for p, row in zip(cfg.prompts, cells))
    ext_rows = "".join(f'<tr><th>{esc(m)}</th><td><img src="{f}"></td></tr>' for m, f in ext.items())
    return f"""<!doctype html><meta charset="utf-8"><title>videodiff demo</title>
<style>body{{font-family:sans-serif;margin:2em}} img{{image-rendering:pixelated}} th{{text-align:left;padding:4px}}
code{{background:#eee}}</style>
<h1>videodiff demo: model <code>{esc(info['model'])}</code> (step {info['step']})</h1>
<p>Made by <code>{esc(info['command'])}</code> in {info['seconds']:.0f} s on {esc(info['device'])}
({info['precision']}; text to video: {info['sampler']}, {info['steps']} steps). Paper: Video Diffusion Models (Ho, Salimans et al. 2022).</p>
{_student_note(info)}
<h2>Text to video with classifier-free guidance (eq. 5)</h2>
<p>Each column uses the same noise; only the guidance weight w differs (w = 0: the plain conditional model).</p>
<table><tr><th>prompt</th>{head}</tr>{rows}</table>
<h2>Autoregressive extension to {cfg.extend_frames} frames (Sec. 3.1)</h2>
<p>"{esc(cfg.extend_prompt)}" (guidance w = {cfg.extend_guidance:g}): the first {info['block']} frames are one
sample; every later block of {info['block'] - info['context']} frames is conditioned on the {info['context']} frames
before it by the gradient method (eq. 6) or the replacement method, with the same noise, by
<code>{esc(info['task_model'])}</code> ({esc(info['extend_sampler'])}, {info['extend_steps']} steps per block).
Conditioning frames of the first block are outlined red in <code>summary.png</code>.</p>
<table>{ext_rows}</table>
{_task_section(task_files or {}, info)}<p>Still image of everything: <a href="summary.png">summary.png</a>. Timings: {esc(json.dumps(info['timings']))}</p>
"""


def _student_note(info: dict) -> str:
    teacher = info.get("distilled_from")
    if not teacher:
        return ""
    t = html.escape(teacher)
    w = ("the guidance weight is an input of the network (Meng et al. 2023); its w = 0 is already somewhat guided"
         if info.get("guidance_range") else "its teacher's guidance weight is in its weights")
    return (f"<p>A progressively distilled student of <code>{t}</code> (Salimans &amp; Ho 2022; docs/distillation.md): "
            f"one network call per step; {w}. <code>videodiff demo --model {t}</code> makes this page with the "
            f"teacher.</p>\n")


METHOD_NAMES = {"gradient": "the gradient method (eq. 6)", "replacement": "the replacement method",
                "context": "its explicitly trained conditional (the given frames clean in its input, Sec. 3.1)"}


def _prediction(cfg: DemoConfig, out: Path, steps: int | None, progress: bool) -> tuple[dict, float]:
    """The 64x64 prediction row: test clip 0 of the SMMNIST protocol split, 5 given -> 15 frames, ground truth then
    ``cfg.predict_samples`` continuations by the model's default method (:meth:`VideoPipeline.default_method`).
    Returns ``({label: video}, seconds, method)``."""
    from .evaluation.protocols import get_protocol, load_split
    from .video_pipeline import VideoPipeline

    protocol = get_protocol("smmnist-mcvd")
    t0 = time.perf_counter()
    pipe = VideoPipeline.from_pretrained(cfg.predict_model, device=cfg.device, precision=cfg.precision)
    truth = load_split(protocol.split, 1)[:, :, : protocol.frames]
    pred = pipe.predict(truth[:, :, : protocol.given], given=protocol.given, frames=protocol.frames,
                        samples=cfg.predict_samples, seed=cfg.seed, steps=steps, progress=progress)
    row = {"ground truth": truth, **{f"sample {k + 1}": pred[:, k] for k in range(pred.shape[1])}}
    return row, time.perf_counter() - t0, pipe.default_method()


def _grid(cfg: DemoConfig, pipe) -> tuple[str, int]:
    """``(sampler, steps)`` of the text-to-video and extension rows for ``pipe``: ``cfg``'s, else a distilled
    student's own grid, else DPM-Solver++(2M) with 20 steps."""
    own = pipe.config.sample if pipe.distilled else None  # a student samples on the grid it was distilled for
    return cfg.sampler or (own.sampler if own else "dpmpp2m"), cfg.steps or (own.steps if own else 20)


def _task_pipeline(cfg: DemoConfig, pipe):
    """The pipeline of the conditional rows (extension, super-resolution, interpolation): ``cfg.task_model``, else a
    distilled model's teacher (:meth:`VideoPipeline.teacher`), else ``pipe`` itself."""
    from .video_pipeline import VideoPipeline

    if cfg.task_model is None:
        return pipe.teacher() or pipe
    if cfg.task_model == cfg.model:
        return pipe
    return VideoPipeline.from_pretrained(cfg.task_model, device=cfg.device, precision=cfg.precision)


def _summary(t2v: torch.Tensor, ext: dict[str, torch.Tensor], block: int, tasks: dict, every: int = 4) -> np.ndarray:
    """One still image: the text-to-video grid's middle frame row by row, each extension's frame strip, then one
    strip per super-resolution / interpolation video."""
    from .conditional import frame_strip

    strips = [frame_strip(t2v[:, :, ::2])]
    for video in ext.values():
        known = [i < block for i in range(0, video.shape[2], every)]
        strips.append(frame_strip(video[:, :, ::every], known))
    strips += [frame_strip(v) for row in tasks.values() for v in row.values()]
    width = max(s.shape[1] for s in strips)
    padded = [np.pad(s, ((0, 4), (0, width - s.shape[1]), (0, 0)), constant_values=255) for s in strips]
    return np.concatenate(padded, 0)


def run_demo(out_dir: str | Path, cfg: DemoConfig | None = None, *, command: str = "videodiff demo",
             progress: bool = True) -> Path:
    """Write the demo page into ``out_dir`` and return the path of ``index.html``."""
    from PIL import Image

    from .video_pipeline import VideoPipeline

    cfg = cfg or DemoConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    pipe = VideoPipeline.from_pretrained(cfg.model, device=cfg.device, precision=cfg.precision, compile=cfg.compile)
    mcfg = pipe.config
    timings = {"load": time.perf_counter() - t_start}
    t0 = time.perf_counter()
    cond_pipe = _task_pipeline(cfg, pipe)  # extension, super-resolution and interpolation: a student's teacher
    timings["load_task_model"] = time.perf_counter() - t0  # before any sampling: a bad --task-model fails at once
    sampler, steps = _grid(cfg, pipe)
    sample_kw = dict(steps=steps, sampler=sampler, seed=cfg.seed, progress=progress)

    t0 = time.perf_counter()
    by_weight = [pipe.generate(list(cfg.prompts), guidance=w, **sample_kw)
                 for w in cfg.weights]  # each (P, C, F, H, W), the same noise for every w
    timings["text_to_video"] = time.perf_counter() - t0
    cells = [[_gif(v[i : i + 1], out / f"t2v_p{i}_w{w:g}.gif", cfg) for v, w in zip(by_weight, cfg.weights)]
             for i in range(len(cfg.prompts))]
    t2v = torch.stack(by_weight, 1).flatten(0, 1)  # prompt-major, weight-minor
    _gif(t2v, out / "text_to_video.gif", cfg, nrow=len(cfg.weights))

    block = mcfg.data.num_frames
    context = block // 2
    first = pipe.generate(cfg.extend_prompt, guidance=cfg.extend_guidance, **sample_kw)
    ext_sampler, ext_steps = _grid(cfg, cond_pipe)
    extended, ext_files = {}, {}
    for method in cfg.methods:  # the same seed, so the methods share their noise
        t0 = time.perf_counter()
        extended[method] = cond_pipe.extend(first, frames=cfg.extend_frames, prompt=cfg.extend_prompt,
                                            method=method, guidance=cfg.extend_guidance, context=context,
                                            seed=cfg.seed + 1, steps=ext_steps, sampler=ext_sampler,
                                            progress=progress)
        timings[f"extend_{method}"] = time.perf_counter() - t0
        ext_files[method] = _gif(extended[method], out / f"extend_{method}.gif", cfg)
    tasks, task_files = {}, {}
    if cfg.tasks:
        from .demo_tasks import task_rows

        tasks, task_timings = task_rows(cond_pipe, seed=cfg.seed, steps=cfg.task_steps, progress=progress)
        timings.update(task_timings)
        task_files = {name: {label: _gif(v, out / f"{name}_{i}.gif", cfg) for i, (label, v) in enumerate(row.items())}
                      for name, row in tasks.items()}
    predict_method = None
    if cfg.predict_model is not None:
        tasks["predict"], timings["predict"], predict_method = _prediction(cfg, out, cfg.task_steps, progress)
        task_files["predict"] = {label: _gif(v, out / f"predict_{i}.gif", dataclasses.replace(cfg, scale=2))
                                 for i, (label, v) in enumerate(tasks["predict"].items())}
    Image.fromarray(_summary(t2v, extended, block, tasks)).save(out / "summary.png")
    info = {"model": cfg.model, "step": pipe.model.step, "command": command, "device": cfg.device,
            "sampler": sampler, "steps": steps,
            "precision": pipe.precision, "block": block,
            "context": context, "seconds": time.perf_counter() - t_start, "predict_model": cfg.predict_model,
            "distilled_from": str(mcfg.distill.source) if pipe.distilled else None,
            "guidance_range": pipe.guidance_range, "task_model": str(cond_pipe.source),
            "extend_sampler": ext_sampler, "extend_steps": ext_steps,
            "timings": {k: round(v, 1) for k, v in timings.items()}}
    if predict_method is not None:
        info["predict_method"] = METHOD_NAMES[predict_method]
    if cfg.tasks:
        d = cond_pipe.settings("interpolate", steps=cfg.task_steps)
        info["task_sampler"] = f"{d['sampler']}, {d['steps']} steps"
    (out / "index.html").write_text(_page(cfg, cells, ext_files, info, task_files))
    torch.save({"text_to_video": t2v, **{f"extend_{m}": v for m, v in extended.items()},
                **{f"{name}/{label}": v for name, row in tasks.items() for label, v in row.items()}}, out / "videos.pt")
    (out / "demo.json").write_text(json.dumps({"config": asdict(cfg), **info}, indent=1) + "\n")
    return out / "index.html"
