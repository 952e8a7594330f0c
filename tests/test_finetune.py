"""Fine-tuning (issue 31): ``videodiff finetune`` from a trained model on a folder of clips, full or LoRA. A LoRA
fine-tune changes only adapter parameters, merges (``export``) to the same outputs and exports an adapter that
loads back onto its base model and no other; fine-tuning resumes bit-exactly; bad inputs give one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from videodiff import VideoPipeline
from videodiff.checkpoint import load_checkpoint
from videodiff.cli.main import main
from videodiff.config import load_config
from videodiff.io import write_video
from videodiff.train import train

from conftest import assert_one_line_error
from test_train import TINY


@pytest.fixture(scope="module")
def base(tmp_path_factory, one_thread):
    """A 2-step tiny unconditional Moving MNIST run: the model fine-tuned here."""
    root = tmp_path_factory.mktemp("base")
    train(load_config(None, TINY + ["train.steps=2", "train.loggers=[]"]), root / "run", progress=False)
    return root / "run"


def _clips(folder, n: int = 3, frames: int = 6, size: int = 16):
    """``n`` gifs of a bright square sliding down (a motion the base never saw)."""
    for i in range(n):
        video = np.zeros((frames, size, size, 3), np.uint8)
        for t in range(frames):
            y = (2 * t + i) % (size - 4)
            video[t, y:y + 4, 4 + 2 * i: 8 + 2 * i] = 255
        write_video(folder / f"clip{i}.gif", video, fps=8)
    return folder


def _run(*args) -> int:
    return main(["finetune", *map(str, args), "--no-progress", "--set", "train.loggers=[]"])


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_lora_changes_only_adapters_merges_and_exports(base, tmp_path):
    data = _clips(tmp_path / "clips")
    assert _run("--model", base, "--data", data, "--out", tmp_path / "lora", "--steps", 4, "--lora-rank", 2) == 0
    ck, start = load_checkpoint(tmp_path / "lora"), load_checkpoint(base)
    adapters = [k for k in ck["model"] if ".lora." in k]
    assert adapters and set(ck["model"]) - set(adapters) == set(start["ema"])
    for k, v in start["ema"].items():
        assert torch.equal(ck["model"][k], v) and torch.equal(ck["ema"][k], v), k  # the base stayed frozen
    assert any(float(ck["model"][k].abs().max()) > 0 for k in adapters if k.endswith("up.weight"))

    lora = VideoPipeline.from_pretrained(tmp_path / "lora", device="cpu", precision="fp32")
    assert main(["export", "--checkpoint", str(tmp_path / "lora"), "--name", "merged", "--out",
                 str(tmp_path / "merged")]) == 0
    assert main(["export", "--checkpoint", str(tmp_path / "lora"), "--name", "ad", "--out", str(tmp_path / "ad"),
                 "--adapter"]) == 0
    merged = VideoPipeline.from_pretrained(tmp_path / "merged", device="cpu", precision="fp32")
    assert merged.config.lora.rank == 0 and not any(".lora." in k for k in merged.denoiser.net.state_dict())
    adapted = VideoPipeline.from_pretrained(base, device="cpu", precision="fp32", adapter=tmp_path / "ad" / "ad")
    small, full = (tmp_path / "ad" / "ad.safetensors").stat().st_size, (tmp_path / "merged" / "merged.safetensors")
    assert small < 0.5 * full.stat().st_size  # the adapter alone is small
    z, lam = torch.randn(2, 1, 4, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([-2.0, 3.0])
    ref = lora.denoiser(z, lam)
    torch.testing.assert_close(adapted.denoiser(z, lam), ref, rtol=0, atol=0)
    torch.testing.assert_close(merged.denoiser(z, lam), ref, rtol=1e-4, atol=1e-5)
    plain = VideoPipeline.from_pretrained(base, device="cpu", precision="fp32").denoiser(z, lam)
    assert not torch.allclose(plain, ref)  # the fine-tune changed the function


def test_finetune_resumes_bit_exactly(base, tmp_path):
    data = _clips(tmp_path / "clips")
    common = ("--model", base, "--data", data, "--set", "train.ckpt_every=2")
    assert _run(*common, "--out", tmp_path / "full", "--steps", 4) == 0
    assert _run(*common, "--out", tmp_path / "part", "--steps", 2) == 0
    assert _run(*common, "--out", tmp_path / "part", "--steps", 4) == 0  # resumes at step 2
    assert _losses(tmp_path / "part") == _losses(tmp_path / "full") and len(_losses(tmp_path / "full")) == 4
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "part")
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    assert any(not torch.equal(a["model"][k], v) for k, v in load_checkpoint(base)["ema"].items())  # full: all train


def test_bad_inputs_give_one_line_errors(base, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert _run("--model", base, "--data", tmp_path / "empty", "--out", tmp_path / "r") == 2
    assert_one_line_error(capsys, "no videos", "empty")
    data = _clips(tmp_path / "clips", n=1)
    (data / "clip0.txt").write_text("a square sliding down")
    assert _run("--model", base, "--data", data, "--out", tmp_path / "r") == 2
    assert_one_line_error(capsys, "captions", "not text-conditioned")
    manifest = tmp_path / "captions.csv"
    manifest.write_text("video,caption\nclips/clip0.gif,a square\nclips/missing.gif,another\n")
    assert _run("--model", "moving-mnist", "--data", manifest, "--out", tmp_path / "r") == 2
    assert_one_line_error(capsys, "do not match", "missing.gif")
    assert _run("--model", base, "--data", data, "--out", tmp_path / "r", "--lora-rank", "-1") == 2
    assert_one_line_error(capsys, "--lora-rank")
    assert not (tmp_path / "r").exists()  # every check before any training

    assert _run("--model", base, "--data", _clips(tmp_path / "c2"), "--out", tmp_path / "l", "--steps", 1,
                "--lora-rank", 1) == 0
    assert main(["export", "--checkpoint", str(tmp_path / "l"), "--name", "ad", "--out", str(tmp_path), "--adapter"]) == 0
    capsys.readouterr()
    other = tmp_path / "other"
    train(load_config(None, TINY + ["train.steps=1", "train.seed=5", "train.loggers=[]"]), other, progress=False)
    with pytest.raises(ValueError, match="trained on another model"):
        VideoPipeline.from_pretrained(other, device="cpu", adapter=tmp_path / "ad")
