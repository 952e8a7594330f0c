"""Command line for shipped models: ``videodiff demo`` (the one-minute demo page), ``videodiff app`` (the interactive
page, an optional extra) and ``videodiff export`` (a training run's EMA weights as a named model). Thin: parse, call
:mod:`videodiff.demo` / :mod:`videodiff.app` / :mod:`videodiff.pretrained`.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

from .options import add_precision_args, add_sampler_args

__all__ = ["add_subcommands"]


def _cmd_demo(args) -> int:
    from ..demo import DemoConfig, run_demo

    defaults = DemoConfig()
    cfg = DemoConfig(model=args.model or defaults.model, prompts=tuple(args.prompt or defaults.prompts),
                     weights=tuple(args.weights or defaults.weights), sampler=args.sampler, steps=args.steps,
                     extend_frames=args.frames, seed=args.seed, device=args.device,
                     precision=args.precision or defaults.precision, compile=bool(args.compile),
                     tasks=not args.no_tasks, task_steps=args.task_steps, task_model=args.task_model,
                     predict_model=None if args.no_predict else defaults.predict_model)
    if cfg.extend_frames < 1 or (cfg.steps is not None and cfg.steps < 1) or (cfg.task_steps is not None
                                                                              and cfg.task_steps < 1):
        raise ValueError("--frames, --steps and --task-steps must be >= 1")
    t0 = time.perf_counter()
    page = run_demo(args.out, cfg, command="videodiff " + shlex.join(args.argv), progress=not args.no_progress)
    print(f"demo written in {time.perf_counter() - t0:.0f} s; open {page.resolve()}")
    print(f"  still image of everything: {page.parent.resolve() / 'summary.png'}")
    return 0


def _cmd_app(args) -> int:
    from ..app import DEFAULT_MODEL, launch, make_app, require_gradio

    try:
        require_gradio()
    except ImportError as e:
        raise ValueError(str(e)) from e  # one line naming the install command
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    over = {}
    for flag, name, low in (("--concurrency", "concurrency", 1), ("--max-queue", "max_queue", 0)):
        value = getattr(args, name)
        if value is not None and value < low:
            raise ValueError(f"{flag} must be >= {low}, got {value}")
        if value is not None:
            over[name] = value
    if args.steps is not None:
        over["steps"] = args.steps
    model = args.model or DEFAULT_MODEL
    page, app = make_app(model, device=args.device, out_dir=args.out, fields=over)  # the model's defaults
    where = "a public share link and " if args.share else ""
    print(f"serving {model} on {where}http://{args.host}:{args.port} (videos in {app.out_dir}); Ctrl+C stops")
    launch(page, host=args.host, port=args.port, share=args.share, out_dir=app.out_dir)
    return 0


def _cmd_export(args) -> int:
    from ..models import check_weights
    from ..pretrained import check_model_name, export_model

    check_model_name(args.name)  # before reading anything

    extra = {}
    if args.meta is not None:
        try:
            extra = json.loads(Path(args.meta).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"--meta {args.meta}: cannot read a JSON object ({e})") from e
        if not isinstance(extra, dict):
            raise ValueError(f"--meta {args.meta}: expected a JSON object")
    if args.adapter:
        from ..finetune import export_adapter
        from ..pretrained import export_target

        # the same rules as a model: a plain name, never over a shipped model, an existing one only with --overwrite
        target, _ = export_target(args.name, args.out, overwrite=args.overwrite)
        weights = export_adapter(args.checkpoint, target.with_suffix(""))
        print(f"exported the LoRA adapter of {args.checkpoint}: {weights} ({weights.stat().st_size / 1e3:.0f} kB), "
              f"{weights.with_suffix('.json')}")
        return 0
    weights, meta = export_model(args.checkpoint, args.name, args.out, extra=extra, overwrite=args.overwrite,
                                 check=check_weights)
    print(f"exported {args.checkpoint} as {args.name!r}: {weights} ({weights.stat().st_size / 1e6:.1f} MB), {meta}")
    return 0


def add_subcommands(sub) -> None:
    """Register ``demo`` and ``export`` on an argparse subparsers object."""
    from ..pretrained import MODELS_DIR

    p = sub.add_parser("demo", help="text-to-video and 64-frame extension with a shipped model; writes a page")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    p.add_argument("--model", default=None,
                   help="shipped model name or run directory (default moving-mnist-fast-w, the 4-step distilled "
                        "student, for text to video; --model moving-mnist: its teacher, 20 DPM-Solver++ steps, for "
                        "every row)")
    p.add_argument("--prompt", action="append", default=None, metavar="TEXT", help="prompt (repeatable)")
    p.add_argument("--weights", type=float, nargs="+", default=None, metavar="W", help="guidance weights")
    add_sampler_args(p, "sampler for every block (default dpmpp2m; a distilled student's own: ddim)", default=None,
                     options=False)
    p.add_argument("--steps", type=int, default=None,
                   help="sampling steps per block (default 20; a distilled student's own, e.g. 4)")
    p.add_argument("--frames", type=int, default=64, help="length of the extended video (default 64)")
    p.add_argument("--task-steps", type=int, default=None,
                   help="sampling steps of the super-resolution, interpolation and prediction rows (default: "
                        "those commands' defaults)")
    p.add_argument("--task-model", default=None,
                   help="model of the extension, super-resolution and interpolation rows (default: a distilled "
                        "model's teacher, since a 4-step student loses there, docs/distillation.md; else --model)")
    p.add_argument("--no-tasks", action="store_true", help="leave out the super-resolution and interpolation rows")
    p.add_argument("--no-predict", action="store_true",
                   help="leave out the 64x64 video-prediction row (the shipped smmnist-64 model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    add_precision_args(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("app", help="interactive page in the browser (Gradio, an optional extra: pip install "
                                   "'videodiff[app]'): text to video, extension, super-resolution")
    p.add_argument("--model", default=None,
                   help="shipped model name or run directory (default moving-mnist-fast-w, the 4-step distilled "
                        "student, its teacher on the extension and super-resolution tabs; --model moving-mnist: the "
                        "teacher)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="also ask Gradio for a public share link (off by default)")
    p.add_argument("--steps", type=int, default=None,
                   help="sampling steps the page starts with (default 20; a distilled student: its own steps)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="folder for the videos (default: a new temporary folder)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="requests sampled at once (default 1: sampling uses every core)")
    p.add_argument("--max-queue", type=int, default=None,
                   help="requests that may wait in line; past that a request is told at once that the queue is full "
                        "and to try again (default 16)")
    p.set_defaults(func=_cmd_app)

    p = sub.add_parser("export", help="write a run's EMA weights + config as a named model (for shipping)")
    p.add_argument("--checkpoint", required=True, type=Path, help="run directory or checkpoints/step_XXXXXX")
    p.add_argument("--name", required=True, help="model name, e.g. moving-mnist")
    p.add_argument("--out", type=Path, default=MODELS_DIR, help=f"folder (default: the package's {MODELS_DIR.name})")
    p.add_argument("--meta", type=Path, default=None, help="JSON object merged into NAME.json (command, quality)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model NAME in --out (a model shipped in the package is never replaced)")
    p.add_argument("--adapter", action="store_true",
                   help="a LoRA run: write its adapter alone (small; load with VideoPipeline.from_pretrained(base, "
                        "adapter=...)); without it a LoRA run is written merged into full weights")
    p.set_defaults(func=_cmd_export)
