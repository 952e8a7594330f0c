"""videodiff.evaluation and `videodiff eval`: video-set loading (grids, tensors, folders, runs), classifier-FVD/IS,
clear errors, and the CLI end to end on tiny inputs."""
import json

import numpy as np
import pytest
import torch

from videodiff.cli import main
from videodiff.data import DataConfig
from videodiff.evaluation import (compute_metrics, dataset_videos, find_grid, load_video_set, parse_grid,
                                tensor_to_uint8)
from videodiff.io import read_video, save_video_grid, write_video
from videodiff.metrics.classifier import classifier_fvd, classifier_inception_score, load_classifier

MM32 = DataConfig(num_frames=8, image_size=32, num_digits=1)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def real():
    return dataset_videos(MM32, "test", 64).videos  # uint8 (64, 8, 32, 32, 3)


def _noise(n, seed=0, shape=(8, 32, 32)):
    return np.repeat(np.random.default_rng(seed).integers(0, 256, (n, *shape, 1), dtype=np.uint8), 3, -1)


# ------------------------------------------------------------------------------------------- grids and loading


@pytest.mark.parametrize("ext", ["gif", "mp4"])
def test_grid_round_trip(tmp_path, ext):
    videos = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (7, 1, 4, 16, 16))).float()
    videos[:, :, :, :8] = -1  # dark halves: content next to the white padding, as in Moving MNIST
    save_video_grid(videos, tmp_path / f"g.{ext}")  # 3x3 grid, two empty (white) cells at the end
    frames = read_video(tmp_path / f"g.{ext}")
    assert find_grid(frames) == (3, 3, 16, 16)
    cells = parse_grid(frames)
    ref = tensor_to_uint8(videos)
    assert cells.shape == ref.shape == (7, 4, 16, 16, 3)
    err = np.abs(cells.astype(int) - ref)
    assert err.max() == 0 if ext == "gif" else err.mean() < 25  # gif gray is lossless; H.264 on noise is not
    assert parse_grid(frames, keep_empty=True).shape[0] == 9
    # given rows/cols, and the loader's inference, agree
    assert load_video_set(tmp_path / f"g.{ext}", grid_rows=3, grid_cols=3).videos.shape == (7, 4, 16, 16, 3)
    with pytest.raises(ValueError, match="--grid-rows"):
        parse_grid(np.zeros((2, 20, 20, 3), np.uint8))


def test_grid_of_odd_sized_rgb_videos(tmp_path):
    videos = torch.rand(5, 3, 3, 15, 17) * 2 - 1
    save_video_grid(videos, tmp_path / "g.gif", nrow=2)
    assert load_video_set(tmp_path / "g.gif").videos.shape == (5, 3, 15, 17, 3)


def test_load_tensor_folder_and_run_dir(tmp_path, real):
    lib = torch.from_numpy(real[:6]).permute(0, 4, 1, 2, 3)[:, :1].float() / 127.5 - 1  # (6, 1, 8, 32, 32)
    torch.save(lib, tmp_path / "s.pt")
    s = load_video_set(tmp_path / "s.pt", frames=5, num=4)
    assert s.videos.shape == (4, 5, 32, 32, 3) and np.array_equal(s.videos, real[:4, :5])
    # a folder of single-video files
    for i in range(3):
        write_video(tmp_path / "vids" / f"{i}.gif", real[i])
    f = load_video_set(tmp_path / "vids")
    assert f.videos.shape == (3, 8, 32, 32, 3) and np.array_equal(f.videos, real[:3])
    # a run directory: the newest sample grid
    save_video_grid(lib, tmp_path / "run" / "samples" / "step_000001.gif")
    save_video_grid(lib[:4], tmp_path / "run" / "samples" / "step_000002.gif")
    r = load_video_set(tmp_path / "run")
    assert r.videos.shape == (4, 8, 32, 32, 3) and r.info["file"].endswith("step_000002.gif")
    with pytest.raises(FileNotFoundError, match="--fake .*no such"):
        load_video_set(tmp_path / "nothing", what="--fake")
    with pytest.raises(ValueError, match="fewer than --frames 9"):
        load_video_set(tmp_path / "s.pt", frames=9)


# ------------------------------------------------------------------------------------------- classifier metrics


def test_classifier_fvd_and_is(real):
    model = load_classifier("moving-mnist-32")
    same = classifier_fvd(real, real, model)
    assert abs(same.value) < 1e-3 and same.protocol["num_real"] == 64  # sqrtm round-off only
    halves = classifier_fvd(real[:32], real[32:], model).value
    noise = classifier_fvd(real[:32], _noise(32), model).value
    assert noise > 20 * halves, (halves, noise)
    score = classifier_inception_score(real, model)
    assert score["IS@1"][0] > 5.0  # 10 balanced, confidently recognised classes give ~10
    assert classifier_inception_score(_noise(64), model)["IS@1"][0] < score["IS@1"][0]


def test_compute_metrics_errors_name_the_option(real):
    with pytest.raises(ValueError, match="--inception"):
        compute_metrics(real, real, ["fid", "cfvd"])
    with pytest.raises(ValueError, match="--fvd-repeat-frames"):
        compute_metrics(real, real, ["fvd"])
    with pytest.raises(ValueError, match="unknown metric 'lpips'"):
        compute_metrics(real, real, ["lpips"])
    with pytest.raises(ValueError, match="pair .* 64 videos x 8 frames x 32x32 .* 63 videos"):
        compute_metrics(real, real[1:], ["cfvd", "ssim"])
    with pytest.raises(ValueError, match="--classifier"):
        compute_metrics(_noise(2, shape=(8, 48, 48)), _noise(2, shape=(8, 48, 48)), ["cfvd"])


def test_fvd_repeat_frames_reaches_i3d_length(real, monkeypatch):
    class StubI3D(torch.nn.Module):  # per-channel means as features; records the clip length it was fed
        frames = []

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            self.frames.append(x.shape[2])
            return x.mean(dim=(2, 3, 4))

    import videodiff.metrics.i3d as i3d

    monkeypatch.setattr(i3d, "load_i3d", lambda *a, **k: StubI3D())
    res = compute_metrics(real[:4], _noise(4), ["fvd"], fvd_repeat_frames=True)["fvd"]
    assert StubI3D.frames and set(StubI3D.frames) == {16}  # 8 frames, each repeated twice
    assert res["protocol"]["frames_repeated"] == 2 and "not comparable" in res["protocol"]["note"]
    assert res["value"] > 0


# ------------------------------------------------------------------------------------------------------- CLI


def test_cli_eval_end_to_end(tmp_path, real, capsys):
    torch.save(torch.from_numpy(real[:24]).permute(0, 4, 1, 2, 3).float() / 127.5 - 1, tmp_path / "real.pt")
    save_video_grid(torch.from_numpy(_noise(6)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1, tmp_path / "fake.gif")
    out = tmp_path / "res.json"
    rc = main(["eval", "--real", str(tmp_path / "real.pt"), "--fake", str(tmp_path / "fake.gif"),
               "--metrics", "cfvd,cis", "--num", "20", "--json", str(out), "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["real"]["num"] == 20 and res["fake"]["num"] == 6 and res["fake"]["kind"] == "grid"
    m = res["metrics"]
    assert m["cfvd"]["value"] > 0 and m["cfvd"]["protocol"]["network"] == "moving-mnist-32"
    assert len(m["cfvd"]["protocol"]["weights_sha256"]) == 64 and m["cis"]["fake"]["IS@1"][0] > 0
    assert "IS@10" in m["cis"]["real"] and "IS@10" not in m["cis"]["fake"]  # 6 videos: no 10 splits of >= 2
    assert res["command"].startswith("videodiff eval --real")
    assert "cfvd" in capsys.readouterr().out


def test_cli_eval_errors(tmp_path, real, capsys):
    torch.save(torch.zeros(2, 1, 8, 32, 32), tmp_path / "a.pt")
    assert main(["eval", "--real", str(tmp_path / "missing"), "--fake", str(tmp_path / "a.pt")]) == 2
    assert "--real" in capsys.readouterr().err
    assert main(["eval", "--real", str(tmp_path / "a.pt"), "--fake", str(tmp_path / "a.pt"), "--metrics", "fid"]) == 2
    assert "--inception" in capsys.readouterr().err
    assert main(["eval", "--real", str(tmp_path / "a.pt"), "--fake", str(tmp_path / "a.pt"), "--metrics", "fvd"]) == 2
    assert "--fvd-repeat-frames" in capsys.readouterr().err
    assert main(["eval", "--real", str(tmp_path / "a.pt")]) == 2
    assert "--fake" in capsys.readouterr().err


def test_cli_eval_checkpoint(tmp_path):
    from videodiff.config import load_config
    from videodiff.train import train

    cfg = load_config(None, ["data.image_size=32", "data.num_frames=8", "data.num_digits=1", "model.base_channels=8",
                             "model.channel_mults=[1, 2]", "model.num_res_blocks=1", "model.attn_resolutions=[]",
                             "model.head_dim=8", "train.steps=1", "train.batch_size=1", "sample.num=1",
                             "sample.steps=1"])
    train(cfg, tmp_path / "run", progress=False)
    out = tmp_path / "ck.json"
    rc = main(["eval", "--checkpoint", str(tmp_path / "run"), "--num", "3", "--steps", "2", "--metrics", "cfvd",
               "--save-samples", str(tmp_path / "s.pt"), "--json", str(out), "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["real"]["split"] == "test" and res["real"]["num"] == 3
    assert res["fake"]["step"] == 1 and res["fake"]["steps"] == 2 and res["metrics"]["cfvd"]["value"] > 0
    assert torch.load(tmp_path / "s.pt").shape == (3, 1, 8, 32, 32)


def test_white_videos_are_not_mistaken_for_grids(tmp_path):
    white = np.full((3, 20, 24, 3), 255, np.uint8)
    white[:, 8:12, 10:14] = 0  # a small dark object on a white background
    assert find_grid(white) is None
    write_video(tmp_path / "w" / "a.gif", white)
    write_video(tmp_path / "w" / "b.gif", white)
    assert load_video_set(tmp_path / "w").videos.shape == (2, 3, 20, 24, 3)
    one = tensor_to_uint8(torch.zeros(1, 1, 3, 8, 8) - 1)
    save_video_grid(torch.zeros(1, 1, 3, 8, 8) - 1, tmp_path / "one.gif")  # one video with the grid border
    assert np.array_equal(load_video_set(tmp_path / "one.gif").videos, one)
