"""End to end: a tiny text-conditioned model trained jointly on videos and image frames through the CLI, exact resume,
then guided text-to-video sampling through the CLI (one grid row per prompt)."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from videodiff.checkpoint import load_checkpoint
from videodiff.cli import main
from videodiff.config import load_config
from videodiff.train import train

pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine

from test_text import needs_transformers

TINY = [
    "data.image_size=16", "data.num_frames=3", "data.num_digits=1", "data.image_frames=2",
    "model.base_channels=16", "model.channel_mults=[1, 2]", "model.num_res_blocks=1",
    "model.attn_resolutions=[8]", "model.head_dim=16", "model.dropout=0.0",
    "text.cond_dim=16", "train.cond_drop_prob=0.2", "train.batch_size=2", "train.warmup_steps=2",
    "train.log_every=1", "sample.steps=2", "sample.num=2", "sample.guidance=1.0",
]


@pytest.fixture(scope="module")
def encoder_args(tmp_path_factory):
    from test_text import make_tiny_bert

    root = tmp_path_factory.mktemp("text")
    make_tiny_bert(root / "bert")
    return [f"text.encoder={root / 'bert'}", f"text.cache_dir={root / 'cache'}"]


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@needs_transformers
def test_text_joint_training_resumes_exactly(tmp_path, encoder_args):
    common = TINY + encoder_args + ["train.ckpt_every=2", "sample.num=1", "sample.steps=1"]
    train(load_config(None, common + ["train.steps=3"]), tmp_path / "full", progress=False)
    train(load_config(None, common + ["train.steps=2"]), tmp_path / "part", progress=False)
    train(load_config(None, common + ["train.steps=3"]), tmp_path / "part", progress=False)
    assert _losses(tmp_path / "part") == _losses(tmp_path / "full")  # dropout draws and captions restored exactly
    ck = load_checkpoint(tmp_path / "full")
    assert any(k.startswith("pool.") for k in ck["ema"]) and any(k.startswith("unet.") for k in ck["ema"])
    with pytest.raises(ValueError, match="'text' config differs"):
        train(load_config(None, common + ["train.steps=4", "text.max_length=8"]), tmp_path / "full", progress=False)


@needs_transformers
def test_cli_text_training_and_guided_sampling(tmp_path, encoder_args, capsys):
    args = ["train", "--out", str(tmp_path / "run"), "--no-progress"]
    for o in TINY + encoder_args + ["train.steps=3"]:
        args += ["--set", o]
    assert main(args) == 0
    prompts_file = tmp_path / "run" / "samples" / "step_000003.txt"
    assert len(prompts_file.read_text().splitlines()) == 2  # the preview grid's prompts (test-set captions)
    cache_root = encoder_args[1].split("=", 1)[1]
    assert len(list(Path(cache_root).rglob("*.safetensors"))) > 2  # captions were cached

    def sample(out, *extra):
        return main(["sample", "--checkpoint", str(tmp_path / "run"), "--steps", "3", "--sampler", "ddim",
                     "--seed", "3", "--save-tensor", "--out", str(tmp_path / out), *extra])

    two = ["--prompt", "digit 4 moving right", "--prompt", "a seven moving up"]
    assert sample("g2.gif", *two, "--num", "1", "--guidance", "2") == 0
    out = capsys.readouterr().out
    assert "row 0: 'digit 4 moving right' (guidance w=2)" in out and "row 1: 'a seven moving up'" in out
    g2 = torch.load(tmp_path / "g2.pt")
    assert g2.shape == (2, 1, 3, 16, 16)
    with Image.open(tmp_path / "g2.gif") as im:
        assert im.size == (1 * 18 + 2, 2 * 18 + 2)  # one row per prompt, --num videos per row
    assert sample("g2b.gif", *two, "--num", "1", "--guidance", "2") == 0
    torch.testing.assert_close(torch.load(tmp_path / "g2b.pt"), g2)  # seeded
    assert sample("g0.gif", *two, "--num", "1", "--guidance", "0") == 0
    assert (torch.load(tmp_path / "g0.pt") - g2).abs().max() > 0  # guidance changes the samples (little, at 3 steps)
    assert sample("many.gif", *two, "--num", "3") == 0
    assert torch.load(tmp_path / "many.pt").shape == (6, 1, 3, 16, 16)
    capsys.readouterr()
    assert sample("bad.gif", "--guidance", "2") == 2
    assert "--guidance needs at least one --prompt" in capsys.readouterr().err


def test_prompt_on_an_unconditional_model_is_an_error(tmp_path, capsys):
    args = ["train", "--out", str(tmp_path / "run"), "--no-progress"]
    for o in TINY[:10] + ["train.steps=1", "train.batch_size=1", "sample.steps=1", "sample.num=1"]:
        args += ["--set", o]
    assert main(args) == 0
    assert main(["sample", "--checkpoint", str(tmp_path / "run"), "--prompt", "digit 1 moving up",
                 "--out", str(tmp_path / "x.gif")]) == 2
    assert "not text-conditioned" in capsys.readouterr().err


def test_resume_check_ignores_the_cache_dir_and_accepts_older_checkpoints(tmp_path):
    from videodiff.config import config_to_dict
    from videodiff.train.resume import check_resumable as _check_resumable

    cfg = load_config(None, [])
    old = config_to_dict(cfg)  # as written before text conditioning and joint training existed
    del old["text"]
    for key in ("captions", "manifest", "image_frames", "image_root"):
        del old["data"][key]
    _check_resumable(old, cfg, tmp_path)
    text = load_config(None, ["text.encoder=minilm", "text.cache_dir=/a"])
    _check_resumable(config_to_dict(text), load_config(None, ["text.encoder=minilm", "text.cache_dir=/b"]), tmp_path)
    with pytest.raises(ValueError, match="'data' config differs"):
        _check_resumable(old, load_config(None, ["data.image_frames=4"]), tmp_path)
