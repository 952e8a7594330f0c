"""Reliability of the commands (issue 15): bad inputs through the CLI in-process (``videodiff.cli.main([...])``)
give exit status 2 and one line on stderr naming the bad file or option (:func:`conftest.assert_one_line_error`),
checked before any expensive work; written files honour the umask; a video depends on the seed and its index
only; video headers are checked before decoding."""

import os

import pytest
import torch

from conftest import assert_one_line_error
from videodiff.cli import main
from videodiff.config import load_config
from videodiff.train import train

from test_train import TINY

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
    assert_one_line_error(capsys, f"{flag} must be >= 1, got {value}")
    assert not out.exists()


def test_sample_refuses_bad_outputs_and_devices_before_any_work(run, tmp_path, capsys, monkeypatch):
    missing = tmp_path / "no" / "dir" / "a.gif"
    assert main(_sample(run, missing)) == 2
    assert_one_line_error(capsys, "--out", "does not exist")
    assert not (tmp_path / "no").exists()  # no silent mkdir
    (tmp_path / "file").write_text("x")
    assert main(_sample(run, tmp_path / "file" / "a.gif")) == 2
    assert_one_line_error(capsys, "--out", "does not exist")
    assert main(_sample(run, tmp_path / "a.gif", "--device", "nosuchdevice")) == 2
    assert_one_line_error(capsys, "nosuchdevice", "not a device name")
    import videodiff.cli.options

    monkeypatch.setattr(videodiff.cli.options.os, "access", lambda path, mode: False)  # (root may write anywhere)
    assert main(_sample(run, tmp_path / "a.gif")) == 2
    assert_one_line_error(capsys, "--out", "not writable")


def test_disk_full_while_writing_a_video_is_one_line(run, tmp_path, capsys, monkeypatch):
    import videodiff.io

    def full(tmp, frames, fps):
        raise OSError(28, "No space left on device", tmp)

    monkeypatch.setattr(videodiff.io, "_write_gif", full)
    assert main(_sample(run, tmp_path / "a.gif")) == 2
    assert_one_line_error(capsys, "No space left on device", str(tmp_path / "a.gif"))
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
        assert_one_line_error(capsys, words)
        assert not (tmp_path / "r" / "checkpoints").exists()
    assert main(train_args(tmp_path / "r", config=bad_files / "config.yaml")) == 2
    assert_one_line_error(capsys, "config.yaml")
    assert main(train_args(bad_files / "ok.pt")) == 2  # --out is a file
    assert_one_line_error(capsys, "ok.pt")


@pytest.mark.parametrize("name,words", [
    ("hostile.pt", "Python objects"), ("dict.pt", "expected a (B, C, F, H, W) tensor"), ("nan.pt", "NaN"),
    ("truncated.pt", "cannot load"), ("garbage.pt", "cannot load"), ("empty.pt", "cannot load"),
    ("vector.pt", "expected a (B, C, F, H, W) tensor"), ("garbage.gif", "garbage.gif"), ("missing.pt", "does not exist"),
])
def test_conditional_commands_refuse_bad_inputs_in_one_line(run, bad_files, tmp_path, capsys, name, words):
    out = tmp_path / "o.gif"
    assert main(["extend", "--checkpoint", str(run), "--input", str(bad_files / name), "--frames", "6",
                 "--steps", "1", "--out", str(out)]) == 2
    line = assert_one_line_error(capsys, words)
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
    assert_one_line_error(capsys, words)
    assert not out.exists()


def test_extend_refuses_zero_counts(run, bad_files, tmp_path, capsys):
    for extra, words in ((["--input", str(bad_files / "ok.pt"), "--frames", "0"], "--frames must be >= 1"),
                         (["--from-samples", "0"], "--from-samples must be >= 1"),
                         (["--from-samples", "1", "--context", "-1"], "--context must be >= 0")):
        assert main(["extend", "--checkpoint", str(run), "--out", str(tmp_path / "o.gif"), *extra]) == 2
        assert_one_line_error(capsys, words)


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
        assert_one_line_error(capsys, words)
    assert not (tmp_path / "no").exists()
    for name, words in (("nan.pt", "NaN"), ("hostile.pt", "Python objects"), ("dict.pt", "videos"),
                        ("truncated.pt", "cannot load")):
        assert main(["eval", "--real", ok, "--fake", str(bad_files / name), "--metrics", "cfvd"]) == 2, name
        assert_one_line_error(capsys, name, words)
    for name, words in (("ok.pt", "not an FID Inception state dict"), ("hostile.pt", "Python objects"),
                        ("garbage.pt", "cannot load")):
        assert main(base[:-3] + ["--metrics", "fid", "--inception", str(bad_files / name)]) == 2, name
        assert_one_line_error(capsys, name, words)


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

    kw = dict(steps=3, sampler=sampler, seed=7, options={"eta": 1.0} if sampler == "ddim" else None)
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
    from videodiff.evaluation.video_sets import load_video_set

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
