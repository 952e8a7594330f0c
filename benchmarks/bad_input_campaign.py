"""The bad-input campaign of issue 29: every line of ``benchmarks/bad_inputs.txt`` (a ``videodiff`` command line;
file names refer to fixtures this script writes: a 1-step tiny run ``run``, odd ``.pt`` tensors, a plain file
``afile``, a binary and a broken YAML, an empty mp4 and a junk gif) is run as its own process, from a fresh
temporary folder, with a time limit, and classified:

- ``clear``: exit 2 and the last stderr line is ``videodiff: error: ...`` (argparse's ``videodiff CMD: error:`` too);
- ``handled``: exit 0 with a ``note:`` saying what was done;
- ``silent``: exit 0 without a note (to be read: an input that should have been refused, or fine);
- ``traceback``: a Python traceback; ``unbounded``: still running at the time limit.

    python benchmarks/bad_input_campaign.py [--json benchmarks/results/bad_inputs.json] [--timeout 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
TINY = ["data.image_size=16", "data.num_frames=4", "data.num_digits=1", "model.base_channels=16",
        "model.channel_mults=[1, 2]", "model.num_res_blocks=1", "model.attn_resolutions=[8]", "model.head_dim=16",
        "train.batch_size=2", "train.steps=1", "sample.steps=2", "sample.num=2"]


def fixtures(d: Path) -> None:
    import torch

    torch.save(torch.zeros(0, 1, 4, 16, 16), d / "empty.pt")
    torch.save(torch.randint(0, 255, (1, 1, 4, 16, 16)), d / "u8.pt")
    torch.save(torch.ones(1, 1, 4, 16, 16, dtype=torch.bool), d / "bool.pt")
    torch.save(torch.rand(1, 1, 4, 16, 16) * 255, d / "f255.pt")
    torch.save(torch.rand(1, 1, 4, 16, 16) * 2 - 1, d / "ok.pt")
    torch.save(torch.full((1, 1, 4, 16, 16), float("nan")), d / "nan.pt")
    torch.save({"a": 1}, d / "dict.pt")
    torch.save(torch.rand(2, 1, 8, 32, 32) * 2 - 1, d / "f8.pt")  # two sets of two videos, 8 and 4 frames
    torch.save(torch.rand(2, 1, 4, 32, 32) * 2 - 1, d / "f4.pt")
    (d / "afile").write_text("x")
    (d / "bin.yaml").write_bytes(bytes(range(256)) * 4)
    (d / "bad.yaml").write_text("train: [1,\n")
    (d / "zero.mp4").write_bytes(b"")
    (d / "junk.gif").write_bytes(b"GIF89a junk")
    args = [sys.executable, "-m", "videodiff", "train", "--out", str(d / "run"), "--no-progress"]
    for o in TINY:
        args += ["--set", o]
    subprocess.run(args, check=True, capture_output=True, cwd=d)


def classify(rc: int | None, err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip() and "it/s]" not in x]
    if rc is None:
        return "unbounded"
    if "Traceback" in err:
        return "traceback"
    if rc == 2 and lines and lines[-1].startswith("videodiff") and ": error: " in lines[-1]:
        return "clear"
    if rc == 0:
        return "handled" if any(x.startswith("note:") for x in lines) else "silent"
    return "unclear"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=Path, default=HERE / "bad_inputs.txt")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    cases = [line for line in a.cases.read_text().splitlines() if line.strip() and not line.startswith("#")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="videodiff-bad-inputs-") as tmp:
        base = Path(tmp) / "fixtures"
        base.mkdir()
        fixtures(base)
        for i, line in enumerate(cases):
            work = Path(tmp) / f"case{i:03d}"
            subprocess.run(["cp", "-r", str(base), str(work)], check=True)
            try:
                res = subprocess.run([sys.executable, "-m", "videodiff", *shlex.split(line)], capture_output=True,
                                     text=True, cwd=work, env=env, timeout=a.timeout)
                rc, err = res.returncode, res.stderr
            except subprocess.TimeoutExpired:
                rc, err = None, ""
            last = next((x for x in reversed(err.splitlines()) if x.strip() and "it/s]" not in x), "")
            rows.append({"command": line, "exit": rc, "outcome": classify(rc, err), "last_line": last[:300]})
            print(f"{rows[-1]['outcome']:9s} {line} :: {last[:160]}", flush=True)
            subprocess.run(["rm", "-rf", str(work)])
    counts = Counter(r["outcome"] for r in rows)
    print(json.dumps({"inputs": len(rows), **counts}))
    if a.json is not None:
        a.json.write_text(json.dumps({"counts": counts, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
