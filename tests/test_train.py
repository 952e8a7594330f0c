"""End-to-end training: a tiny model overfits one clip; resume continues the exact loss sequence; CLI works."""

import json

import pytest
import torch

from videodiff.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from videodiff.cli import main
from videodiff.config import load_config
from videodiff.train import train

TINY = [
    "data.image_size=16", "data.num_frames=4", "data.num_digits=1",
    "model.base_channels=16", "model.channel_mults=[1, 2]", "model.num_res_blocks=1",
    "model.attn_resolutions=[8]", "model.head_dim=16", "model.dropout=0.1",
    "train.batch_size=2", "train.warmup_steps=5", "train.log_every=1",
    "sample.steps=2", "sample.num=2",
]


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def train_argv(out, overrides) -> list[str]:
    """``videodiff train --out OUT --no-progress --set ...`` with each override."""
    args = ["train", "--out", str(out), "--no-progress"]
    for o in overrides:
        args += ["--set", o]
    return args


def assert_matches_uninterrupted(run, full, overrides, steps):
    """Train ``full`` from scratch to ``steps`` with ``overrides`` and check that ``run`` (resumed, perhaps after a
    damaged checkpoint) reached the same step, EMA weights and loss sequence bit for bit."""
    train(load_config(None, overrides + [f"train.steps={steps}"]), full, progress=False)
    a, b = load_checkpoint(full), load_checkpoint(run)
    assert a["step"] == b["step"] == steps
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k
    assert _losses(full) == _losses(run)


def test_tiny_model_overfits_one_clip(tmp_path):
    cfg = load_config(None, TINY + ["data.train_clips=1", "train.steps=150", "train.lr=3e-3", "model.dropout=0.0",
                                    "train.ckpt_every=1000", "diffusion.low_discrepancy=true"])
    train(cfg, tmp_path / "run", progress=False)
    losses = _losses(tmp_path / "run")
    first, last = sum(losses[:10]) / 10, sum(losses[-20:]) / 20
    assert last < 0.35 * first, (first, last)  # measured: ~0.1x at 150 steps


def test_resume_continues_the_same_loss_sequence(tmp_path):
    common = TINY + ["train.ckpt_every=3"]
    train(load_config(None, common + ["train.steps=6"]), tmp_path / "full", progress=False)
    train(load_config(None, common + ["train.steps=3"]), tmp_path / "part", progress=False)
    train(load_config(None, common + ["train.steps=6"]), tmp_path / "part", progress=False)  # resumes at 3
    full, part = _losses(tmp_path / "full"), _losses(tmp_path / "part")
    assert len(full) == len(part) == 6
    assert part == full  # bit-exact: every source of randomness is restored
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "part")
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k


def test_resume_refuses_a_different_model(tmp_path):
    train(load_config(None, TINY + ["train.steps=1"]), tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match="'model' config differs"):
        train(load_config(None, TINY + ["train.steps=2", "model.base_channels=32", "model.head_dim=32"]),
              tmp_path / "r", progress=False)


def test_init_from_starts_a_new_run_from_another_runs_ema_weights(tmp_path):
    train(load_config(None, TINY + ["train.steps=2"]), tmp_path / "a", progress=False)
    # fine-tune into another parameterization; lr 0 keeps the weights where they started
    over = TINY + ["train.steps=1", "train.lr=0", "diffusion.parameterization=v", f"train.init_from={tmp_path / 'a'}"]
    train(load_config(None, over), tmp_path / "b", progress=False)
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert b["step"] == 1 and b["config"]["diffusion"]["parameterization"] == "v"
    for k in a["ema"]:
        torch.testing.assert_close(b["model"][k], a["ema"][k], rtol=0, atol=0)
    wider = TINY + ["train.steps=1", "model.base_channels=32", "model.head_dim=32", f"train.init_from={tmp_path / 'a'}"]
    with pytest.raises(ValueError, match="init_from .* does not match"):
        train(load_config(None, wider), tmp_path / "c", progress=False)
    # a fine-tune may add frame-position embeddings: they start at zero, the rest is the source's EMA
    pos = TINY + ["train.steps=1", "train.lr=0", "model.frame_positions=8", f"train.init_from={tmp_path / 'a'}"]
    train(load_config(None, pos), tmp_path / "d", progress=False)
    d = load_checkpoint(tmp_path / "d")
    assert not d["model"]["frame_pos.weight"].any()
    assert all(torch.equal(d["model"][k], a["ema"][k]) for k in a["ema"])
    # ... and pixel coordinates, likewise zero-initialised
    xy = TINY + ["train.steps=1", "train.lr=0", "model.spatial_positions=true", f"train.init_from={tmp_path / 'a'}"]
    train(load_config(None, xy), tmp_path / "e", progress=False)
    e = load_checkpoint(tmp_path / "e")
    assert not e["model"]["coord_in.weight"].any() and not e["model"]["coord_in.bias"].any()


def test_checkpoint_layout_and_leftover_tmp_is_ignored(tmp_path):
    train(load_config(None, TINY + ["train.steps=2", "train.ckpt_every=1", "train.keep_checkpoints=1"]),
          tmp_path / "r", progress=False)
    ckdir = tmp_path / "r" / "checkpoints"
    assert sorted(p.name for p in ckdir.iterdir()) == ["latest", "step_000002"]
    (ckdir / "step_000009.tmp").mkdir()  # an interrupted write
    assert latest_checkpoint(tmp_path / "r").name == "step_000002"
    for f in ("model.safetensors", "ema.safetensors", "state.safetensors", "state.json"):
        assert (ckdir / "step_000002" / f).is_file()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "empty")


def test_cli_train_then_sample_is_seeded(tmp_path, capsys):
    cfgfile = tmp_path / "tiny.yaml"
    cfgfile.write_text("train: {steps: 2}\n")
    args = ["train", "--config", str(cfgfile), "--out", str(tmp_path / "run"), "--no-progress"]
    for o in TINY:
        args += ["--set", o]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "loss curve" in out and (tmp_path / "run" / "loss.png").is_file()
    assert (tmp_path / "run" / "samples" / "step_000002.gif").is_file()
    paths = []
    for i in range(2):
        p = tmp_path / f"s{i}.gif"
        assert main(["sample", "--checkpoint", str(tmp_path / "run"), "--num", "2", "--steps", "3",
                     "--sampler", "ddim", "--seed", "5", "--save-tensor", "--out", str(p)]) == 0
        paths.append(p)
    a, b = (torch.load(p.with_suffix(".pt")) for p in paths)
    assert a.shape == (2, 1, 4, 16, 16)
    torch.testing.assert_close(a, b)
    capsys.readouterr()
    for prec in ("fp32", "bf16"):  # --precision reaches the network and is reported
        p = tmp_path / f"{prec}.gif"
        assert main(["sample", "--checkpoint", str(tmp_path / "run"), "--num", "2", "--steps", "3", "--sampler",
                     "ddim", "--seed", "5", "--precision", prec, "--save-tensor", "--out", str(p)]) == 0
        assert f"({prec})" in capsys.readouterr().out
    a, b = (torch.load((tmp_path / f"{prec}.pt")) for prec in ("fp32", "bf16"))
    assert 0 < (a - b).abs().max() < 0.1  # the same noise; bf16 rounding only
    with pytest.raises(SystemExit, match="2"):  # argparse names the choices
        main(["sample", "--checkpoint", str(tmp_path / "run"), "--precision", "fp16", "--out", str(p)])


def test_cli_reports_bad_input_clearly(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--set", "train.stepz=1"]) == 2
    assert "unknown option train.stepz" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "x.mp4")]) == 2
    assert "no checkpoint found" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "x.avi")]) == 2
    assert "--out must end in" in capsys.readouterr().err


def test_max_seconds_stops_with_a_checkpoint_and_samples(tmp_path, capsys):
    cfg = load_config(None, TINY + ["train.steps=500", "train.max_seconds=1e-6", "train.ckpt_every=1000"])
    res = train(cfg, tmp_path / "run", progress=False)
    assert load_checkpoint(tmp_path / "run")["step"] == 1 and res.samples  # stopped after one step, as at the end
    assert "train.max_seconds (1e-06 s) reached: stopped at step 1" in capsys.readouterr().out and res.step == 1
    with pytest.raises(ValueError, match="train.max_seconds must be >= 0"):
        load_config(None, ["train.max_seconds=-1"])
