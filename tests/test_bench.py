"""The speed benchmark's plumbing: FLOP counts against closed forms, the fields of one measurement, the CLI, the
port's torchvision stub. No timing assertions."""

import sys

import pytest
import torch
import torch.nn.functional as F

from videodiff.bench.flops import conv2d_flops, count_flops
from videodiff.bench.measure import measure
from videodiff.bench.port import port_available
from videodiff.bench.runner import _compare, format_table
from videodiff.cli import build_parser


def test_conv2d_flops_match_closed_form():
    conv = torch.nn.Conv2d(8, 16, 3, padding=1)
    x = torch.randn(2, 8, 10, 10)
    with torch.no_grad():
        assert count_flops(lambda: conv(x)) == conv2d_flops(2, 8, 16, 10, 10, 3) == 2 * 2 * 16 * 100 * 8 * 9
    # forward + backward (input and weight gradients): three times the forward
    x.requires_grad_(True)
    assert count_flops(lambda: conv(x).sum().backward()) == 3 * conv2d_flops(2, 8, 16, 10, 10, 3)


def test_cpu_attention_is_counted():
    b, h, s, d = 2, 3, 16, 8
    q, k, v = (torch.randn(b, h, s, d, requires_grad=True) for _ in range(3))
    fwd = 4 * b * h * s * s * d  # QK^T and AV, 2 FLOPs per multiply-add
    with torch.no_grad():
        assert count_flops(lambda: F.scaled_dot_product_attention(q, k, v)) == fwd
    assert count_flops(lambda: F.scaled_dot_product_attention(q, k, v).sum().backward()) == 3 * fwd


def test_measure_tiny_model_fields():
    r = measure(dict(impl="ours", model="tiny", repeats=1, warmup=0, matmul_n=128, checkpointing=True))
    for key in ("params_M", "train_gflop", "sample_gflop", "train_s", "sample_s", "train_gflops", "sample_gflops",
                "train_videos_per_s", "sample_videos_per_s", "train_frac_of_own_matmul", "train_mem_GB",
                "sample_mem_GB", "matmul_fp32_gflops"):
        assert r[key] > 0, key
    assert r["checkpointing"] and r["batch"] == 1 and r["frames"] == 4
    # model FLOPs (recomputation not counted): backward costs about twice the forward
    assert 2.5 < r["train_gflop"] / r["sample_gflop"] < 3.5


def test_measure_bf16_row_runs_under_autocast_against_the_bf16_peak():
    """``--precision bf16`` (formerly ``--amp bf16``, which crashed: an autocast instance was called)."""
    r = measure(dict(impl="ours", model="tiny", repeats=1, warmup=0, matmul_n=128, precision="bf16"))
    assert r["precision"] == "bf16" and r["train_s"] > 0 and r["sample_s"] > 0
    assert r["channels_last"] == (True if r["device"] == "cpu" else False)  # the library's layout for bf16
    old = measure(dict(impl="ours", model="tiny", repeats=1, warmup=0, matmul_n=128, amp="bf16", train=False))
    assert old["precision"] == "bf16"
    a = build_parser().parse_args(["bench", "--models", "tiny", "--precision", "fp32", "bf16", "--compile"])
    from videodiff.bench.runner import _specs

    specs = _specs(a, port_ok=False)
    assert [(s["precision"], bool(s.get("compile"))) for s in specs] == [
        ("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)]


@pytest.mark.skipif(not port_available()[0], reason="video-diffusion-pytorch not installed")
def test_port_builds_without_leaving_a_torchvision_stub():
    r = measure(dict(impl="port", model="tiny", repeats=1, warmup=0, matmul_n=128, train=False))
    assert r["sample_gflop"] > 0 and "train_s" not in r
    tv = sys.modules.get("torchvision")
    assert tv is None or "stub" not in (tv.__doc__ or "")


def test_cli_parses_bench():
    a = build_parser().parse_args(["bench", "--models", "tiny", "16x32x32", "--compare-port", "--checkpointing",
                                   "--json", "out.json", "--device", "cpu", "--repeats", "3"])
    assert a.models == ["tiny", "16x32x32"] and a.compare_port and a.checkpointing and a.repeats == 3
    assert str(a.json) == "out.json" and a.func.__name__ == "_cmd_bench"


def test_table_and_comparison():
    row = dict(model="m", impl="ours", precision="fp32", batch=1, params_M=1.0, train_gflop=3.0, sample_gflop=1.0,
               train_s=1.0, sample_s=0.5, train_videos_per_s=1.0, sample_videos_per_s=2.0, train_gflops=3.0,
               sample_gflops=2.0, train_frac_of_peak=0.5, sample_frac_of_peak=0.4, train_mem_GB=2.0, sample_mem_GB=1.0)
    port = dict(row, impl="port", train_videos_per_s=0.5, sample_videos_per_s=1.0)
    ckpt = dict(row, checkpointing=True, train_s=1.5, train_mem_GB=1.5)
    bf16 = dict(row, precision="bf16", train_videos_per_s=2.0, sample_videos_per_s=6.0)
    bf16_port = dict(port, precision="bf16", train_videos_per_s=1.0, sample_videos_per_s=2.0)
    compiled = dict(bf16, compile=True, train_videos_per_s=3.0, sample_videos_per_s=8.0)
    compiled_port = dict(bf16_port, compile=True, train_videos_per_s=1.5, sample_videos_per_s=2.0)
    cmp = _compare([row, port, ckpt, bf16, bf16_port, compiled, compiled_port])
    assert cmp == [
        dict(model="m", precision="fp32", train_speedup_vs_port=2.0, sample_speedup_vs_port=2.0,
             checkpointing_time_ratio=1.5, checkpointing_mem_GB_saved=0.5),
        dict(model="m", precision="bf16", train_speedup_vs_port=2.0, sample_speedup_vs_port=3.0,
             train_speedup_vs_fp32_eager=2.0, sample_speedup_vs_fp32_eager=3.0,
             compiled_train_speedup_vs_port=2.0, compiled_sample_speedup_vs_port=4.0,
             compiled_train_speedup_vs_fp32_eager=3.0, compiled_sample_speedup_vs_fp32_eager=4.0)]
    out = dict(machine=dict(processor="x", device="cpu", threads=1, torch="t"), matmul_fp32_gflops=6.0,
               matmul_fp32_gflops_all=[6.0], matmul_bf16_gflops=None, port=dict(notes=None), results=[row, port, ckpt],
               comparison=cmp)
    table = format_table(out)
    assert "| m (batch 1) | port fp32 |" in table and "2.00x the port's videos/s" in table
    assert "compiled sample 4.00x our fp32 eager's videos/s" in table
