"""The plans of the paper's recipes (configs/paper/*.yaml): parameters, FLOPs per step, memory per GPU, GPU-hours.

    python benchmarks/recipe_plans.py [--gpus 8] [--mfu 0.35] [--markdown]

The same numbers as ``videodiff train --config configs/paper/X.yaml --dry-run`` (without its data check), for every
recipe; ``--markdown`` prints the table of docs/recipes.md. Shapes only (the meta device): seconds on a CPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from videodiff.bench.plan import PEAK_BF16, format_plan, plan_recipe
from videodiff.config import load_config

RECIPES = ["ucf101", "bair", "kinetics600", "text64"]
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "paper"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", type=int, default=8)
    p.add_argument("--mfu", type=float, default=0.35)
    p.add_argument("--markdown", action="store_true", help="one table row per recipe")
    a = p.parse_args()
    plans = [plan_recipe(load_config(CONFIGS / f"{r}.yaml"), gpus=a.gpus, mfu=a.mfu) for r in RECIPES]
    if not a.markdown:
        print("\n\n".join(format_plan(pl) for pl in plans))
        return
    gpus = " | ".join(f"{g} GPU-h (wall h)" for g in PEAK_BF16)
    print(f"| recipe | params | TFLOP/step | global batch x steps | memory/GPU (GB) | {gpus} |")
    print("|---|---|---|---|---|" + "---|" * len(PEAK_BF16))
    for r, pl in zip(RECIPES, plans):
        ck = ", ckpt" if pl["activation_checkpointing"] else ""
        hours = " | ".join(f"{pl['gpu_hours'][g]:,.0f} ({pl['wall_hours'][g]:,.1f})" for g in PEAK_BF16)
        print(f"| `{r}` | {pl['params'] / 1e6:.0f}M | {pl['flops_per_step'] / 1e12:,.0f} | {pl['global_batch']} x "
              f"{pl['steps']:,} | {pl['memory_bytes_per_gpu'] / 1e9:.0f} (micro-batch {pl['micro_batch']:g}{ck}) | "
              f"{hours} |")


if __name__ == "__main__":
    main()
