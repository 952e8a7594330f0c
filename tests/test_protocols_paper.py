"""The paper's benchmark protocols (issue 28): ``videodiff eval --protocol bair|kinetics600|ucf101``
(videodiff/evaluation/protocols_paper.py, protocol_paper_run.py, videodiff/cli/protocol_paper.py).

Every dataset is written here in its native format with the helpers of tests/test_paper_datasets.py (BAIR TFRecords
of raw frames, Kinetics .mp4 + CSV, a UCF-101 .avi tree with its lists), 18-frame videos so that a 16-frame clip
fits. I3D is a stub (per-channel means, recording how many clips each call embeds) and C3D a thinned network with
random weights: the tests check which clips are scored, how many, and the JSON, not published values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.test_paper_datasets import _episode, _frames, _write
from videodiff.data.tfrecord import write_records


class StubI3D(torch.nn.Module):
    """Per-channel means as 3-d features; ``calls`` holds the number of clips each forward saw."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.calls: list[int] = []

    def forward(self, x):  # (B, 3, T, 224, 224)
        self.calls.append(x.shape[0])
        return x.mean(dim=(2, 3, 4)) + x[:, :, :, :8, :8].std(dim=(2, 3, 4))


@pytest.fixture
def stub_i3d(monkeypatch):
    import videodiff.metrics.i3d as i3d

    stub = StubI3D()
    monkeypatch.setattr(i3d, "load_i3d", lambda *a, **k: stub)
    return stub


# ------------------------------------------------------------------------------------------ datasets, native formats

def _bair(root: Path, test: int = 3) -> Path:
    for split, seeds in (("train", (0,)), ("test", tuple(range(10, 10 + test)))):
        folder = root / "softmotion30_44k" / split
        folder.mkdir(parents=True)
        write_records(folder / f"traj_{seeds[0]}_to_{seeds[-1]}.tfrecords", [_episode(s) for s in seeds])
    return root


def _kinetics(root: Path) -> tuple[Path, Path]:
    rows = [("zumba", f"{c * 11}", 0, 10, "test") for c in "abcd"] + [("abseiling", "e" * 11, 0, 10, "train")]
    for i, (label, yid, s, e, split) in enumerate(rows):
        if yid != "c" * 11:  # one test video removed from YouTube: skipped and counted
            _write(root / "videos" / label / f"{yid}_{s:06d}_{e:06d}.mp4", _frames(18, 36, 48, i), "libx264")
    csv = root / "k600.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\n" + "".join(",".join(map(str, r)) + "\n"
                                                                          for r in rows))
    return root / "videos", csv


def _ucf101(root: Path) -> Path:
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    classes = ["ApplyEyeMakeup", "Basketball"]
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    train, test = [], []
    for ci, c in enumerate(classes):
        for g in (1, 2, 8):
            rel = f"{c}/v_{c}_g{g:02d}_c01.avi"
            _write(root / "UCF-101" / rel, _frames(18, 48, 64, ci * 10 + g), "mpeg4")
            (test if g == 1 else train).append(rel if g == 1 else f"{rel} {ci + 1}")
    (lists / "trainlist01.txt").write_text("\r\n".join(train) + "\r\n")
    (lists / "testlist01.txt").write_text("\r\n".join(test) + "\r\n")
    return root


def _checkpoint(tmp_path: Path) -> Path:
    from videodiff.checkpoint import save_checkpoint
    from videodiff.config import config_to_dict, load_config
    from videodiff.pipeline import build_model

    cfg = load_config(None, ["data.num_frames=16", "data.image_size=64", "data.channels=3", "model.base_channels=8",
                             "model.channel_mults=[1,2,2]", "model.num_res_blocks=1", "model.attn_resolutions=[]",
                             "model.head_dim=8", "sample.steps=1", "sample.sampler=ddim"])
    torch.manual_seed(0)
    net = build_model(cfg)
    run = tmp_path / "run"
    save_checkpoint(run, 1, net, net, torch.optim.AdamW(net.parameters()), {}, config_to_dict(cfg))
    return run


def _c3d_files(tmp_path: Path) -> tuple[Path, Path]:
    from videodiff.metrics.c3d import C3D, save_c3d_npz

    torch.manual_seed(0)
    save_c3d_npz(C3D(width=0.0625), str(tmp_path / "c3d.npz"))
    np.savez(tmp_path / "mean2.npz", mean=np.full((1, 3, 16, 128, 128), 100, np.float32))
    return tmp_path / "c3d.npz", tmp_path / "mean2.npz"


# ------------------------------------------------------------------------------------------ definitions and clips

def test_protocols_are_registered_with_the_papers_counts():
    from videodiff.evaluation.protocols import get_protocol

    bair, k600, ucf = (get_protocol(n) for n in ("bair", "kinetics600", "ucf101"))
    assert (bair.given, bair.predicted, bair.videos, bair.samples) == (1, 15, 256, 100)
    assert (k600.given, k600.predicted, k600.frames) == (5, 11, 16)
    assert (ucf.given, ucf.frames, ucf.samples) == (0, 16, 10000)  # Sec. 4.1: "10,000 samples"
    assert [p.metrics["fvd"] for p in (bair,)][0].count("mean of per-sample FVDs") == 1
    assert {p.method: p.metrics for p in bair.published}["Video Diffusion Models"] == {"fvd": 66.92}
    assert {p.method: p.metrics for p in k600.published}["Video Diffusion Models"] == {"fvd": 16.2}
    assert {p.method: p.metrics for p in ucf.published}["Video Diffusion Models"]["is"] == 57.8
    assert "Table 1" in ucf.published[0].source and "not in our copy" in bair.published[0].source


def test_select_indices_first_and_seeded():
    from videodiff.evaluation.protocols_paper import select_indices

    assert select_indices(5, 9, "seeded") == [0, 1, 2, 3, 4]
    assert select_indices(100, 3, "first") == [0, 1, 2]
    a = select_indices(1000, 10, "seeded")
    assert a == select_indices(1000, 10, "seeded") and len(set(a)) == 10 and a == sorted(a) and a != list(range(10))


def test_bair_clips_are_the_first_16_frames_of_the_test_episodes(tmp_path):
    from videodiff.data.bair import BAIRPushing
    from videodiff.evaluation.protocols_paper import PAPER_PROTOCOLS, ProtocolClips, load_protocol_clips

    root = _bair(tmp_path / "bair")
    real, rec = load_protocol_clips(PAPER_PROTOCOLS["bair"], root)
    assert real.shape == (3, 3, 16, 64, 64) and rec["available"] == 3 and rec["clips"] == 3
    clips = ProtocolClips(PAPER_PROTOCOLS["bair"], root)
    assert torch.equal(torch.cat([c for _, c in clips.chunks(2)]), real)  # streamed in chunks: the same clips
    assert clips.record()["sha256_paths_starts"] == rec["sha256_paths_starts"]
    episodes = BAIRPushing(root, split="test", num_frames=16)
    for i in range(3):
        frames = episodes.episode(i)["frames"][:16]  # (16, 64, 64, 3) uint8
        expected = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1
        assert torch.allclose(real[i], expected, atol=1e-6)


# ------------------------------------------------------------------------------------------ the runner

def test_prediction_protocol_counts_and_a_perfect_predictor(tmp_path, stub_i3d):
    from videodiff.evaluation.protocol_paper_run import format_paper_protocol, run_paper_protocol
    from videodiff.evaluation.protocols_paper import PAPER_PROTOCOLS, load_protocol_clips

    protocol = PAPER_PROTOCOLS["bair"]
    real, rec = load_protocol_clips(protocol, _bair(tmp_path / "bair"))
    seen = []

    def oracle(given, method, start):
        seen.append((tuple(given.shape), start))
        assert torch.equal(given, real[start : start + len(given), :, :1])
        return real[start : start + len(given), None].repeat(1, 4, 1, 1, 1, 1)  # every sample the true future

    res = run_paper_protocol(protocol, real, rec, predict=oracle, samples=4, batch_size=16, progress=False)
    rows = {r["method"]: r for r in res["results"]}
    assert seen == [((3, 3, 1, 64, 64), 0)]
    # I3D saw the 3 real clips, then 4 sets of 3 (one per sample index), then the copy baseline's one set of 3
    assert stub_i3d.calls == [3] + [3] * 4 + [3]
    model = rows["gradient"]
    assert len(model["fvd_per_k"]) == 4 and model["fvd_sets"] == {"real_clips": 3, "samples_per_set": 3, "sets": 4}
    assert model["fvd_mean_of_k"] == pytest.approx(0, abs=1e-2) and model["given_max_abs_change"] == 0
    assert rows["last-frame copy"]["fvd_mean_of_k"] > 0.1 and len(rows["last-frame copy"]["fvd_per_k"]) == 1
    p = res["protocol"]
    assert (p["dataset"], p["split"], p["clips"], p["conditioning_frames"], p["predicted_frames"],
            p["samples_per_clip"], p["samples"]) == ("bair", "test", 3, 1, 15, 4, 12)
    assert p["deviations"] == ["3 real clips instead of 256", "4 samples per clip instead of 100"]
    assert "Video Diffusion Models (published)" in format_paper_protocol(res)
    # chunk by chunk (one clip at a time: 3 predict calls, features gathered), the same scores
    seen.clear()
    chunked = run_paper_protocol(protocol, real, rec, predict=oracle, samples=4, batch_size=16, progress=False,
                                 chunk=1)
    assert seen == [((1, 3, 1, 64, 64), i) for i in range(3)] and chunked["protocol"]["chunk_clips"] == 1
    for a, b in zip(res["results"], chunked["results"]):
        assert a["fvd_per_k"] == pytest.approx(b["fvd_per_k"], abs=1e-3), (a, b)


def test_fvd_from_gathered_features_equals_the_smmnist_rows():
    from videodiff.evaluation.protocol_paper_run import fvd_rows_from_features
    from videodiff.evaluation.protocol_run import _fvd_rows

    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 4))
    table = [rng.normal(loc=k, size=(40, 4)) for k in range(3)]
    clips = torch.arange(3).view(1, 3, 1, 1, 1, 1).expand(40, 3, 1, 1, 1, 1).float()  # (N, K, ...): value k
    assert fvd_rows_from_features(real, table) == _fvd_rows(clips, real, lambda v: table[int(v[0].item())])


def test_unconditional_protocol_scores_generated_clips_against_the_real_ones(tmp_path, stub_i3d):
    from videodiff.evaluation.protocol_paper_run import format_paper_protocol, run_paper_protocol
    from videodiff.evaluation.protocols_paper import PAPER_PROTOCOLS, load_protocol_clips
    from videodiff.metrics.c3d import load_c3d

    protocol = PAPER_PROTOCOLS["ucf101"]
    real, rec = load_protocol_clips(protocol, _ucf101(tmp_path / "ucf"), 5)
    assert real.shape == (5, 3, 16, 64, 64) and rec["available"] == 6  # all_videos: train + test lists
    c3d = load_c3d(*map(str, _c3d_files(tmp_path)))
    assert c3d.conv1a.out_channels == 4  # width read from the file
    res = run_paper_protocol(protocol, real, rec, generate=lambda n, start: real[start : start + n].clone(),
                             samples=5, c3d=c3d, batch_size=16, progress=False, chunk=2)
    model, real_row = res["results"]
    # the "model" returns the real clips: FID and FVD vanish, its IS is the real data's
    assert model["fid_c3d"] == pytest.approx(0, abs=1e-2) and model["fvd"] == pytest.approx(0, abs=1e-2)
    assert model["is_1_splits"] == real_row["is_1_splits"] and model["is_5_splits"] == real_row["is_5_splits"]
    assert model["is_clips"] == 5 and model["fvd_sets"] == {"real_clips": 5, "samples": 5}
    assert stub_i3d.calls == [2, 2, 1, 2, 2, 1]  # real then generated, in chunks of 2
    p = res["protocol"]
    assert p["conditioning_frames"] == 0 and p["samples"] == 5 and p["split"] == "train"
    assert p["c3d"]["weights_sha256"] and "is" in p["metrics"] and "IS (<=10 splits)" in format_paper_protocol(res)


# ------------------------------------------------------------------------------------------ the command line

@pytest.mark.parametrize("name", ["bair", "kinetics600", "ucf101"])
def test_cli_protocol_end_to_end_on_native_files(tmp_path, name, stub_i3d, capsys, one_thread):
    from videodiff.cli import main

    run = _checkpoint(tmp_path)
    args = ["eval", "--protocol", name, "--checkpoint", str(run), "--steps", "1", "--precision", "fp32",
            "--batch-size", "8", "--no-progress", "--json", str(tmp_path / "res.json")]
    if name == "bair":
        args += ["--data-root", str(_bair(tmp_path / "d")), "--videos", "2", "--samples", "2"]
    elif name == "kinetics600":
        videos, csv = _kinetics(tmp_path / "d")
        args += ["--data-root", str(videos), "--annotations", str(csv), "--samples", "2"]
    else:
        weights, mean = _c3d_files(tmp_path)
        args += ["--data-root", str(_ucf101(tmp_path / "d")), "--c3d-weights", str(weights), "--c3d-mean",
                 str(mean), "--videos", "4", "--samples", "3"]
    with pytest.warns(UserWarning) if name == "kinetics600" else _nothing():
        assert main(args) == 0
    res = json.loads((tmp_path / "res.json").read_text())
    p = res["protocol"]
    for key in ("dataset", "split", "clips", "conditioning_frames", "predicted_frames", "samples_per_clip",
                "metrics", "deviations", "selection", "choices"):
        assert key in p, key
    assert res["published"] and all(r["source"] for r in res["published"]) and res["model"]["step"] == 1
    rows = {r["method"]: r for r in res["results"]}
    if name == "ucf101":
        assert p["clips"] == 4 and p["samples"] == 3 and stub_i3d.calls == [4, 3]
        assert rows["model"]["is_clips"] == 3 and rows["real data"]["is_clips"] == 4
        assert np.isfinite(rows["model"]["fid_c3d"]) and np.isfinite(rows["model"]["fvd"])
        return
    n = 2 if name == "bair" else 3  # kinetics: 4 test rows, one video missing
    given = 1 if name == "bair" else 5
    assert (p["clips"], p["conditioning_frames"], p["samples_per_clip"]) == (n, given, 2)
    assert stub_i3d.calls == [n] + [n] * 2 + [n]  # real, 2 sample sets, the copy baseline
    assert len(rows["gradient"]["fvd_per_k"]) == 2 and rows["gradient"]["given_max_abs_change"] == 0
    if name == "kinetics600":
        assert p["data"]["available"] == 3 and p["data"]["skipped_files"] == 1 and p["data"]["csv_split"] == "test"
    assert f"{n} real clips instead of" in p["deviations"][0]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_cli_missing_data_or_weights_are_one_line_errors(tmp_path, capsys):
    from conftest import assert_one_line_error
    from videodiff.cli import main

    base = ["eval", "--checkpoint", str(tmp_path / "no-run")]
    assert main(base + ["--protocol", "bair"]) != 0
    assert_one_line_error(capsys, "--protocol bair needs --data-root PATH", "softmotion30_44k")
    assert main(base + ["--protocol", "bair", "--data-root", str(tmp_path / "nowhere")]) != 0
    assert_one_line_error(capsys, "--data-root", "nowhere", "no such folder")
    assert main(base + ["--protocol", "kinetics600", "--data-root", str(tmp_path)]) != 0
    assert_one_line_error(capsys, "--annotations CSV")
    assert main(base + ["--protocol", "ucf101", "--data-root", str(tmp_path)]) != 0
    assert_one_line_error(capsys, "--c3d-weights PATH", "never downloaded")
    (tmp_path / "w.npz").write_bytes(b"")
    assert main(base + ["--protocol", "ucf101", "--data-root", str(tmp_path), "--c3d-weights",
                        str(tmp_path / "w.npz")]) != 0
    assert_one_line_error(capsys, "--c3d-mean PATH")
    assert main(base + ["--protocol", "smmnist-mcvd", "--data-root", str(tmp_path)]) != 0
    assert_one_line_error(capsys, "--data-root does not apply to --protocol smmnist-mcvd")
