"""Reliability of training (issue 15): divergence detection, checkpoint robustness (fsync, fallback from a damaged
newest checkpoint, a partial metrics line, a full disk), with nothing lost or changed in the checkpoints written
before. CLI failures must be the README's one line and exit status 2 (:func:`conftest.assert_one_line_error`)."""

import math
import os
from pathlib import Path

import pytest
import torch

from conftest import assert_one_line_error
from videodiff.checkpoint import latest_checkpoint, load_checkpoint
from videodiff.cli import main
from videodiff.config import load_config
from videodiff.train import train
from videodiff.train.loop import TrainingDivergedError
from videodiff.train.report import MetricsLog

from test_train import TINY, assert_matches_uninterrupted, train_argv


class _Clips(torch.utils.data.Dataset):
    """Fixed random clips for TINY (1 x 4 x 16 x 16); the clips in ``nan`` are all NaN."""

    def __init__(self, n: int, nan=()):
        g = torch.Generator().manual_seed(0)
        self.videos = torch.rand(n, 1, 4, 16, 16, generator=g) * 2 - 1
        for i in nan:
            self.videos[i] = float("nan")

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        return {"video": self.videos[i]}


def _snapshot(run: Path) -> dict:
    """Every file under the run's checkpoints, by relative path: its bytes."""
    root = run / "checkpoints"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------ divergence


def test_on_nonfinite_is_validated():
    assert load_config(None, ["train.on_nonfinite=skip"]).train.on_nonfinite == "skip"
    with pytest.raises(ValueError, match="train.on_nonfinite must be one of stop | skip"):
        load_config(None, ["train.on_nonfinite=ignore"])
    with pytest.raises(ValueError, match="train.lr must be a finite number"):
        load_config(None, ["train.lr=.nan"])


def test_nonfinite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "r"
    ok = TINY + ["train.steps=2", "train.ckpt_every=1", "train.batch_size=2"]
    train(load_config(None, ok), run, dataset=_Clips(4), progress=False)
    before = _snapshot(run)
    # every clip NaN from here on: step 3 is the first non-finite one
    cfg = load_config(None, TINY + ["train.steps=6", "train.ckpt_every=1", "train.batch_size=2"])
    with pytest.raises(TrainingDivergedError, match=r"at step 3; the last good checkpoint .*step_000002 is kept"):
        train(cfg, run, dataset=_Clips(4, nan=range(4)), progress=False)
    assert _snapshot(run) == before  # nothing written for the bad step, nothing rotated out
    assert latest_checkpoint(run).name == "step_000002"


def test_cli_divergence_exits_2_naming_the_step(tmp_path, capsys):
    args = train_argv(tmp_path / "r", TINY + ["train.steps=6", "train.ckpt_every=1", "train.lr=1e30",
                                              "train.warmup_steps=1"])
    assert main(args) == 2
    line = assert_one_line_error(capsys, "training diverged", "at step")
    step = int(line.split("at step ")[1].split(";")[0])
    ckpts = sorted(p.name for p in (tmp_path / "r" / "checkpoints").glob("step_*"))
    assert ckpts and ckpts[-1] == f"step_{step - 1:06d}"  # the last good step's checkpoint is the newest
    good = load_checkpoint(tmp_path / "r")
    assert all(torch.isfinite(v).all() for v in good["ema"].values())


def test_skip_drops_nonfinite_steps_counts_them_and_resumes_exactly(tmp_path):
    data = _Clips(4, nan=[1])  # one bad clip: the steps whose batch holds it are skipped
    common = TINY + ["train.batch_size=2", "train.on_nonfinite=skip", "train.ckpt_every=2"]
    res = train(load_config(None, common + ["train.steps=4"]), tmp_path / "full", dataset=data, progress=False)
    assert res.skipped_steps == 2  # one per epoch of two steps
    rows = MetricsLog.read(tmp_path / "full" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[-1]["skipped"] == 2
    assert sum(math.isnan(r["loss"]) for r in rows) == 2  # a log interval of one skipped step has no loss
    ck = load_checkpoint(tmp_path / "full")
    assert ck["skipped_steps"] == 2 and all(torch.isfinite(v).all() for v in ck["model"].values())
    # resuming in the middle gives the same weights as the uninterrupted run
    train(load_config(None, common + ["train.steps=2"]), tmp_path / "part", dataset=data, progress=False)
    train(load_config(None, common + ["train.steps=4"]), tmp_path / "part", dataset=data, progress=False)
    part = load_checkpoint(tmp_path / "part")
    for k in ck["ema"]:
        assert torch.equal(ck["ema"][k], part["ema"][k]), k


# ------------------------------------------------------------------------------------------------ checkpoints


def test_checkpoint_files_and_folders_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    import videodiff.checkpoint as ck

    synced, real_fsync, real_replace = [], os.fsync, os.replace
    monkeypatch.setattr(ck.os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    monkeypatch.setattr(ck.os, "replace", lambda a, b: (synced.append(("replace", str(a))), real_replace(a, b)))
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(net.parameters())
    ck.save_checkpoint(tmp_path, 1, net, net, opt, {}, {})
    root, tmp = str(tmp_path / "checkpoints"), str(tmp_path / "checkpoints" / "step_000001.tmp")
    rename = synced.index(("replace", tmp))
    root, tmp = os.path.realpath(root), os.path.realpath(tmp)  # as /proc names them
    before = synced[:rename]
    for f in ("model.safetensors", "ema.safetensors", "state.safetensors", "state.json"):
        assert f"{tmp}/{f}" in before, f
    assert tmp in before and root in synced[rename:]  # the folder before its rename, the parent after


def _damage(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated, as by a crash or a full disk


def test_resume_falls_back_from_a_damaged_newest_checkpoint(tmp_path, capsys):
    common = TINY + ["train.ckpt_every=1", "train.keep_checkpoints=2"]
    train(load_config(None, common + ["train.steps=2"]), tmp_path / "r", progress=False)
    _damage(tmp_path / "r" / "checkpoints" / "step_000002" / "ema.safetensors")
    capsys.readouterr()
    # sampling from it names the damaged checkpoint (one line, exit 2)
    assert main(["sample", "--checkpoint", str(tmp_path / "r"), "--num", "1", "--steps", "1",
                 "--out", str(tmp_path / "s.gif")]) == 2
    assert_one_line_error(capsys, "could not read checkpoint", "step_000002")
    assert not (tmp_path / "s.gif").exists()
    # resume: one warning naming it, the previous complete checkpoint is used, the run ends where it would have
    train(load_config(None, common + ["train.steps=3"]), tmp_path / "r", progress=False)
    err = capsys.readouterr().err
    warn = [line for line in err.splitlines() if "could not read checkpoint" in line]
    assert len(warn) == 1 and "step_000002" in warn[0] and "falling back" in warn[0], err
    assert (tmp_path / "r" / "checkpoints" / "step_000002.damaged").is_dir()  # set aside, not deleted
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").glob("step_??????")) == ["step_000002",
                                                                                          "step_000003"]
    assert_matches_uninterrupted(tmp_path / "r", tmp_path / "full", common, 3)


def test_resume_with_every_checkpoint_damaged_is_a_clear_error(tmp_path, capsys):
    cfg = TINY + ["train.steps=1"]
    train(load_config(None, cfg), tmp_path / "r", progress=False)
    (tmp_path / "r" / "checkpoints" / "step_000001" / "state.json").write_text('{"step": 1, "optim')
    args = train_argv(tmp_path / "r", TINY + ["train.steps=2"])
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("videodiff: error: no checkpoint of")
    assert "--no-resume" in err


def test_partial_last_metrics_line_is_dropped_with_a_warning(tmp_path, capsys):
    common = TINY + ["train.ckpt_every=1"]
    train(load_config(None, common + ["train.steps=2"]), tmp_path / "r", progress=False)
    metrics = tmp_path / "r" / "metrics.jsonl"
    with metrics.open("a") as f:
        f.write('{"step": 3, "lo')  # killed while writing
    capsys.readouterr()
    train(load_config(None, common + ["train.steps=3"]), tmp_path / "r", progress=False)
    err = capsys.readouterr().err
    assert f"{metrics}: dropped its partial last line 3" in err
    assert [r["step"] for r in MetricsLog.read(metrics)] == [1, 2, 3]
    metrics.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl: line 2 is not a JSON object"):
        MetricsLog.read(metrics)


def test_disk_full_during_a_checkpoint_is_one_line_and_keeps_the_previous_one(tmp_path, capsys, monkeypatch):
    import videodiff.checkpoint as ck
    from safetensors import SafetensorError

    run = tmp_path / "r"
    train(load_config(None, TINY + ["train.steps=1"]), run, progress=False)
    before = _snapshot(run)
    real_save, calls = ck.save_file, []

    def full_disk(tensors, filename, *a, **kw):
        calls.append(filename)
        if len(calls) == 2:  # the second file of the checkpoint
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real_save(tensors, filename, *a, **kw)

    monkeypatch.setattr(ck, "save_file", full_disk)
    args = train_argv(run, TINY + ["train.steps=2"])
    capsys.readouterr()
    assert main(args) == 2
    assert_one_line_error(capsys, "could not write checkpoint", "step_000002.tmp", "os error 28")
    assert _snapshot(run) == before  # the earlier checkpoint and the pointer are untouched, no .tmp is left
    assert load_checkpoint(run)["step"] == 1


def test_a_real_file_size_limit_during_a_checkpoint_is_one_line(tmp_path):
    """A real kernel-enforced limit (RLIMIT_FSIZE, as on a nearly full disk or quota): the second run of the same
    command hits it inside its checkpoint write, exits 2 with one line, and the first checkpoint is untouched."""
    import subprocess
    import sys

    run = tmp_path / "r"
    train(load_config(None, TINY + ["train.steps=1"]), run, progress=False)
    before = _snapshot(run)
    limit = max(p.stat().st_size for p in run.rglob("*.safetensors")) // 2  # below one checkpoint file
    code = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG (OSError) instead of death by signal\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
            "from videodiff.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    args = train_argv(run, TINY + ["train.steps=2"])
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    err = [line for line in res.stderr.splitlines() if line.startswith("videodiff: error")]
    assert res.returncode == 2 and len(err) == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "step_000002" in err[0]
    assert _snapshot(run) == before and load_checkpoint(run)["step"] == 1
