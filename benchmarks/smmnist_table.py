"""The SMMNIST section of docs/results.md from `videodiff eval --protocol ... --json` results: a markdown table of
ours beside the published rows, and a strip of predictions (truth, then samples of each method) per protocol.

    python benchmarks/smmnist_table.py --results benchmarks/results/smmnist/*.json --out benchmarks/results/smmnist

Writes OUT/table.md and, for each results file saved with --save-predictions (the .pt beside it, same stem),
OUT/<stem>_strip.png (4 test videos: ground truth, then the first sample of each method; given frames outlined).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from videodiff.conditional import frame_strip
from videodiff.evaluation.protocol_run import format_cell
from videodiff.evaluation.protocols import get_protocol, load_split


def _cell(entry: dict, key: str, digits: int) -> str:
    return format_cell(entry, key, digits, missing="")


def table(results: list[dict]) -> str:
    lines = ["| protocol | method | videos x samples | SSIM best-of-K [95% CI] | PSNR best-of-K [95% CI] | "
             "FVD mean-of-K (± sd over k) | predict time |", "|---|---|---|---|---|---|---|"]
    for res in results:
        p = res["protocol"]
        for e in res["results"]:
            fvd = _cell(e, "fvd_mean_of_k", 1)
            if e.get("fvd_std_of_k") is not None:
                fvd += f" ± {e['fvd_std_of_k']:.1f}"
            t = f"{e['predict_wall_s'] / 60:.1f} min" if "predict_wall_s" in e else ""
            size = f"{p['videos']} x {e['samples']}" if "samples" in e else f"{p['videos']} real"
            lines.append(f"| {p['name']} | {e['method']} | {size} | {_cell(e, 'ssim_best_of_k', 3)} | "
                         f"{_cell(e, 'psnr_best_of_k', 2)} | {fvd} | {t} |")
        for r in res["published"]:
            lines.append(f"| {p['name']} | {r['method']} (published) | 256 x 10 | {r['ssim']:.3f} | {r['psnr']:.2f} | "
                         f"{r['fvd']:.2f} | {r['compute']} |")
    return "\n".join(lines) + "\n"


def strip(res: dict, preds: dict, rows: int = 4) -> np.ndarray:
    protocol = get_protocol(res["protocol"]["name"])
    rows = min([rows] + [len(p) for p in preds.values()])
    truth = load_split(protocol.split, rows)[:, :, : protocol.frames]
    known = [i < protocol.given for i in range(protocol.frames)]
    parts = []
    for i in range(rows):
        videos = [truth[i : i + 1]] + [p[i : i + 1, 0] for p in preds.values()]
        parts.append(frame_strip(torch.cat(videos), known, pad=1))
        parts.append(np.full((4, parts[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(parts[:-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", nargs="+", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    results = [json.loads(p.read_text()) for p in a.results]
    (a.out / "table.md").write_text(table(results))
    print(table(results))
    for path, res in zip(a.results, results):
        pt = path.with_suffix(".pt")
        if pt.is_file():
            img = strip(res, torch.load(pt))
            Image.fromarray(img).save(a.out / f"{path.stem}_strip.png")
            print(f"strip -> {a.out / (path.stem + '_strip.png')} (rows per video: truth, then "
                  f"{', '.join(torch.load(pt))})")


if __name__ == "__main__":
    main()
