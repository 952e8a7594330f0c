"""Command line for evaluation: ``videodiff eval`` and ``videodiff train-classifier``. Thin: parse, call
:mod:`videodiff.evaluation` / :mod:`videodiff.evaluation.classifier_train`, report.
"""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from .options import add_precision_args, add_sampler_args, check_counts, check_output_path
from .protocol import add_protocol_args, run_protocol_command

__all__ = ["add_subcommands"]


def _command(args) -> str:
    """The command line as typed (``videodiff ...``), recorded with results."""
    return "videodiff " + shlex.join(getattr(args, "argv", None) or sys.argv[1:])


def _cmd_train_classifier(args) -> int:
    from ..evaluation.classifier_train import load_classifier_config, train_classifier

    cfg = load_classifier_config(args.preset, args.config, args.overrides)
    command = _command(args)
    rec = train_classifier(cfg, args.out, command=command, progress=not args.no_progress)
    acc = rec["test_accuracy"]
    print(f"\ntrained classifier {cfg.name} for {rec['steps']} steps in {rec['train_time_s'] / 60:.1f} min")
    print(f"  held-out test ({acc['num_clips']} clips): digit sets {acc['digit_set_accuracy']:.3f}, "
          f"digit recall {acc['digit_recall']:.3f}, directions {acc['direction_accuracy']:.3f}")
    print(f"  weights : {Path(args.out) / 'classifier.safetensors'}  (+ classifier.json)")
    return 0


def _parse_metrics(text: str) -> list[str]:
    from ..metrics.registry import check_metric_names

    return check_metric_names([m.strip() for m in text.split(",") if m.strip()], flag="--metrics", given=text)


_STREAM_FLAGS = {"resize": None, "clip_sampling": "first", "clips_per_video": None, "frameskip": 1,
                 "short_videos": "skip", "chunk": 32}


def _clip_spec(args, metrics):
    """The clip spec of a streamed evaluation, or None for sets loaded whole (--no-stream, paired metrics,
    --checkpoint); flags that only streaming honours are refused there rather than ignored."""
    from ..evaluation.clip_source import ClipSpec
    from ..metrics.registry import paired_names

    given = [f"--{k.replace('_', '-')}" for k, d in _STREAM_FLAGS.items() if getattr(args, k) != d]
    why = ("--no-stream" if args.no_stream else "--checkpoint" if args.checkpoint is not None else
           "paired metrics (psnr, ssim)" if paired_names(metrics) else None)
    if why is not None:
        if given:
            raise ValueError(f"{', '.join(given)} apply to streamed evaluation of --real/--fake, which {why} "
                             f"turns off (sets are loaded whole there)")
        return None
    return ClipSpec(frames=args.frames, frameskip=args.frameskip, resize=args.resize, sampling=args.clip_sampling,
                    clips_per_video=args.clips_per_video, num=args.num, seed=args.seed,
                    short_videos=args.short_videos, chunk=args.chunk, bad_files=args.bad_files)


def _cmd_eval(args) -> int:
    from ..evaluation import evaluate_checkpoint, evaluate_paths, format_results, write_results

    if args.protocol is not None:
        check_output_path(args.json, "--json")
        return run_protocol_command(args, _command(args))
    metrics = _parse_metrics(args.metrics)
    # Everything that can be checked is checked before videos are read or sampled
    check_counts(args, frames=1, num=1, batch_size=1, steps=1, grid_rows=1, grid_cols=1, resize=1, clips_per_video=1,
                 frameskip=1, chunk=1)
    check_output_path(args.json, "--json")
    check_output_path(args.save_samples, "--save-samples")
    for flag, path in (("--real", args.real), ("--fake", args.fake), ("--checkpoint", args.checkpoint)):
        if path is not None and not path.exists():
            raise FileNotFoundError(f"{flag} {path}: no such file or folder")
    if args.inception is not None and not args.inception.is_file():
        raise FileNotFoundError(f"--inception {args.inception}: no such file")
    from ..models import pick_device

    pick_device(args.device)
    common = dict(metrics=metrics, frames=args.frames, num=args.num, inception=args.inception,
                  classifier=args.classifier, fvd_repeat_frames=args.fvd_repeat_frames, batch_size=args.batch_size,
                  cache_dir=args.cache_dir, device=args.device, progress=not args.no_progress)
    grid = dict(grid_rows=args.grid_rows, grid_cols=args.grid_cols)
    spec = _clip_spec(args, metrics)
    t0 = time.perf_counter()
    if args.checkpoint is not None:
        if args.fake is not None:
            raise ValueError("--checkpoint samples the fake set itself: give --fake or --checkpoint, not both")
        results = evaluate_checkpoint(args.checkpoint, real=args.real, steps=args.steps, sampler=args.sampler,
                                      seed=args.seed, save_samples=args.save_samples, precision=args.precision,
                                      compile=args.compile, bad_files=args.bad_files, **grid, **common)
    else:
        if args.real is None or args.fake is None:
            raise ValueError("give --real PATH and --fake PATH (or --checkpoint CKPT to sample the fake set)")
        results = evaluate_paths(args.real, args.fake, clip_spec=spec, bad_files=args.bad_files, **grid, **common)
    results["command"] = _command(args)
    results["wall_time_s"] = round(time.perf_counter() - t0, 1)
    print(format_results(results))
    if args.json is not None:
        write_results(results, args.json)
        print(f"results and protocol records -> {args.json}")
    return 0


def add_subcommands(sub) -> None:
    """Register ``eval`` and ``train-classifier`` on ``videodiff``'s subparsers."""
    from ..metrics.registry import metric_names

    p = sub.add_parser("eval", help="FVD / FID / IS / classifier-FVD / classifier-IS of videos or of a checkpoint; "
                                          "PSNR / SSIM of paired videos",
                       description="Compare a fake video set with a real one. PATH: a folder of videos, one video "
                                   "file holding a grid of videos (as written by `videodiff sample`), a .pt tensor "
                                   "(`videodiff sample --save-tensor`), or a sampling/run directory. psnr and ssim "
                                   "pair the i-th fake video with the i-th real one (ground truth, e.g. of "
                                   "super-resolution or interpolation); they need --real and --fake.")
    p.add_argument("--real", type=Path, help="real videos (default with --checkpoint: the test split of its data: held-out clips for "
                        "Moving MNIST, other clips of the same files for a video folder; pass --real for held-out "
                        "videos there)")
    p.add_argument("--fake", type=Path, help="generated videos")
    p.add_argument("--checkpoint", type=Path, help="sample the fake set from this run directory or checkpoint")
    p.add_argument("--metrics", default="fvd,cfvd",
                   help=f"comma-separated, from {','.join(metric_names())} (default fvd,cfvd)")
    p.add_argument("--frames", type=int, default=None, help="use the first N frames of every video (default: all)")
    p.add_argument("--num", "--num-clips", dest="num", type=int, default=2048,
                   help="clips (videos) per set (default 2048; fewer if fewer exist)")
    g = p.add_argument_group("streamed evaluation", "A folder of video files is decoded clip by clip: only the "
                             "frames a clip needs, resized on decode, at most --chunk clips in memory, only "
                             "features kept. All of it is recorded in the results' protocol.")
    g.add_argument("--resize", type=int, default=None, metavar="S",
                   help="resize the short side of every frame to S and center-crop SxS (default: native size, "
                        "which needs one resolution per set; required for folders of mixed sizes)")
    g.add_argument("--clip-sampling", choices=["first", "random", "strided"], default="first",
                   help="clip starts in each file: first (0, then consecutive clips), random (uniform, --seed), "
                        "strided (evenly spaced over the file) (default first)")
    g.add_argument("--clips-per-video", type=int, default=None, metavar="K",
                   help="clips per file (default 1; with strided: as many as fit without overlapping)")
    g.add_argument("--frameskip", type=int, default=1, metavar="K",
                   help="take every K-th frame of the source (default 1)")
    g.add_argument("--short-videos", choices=["skip", "error"], default="skip",
                   help="files shorter than a clip: skip them and record them (default), or stop with an error")
    g.add_argument("--chunk", type=int, default=32, metavar="N", help="clips decoded and held at once (default 32)")
    p.add_argument("--bad-files", choices=["skip", "error"], default="skip",
                   help="files of a --real/--fake folder that cannot be read (corrupt, truncated, not a video): "
                        "skip them, with their names and reasons in the log and the results (default), or stop "
                        "with an error; a single file that cannot be read is always an error")
    g.add_argument("--no-stream", action="store_true",
                   help="load whole sets into memory first (the behaviour before streaming; paired metrics and "
                        "--checkpoint always do)")
    p.add_argument("--inception", type=Path, default=None,
                   help="InceptionV3 weights (pt_inception-2015-12-05 .pth); needed by fid and is")
    p.add_argument("--classifier", default=None,
                   help="Moving MNIST classifier for cfvd/cis: a shipped name or a train-classifier folder "
                        "(default: the shipped one matching the videos' size)")
    p.add_argument("--fvd-repeat-frames", action="store_true",
                   help="repeat each frame so that videos shorter than I3D's 9 frames can be scored (not "
                        "comparable with published FVD; recorded in the protocol)")
    p.add_argument("--grid-rows", type=int, default=None, help="rows of a grid video (default: inferred)")
    p.add_argument("--grid-cols", type=int, default=None, help="columns of a grid video (default: inferred)")
    p.add_argument("--steps", type=int, default=None, help="with --checkpoint: sampling steps (default: the run's)")
    add_sampler_args(p, "with --checkpoint", options=False)
    p.add_argument("--seed", type=int, default=0, help="with --checkpoint: sampling seed; with --clip-sampling "
                   "random: the clip starts' seed")
    p.add_argument("--save-samples", type=Path, default=None, help="with --checkpoint: save the samples (.pt)")
    add_precision_args(p)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--cache-dir", type=Path, default=None, help="cache I3D features here (.npz keyed by content)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, default=None, help="write every result with its protocol record here")
    p.add_argument("--no-progress", action="store_true")
    add_protocol_args(p)
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("train-classifier", help="train the Moving MNIST evaluation classifier (cfvd, cis, digit accuracy)")
    p.add_argument("--preset", default="moving-mnist-32", help="moving-mnist-32 (8x32x32, 1 digit) or "
                                                                 "moving-mnist-64 (16x64x64, 2 digits)")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML with data/net/train groups (an experiment YAML contributes its data group)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override an option, e.g. --set train.steps=800 --set data.image_size=32")
    p.add_argument("--out", required=True, type=Path, help="output folder (classifier.safetensors + .json)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_train_classifier)
