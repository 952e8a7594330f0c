"""``auto`` precision by measurement (videodiff/precision_probe.py, issue 30): the decision from injected timings, the
cache keyed by CPU model and network/input shape, the cases that need no probe, and load_model reporting the choice.
No real timing: every measurement here is injected."""

import json

import pytest
import torch

import videodiff.precision as precision
import videodiff.precision_probe as probe
from videodiff.nn import UNet3D, UNetConfig

SHAPE = (2, 1, 2, 8, 8)


def _net(base=8) -> UNet3D:
    return UNet3D(UNetConfig(image_size=8, base_channels=base, channel_mults=(1,), num_res_blocks=1,
                             attn_resolutions=(), head_dim=8, dropout=0.0))


class FakeTimer:
    """Injected measurements: the seconds per forward of each precision; counts the probes."""

    def __init__(self, fp32, bf16):
        self.times, self.calls = {"fp32": fp32, "bf16": bf16}, []

    def __call__(self, net, shape, device):
        self.calls.append(tuple(shape))
        return self.times


@pytest.fixture
def native_bf16(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDEODIFF_PRECISION_PROBE", "1")
    monkeypatch.setenv("VIDEODIFF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    monkeypatch.setattr(probe, "cpu_model", lambda: "AMD Ryzen 9 7950X")


def test_choose_precision_needs_a_real_margin():
    assert probe.choose_precision([1.0, 1.1, 0.9], [0.6, 0.62, 0.61]) == "bf16"  # the 73M bench U-Net: 1.6x
    assert probe.choose_precision([1.0, 1.0, 1.0], [1.07, 1.06, 1.08]) == "fp32"  # the small shipped model: slower
    assert probe.choose_precision([1.0], [0.97]) == "fp32"  # 3 % is inside the margin: fp32, the exact one
    assert probe.choose_precision([1.0, 5.0, 1.0], [0.9, 0.9, 9.0]) == "bf16"  # medians: one outlier each is ignored
    with pytest.raises(ValueError):
        probe.choose_precision([], [1.0])


def test_auto_measures_once_per_cpu_network_and_shape(native_bf16, monkeypatch, tmp_path):
    lines, net = [], _net()
    slow = FakeTimer([1.0, 1.0, 1.0], [1.3, 1.2, 1.25])
    assert probe.resolve_auto(net, SHAPE, "cpu", measure=slow, log=lines.append) is None  # fp32: bf16 lost
    assert slow.calls == [SHAPE] and "auto -> fp32" in lines[-1] and "measured now" in lines[-1]
    assert "1 s in fp32, 1.25 s in bf16" in lines[-1]
    cached = json.loads((tmp_path / "cache" / "precision.json").read_text())
    (key, entry), = cached.items()
    assert "AMD Ryzen 9 7950X" in key and "input 2x1x2x8x8" in key and entry["choice"] == "fp32"
    # the same CPU, network and shape: read back, not measured again (even if a probe would now say otherwise)
    fast = FakeTimer([1.0], [0.5])
    assert probe.resolve_auto(_net(), SHAPE, "cpu", measure=fast, log=lines.append) is None
    assert fast.calls == [] and "cached in" in lines[-1]
    # another input shape, another network, another CPU: each measured on its own
    assert probe.resolve_auto(net, (2, 1, 4, 8, 8), "cpu", measure=fast, log=lines.append) is torch.bfloat16
    assert probe.resolve_auto(_net(base=16), SHAPE, "cpu", measure=fast, log=lines.append) is torch.bfloat16
    monkeypatch.setattr(probe, "cpu_model", lambda: "Intel Xeon Platinum 8480+")
    assert probe.resolve_auto(net, SHAPE, "cpu", measure=fast, log=lines.append) is torch.bfloat16
    assert len(fast.calls) == 3 and "auto -> bf16" in lines[-1]
    assert len(json.loads((tmp_path / "cache" / "precision.json").read_text())) == 4


def test_no_probe_where_the_rule_decides(native_bf16, monkeypatch, tmp_path):
    never = FakeTimer([1.0], [0.1])
    assert probe.resolve_for_network("fp32", _net(), SHAPE, "cpu", measure=never) is None
    assert probe.resolve_for_network("bf16", _net(), SHAPE, "cpu", measure=never) is torch.bfloat16
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx2"}))  # emulated bf16: fp32, no probe
    assert probe.resolve_for_network("auto", _net(), SHAPE, "cpu", measure=never) is None
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setenv("VIDEODIFF_PRECISION_PROBE", "0")  # turned off: the hardware rule (bf16 here)
    assert probe.resolve_for_network("auto", _net(), SHAPE, "cpu", measure=never) is torch.bfloat16
    assert never.calls == [] and not (tmp_path / "cache").exists()


def test_a_damaged_cache_is_measured_again(native_bf16, tmp_path):
    path = tmp_path / "cache" / "precision.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    timer = FakeTimer([1.0], [0.5])
    assert probe.resolve_auto(_net(), SHAPE, "cpu", measure=timer, log=lambda line: None) is torch.bfloat16
    assert timer.calls == [SHAPE] and json.loads(path.read_text())


def test_measure_forward_times_both_and_leaves_the_network_contiguous():
    net = _net().eval()
    times = probe.measure_forward(net, SHAPE, "cpu", repeats=2)
    assert sorted(times) == ["bf16", "fp32"] and all(len(v) == 2 and min(v) > 0 for v in times.values())
    assert net.conv_in.weight.is_contiguous()


def test_load_model_shows_the_measured_choice(native_bf16, tmp_path, monkeypatch, capsys):
    from videodiff.config import load_config
    from videodiff.models import load_model
    from videodiff.train import train

    cfg = load_config(None, ["data.image_size=8", "data.num_frames=2", "data.num_digits=1", "data.train_clips=2",
                             "model.base_channels=8", "model.channel_mults=[1]", "model.num_res_blocks=1",
                             "model.attn_resolutions=[]", "model.head_dim=8", "train.steps=1", "train.batch_size=2",
                             "train.loggers=[]", "sample.steps=1", "sample.num=1", "train.precision=fp32",
                             "sample.precision=fp32"])
    train(cfg, tmp_path / "run", progress=False)
    capsys.readouterr()
    for fp32_s, bf16_s, want in ((1.0, 1.2, "fp32"), (1.0, 0.5, "bf16")):
        monkeypatch.setattr(probe, "measure_forward", FakeTimer([fp32_s], [bf16_s]))
        monkeypatch.setenv("VIDEODIFF_CACHE", str(tmp_path / f"cache{want}"))
        m = load_model(tmp_path / "run", device="cpu", precision="auto")
        assert m.precision == want and (m.denoiser.autocast_dtype is torch.bfloat16) == (want == "bf16")
        err = capsys.readouterr().err
        assert f"precision auto -> {want} for input 2x1x2x8x8" in err
