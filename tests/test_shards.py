"""videodiff.data.shards: WebDataset tar shards written from a captioned folder, streamed back per rank and worker."""

import csv
import io
import json
import tarfile
from collections import Counter
from itertools import islice

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from videodiff.cli import main
from videodiff.data import DataConfig, ShardDataset, build_dataset, collate_clips
from videodiff.data.shard_writer import collect_sources, parse_shard_size, write_shards
from videodiff.data.shards import ShardError, expand_shards
from videodiff.data.video_folder import read_clip
from videodiff.io import VideoReadError, write_video

pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine

CLIP = dict(num_frames=3, frameskip=2, image_size=16, channels=3)
N_VIDEOS = 6


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Six small H.264 videos (moving gradients, 12 frames 24x32) and a CSV manifest with captions and ranges."""
    root = tmp_path_factory.mktemp("videos")
    yy, xx = np.mgrid[0:24, 0:32]
    rows = []
    for v in range(N_VIDEOS):
        frames = np.stack([np.stack([(xx * 8 + t * 20 + v * 40) % 256, (yy * 10 + t * 7) % 256,
                                     np.full_like(xx, v * 30)], -1) for t in range(12)]).astype(np.uint8)
        write_video(root / "clips" / f"v{v}.mp4", frames)
        rows.append({"video": f"clips/v{v}.mp4", "caption": f"video number {v}",
                     "start": 2 if v == 1 else "", "end": 9 if v == 1 else ""})
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["video", "caption", "start", "end"])
        w.writeheader()
        w.writerows(rows)
    return root


def write(videos, out, size=2, **kw):
    sources = collect_sources(videos, videos / "manifest.csv")
    max_samples, max_bytes = parse_shard_size(size)
    return write_shards(sources, out, max_samples=max_samples, max_bytes=max_bytes, root=videos, progress=False, **kw)


@pytest.fixture(scope="module")
def shards(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    write(videos, out)
    return out


def dataset(shards, **kw):
    return ShardDataset(shards, **{**CLIP, "shuffle_buffer": 3, "rank": 0, "world_size": 1, **kw})


def keys(items):
    return [item["key"] for item in items]


def test_shard_layout_and_index(videos, shards):
    index = json.loads((shards / "shards.json").read_text())
    assert [s["name"] for s in index["shards"]] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert [s["samples"] for s in index["shards"]] == [2, 2, 2] and index["total_samples"] == 6 and index["complete"]
    with tarfile.open(shards / "shard-000000.tar") as tar:
        assert tar.getnames() == ["000000000.mp4", "000000000.txt", "000000000.json",
                                  "000000001.mp4", "000000001.txt", "000000001.json"]
        assert tar.extractfile("000000001.mp4").read() == (videos / "clips" / "v1.mp4").read_bytes()  # not re-encoded
        assert tar.extractfile("000000001.txt").read().decode() == "video number 1"
        meta = json.loads(tar.extractfile("000000001.json").read())
    assert meta == {"source": "clips/v1.mp4", "start": 2, "end": 9, "frames": 12, "height": 24, "width": 32,
                    "fps": 8.0}
    assert parse_shard_size("1.5MB") == (None, 1_500_000) and parse_shard_size("7") == (7, None)
    with pytest.raises(ValueError, match="--shard-size"):
        parse_shard_size("12 parsecs")


def test_clips_equal_the_folder_reader_and_carry_captions(videos, shards):
    items = list(dataset(shards, epochs=1))
    assert sorted(keys(items)) == [f"shard-{i // 2:06d}.tar:{i:09d}" for i in range(6)]
    for item in items:
        v = int(item["path"][len("clips/v")])
        assert item["caption"] == f"video number {v}"
        assert item["video"].shape == (3, 3, 16, 16) and item["video"].dtype == torch.float32
        lo, hi = (2, 9) if v == 1 else (0, 12)
        assert lo <= item["start"] <= hi - 5  # a clip spans 5 frames at frameskip 2
        expected = read_clip(videos / item["path"], item["start"], **CLIP)
        assert torch.equal(item["video"], expected)
    starts = [item["start"] for item in sorted(items, key=lambda i: i["key"])]
    again = [i["start"] for i in sorted(dataset(shards, epochs=1), key=lambda i: i["key"])]
    assert starts == again  # deterministic; later epochs draw other clips
    batch = collate_clips(items[:2])
    assert batch["video"].shape == (2, 3, 3, 16, 16) and len(batch["caption"]) == 2


@pytest.mark.parametrize("size", [1, 2])  # 6 shards (dealt to consumers) or 3 (< 4 consumers: interleaved)
def test_two_ranks_times_two_workers_read_every_sample_once_per_epoch(shards, videos, tmp_path, size):
    if size == 1:
        write(videos, tmp_path, size=1)
        shards = tmp_path
    ds = dataset(shards, epochs=1)
    seen = Counter()
    for rank in range(2):
        for worker in range(2):
            seen.update(keys(ds.consumer_stream(rank, 2, worker, 2)))
    assert len(seen) == N_VIDEOS and set(seen.values()) == {1}
    two = dataset(shards, epochs=2)
    two_epochs = Counter(k for r in range(2) for w in range(2) for k in keys(two.consumer_stream(r, 2, w, 2)))
    assert len(two_epochs) == N_VIDEOS and set(two_epochs.values()) == {2}


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 2 workers on a 1-core test slot
def test_dataloader_workers_split_and_skip_resumes_the_stream(shards):
    def batches(ds, n):
        loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_clips)
        return [(b["key"], b["video"]) for b in islice(loader, n)]

    full = batches(dataset(shards), 5)  # 10 clips: an epoch (6) and part of the next
    assert Counter(k for ks, _ in full[:3] for k in ks) == Counter(k for ks, _ in full[:3] for k in set(ks))
    resumed = batches(dataset(shards).skip(6, batch_size=2), 2)
    assert [k for k, _ in resumed] == [k for k, _ in full[3:]]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(resumed, full[3:]))


@pytest.mark.parametrize("n", [0, 4, 13])  # mid-epoch, and past two whole epochs (skipped by count)
def test_skip_n_continues_the_same_stream(shards, n):
    full = keys(islice(dataset(shards, clips_per_video=1).consumer_stream(0, 1), 16))
    assert keys(islice(dataset(shards).skip(n).consumer_stream(0, 1), 16 - n)) == full[n:]
    assert len(set(full[:6])) == 6 and full[:6] != full[6:12]  # each epoch is a new permutation


def _corrupt_shard(shards, tmp_path):
    """A copy of shard-000000.tar whose second video's bytes are garbage."""
    out = tmp_path / "bad"
    out.mkdir()
    with tarfile.open(shards / "shard-000000.tar") as src, tarfile.open(out / "shard-000000.tar", "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "000000001.mp4":
                data = b"\x00not a video" * 50
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    return out


def test_corrupt_member_raises_naming_it_or_is_skipped(shards, tmp_path):
    bad = _corrupt_shard(shards, tmp_path)
    with pytest.raises(ShardError, match=r"shard-000000\.tar:000000001\.mp4"):
        list(dataset(bad, epochs=1, shuffle_buffer=1))
    with pytest.warns(UserWarning, match=r"000000001\.mp4"):
        items = list(dataset(bad, epochs=1, on_error="skip"))
    assert keys(items) == ["shard-000000.tar:000000000"]
    (bad / "shard-000000.tar").write_bytes((bad / "shard-000000.tar").read_bytes()[:700])  # truncated shard
    with pytest.raises(ShardError, match="shard-000000.tar"):
        list(dataset(bad, epochs=1))


def test_writer_names_bad_files_skips_them_and_resumes(videos, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    for v in range(3):
        (folder / f"v{v}.mp4").write_bytes((videos / "clips" / f"v{v}.mp4").read_bytes())
    (folder / "v0.txt").write_text("caption from a sidecar file\n")
    (folder / "junk.mp4").write_bytes(b"\x00not a video" * 100)
    sources = collect_sources(folder)
    with pytest.raises(VideoReadError, match="junk.mp4"):
        write_shards(sources, tmp_path / "a", max_samples=2, progress=False)
    with pytest.warns(UserWarning, match="junk.mp4"):
        index = write_shards(sources, tmp_path / "a", max_samples=2, on_error="skip", progress=False, overwrite=True)
    assert index["total_samples"] == 3 and index["skipped"] == [str(folder / "junk.mp4")]
    item = next(iter(dataset(tmp_path / "a", epochs=1, shuffle_buffer=1, split="test")))
    assert item["caption"] == "caption from a sidecar file" and item["path"] == str((folder / "v0.mp4").resolve())
    with pytest.raises(ValueError, match="--overwrite"):
        write_shards(sources, tmp_path / "a", max_samples=2, on_error="skip", progress=False)
    # an interrupted run: the index says one shard of two was done; rerunning writes the same second shard
    before = (tmp_path / "a" / "shard-000001.tar").read_bytes()
    index = json.loads((tmp_path / "a" / "shards.json").read_text())
    assert index["shards"][0]["samples"] == 2 and index["next_source"] == 4  # sources: junk, v0, v1 | v2
    index.update(complete=False, next_source=3, total_samples=2, shards=index["shards"][:1])
    (tmp_path / "a" / "shards.json").write_text(json.dumps(index))
    (tmp_path / "a" / "shard-000001.tar").unlink()
    index = write_shards(sources, tmp_path / "a", max_samples=2, on_error="skip", progress=False)
    assert index["total_samples"] == 3 and index["skipped"] == [str(folder / "junk.mp4")]
    assert (tmp_path / "a" / "shard-000001.tar").read_bytes() == before


def test_shard_specs_and_config_errors(shards, tmp_path):
    pattern = str(shards / "shard-{000000..000002}.tar")
    assert expand_shards(pattern)[0] == [shards / f"shard-{i:06d}.tar" for i in range(3)]
    assert expand_shards(shards)[1] == {str(shards / f"shard-{i:06d}.tar"): 2 for i in range(3)}
    (tmp_path / "list.txt").write_text("\n".join(str(shards / f"shard-{i:06d}.tar") for i in (2, 0)) + "\n")
    assert expand_shards(tmp_path / "list.txt")[0] == [shards / "shard-000002.tar", shards / "shard-000000.tar"]
    with pytest.raises(FileNotFoundError, match=r"shard-000003.tar .*does not exist \(and 4 more\)"):
        expand_shards(str(shards / "shard-{000000..000007}.tar"))
    with pytest.raises(ValueError, match="data.shards"):
        build_dataset(DataConfig(kind="shards"))
    with pytest.raises(ValueError, match="data.shuffle_buffer"):
        DataConfig(kind="shards", shards=str(shards), shuffle_buffer=0)
    ds = build_dataset(DataConfig(kind="shards", shards=pattern, num_frames=3, image_size=16, image_frames=2))
    item = next(iter(ds))
    assert item["video"].shape == (1, 5, 16, 16) and len(item["image_captions"]) == 2  # joint image frames
    assert ds.num_clips() == 6


def test_webdataset_package_reads_the_shards(shards):
    wds = pytest.importorskip("webdataset")
    samples = list(wds.WebDataset(str(shards / "shard-{000000..000002}.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == [f"{i:09d}" for i in range(6)]
    assert samples[3]["txt"] == b"video number 3" and json.loads(samples[3]["json"])["source"] == "clips/v3.mp4"


def test_cli_writes_shards_and_trains_on_them(videos, tmp_path, capsys):
    assert main(["shards", "--root", str(videos), "--manifest", str(videos / "manifest.csv"), "--out",
                 str(tmp_path / "s"), "--shard-size", "3", "--shuffle", "0", "--no-progress"]) == 0
    assert "wrote 6 samples into 2 shards" in capsys.readouterr().out
    assert main(["shards", "--root", str(videos), "--out", str(tmp_path / "s"), "--shard-size", "3MiB"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    tiny = ["data.kind=shards", f"data.shards={tmp_path / 's'}", "data.image_size=16", "data.num_frames=3",
            "model.base_channels=16", "model.channel_mults=[1, 2]", "model.num_res_blocks=1",
            "model.attn_resolutions=[8]", "model.head_dim=16", "train.batch_size=2", "train.steps=2",
            "train.log_every=1", "sample.steps=2", "sample.num=2"]
    args = ["train", "--out", str(tmp_path / "run"), "--no-progress"] + [a for t in tiny for a in ("--set", t)]
    assert main(args) == 0, capsys.readouterr().err
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_preview_prompts_of_a_text_model_come_from_the_shard_stream(shards):
    """Text models draw preview captions from the test split; a streamed split has no len() or indexing."""
    from videodiff.config import load_config
    from videodiff.train.loop import _preview_prompts

    cfg = load_config(None, ["data.kind=shards", f"data.shards={shards}", "data.image_size=16", "data.num_frames=3",
                             "sample.num=8"])
    prompts = _preview_prompts(cfg)
    assert len(prompts) == 8 and all(isinstance(p, str) and p for p in prompts)
