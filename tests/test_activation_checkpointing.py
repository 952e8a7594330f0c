"""``train.activation_checkpointing``: each U-Net block recomputed in backward during training, the same training
run otherwise; ``model.gradient_checkpointing`` (its old name) still loads and means the same."""

import json

import pytest

import videodiff.nn.unet3d as unet3d
from videodiff.config import config_to_dict, load_config
from videodiff.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["data.image_size=8", "data.num_frames=4", "data.num_digits=1", "data.train_clips=8", "data.test_clips=2",
        "model.base_channels=8", "model.channel_mults=[1, 2]", "model.num_res_blocks=1", "model.attn_resolutions=[4]",
        "model.head_dim=8", "train.batch_size=2", "train.steps=3", "train.log_every=1", "train.loggers=[]",
        "train.device=cpu", "train.precision=fp32", "sample.steps=1", "sample.num=1"]


def test_old_key_moves_to_train():
    cfg = load_config(None, TINY + ["model.gradient_checkpointing=true"])
    assert cfg.train.activation_checkpointing and not cfg.model.gradient_checkpointing
    assert config_to_dict(cfg)["train"]["activation_checkpointing"] is True


def test_training_with_checkpointing_recomputes_blocks_and_gives_the_same_run(tmp_path, monkeypatch):
    calls = []
    real = unet3d.grad_checkpoint
    monkeypatch.setattr(unet3d, "grad_checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    losses = {}
    for on in (False, True):
        cfg = load_config(None, TINY + [f"train.activation_checkpointing={str(on).lower()}"])
        calls.clear()
        train(cfg, tmp_path / str(on), progress=False)
        blocks = sum(isinstance(m, unet3d._Block) for m in unet3d.UNet3D(cfg.model).modules())
        assert len(calls) == (3 * blocks if on else 0)  # every block of every training step; never in sampling
        losses[on] = [json.loads(r)["loss"] for r in (tmp_path / str(on) / "metrics.jsonl").read_text().splitlines()]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)  # dropout replayed in the recompute
