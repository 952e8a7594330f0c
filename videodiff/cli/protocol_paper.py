"""``videodiff eval --protocol bair|kinetics600|ucf101`` (issue 28): the paper's benchmark protocols on the datasets
as distributed (:mod:`videodiff.evaluation.protocols_paper`). Called from :mod:`.protocol`, which parses the shared
flags, checks the counts and loads the model; this adds the data and C3D flags, checks them before anything is
loaded, predicts through ``VideoPipeline.predict`` with the SMMNIST protocols' settings (one seed per chunk of clips)
and runs :func:`videodiff.evaluation.protocol_paper_run.run_paper_protocol`.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..evaluation.protocols_paper import is_paper_protocol

__all__ = ["add_paper_protocol_args", "check_paper_protocol_args", "is_paper_protocol", "run_paper_protocol_command"]


def add_paper_protocol_args(g) -> None:
    g.add_argument("--data-root", type=Path, default=None, metavar="PATH",
                   help="with --protocol bair|kinetics600|ucf101: the dataset as distributed (bair: the folder "
                        "holding softmotion30_44k/; kinetics600: the .mp4 tree; ucf101: UCF-101/ + ucfTrainTestlist/)")
    g.add_argument("--annotations", type=Path, default=None, metavar="CSV",
                   help="with --protocol kinetics600: the annotation CSV (label,youtube_id,time_start,time_end,split) "
                        "or a folder of them")
    g.add_argument("--kinetics-split", default="test", metavar="NAME",
                   help="with --protocol kinetics600: the CSV split of the test clips (default test)")
    g.add_argument("--c3d-weights", type=Path, default=None, metavar="PATH",
                   help="with --protocol ucf101: tgan2's C3D weights (Chainer npz, conv3d_deepnetA_ucf.npz); never "
                        "downloaded; the IS/FID are comparable with the literature only with these weights")
    g.add_argument("--c3d-mean", type=Path, default=None, metavar="PATH",
                   help="with --protocol ucf101: tgan2's C3D mean clip (mean2.npz)")


def check_paper_protocol_args(args, protocol) -> None:
    """One-line errors, before the model or any data is loaded: a missing --data-root, --annotations or C3D file."""
    if not is_paper_protocol(protocol):
        for flag in ("data_root", "annotations", "c3d_weights", "c3d_mean"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')} does not apply to --protocol {protocol.name}")
        return
    name = protocol.name
    if args.data_root is None:
        raise ValueError(f"--protocol {name} needs --data-root PATH ({protocol.root_what})")
    if not args.data_root.is_dir():
        raise FileNotFoundError(f"--data-root {args.data_root}: no such folder ({protocol.root_what})")
    if protocol.dataset == "kinetics600":
        if args.annotations is None:
            raise ValueError(f"--protocol {name} needs --annotations CSV (label,youtube_id,time_start,time_end,split)")
        if not args.annotations.exists():
            raise FileNotFoundError(f"--annotations {args.annotations}: no such file or folder")
    elif args.annotations is not None:
        raise ValueError(f"--annotations applies to --protocol kinetics600 only, not {name}")
    if protocol.dataset == "ucf101":
        for flag, what in (("c3d_weights", "tgan2's C3D weights, conv3d_deepnetA_ucf.npz"),
                           ("c3d_mean", "tgan2's C3D mean clip, mean2.npz")):
            opt = "--" + flag.replace("_", "-")
            path = getattr(args, flag)
            if path is None:
                raise ValueError(f"--protocol {name} needs {opt} PATH ({what}; never downloaded)")
            if not path.is_file():
                raise FileNotFoundError(f"{opt} {path}: no such file ({what})")
    elif args.c3d_weights is not None or args.c3d_mean is not None:
        raise ValueError(f"--c3d-weights/--c3d-mean apply to --protocol ucf101 only, not {name}")


def run_paper_protocol_command(args, command: str, protocol, pipe, methods, over: dict) -> int:
    """Read the protocol's clips, predict (``pipe.predict`` with the SMMNIST protocols' settings ``over``, one seed
    per chunk of clips) or generate with ``pipe``, score, print the table, write the JSON."""
    import torch

    from ..evaluation.protocol_paper_run import chunk_seed, format_paper_protocol, run_paper_protocol
    from ..evaluation.protocols_paper import ProtocolClips

    cfg = pipe.config
    if cfg.data.image_size != protocol.image_size or cfg.data.channels != protocol.channels:
        raise ValueError(f"protocol {protocol.name} is {protocol.channels}-channel {protocol.image_size}x"
                         f"{protocol.image_size}; the model makes {cfg.data.channels}-channel "
                         f"{cfg.data.image_size}x{cfg.data.image_size} videos")
    t0 = time.perf_counter()
    clips = ProtocolClips(protocol, args.data_root, args.videos, annotations=args.annotations,
                          kinetics_split=args.kinetics_split)
    print(f"{protocol.name}: {len(clips)} real clips of the {protocol.split} split ({len(clips.dataset)} available)")
    k = protocol.samples if args.samples is None else args.samples
    c3d = None
    if protocol.dataset == "ucf101":
        from ..metrics.c3d import load_c3d

        c3d = load_c3d(str(args.c3d_weights), str(args.c3d_mean))
    sampling = {key: v for key, v in over.items() if key in ("steps", "sampler")}
    progress = not args.no_progress

    def predict(given: torch.Tensor, method: str, start: int) -> torch.Tensor:  # the SMMNIST protocols' call
        return pipe.predict(given, given=protocol.given, frames=protocol.frames, samples=k, method=method,
                            seed=chunk_seed(args.seed, start), batch_size=args.batch_size, progress=progress, **over)

    def generate(num: int, start: int) -> torch.Tensor:
        return pipe.generate(num=num, num_frames=protocol.frames, seed=chunk_seed(args.seed, start),
                             batch_size=args.batch_size, progress=progress, **sampling)

    kept: dict | None = {} if args.save_predictions is not None else None
    results = run_paper_protocol(protocol, clips, predict=predict, generate=generate, methods=methods, samples=k,
                                 fvd=not args.no_fvd, c3d=c3d, cache_dir=args.cache_dir, batch_size=args.batch_size,
                                 progress=progress, keep_predictions=kept)
    results["model"] = {"name": args.model, "checkpoint": str(args.checkpoint) if args.checkpoint else None,
                        "step": pipe.model.step, "frames": cfg.data.num_frames, "precision": pipe.precision,
                        "sampling": {"seed": args.seed, **(over if protocol.conditional else sampling)}}
    return finish_protocol(args, results, command, t0, kept or {}, format_paper_protocol)


def finish_protocol(args, results: dict, command: str, t0: float, kept: dict, fmt) -> int:
    """Record the command and wall time, print ``fmt(results)``, save the kept predictions (``--save-predictions``)
    and the JSON (``--json``)."""
    import torch

    from ..evaluation import write_results

    results["command"] = command
    results["wall_time_s"] = round(time.perf_counter() - t0, 1)
    print(fmt(results))
    if args.save_predictions is not None and kept:
        args.save_predictions.parent.mkdir(parents=True, exist_ok=True)
        torch.save(kept, args.save_predictions)
    if args.json is not None:
        write_results(results, args.json)
        print(f"results -> {args.json}")
    return 0
