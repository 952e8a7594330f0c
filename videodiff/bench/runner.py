"""The speed benchmark: our U-Net and the port's, side by side with the machine's matmul FLOP/s, in one run.

Each (implementation, model, levers) row runs in a fresh subprocess (:mod:`videodiff.bench.measure`), so its peak
memory is its own; each measures the matmul rate right before its own timings, and the parent measures it before
and after all rows. Fractions of peak use the best matmul rate seen anywhere in the run (the conservative choice on a
noisy shared machine). ``videodiff bench`` and ``benchmarks/speed.py`` both call :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

import torch

from .flops import has_fast_bf16, matmul_flops_per_s
from .options import MODELS, add_arguments
from .port import PORT_PACKAGE, port_available, port_notes

__all__ = ["add_arguments", "run", "format_table", "main"]

def _precisions(a: argparse.Namespace) -> list[str]:
    if getattr(a, "amp", None):  # the old --amp none|bf16
        return ["bf16" if a.amp == "bf16" else "fp32"]
    return list(dict.fromkeys(a.precision))


def _specs(a: argparse.Namespace, port_ok: bool) -> list[dict]:
    base = dict(batch=a.batch, repeats=a.repeats, warmup=a.warmup, device=a.device, threads=a.threads)
    specs = []
    for m in a.models:
        port = a.compare_port and port_ok and "port" in MODELS[m]
        for prec in _precisions(a):
            ours = dict(base, impl="ours", model=m, precision=prec, channels_last=True if a.channels_last else None)
            specs.append(ours)
            if port:
                specs.append(dict(base, impl="port", model=m, precision=prec))
            if a.compile:
                specs.append(dict(ours, compile=True))
                if port:
                    specs.append(dict(base, impl="port", model=m, precision=prec, compile=True))
            if a.checkpointing:
                specs.append(dict(ours, checkpointing=True, sample=False))
            if a.levers:
                specs.append(dict(ours, channels_last="flip"))
    return specs


def _child(spec: dict) -> dict:
    cmd = [sys.executable, "-m", "videodiff.bench.measure", json.dumps(spec)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        return dict(spec, error=f"exit {res.returncode}: {tail[0]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _median_row(rows: list[dict]) -> dict:
    """Of several rounds of the same spec, the row whose train (else sample) time is the median; all times kept."""
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return rows[0]
    key = "train_s" if "train_s" in ok[0] else "sample_s"
    row = dict(sorted(ok, key=lambda r: r[key])[(len(ok) - 1) // 2])
    row["rounds"] = [{k: r.get(k) for k in ("train_s", "sample_s", "matmul_fp32_gflops")} for r in ok]
    return row


def run(a: argparse.Namespace, log=print) -> dict:
    """Measure every row the arguments ask for; returns the JSON-able results (also written to ``a.json``)."""
    device = torch.device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    port_ok, port_info = port_available() if a.compare_port else (False, "not requested")
    if a.compare_port and not port_ok:
        log(f"skipping the port comparison: {port_info}")
    t0 = time.perf_counter()
    peaks = [matmul_flops_per_s(device)]
    peaks_bf16 = [matmul_flops_per_s(device, torch.bfloat16)] if has_fast_bf16(device) else []
    specs = _specs(a, port_ok)
    results: list[list[dict]] = [[] for _ in specs]
    for r in range(max(a.rounds, 1)):
        for i, spec in enumerate(specs):
            log(f"[{time.perf_counter() - t0:6.0f} s] round {r + 1}: {_label(spec)} {spec['model']}")
            results[i].append(_child(spec))
            log("    " + _brief(results[i][-1]))
            if a.json:  # partial results, in case the run is cut short
                a.json.parent.mkdir(parents=True, exist_ok=True)
                a.json.with_suffix(".partial.json").write_text(json.dumps([rs for rs in results if rs], indent=1))
    peaks.append(matmul_flops_per_s(device))
    if peaks_bf16:
        peaks_bf16.append(matmul_flops_per_s(device, torch.bfloat16))
    rows = [_median_row(rs) for rs in results]
    peaks += [r["matmul_fp32_gflops"] * 1e9 for rs in results for r in rs if "matmul_fp32_gflops" in r]
    peaks_bf16 += [r["matmul_bf16_gflops"] * 1e9 for rs in results for r in rs if r.get("matmul_bf16_gflops")]
    peak, peak_bf16 = max(peaks), (max(peaks_bf16) if peaks_bf16 else None)
    for r in rows:
        p = peak_bf16 if (r.get("precision") == "bf16" and peak_bf16) else peak
        for phase in ("train", "sample"):
            if f"{phase}_gflops" in r:
                r[f"{phase}_frac_of_peak"] = r[f"{phase}_gflops"] * 1e9 / p
    out = dict(
        machine=dict(processor=platform.processor() or platform.machine(), device=str(device),
                     threads=a.threads or torch.get_num_threads(), torch=torch.__version__,
                     cuda=torch.cuda.get_device_name(device) if device.type == "cuda" else None),
        matmul_fp32_gflops=peak / 1e9, matmul_fp32_gflops_all=[x / 1e9 for x in peaks],
        matmul_bf16_gflops=peak_bf16 / 1e9 if peak_bf16 else None,
        port=dict(package=PORT_PACKAGE, available=port_ok, version_or_reason=port_info,
                  notes=port_notes() if port_ok else None),
        command=("videodiff " + " ".join(a.argv)) if getattr(a, "argv", None) else " ".join(sys.argv), wall_s=time.perf_counter() - t0, results=rows)
    out["comparison"] = _compare(rows)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1))
        a.json.with_suffix(".partial.json").unlink(missing_ok=True)
    return out


def _brief(r: dict) -> str:
    if "error" in r:
        return f"failed: {r['error']}"
    parts = [f"{ph} {r[f'{ph}_s']:.3g} s/step ({100 * r[f'{ph}_frac_of_own_matmul']:.0f}% of own matmul)"
             for ph in ("train", "sample") if f"{ph}_s" in r]
    if r.get("compile"):
        parts.append(f"first calls {r.get('sample_first_call_s', 0):.0f} s + {r.get('train_first_call_s', 0):.0f} s")
    return "; ".join(parts + [f"matmul {r['matmul_fp32_gflops']:.0f} GFLOP/s"])


def _label(r: dict) -> str:
    levers = [k.replace("_", "-") for k in ("compile", "channels_last", "checkpointing") if r.get(k)]
    return f"{r['impl']} {r.get('precision', 'fp32')}" + (f" ({', '.join(levers)})" if levers else "")


def _compare(rows: list[dict]) -> list[dict]:
    """Per model and precision: ours against the port (eager and compiled, videos/s ratios), ours against our fp32
    eager row (the speed-up of each lever), and the memory gradient checkpointing saves."""
    out = []
    ok = [r for r in rows if "error" not in r]
    for m in dict.fromkeys(r["model"] for r in rows):
        base = next((r for r in ok if r["model"] == m and r["impl"] == "ours" and r.get("precision") == "fp32"
                     and not r.get("compile") and not r.get("checkpointing")), None)
        for prec in dict.fromkeys(r.get("precision") for r in ok if r["model"] == m):
            mine = [r for r in ok if r["model"] == m and r.get("precision") == prec]
            c = dict(model=m, precision=prec)
            for tag, comp in (("", False), ("compiled_", True)):
                ours = next((r for r in mine if r["impl"] == "ours" and bool(r.get("compile")) == comp
                             and not r.get("checkpointing")), None)
                port = next((r for r in mine if r["impl"] == "port" and bool(r.get("compile")) == comp), None)
                for ph in ("train", "sample"):
                    key = f"{ph}_videos_per_s"
                    if ours and port and key in ours and key in port:
                        c[f"{tag}{ph}_speedup_vs_port"] = ours[key] / port[key]
                    if ours and base and ours is not base and key in ours and key in base:
                        c[f"{tag}{ph}_speedup_vs_fp32_eager"] = ours[key] / base[key]
            ours = next((r for r in mine if r["impl"] == "ours" and not r.get("compile")
                         and not r.get("checkpointing")), None)
            ckpt = next((r for r in mine if r.get("checkpointing")), None)
            if ours and ckpt and "train_s" in ours:
                c["checkpointing_time_ratio"] = ckpt["train_s"] / ours["train_s"]
                c["checkpointing_mem_GB_saved"] = ours["train_mem_GB"] - ckpt["train_mem_GB"]
            if len(c) > 2:
                out.append(c)
    return out


def _f(v, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def format_table(out: dict) -> str:
    mem = "peak RSS" if out["machine"]["device"] == "cpu" else "peak CUDA mem"
    lines = [
        f"machine: {out['machine']['processor']} ({out['machine']['device']}), {out['machine']['threads']} thread(s), "
        f"torch {out['machine']['torch']}; fp32 matmul peak in this run: {out['matmul_fp32_gflops']:.0f} GFLOP/s "
        f"(all: {', '.join(f'{x:.0f}' for x in out['matmul_fp32_gflops_all'])})"
        + (f"; bf16: {out['matmul_bf16_gflops']:.0f} GFLOP/s" if out["matmul_bf16_gflops"] else ""),
        "",
        f"| model | implementation | params | GFLOP/train step | train step (s) | train videos/s | train GFLOP/s | "
        f"% of peak | GFLOP/sample step | sample step (s) | sample videos·steps/s | sample GFLOP/s | % of peak | "
        f"{mem} train (GB) | {mem} sample (GB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["results"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {_label(r)} | failed: {r['error']} |")
            continue
        pct = lambda k: None if r.get(k) is None else 100 * r[k]  # noqa: E731
        lines.append(
            f"| {r['model']} (batch {r['batch']}) | {_label(r)} | {r['params_M']:.3g}M | {r['train_gflop']:.4g} | "
            f"{_f(r.get('train_s'), '.3g')} | {_f(r.get('train_videos_per_s'), '.3f')} | "
            f"{_f(r.get('train_gflops'), '.0f')} | {_f(pct('train_frac_of_peak'), '.0f')}% | {r['sample_gflop']:.4g} | "
            f"{_f(r.get('sample_s'), '.3g')} | {_f(r.get('sample_videos_per_s'), '.3f')} | "
            f"{_f(r.get('sample_gflops'), '.0f')} | {_f(pct('sample_frac_of_peak'), '.0f')}% | "
            f"{_f(r.get('train_mem_GB'), '.2f')} | {_f(r.get('sample_mem_GB'), '.2f')} |")
    for c in out["comparison"]:
        parts = [f"{what}{ph} {c[f'{tag}{ph}_speedup_vs_{vs}']:.2f}x {whom}'s videos/s"
                 for tag, what in (("", ""), ("compiled_", "compiled "))
                 for vs, whom in (("port", "the port"), ("fp32_eager", "our fp32 eager"))
                 for ph in ("train", "sample") if f"{tag}{ph}_speedup_vs_{vs}" in c]
        if "checkpointing_time_ratio" in c:
            parts.append(f"checkpointing: {c['checkpointing_time_ratio']:.2f}x train step time, "
                         f"{c['checkpointing_mem_GB_saved']:.2f} GB less peak memory")
        lines.append(f"\n{c['model']} {c['precision']}: " + "; ".join(parts))
    if out["port"]["notes"]:
        lines.append(f"\n{out['port']['notes']}. Ours: full (softmax) spatial and temporal attention "
                     "(heads of 64 channels) after each residual block at the levels in attn_resolutions, GroupNorm, stride-2 3x3 down / "
                     "nearest + 3x3 up.")
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    a = p.parse_args(argv)
    return run_and_report(a)


def run_and_report(a: argparse.Namespace) -> int:
    out = run(a, log=lambda s: print(s, file=sys.stderr, flush=True))
    print(format_table(out))
    if a.json:
        print(f"\nwrote {a.json}")
    return 1 if any("error" in r for r in out["results"]) else 0
