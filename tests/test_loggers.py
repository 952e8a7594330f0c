"""Experiment tracking (train.loggers): TensorBoard event files read back with TensorBoard's own reader, resume
without duplicate steps, no loggers, config errors, W&B (offline) through a stand-in module, and missing packages."""

import sys
import types

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

import videodiff.train.loop as loop
from test_train import TINY, train_argv
from videodiff.cli import main
from videodiff.config import load_config
from videodiff.train import train
from videodiff.train.loggers import Loggers, sample_strip
from videodiff.train.report import MetricsLog

FAST = TINY + ["train.precision=fp32", "sample.precision=fp32"]  # bf16 is emulated (slow) on most CPUs
SCALARS = ["train/loss", "train/lr", "train/grad_norm", "train/videos_per_s"]


def _board(run):
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _raw_steps(run, tag):
    """Steps of ``tag`` in every event file as written, without TensorBoard's purging of orphaned steps."""
    steps = []
    for f in sorted((run / "tensorboard").glob("events.out.tfevents.*")):
        for ev in EventFileLoader(str(f)).Load():
            steps += [ev.step for v in ev.summary.value if v.tag == tag]
    return sorted(steps)


def test_tensorboard_logs_the_metrics_rows_and_the_sample_grid(tmp_path, capsys):
    run = tmp_path / "r"
    args = train_argv(run, FAST + ["train.steps=3", "train.log_every=2"])
    assert main(args) == 0  # the default train.loggers
    assert f"monitoring : tensorboard --logdir {run / 'tensorboard'}" in capsys.readouterr().out
    acc = _board(run)
    assert sorted(acc.Tags()["scalars"]) == sorted(SCALARS)
    rows = MetricsLog.read(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [2, 3]  # log_every=2, and the last step
    for tag in SCALARS:
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [2, 3], tag
        want = [r[tag.removeprefix("train/")] for r in rows]
        np.testing.assert_allclose([e.value for e in events], want, rtol=1e-6)  # float32 in the event file
    (img,) = acc.Images("samples")  # written with the last samples/step_000003.*
    assert img.step == 3
    # the strip of 4 frames of a 2x1 grid of 16x16 videos with 2-pixel borders
    assert (img.height, img.width) == (16 + 4, 4 * (2 * 16 + 6))
    assert (run / "samples" / "step_000003.gif").is_file()


def test_sample_strip_puts_frames_left_to_right():
    videos = -torch.ones(1, 1, 3, 4, 4)
    videos[0, 0, 1] = 1.0  # frame 1 white, frames 0 and 2 black
    strip = sample_strip(videos)  # one video: a 1x1 grid, 2-pixel white border
    assert strip.shape == (8, 3 * 8, 3) and strip.dtype == np.uint8
    inner = [strip[2:6, 8 * f + 2 : 8 * f + 6] for f in range(3)]
    assert [int(x.max()) for x in inner] == [0, 255, 0]


def test_resume_after_a_crash_logs_each_step_once(tmp_path, monkeypatch):
    run = tmp_path / "r"
    common = FAST + ["train.ckpt_every=2", "train.sample_every=3", "train.steps=4"]
    real = loop._write_samples

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed after logging step 3, before its checkpoint")

    monkeypatch.setattr(loop, "_write_samples", crash)
    with pytest.raises(KeyboardInterrupt):
        train(load_config(None, common), run, progress=False)
    monkeypatch.setattr(loop, "_write_samples", real)
    # the interrupted run's writer was closed on the way out: its step 3 reached the disk
    assert _raw_steps(run, "train/loss") == [1, 2, 3]
    train(load_config(None, common), run, progress=False)  # resumes from the checkpoint of step 2
    assert _raw_steps(run, "train/loss") == [1, 2, 3, 3, 4]  # step 3 written twice ...
    acc = _board(run)
    rows = MetricsLog.read(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for tag in SCALARS:  # ... and TensorBoard shows it once (purge_step), like metrics.jsonl
        assert [e.step for e in acc.Scalars(tag)] == [1, 2, 3, 4], tag
    np.testing.assert_allclose([e.value for e in acc.Scalars("train/loss")], [r["loss"] for r in rows], rtol=1e-6)
    assert [e.step for e in acc.Images("samples")] == [3, 4]


def test_no_loggers_writes_no_event_files(tmp_path):
    run = tmp_path / "r"
    train(load_config(None, FAST + ["train.steps=1", "train.loggers=[]"]), run, progress=False)
    assert not (run / "tensorboard").exists() and not (run / "wandb").exists()
    assert [r["step"] for r in MetricsLog.read(run / "metrics.jsonl")] == [1]  # always written


def test_logger_options_are_checked():
    assert load_config(None, []).train.loggers == ("tensorboard",)
    assert load_config(None, ["train.loggers=[wandb, tensorboard]"]).train.loggers == ("wandb", "tensorboard")
    with pytest.raises(ValueError, match=r"train.loggers: unknown logger 'tensorbord'; choose from tensorboard \| wandb"):
        load_config(None, ["train.loggers=[tensorbord]"])
    with pytest.raises(ValueError, match="train.loggers must be a list"):
        load_config(None, ["train.loggers=tensorboard"])
    with pytest.raises(ValueError, match="train.loggers names a logger twice"):
        load_config(None, ["train.loggers=[wandb, wandb]"])
    with pytest.raises(ValueError, match=r"train.wandb_mode must be one of offline \| online"):
        load_config(None, ["train.wandb_mode=cloud"])


def test_wandb_asked_for_but_missing_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError, installed or not
    args = train_argv(tmp_path / "r", FAST + ["train.steps=1", "train.loggers=[tensorboard, wandb]"])
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert "train.loggers asks for 'wandb', which is not installed: pip install wandb" in err[-1]
    assert not (tmp_path / "r" / "checkpoints").exists() and not (tmp_path / "r" / "tensorboard").exists()


def _fake_wandb(calls):
    """A stand-in ``wandb`` module recording what videodiff asks of it (the real one is an optional extra)."""
    mod = types.ModuleType("wandb")

    class Run:
        def log(self, data, step=None):
            calls.append(("log", data, step))

        def finish(self):
            calls.append(("finish",))

    def init(**kwargs):
        calls.append(("init", kwargs))
        return Run()

    mod.init = init
    mod.Image = lambda array: ("Image", array.shape)
    mod.util = types.SimpleNamespace(generate_id=lambda: f"id{len(calls)}")
    return mod


def test_wandb_is_offline_by_default_and_a_resume_continues_its_run(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "wandb", _fake_wandb(calls))
    with Loggers(["wandb"], tmp_path, config={"train": {"lr": 1.0}}, name="exp") as lg:
        assert lg.active == ["wandb"]
        lg.scalars(1, {"step": 1, "loss": 0.5, "lr": 2})
        lg.samples(1, torch.zeros(2, 1, 3, 4, 4))
    (_, init), log1, log2, fin = calls
    assert init["mode"] == "offline" and init["dir"] == str(tmp_path) and init["name"] == "exp"
    assert init["config"] == {"train": {"lr": 1.0}} and init["resume"] == "allow"
    assert log1 == ("log", {"train/loss": 0.5, "train/lr": 2.0}, 1)
    assert log2 == ("log", {"samples": ("Image", (8, 3 * 14, 3))}, 1) and fin == ("finish",)
    calls.clear()
    Loggers(["wandb"], tmp_path, step=7, wandb_mode="online", wandb_project="p").close()
    assert calls[0][1]["id"] == init["id"] and calls[0][1]["mode"] == "online" and calls[0][1]["project"] == "p"


def test_missing_tensorboard_warns_and_training_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    lg = Loggers(["tensorboard"], tmp_path / "r", step=0)
    assert lg.active == []
    lg.scalars(1, {"loss": 1.0})  # a no-op
    lg.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TensorBoard logging is off" in err[0] and "pip install tensorboard" in err[0]
    assert not (tmp_path / "r" / "tensorboard").exists()
