"""Reliability of the commands around video files (issues 15 and 29): written videos honour the umask; a video
depends on the seed and its index only; video headers are checked before any frame is decoded (absurd canvases,
too-short clips, folders that mix resolutions or lengths); evaluation refuses sets of different frame counts, naming
the ``--frames`` that fits both. The CLI's bad values and corrupt files: test_reliability_inputs.py."""

import os

import pytest
import torch

from conftest import assert_one_line_error
from videodiff.cli import main
from videodiff.config import load_config

from test_train import TINY

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


# ------------------------------------------------------------------------------- issue 29: silent odd inputs


def _clips(n, frames, seed=0):
    import numpy as np

    return np.repeat(np.random.default_rng(seed).integers(0, 256, (n, frames, 32, 32, 1), dtype=np.uint8), 3, -1)


@pytest.mark.parametrize("inputs,extra", [("folders", []), ("tensors", []), ("tensors", ["--no-stream"])])
def test_eval_refuses_sets_of_different_frame_counts_naming_frames(tmp_path, capsys, inputs, extra):
    """16-frame real against 8-frame fake clips was compared silently (the classifier picked by the fake set read
    the first 8 frames of the real one); now one line names both counts and the --frames that trims both sets."""
    from videodiff.io import write_video

    if inputs == "folders":  # video files, decoded clip by clip
        for i, v in enumerate(_clips(3, 16)):
            write_video(tmp_path / "real" / f"{i}.mp4", v)
        for i, v in enumerate(_clips(3, 8, seed=1)):
            write_video(tmp_path / "fake" / f"{i}.mp4", v)
        real, fake = tmp_path / "real", tmp_path / "fake"
    else:
        for name, frames, seed in (("real.pt", 16, 0), ("fake.pt", 8, 1)):
            torch.save(torch.from_numpy(_clips(3, frames, seed)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1,
                       tmp_path / name)
        real, fake = tmp_path / "real.pt", tmp_path / "fake.pt"
    unit = "videos" if extra else "clips"  # sets held whole (--no-stream) or streamed
    argv = ["eval", "--real", str(real), "--fake", str(fake), "--metrics", "cfvd", "--no-progress", *extra]
    assert main(argv) == 2
    assert_one_line_error(capsys, f"the real {unit} have 16 frames and the fake 8", "--frames 8")
    assert main(argv + ["--frames", "8", "--json", str(tmp_path / "r.json")]) == 0  # the advice works
    import json

    res = json.loads((tmp_path / "r.json").read_text())
    assert res["real"]["frames"] == res["fake"]["frames"] == 8 and res["metrics"]["cfvd"]["value"] > 0
