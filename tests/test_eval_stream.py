"""Evaluation that streams (issue 17): folders of mixed sizes and lengths decoded clip by clip, resized on decode,
in chunks of bounded size; clip sampling; too-short files; the protocol record; the same numbers as whole sets."""
import json

import numpy as np
import pytest

import videodiff.evaluation.clip_source as cs
from videodiff.cli import main
from videodiff.evaluation.clip_source import ClipSpec, FolderClips, plan_starts
from videodiff.data import DataConfig
from videodiff.evaluation import compute_metrics, dataset_videos, evaluate_paths
from videodiff.io import write_video

pytestmark = pytest.mark.usefixtures("one_thread")
MM32 = DataConfig(num_frames=8, image_size=32, num_digits=1)


@pytest.fixture(scope="module")
def mnist():
    return dataset_videos(MM32, "test", 12).videos  # uint8 (12, 8, 32, 32, 3)


def _ramp(path, n, h=16, w=16):
    """A GIF (lossless) whose frame i is the uniform gray 8 i: decoded clips show which frames they hold."""
    write_video(path, np.repeat(np.arange(n, dtype=np.uint8)[:, None, None, None] * 8, 3, -1)
                .repeat(h, 1).repeat(w, 2), fps=8)


def _starts(src):
    return [(p.name, s) for p, s in src.plan]


def test_plan_starts_per_sampling_mode():
    assert plan_starts(30, 8, "first", None) == [0]
    assert plan_starts(30, 8, "first", 3) == [0, 8, 16]
    assert plan_starts(20, 8, "first", 5) == [0, 8]  # only what fits
    assert plan_starts(100, 10, "strided", None) == list(range(0, 100, 10))  # non-overlapping, evenly spaced
    assert plan_starts(100, 10, "strided", 3) == [0, 45, 90]
    assert plan_starts(7, 8, "strided", 3) == [] and plan_starts(8, 8, "random", 2, np.random.default_rng(0)) == [0]
    a = plan_starts(100, 10, "random", 4, np.random.default_rng(3))
    assert a == plan_starts(100, 10, "random", 4, np.random.default_rng(3)) and len(set(a)) == 4
    assert all(0 <= s <= 90 for s in a) and a == sorted(a)


def test_sampling_modes_decode_the_planned_frames(tmp_path):
    for name, n in (("a.gif", 30), ("b.gif", 20)):
        _ramp(tmp_path / name, n)

    def clips(**kw):
        src = FolderClips(tmp_path, ClipSpec(frames=4, **kw))
        got = np.concatenate(list(src.chunks()))[:, :, 0, 0, 0] // 8  # (N, 4): the source frame indices
        return src, got

    src, got = clips(sampling="first", frameskip=2)
    assert _starts(src) == [("a.gif", 0), ("b.gif", 0)] and got.tolist() == [[0, 2, 4, 6]] * 2
    src, got = clips(sampling="strided", clips_per_video=3)
    assert _starts(src) == [("a.gif", 0), ("a.gif", 13), ("a.gif", 26), ("b.gif", 0), ("b.gif", 8), ("b.gif", 16)]
    assert [row.tolist() for row in got] == [list(range(s, s + 4)) for _, s in _starts(src)]
    src, got = clips(sampling="strided")  # default: all non-overlapping clips, 30 // 4 and 20 // 4
    assert len(src) == 7 + 5
    src, got = clips(sampling="strided", clips_per_video=3, num=4)  # a cut takes files round robin
    assert _starts(src) == [("a.gif", 0), ("a.gif", 13), ("b.gif", 0), ("b.gif", 8)]
    r1, g1 = clips(sampling="random", seed=5, clips_per_video=2, num=3)
    r2, g2 = clips(sampling="random", seed=5, clips_per_video=2, num=3)
    r3, _ = clips(sampling="random", seed=6, clips_per_video=2, num=3)
    assert _starts(r1) == _starts(r2) and np.array_equal(g1, g2) and len(r1) == 3
    assert _starts(r1) != _starts(r3)
    assert [row.tolist() for row in g1] == [list(range(s, s + 4)) for _, s in _starts(r1)]
    assert r1.describe()["seed"] == 5 and r1.describe()["clips_candidates"] == 4


def test_chunks_hold_at_most_chunk_clips(tmp_path, monkeypatch):
    for i in range(10):
        _ramp(tmp_path / f"{i}.gif", 6)
    reads = []
    real_read = cs.read_video
    monkeypatch.setattr(cs, "read_video", lambda *a, **k: reads.append(a[0]) or real_read(*a, **k))
    src = FolderClips(tmp_path, ClipSpec(frames=4, chunk=3))
    assert reads == []  # planning reads headers only
    received = 0
    for chunk in src.chunks():
        assert len(chunk) <= 3
        assert len(reads) - received <= 3  # never more than one chunk decoded ahead of the consumer
        received += len(chunk)
    assert received == 10 == src.describe()["clips"]


def test_mixed_folder_evaluates_with_resize_and_records_the_protocol(tmp_path, mnist, capsys):
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir(), fake.mkdir()
    for i, v in enumerate(mnist[:6]):  # three sizes and three lengths (12, 8 and 10 frames), one too short
        big = v.repeat(1 + i % 3, 1).repeat(1 + i % 2, 2)  # (8, 32 k, 32 m, 3)
        write_video(real / f"r{i}.gif", np.concatenate([big, big[:i % 3 * 2]]), fps=8)
    write_video(real / "short.gif", mnist[0, :5], fps=8)
    for i, v in enumerate(mnist[6:]):
        write_video(fake / f"f{i}.mp4", np.pad(v, ((0, 0), (8, 8), (0, 0), (0, 0))), fps=8)  # 32x48

    assert main(["eval", "--real", str(real), "--fake", str(fake), "--metrics", "cfvd", "--frames", "8"]) == 2
    err = capsys.readouterr().err
    assert "differ in resolution" in err and "--resize S" in err
    out = tmp_path / "res.json"
    assert main(["eval", "--real", str(real), "--fake", str(fake), "--metrics", "cfvd,cis", "--frames", "8",
                 "--resize", "32", "--clip-sampling", "random", "--seed", "3", "--chunk", "4", "--json", str(out),
                 "--no-progress"]) == 0
    text = capsys.readouterr()
    assert "skipped 1 of 7" in text.err and "clips: 6 real, 6 fake; random sampling (seed 3)" in text.out
    res = json.loads(out.read_text())
    p = res["protocol"]
    assert p["streamed"] and p["resize"]["size"] == 32 and p["resize"]["crop"] == "center" and p["frames"] == 8
    assert p["sampling"] == "random" and p["seed"] == 3 and p["clips"] == {"real": 6, "fake": 6} and p["chunk"] == 4
    assert p["real"]["files_seen"] == 7 and p["real"]["files_used"] == 6
    assert p["real"]["files_skipped"][0]["file"] == "short.gif" and p["real"]["files_skipped"][0]["frames"] == 5
    assert res["real"]["native_resolutions"] == {"32x32": 2, "64x64": 1, "32x96": 1, "64x32": 1, "32x64": 1, "64x96": 1}
    assert res["real"]["resolution"] == [32, 32] and res["metrics"]["cfvd"]["protocol"]["num_real"] == 6
    assert np.isfinite(res["metrics"]["cfvd"]["value"])

    assert main(["eval", "--real", str(real), "--fake", str(fake), "--metrics", "cfvd", "--frames", "8",
                 "--resize", "32", "--short-videos", "error"]) == 2
    err = capsys.readouterr().err
    assert "short.gif has 5 frames, fewer than --frames 8" in err and "--short-videos skip" in err
    assert main(["eval", "--real", str(real), "--fake", str(fake), "--resize", "32", "--no-stream"]) == 2
    assert "--resize apply to streamed evaluation" in capsys.readouterr().err


def test_streamed_equals_whole_sets_on_a_uniform_folder(tmp_path, mnist):
    for name, vids in (("real", mnist[:6]), ("fake", mnist[6:])):
        (tmp_path / name).mkdir()
        for i, v in enumerate(vids):
            write_video(tmp_path / name / f"{i}.gif", v, fps=8)
    whole = evaluate_paths(tmp_path / "real", tmp_path / "fake", ["cfvd"])
    streamed = evaluate_paths(tmp_path / "real", tmp_path / "fake", ["cfvd"], clip_spec=ClipSpec(chunk=4))
    assert streamed["real"]["num"] == whole["real"]["num"] == 6 and streamed["real"]["frames"] == 8
    assert streamed["metrics"]["cfvd"]["value"] == pytest.approx(whole["metrics"]["cfvd"]["value"], rel=1e-6)
    direct = compute_metrics(mnist[:6], mnist[6:], ["cfvd"])["cfvd"]["value"]  # GIF is lossless
    assert streamed["metrics"]["cfvd"]["value"] == pytest.approx(direct, rel=1e-6)


def test_fvd_protocol_reports_clip_counts_and_the_i3d_reference_check(tmp_path, mnist, monkeypatch):
    import torch

    import videodiff.metrics.i3d as i3d

    class StubI3D(torch.nn.Module):  # per-channel means as features; not the TF-Hub weights
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x.mean(dim=(2, 3, 4))

    monkeypatch.setattr(i3d, "load_i3d", lambda *a, **k: StubI3D())
    for name, vids in (("real", mnist[:5]), ("fake", mnist[5:9])):
        (tmp_path / name).mkdir()
        for i, v in enumerate(vids):
            write_video(tmp_path / name / f"{i}.gif", np.concatenate([v, v]), fps=8)  # 16 frames
    res = evaluate_paths(tmp_path / "real", tmp_path / "fake", ["fvd"], clip_spec=ClipSpec(frames=12, chunk=2))
    p = res["metrics"]["fvd"]["protocol"]
    assert p["num_real"] == 5 and p["num_fake"] == 4 and p["frames_real"] == 12 and p["frames_repeated"] == 1
    assert p["i3d_reference"]["tfhub_weights"] is False and p["i3d_reference"]["value"] is None
    from videodiff.evaluation import format_results

    assert "5 real / 4 fake clips; not the TF-Hub I3D weights" in format_results(res)
