"""Training records a person can look at: a JSON-lines metrics log and a loss-curve plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["MetricsLog", "plot_loss"]


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, entries after the resumed step are dropped, and so is a partial
    last line (a write interrupted by a crash), with a warning naming the file."""

    def __init__(self, path: str | Path, resume_step: int = 0):
        self.path = Path(path)
        rows = self.read(self.path, warn=True) if resume_step > 0 else []
        kept = [r for r in rows if r.get("step", 0) <= resume_step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    @staticmethod
    def read(path: str | Path, warn: bool = False) -> list[dict]:
        """The rows of ``path``. A last line that is not JSON (partial) is dropped (reported on stderr if
        ``warn``); any other bad line is a ValueError naming the file and line."""
        path = Path(path)
        if not path.is_file():
            return []
        lines = [(i, line) for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1) if line.strip()]
        rows = []
        for k, (i, line) in enumerate(lines):
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                if k == len(lines) - 1:
                    if warn:
                        print(f"videodiff: warning: {path}: dropped its partial last line {i} "
                              f"(an interrupted write)", file=sys.stderr)
                    break
                raise ValueError(f"{path}: line {i} is not a JSON object ({e})") from e
            rows.append(row)
        return rows

    def append(self, row: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def plot_loss(metrics_path: str | Path, out_path: str | Path) -> Path | None:
    """Plot the training loss (and its running mean) against steps into a PNG; None if there is nothing yet."""
    rows = [r for r in MetricsLog.read(metrics_path) if "loss" in r]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    loss = [r["loss"] for r in rows]
    k = max(1, len(loss) // 20)
    smooth = [sum(loss[max(0, i - k + 1) : i + 1]) / len(loss[max(0, i - k + 1) : i + 1]) for i in range(len(loss))]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, loss, alpha=0.35, label="loss (eq. 2, per log interval)")
    ax.plot(steps, smooth, label=f"running mean ({k})")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_path = Path(out_path)
    tmp = out_path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out_path)
    return out_path
