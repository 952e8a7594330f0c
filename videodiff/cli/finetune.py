"""``videodiff finetune``: a shipped or trained model fine-tuned on a folder of videos or a caption manifest, fully
or with LoRA adapters. Thin: parse, call :func:`videodiff.finetune.finetune_config` and the trainer, report."""

from __future__ import annotations

import time
from pathlib import Path

from .options import check_counts

__all__ = ["add_subcommands"]


def _cmd_finetune(args) -> int:
    from ..finetune import finetune_config
    from ..train import train
    from .train import report

    check_counts(args, steps=1, lora_rank=0, batch_size=1)
    cfg = finetune_config(args.model, args.data, lora_rank=args.lora_rank, lora_alpha=args.lora_alpha,
                          steps=args.steps, lr=args.lr, batch_size=args.batch_size, overrides=args.overrides)
    kind = f"LoRA rank {cfg.lora.rank}" if cfg.lora.rank else "full"
    print(f"fine-tuning {args.model} ({kind}) on {args.data} into {args.out}")
    t0 = time.perf_counter()
    return report(cfg, train(cfg, args.out, progress=not args.no_progress), t0)


def add_subcommands(sub) -> None:
    """Register ``finetune``."""
    p = sub.add_parser("finetune", help="fine-tune a shipped or trained model on your videos (full or LoRA); "
                                        "rerun the same command to resume")
    p.add_argument("--model", required=True, metavar="NAME|RUN",
                   help="the model to start from: a shipped name, a save_pretrained folder, a run or checkpoint")
    p.add_argument("--data", required=True, type=Path, metavar="FOLDER|MANIFEST",
                   help="a folder of videos (captions: same-name .txt files; none: the null condition) or a "
                        "caption manifest (.csv/.tsv/.jsonl: video,caption[,start,end])")
    p.add_argument("--out", required=True, type=Path, metavar="RUN", help="run directory of the fine-tune")
    p.add_argument("--steps", type=int, default=500, help="training steps (default 500)")
    p.add_argument("--lora-rank", type=int, default=0,
                   help="> 0: freeze the model and train LoRA adapters of this rank (default 0: full fine-tuning)")
    p.add_argument("--lora-alpha", type=float, default=0.0, help="adapter scale alpha/rank (default: alpha = rank)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-4 full, 1e-3 LoRA)")
    p.add_argument("--batch-size", type=int, default=None, help="clips per step (default: the model's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config option of the fine-tune, e.g. --set train.ckpt_every=100")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_finetune)
