"""kill -9 during training, then resume: the interrupted run must end with the uninterrupted run's losses and
weights, bit for bit (issue 15).

    python benchmarks/kill_resume.py --kills 10 --out /tmp/kill_resume

One uninterrupted run of a tiny Moving MNIST config (``--steps`` steps, a checkpoint every 2), then ``--kills``
trials, each in a fresh run directory: the same command, killed with SIGKILL after a random delay (seeded, uniform
between 1 s and the uninterrupted run's wall time), then started once more to run to the end, resuming from the
newest complete checkpoint. Kills land anywhere: in start-up, in a training step, inside a checkpoint write (seen
as a ``step_XXXXXX.tmp`` folder left behind). Reports per trial whether the losses (metrics.jsonl) and the final
EMA weights equal the uninterrupted run's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

TINY = ["data.image_size=16", "data.num_frames=4", "data.num_digits=1", "data.train_clips=64",
        "model.base_channels=16", "model.channel_mults=[1, 2]", "model.num_res_blocks=1",
        "model.attn_resolutions=[8]", "model.head_dim=16", "model.dropout=0.1", "train.batch_size=2",
        "train.warmup_steps=5", "train.log_every=1", "train.ckpt_every=2", "train.keep_checkpoints=2",
        "sample.steps=2", "sample.num=2", "train.device=cpu"]


def _cmd(out: Path, steps: int) -> list[str]:
    cmd = [sys.executable, "-m", "videodiff", "train", "--out", str(out), "--no-progress"]
    for o in TINY + [f"train.steps={steps}"]:
        cmd += ["--set", o]
    return cmd


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: r["loss"] for r in rows}  # a resumed run may re-log steps after its checkpoint: last wins


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=8, help="SIGKILLs to deliver before letting a start finish")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("/tmp/kill_resume"))
    a = p.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    subprocess.run(_cmd(a.out / "full", a.steps), check=True, env=env, capture_output=True)
    t_full = time.perf_counter() - t0  # start-up included: kills land in start-up, steps and checkpoint writes
    rng = random.Random(a.seed)
    from safetensors.torch import load_file

    def ema(run: Path) -> dict:
        return load_file(str(run / "checkpoints" / f"step_{a.steps:06d}" / "ema.safetensors"))

    ema_full, losses_full, trials = ema(a.out / "full"), _losses(a.out / "full"), []
    for trial in range(a.kills):
        run = a.out / f"killed{trial}"
        proc = subprocess.Popen(_cmd(run, a.steps), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(1.0, t_full)
        try:
            proc.wait(timeout=delay)
            killed = False  # it finished first
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed = True
        logged = max(_losses(run), default=0) if (run / "metrics.jsonl").exists() else 0
        tmp = [c.name for c in (run / "checkpoints").glob("*.tmp")] if (run / "checkpoints").exists() else []
        done = subprocess.run(_cmd(run, a.steps), env=env, capture_output=True, text=True)  # resume to the end
        if done.returncode != 0:
            print(f"trial {trial}: the resume failed (exit {done.returncode}):\n{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        other = ema(run)
        trials.append(dict(killed=killed, after_s=round(delay, 2), last_logged_step=logged, partial_writes=tmp,
                           losses_equal=_losses(run) == losses_full,
                           ema_equal=all(bool((ema_full[k] == other[k]).all()) for k in ema_full)))
        print(json.dumps(trials[-1]), file=sys.stderr, flush=True)
    res = dict(trials=len(trials), kills=sum(t["killed"] for t in trials), steps=a.steps,
               uninterrupted_wall_s=round(t_full, 1), all_losses_equal=all(t["losses_equal"] for t in trials),
               all_ema_equal=all(t["ema_equal"] for t in trials),
               killed_inside_a_checkpoint_write=sum(bool(t["partial_writes"]) for t in trials),
               wall_s=round(time.perf_counter() - t0, 1))
    print(json.dumps(res, indent=1))
    return 0 if res["all_losses_equal"] and res["all_ema_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
