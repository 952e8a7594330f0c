"""Hostile media (issue 29): a corpus generated here (tests/media_corpus.py: truncated mp4/avi/gif, zero bytes,
wrong magic, absurd header dimensions and frame counts, random byte flips of valid files) is read without a
traceback or a hang and with bounded memory; in a folder (eval --real/--fake, training data) an unreadable file is
skipped and counted by default (names and reasons in the log and the eval JSON; --bad-files error / data.on_error
raise make it fatal); a single unreadable file is refused in one line."""

import json
import shutil

import numpy as np
import pytest

from conftest import assert_one_line_error
from media_corpus import make_corpus, probe
from videodiff.cli import main
from videodiff.io import write_video

pytestmark = pytest.mark.usefixtures("one_thread")

# fake-set members that cannot be read: at the header (first four) or only while decoding (truncated mp4, whose
# moov atom is up front)
BAD = ["zero.mp4", "random.avi", "text.mkv", "mp4_as.gif", "trunc50_valid.mp4"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    return d, make_corpus(d, flips=4, seed=0)


def test_every_hostile_file_is_read_or_refused_in_one_line(corpus):
    folder, kinds = corpus
    assert len(kinds) >= 50 and set(kinds.values()) >= {"valid", "truncated", "zero-byte", "wrong magic",
                                                         "absurd dimensions", "absurd frame count", "byte flips",
                                                         "damaged header"}
    out, peak_mb = probe(folder, sorted(kinds))
    bad = {n: o for n, o in out.items() if o[0] not in ("ok", "refused")}
    assert not bad, bad  # no traceback (an exception other than VideoReadError) and no hang
    for name, (outcome, detail) in out.items():
        if outcome == "refused":
            assert name in detail and "\n" not in detail, (name, detail)  # one line naming the file
    assert all(out[n][0] == "ok" for n, k in kinds.items() if k == "valid")
    for n in ("zero.mp4", "zero.gif", "random.mp4", "text.mkv", "screen_65535.gif", "avih_1e6.avi"):
        assert out[n][0] == "refused", (n, out[n])
    # found by the byte-flip campaign (BENCHMARKS.md), tracebacks before: no codec context, frames of two sizes
    assert "no decoder for its video stream" in out["edts_size.mp4"][1]
    assert "frames differ in size" in out["frame_offset.gif"][1]
    assert peak_mb < 1500, peak_mb  # 65535x65535 canvases and 10^6-frame headers allocate nothing


@pytest.fixture(scope="module")
def sets(tmp_path_factory, corpus):
    """--real: 6 Moving MNIST gifs; --fake: 6 mp4s of other clips plus the unreadable files of BAD."""
    from videodiff.data import DataConfig
    from videodiff.evaluation import dataset_videos

    videos = dataset_videos(DataConfig(num_frames=8, image_size=32, num_digits=1), "test", 12).videos
    root = tmp_path_factory.mktemp("sets")
    real, fake = root / "real", root / "fake"
    real.mkdir(), fake.mkdir()
    for i, v in enumerate(videos[:6]):
        write_video(real / f"r{i}.gif", v, fps=8)
    for i, v in enumerate(videos[6:]):
        write_video(fake / f"f{i}.mp4", v, fps=8)
    for name in BAD:
        shutil.copy(corpus[0] / name, fake / name)
    return real, fake


@pytest.mark.parametrize("stream", [True, False])
def test_a_folder_with_unreadable_files_is_evaluated_and_they_are_counted(sets, tmp_path, capsys, stream):
    real, fake = sets
    out = tmp_path / "r.json"
    args = ["eval", "--real", str(real), "--fake", str(fake), "--metrics", "cfvd", "--frames", "8", "--json",
            str(out), "--no-progress"] + ([] if stream else ["--no-stream"])
    assert main(args) == 0
    text = capsys.readouterr()
    notes = [line for line in text.err.splitlines() if "unreadable file(s)" in line]
    counted = sum(int(line.split("skipped ")[1].split()[0]) for line in notes)
    assert counted == len(BAD) and all("--bad-files error" in line for line in notes), text.err
    for name in BAD:
        assert name in text.err
    res = json.loads(out.read_text())
    unreadable = res["fake"]["files_unreadable"]
    assert sorted(u["file"] for u in unreadable) == sorted(BAD) and res["fake"]["files_unreadable_count"] == 5
    assert all(u["file"] in u["reason"] for u in unreadable)
    assert res["fake"]["num"] == 6 and np.isfinite(res["metrics"]["cfvd"]["value"])
    if stream:
        assert res["protocol"]["fake"]["files_unreadable_count"] == 5 and res["protocol"]["bad_files"] == "skip"
        assert res["protocol"]["fake"]["files_seen"] == 11 and res["protocol"]["fake"]["files_used"] == 6
        assert "5 fake file(s) skipped as unreadable" in text.out


@pytest.mark.parametrize("stream", [True, False])
def test_bad_files_error_makes_an_unreadable_file_fatal(sets, capsys, stream):
    real, fake = sets
    args = ["eval", "--real", str(real), "--fake", str(fake), "--metrics", "cfvd", "--frames", "8",
            "--bad-files", "error", "--no-progress"] + ([] if stream else ["--no-stream"])
    assert main(args) == 2
    line = assert_one_line_error(capsys, "--fake", "--bad-files error")
    assert any(name in line for name in BAD)


@pytest.mark.parametrize("name", BAD + ["avih_1e6.avi", "screen_65535.gif"])
def test_a_single_unreadable_file_is_refused_in_one_line(sets, corpus, tmp_path, capsys, name):
    real, _ = sets
    assert main(["eval", "--real", str(real), "--fake", str(corpus[0] / name), "--metrics", "cfvd", "--frames",
                 "8", "--no-progress"]) == 2
    assert_one_line_error(capsys, name)


def test_a_folder_of_only_unreadable_files_is_one_line(sets, corpus, tmp_path, capsys):
    real, _ = sets
    only = tmp_path / "bad"
    only.mkdir()
    for name in BAD[:4]:
        shutil.copy(corpus[0] / name, only / name)
    assert main(["eval", "--real", str(real), "--fake", str(only), "--metrics", "cfvd", "--frames", "8"]) == 2
    assert_one_line_error(capsys, "--fake", "none of its 4 videos can be read")


def test_training_over_a_folder_with_bad_files_reports_what_it_skipped(corpus, tmp_path, capsys):
    data = tmp_path / "videos"
    data.mkdir()
    for i in range(2):
        write_video(data / f"ok{i}.gif", np.random.default_rng(i).integers(0, 255, (8, 16, 16, 3), np.uint8), fps=8)
    for name in BAD:
        shutil.copy(corpus[0] / name, data / name)
    common = ["data.kind=video_folder", f"data.root={data}", "data.channels=3", "data.image_size=16",
              "data.num_frames=4", "model.base_channels=16", "model.channel_mults=[1, 2]", "model.num_res_blocks=1",
              "model.attn_resolutions=[8]", "model.head_dim=16", "train.batch_size=2", "train.steps=2",
              "train.log_every=1", "sample.steps=1", "sample.num=1"]
    args = ["train", "--out", str(tmp_path / "run"), "--no-progress"]
    for o in common:
        args += ["--set", o]
    assert main(args) == 0
    text = capsys.readouterr()
    line = next(x for x in text.out.splitlines() if "unreadable data files" in x)
    assert "skipped    : 4 unreadable data files" in line or "skipped    : 5 unreadable data files" in line, line
    assert "zero.mp4" in line
    assert main(args[:2] + [str(tmp_path / "run2")] + args[3:] + ["--set", "data.on_error=raise"]) == 2
    assert_one_line_error(capsys, str(data))
