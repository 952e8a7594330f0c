"""Reliability (issue 15): divergence detection, checkpoint robustness, and bad inputs through the CLI.

The CLI tests run ``videodiff.cli.main([...])`` in-process and assert the README's contract for expected failures:
exit status 2 and one line on stderr naming the bad file or option, with no traceback, and nothing lost or changed in
the checkpoints written before.
"""

import json
import math
import os
from pathlib import Path

import pytest
import torch

from videodiff.checkpoint import latest_checkpoint, load_checkpoint
from videodiff.cli import main
from videodiff.config import load_config
from videodiff.train import train
from videodiff.train.loop import TrainingDivergedError
from videodiff.train.report import MetricsLog

from test_train import TINY, _losses


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


def _one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("videodiff: error: "), err
    # before it, at most notes and progress bars: the error is that one line
    assert all(line.startswith("note:") or "it/s]" in line for line in lines[:-1]), err
    assert "Traceback" not in err and "weights_only=False" not in err, err
    for w in words:
        assert w in lines[-1], (w, lines[-1])
    return lines[-1]


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
    args = ["train", "--out", str(tmp_path / "r"), "--no-progress"]
    for o in TINY + ["train.steps=6", "train.ckpt_every=1", "train.lr=1e30", "train.warmup_steps=1"]:
        args += ["--set", o]
    assert main(args) == 2
    line = _one_line_error(capsys, "training diverged", "at step")
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
    _one_line_error(capsys, "could not read checkpoint", "step_000002")
    assert not (tmp_path / "s.gif").exists()
    # resume: one warning naming it, the previous complete checkpoint is used, the run ends where it would have
    train(load_config(None, common + ["train.steps=3"]), tmp_path / "r", progress=False)
    err = capsys.readouterr().err
    warn = [line for line in err.splitlines() if "could not read checkpoint" in line]
    assert len(warn) == 1 and "step_000002" in warn[0] and "falling back" in warn[0], err
    assert (tmp_path / "r" / "checkpoints" / "step_000002.damaged").is_dir()  # set aside, not deleted
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").glob("step_??????")) == ["step_000002",
                                                                                          "step_000003"]
    train(load_config(None, common + ["train.steps=3"]), tmp_path / "full", progress=False)
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "r")
    assert a["step"] == b["step"] == 3
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k
    assert _losses(tmp_path / "full") == _losses(tmp_path / "r")


def test_resume_with_every_checkpoint_damaged_is_a_clear_error(tmp_path, capsys):
    cfg = TINY + ["train.steps=1"]
    train(load_config(None, cfg), tmp_path / "r", progress=False)
    (tmp_path / "r" / "checkpoints" / "step_000001" / "state.json").write_text('{"step": 1, "optim')
    args = ["train", "--out", str(tmp_path / "r"), "--no-progress"]
    for o in TINY + ["train.steps=2"]:
        args += ["--set", o]
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
    args = ["train", "--out", str(run), "--no-progress"]
    for o in TINY + ["train.steps=2"]:
        args += ["--set", o]
    capsys.readouterr()
    assert main(args) == 2
    _one_line_error(capsys, "could not write checkpoint", "step_000002.tmp", "os error 28")
    assert _snapshot(run) == before  # the earlier checkpoint and the pointer are untouched, no .tmp is left
    assert load_checkpoint(run)["step"] == 1


# ------------------------------------------------------------------------------------------------ bad inputs


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained TINY run (1 step) for the commands that load a model."""
    path = tmp_path_factory.mktemp("rel") / "run"
    train(load_config(None, TINY + ["train.steps=1"]), path, progress=False)
    return path


class _Hostile:
    def __reduce__(self):  # unpickling would run os.system
        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    torch.save(_Hostile(), d / "hostile.pt")
    torch.save({"a": 1, "b": [2, 3]}, d / "dict.pt")
    torch.save(torch.full((1, 1, 4, 16, 16), float("nan")), d / "nan.pt")
    torch.save(torch.zeros(2, 1, 8, 32, 32), d / "ok.pt")
    torch.save(torch.zeros(3), d / "vector.pt")
    data = (d / "ok.pt").read_bytes()
    (d / "truncated.pt").write_bytes(data[: len(data) // 2])
    (d / "garbage.pt").write_bytes(b"\x00\x01 not a torch file at all")
    (d / "empty.pt").write_bytes(b"")
    (d / "garbage.gif").write_bytes(b"GIF89a garbage")
    (d / "config.yaml").write_text("train: [unclosed\n")
    return d


def _sample(run, out, *extra):
    return ["sample", "--checkpoint", str(run), "--num", "1", "--steps", "1", "--out", str(out), *extra]


@pytest.mark.parametrize("flag,value", [("--steps", "0"), ("--frames", "0"), ("--fps", "0"), ("--num", "0"),
                                        ("--batch-size", "0"), ("--num", "-3"), ("--steps", "-1")])
def test_sample_refuses_zero_and_negative_counts(run, tmp_path, capsys, flag, value):
    out = tmp_path / "s.gif"
    assert main(_sample(run, out) + [flag, value]) == 2
    _one_line_error(capsys, f"{flag} must be >= 1, got {value}")
    assert not out.exists()


def test_sample_refuses_bad_outputs_and_devices_before_any_work(run, tmp_path, capsys, monkeypatch):
    missing = tmp_path / "no" / "dir" / "a.gif"
    assert main(_sample(run, missing)) == 2
    _one_line_error(capsys, "--out", "does not exist")
    assert not (tmp_path / "no").exists()  # no silent mkdir
    (tmp_path / "file").write_text("x")
    assert main(_sample(run, tmp_path / "file" / "a.gif")) == 2
    _one_line_error(capsys, "--out", "does not exist")
    assert main(_sample(run, tmp_path / "a.gif", "--device", "nosuchdevice")) == 2
    _one_line_error(capsys, "nosuchdevice", "not a device name")
    import videodiff.cli_common

    monkeypatch.setattr(videodiff.cli_common.os, "access", lambda path, mode: False)  # (root may write anywhere)
    assert main(_sample(run, tmp_path / "a.gif")) == 2
    _one_line_error(capsys, "--out", "not writable")


def test_disk_full_while_writing_a_video_is_one_line(run, tmp_path, capsys, monkeypatch):
    import videodiff.io

    def full(tmp, frames, fps):
        raise OSError(28, "No space left on device", tmp)

    monkeypatch.setattr(videodiff.io, "_write_gif", full)
    assert main(_sample(run, tmp_path / "a.gif")) == 2
    _one_line_error(capsys, "No space left on device", str(tmp_path / "a.gif"))
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


def test_train_refuses_bad_settings_before_training(tmp_path, bad_files, capsys):
    def train_args(out, *sets, config=None):
        args = ["train", "--out", str(out), "--no-progress"] + (["--config", str(config)] if config else [])
        for o in TINY + ["train.steps=1", *sets]:
            args += ["--set", o]
        return args

    for sets, words in ((["sample.num=0"], "sample.num must be >= 1"), (["sample.fps=0"], "sample.fps must be >= 1"),
                        (["train.steps=-1"], "train.steps must be >= 1"),
                        (["train.device=nosuchdevice"], "nosuchdevice")):
        assert main(train_args(tmp_path / "r", *sets)) == 2, sets
        _one_line_error(capsys, words)
        assert not (tmp_path / "r" / "checkpoints").exists()
    assert main(train_args(tmp_path / "r", config=bad_files / "config.yaml")) == 2
    _one_line_error(capsys, "config.yaml")
    assert main(train_args(bad_files / "ok.pt")) == 2  # --out is a file
    _one_line_error(capsys, "ok.pt")


@pytest.mark.parametrize("name,words", [
    ("hostile.pt", "Python objects"), ("dict.pt", "expected a (B, C, F, H, W) tensor"), ("nan.pt", "NaN"),
    ("truncated.pt", "cannot load"), ("garbage.pt", "cannot load"), ("empty.pt", "cannot load"),
    ("vector.pt", "expected a (B, C, F, H, W) tensor"), ("garbage.gif", "garbage.gif"), ("missing.pt", "does not exist"),
])
def test_conditional_commands_refuse_bad_inputs_in_one_line(run, bad_files, tmp_path, capsys, name, words):
    out = tmp_path / "o.gif"
    assert main(["extend", "--checkpoint", str(run), "--input", str(bad_files / name), "--frames", "6",
                 "--steps", "1", "--out", str(out)]) == 2
    line = _one_line_error(capsys, words)
    assert name in line
    assert not out.exists()


def test_hostile_pickle_runs_no_code(bad_files, tmp_path, capsys, monkeypatch):
    ran = []
    monkeypatch.setattr(os, "system", lambda cmd: ran.append(cmd))
    from videodiff.io import load_tensor_file

    with pytest.raises(ValueError, match="hostile.pt: cannot load as a tensor file") as e:
        load_tensor_file(bad_files / "hostile.pt", "--input")
    assert not ran and "weights_only" not in str(e.value)


@pytest.mark.parametrize("argv,words", [
    (["upsample", "--low-size", "0"], "--low-size must be >= 1, got 0"),
    (["upsample", "--max-frames", "0"], "--max-frames must be >= 1"),
    (["interpolate", "--factor", "0"], "--factor must be >= 1, got 0"),
    (["interpolate", "--factor", "2", "--fps", "0"], "--fps must be >= 1"),
    (["interpolate", "--factor", "2", "--steps", "0"], "--steps must be >= 1"),
])
def test_conditional_commands_refuse_zero_counts(run, bad_files, tmp_path, capsys, argv, words):
    out = tmp_path / "o.gif"
    cmd = argv[:1] + ["--checkpoint", str(run), "--input", str(bad_files / "ok.pt"), "--out", str(out)] + argv[1:]
    assert main(cmd) == 2
    _one_line_error(capsys, words)
    assert not out.exists()


def test_extend_refuses_zero_counts(run, bad_files, tmp_path, capsys):
    for extra, words in ((["--input", str(bad_files / "ok.pt"), "--frames", "0"], "--frames must be >= 1"),
                         (["--from-samples", "0"], "--from-samples must be >= 1"),
                         (["--from-samples", "1", "--context", "-1"], "--context must be >= 0")):
        assert main(["extend", "--checkpoint", str(run), "--out", str(tmp_path / "o.gif"), *extra]) == 2
        _one_line_error(capsys, words)


def test_eval_refuses_bad_inputs_in_one_line(bad_files, tmp_path, capsys):
    ok = str(bad_files / "ok.pt")
    base = ["eval", "--real", ok, "--fake", ok, "--metrics", "cfvd", "--no-progress"]
    cases = [
        (["--json", str(tmp_path / "no" / "r.json")], "--json"),
        (["--num", "0"], "--num must be >= 1"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--frames", "0"], "--frames must be >= 1"),
        (["--device", "nosuchdevice"], "nosuchdevice"),
        (["--inception", str(tmp_path / "missing.pth")], "--inception"),
    ]
    for extra, words in cases:
        assert main(base + extra) == 2, extra
        _one_line_error(capsys, words)
    assert not (tmp_path / "no").exists()
    for name, words in (("nan.pt", "NaN"), ("hostile.pt", "Python objects"), ("dict.pt", "videos"),
                        ("truncated.pt", "cannot load")):
        assert main(["eval", "--real", ok, "--fake", str(bad_files / name), "--metrics", "cfvd"]) == 2, name
        _one_line_error(capsys, name, words)
    for name, words in (("ok.pt", "not an FID Inception state dict"), ("hostile.pt", "Python objects"),
                        ("garbage.pt", "cannot load")):
        assert main(base[:-3] + ["--metrics", "fid", "--inception", str(bad_files / name)]) == 2, name
        _one_line_error(capsys, name, words)


# ------------------------------------------------------------------------------------------------ output files


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_videos_honour_the_umask(tmp_path, umask):
    from videodiff.io import write_video

    old = os.umask(umask)
    try:
        for ext in (".gif", ".png", ".mp4"):
            p = tmp_path / f"v{ext}"
            write_video(p, __import__("numpy").zeros((2, 16, 16, 3), dtype="uint8"), fps=4)
            assert p.stat().st_mode & 0o777 == 0o666 & ~umask, ext
    finally:
        os.umask(old)


# ------------------------------------------------------------------------------------------------ reproducibility


@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_a_video_depends_on_the_seed_and_its_index_only(sampler):
    from videodiff.pipeline import sample_videos

    cfg = load_config(None, TINY)

    def denoise(z, logsnr, **kw):  # parameter-free: any x_hat that depends on z
        return torch.tanh(z * 0.7)

    kw = dict(steps=3, sampler=sampler, seed=7, eta=1.0) if sampler == "ddim" else dict(steps=3, sampler=sampler,
                                                                                        seed=7)
    a = sample_videos(denoise, cfg, 5, batch_size=2, **kw)
    b = sample_videos(denoise, cfg, 3, batch_size=3, **kw)
    c = sample_videos(denoise, cfg, 4, batch_size=1, **kw)
    torch.testing.assert_close(a[:3], b, rtol=0, atol=0)
    torch.testing.assert_close(a[:4], c, rtol=0, atol=0)
    assert not torch.equal(a[0], a[1])  # different indices, different videos
    d = sample_videos(denoise, cfg, 2, batch_size=2, **{**kw, "seed": 8})
    assert not torch.equal(a[:2], d)


def test_an_absurd_canvas_is_refused_before_decoding(tmp_path):
    """A tiny GIF that declares a 9000x9000 canvas (243 MB per decoded frame) is refused from its header."""
    from PIL import Image

    from videodiff.io import VideoReadError, read_video

    path = tmp_path / "huge.gif"
    Image.new("P", (9000, 9000)).save(path)  # a few KB on disk: one palette colour compresses to nothing
    assert path.stat().st_size < 100_000
    with pytest.raises(VideoReadError, match="9000x9000 pixels exceed the reader's limit"):
        read_video(path)


def test_a_too_short_video_names_the_frameskip_that_would_fit(tmp_path):
    import numpy as np

    from videodiff.data.video_folder import VideoFolder
    from videodiff.io import VideoReadError, write_video

    write_video(tmp_path / "short.mp4", np.zeros((20, 16, 16, 3), np.uint8), fps=8)
    with pytest.raises(VideoReadError, match="set data.frameskip=3 or lower to use it, or data.on_error=skip"):
        VideoFolder(tmp_path, num_frames=7, frameskip=4, image_size=16)


def test_a_mixed_folder_fails_from_the_headers_naming_the_files(tmp_path, monkeypatch):
    """Resolution and length mismatches are found from the headers, before any frame is decoded."""
    import numpy as np

    import videodiff.io as vio
    from videodiff.io import write_video
    from videodiff.video_sets import load_video_set

    write_video(tmp_path / "a.mp4", np.zeros((12, 32, 32, 3), np.uint8), fps=8)
    write_video(tmp_path / "b.mp4", np.zeros((10, 32, 32, 3), np.uint8), fps=8)
    decoded = []
    monkeypatch.setattr(vio, "_decode", lambda *a, **k: decoded.append(a) or [])
    with pytest.raises(ValueError, match=r"differ in length \(b.mp4: 10 frames, a.mp4: 12\); pass --frames 10"):
        load_video_set(tmp_path, what="--real")
    with pytest.raises(ValueError, match="b.mp4 has 10 frames, fewer than --frames 11"):
        load_video_set(tmp_path, frames=11, what="--real")
    write_video(tmp_path / "c.mp4", np.zeros((12, 48, 64, 3), np.uint8), fps=8)
    with pytest.raises(ValueError, match="differ in resolution .*64x48"):
        load_video_set(tmp_path, frames=8, what="--real")
    assert decoded == []  # nothing was decoded


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
    args = ["train", "--out", str(run), "--no-progress"]
    for o in TINY + ["train.steps=2"]:
        args += ["--set", o]
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    err = [line for line in res.stderr.splitlines() if line.startswith("videodiff: error")]
    assert res.returncode == 2 and len(err) == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "step_000002" in err[0]
    assert _snapshot(run) == before and load_checkpoint(run)["step"] == 1
