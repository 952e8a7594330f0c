"""The paper's benchmark datasets in their native formats (issue 28): UCF-101 (.avi + ucfTrainTestlist), BAIR robot
pushing (TFRecords of tf.train.Example, read without TensorFlow) and Kinetics-600 (.mp4 tree + annotation CSV).

Every file here is written by the test in the format the datasets are distributed in: .avi (MPEG-4 part 2) and .mp4
(H.264) clips with PyAV, the list files, and a TFRecord written by our own writer with real frames (raw RGB bytes,
as softmotion30_44k stores them). The recipes in configs/paper/ train two steps on them and are evaluated (held-out
loss on the dataset's own test split)."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from videodiff.config import load_config
from videodiff.data import build_dataset
from videodiff.data.bair import FRAMES_PER_EPISODE
from videodiff.data.tfrecord import (TFRecordError, _crc32c_python, crc32c, encode_example, iter_records,
                                     masked_crc32c, parse_example, write_records)

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "paper"
# a network small enough for two CPU steps, on top of each recipe's data and training settings
TINY = ["model.base_channels=8", "model.channel_mults=[1,2]", "model.num_res_blocks=1", "model.attn_resolutions=[16]",
        "model.head_dim=8", "data.image_size=32", "data.num_frames=4", "train.batch_size=2", "train.steps=2",
        "train.warmup_steps=1", "train.log_every=1", "train.ckpt_every=2", "train.loggers=[]", "sample.num=1",
        "sample.steps=2", "train.device=cpu", "train.precision=fp32", "train.num_workers=0", "train.grad_accum=1",
        "train.activation_checkpointing=false"]


def _frames(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """A moving square on a coloured background: real structure for the codecs to encode."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, h, w, 3), np.uint8)
    out[:] = rng.integers(0, 255, 3, dtype=np.uint8)
    for t in range(n):
        y, x = (3 * t) % (h - 8), (2 * t) % (w - 8)
        out[t, y : y + 8, x : x + 8] = 255 - out[t, 0, 0]
    return out


def _write(path: Path, frames: np.ndarray, codec: str, fps: int = 25) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


# ------------------------------------------------------------------------------------------------------ UCF-101

CLASSES = ["ApplyEyeMakeup", "HandstandPushups"]


def _ucf101(root: Path) -> Path:
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    train, test = [], []
    for ci, c in enumerate(CLASSES):
        file_class = "HandStandPushups" if c == "HandstandPushups" else c  # the distribution's spelling
        for g in (1, 8):
            rel = f"{c}/v_{file_class}_g{g:02d}_c01.avi"
            _write(root / "UCF-101" / rel, _frames(12, 48, 64, ci * 10 + g), "mpeg4")
            (test if g == 1 else train).append(rel)
            if g == 8:
                train[-1] += f" {ci + 1}"
    for n in (1, 2, 3):
        (lists / f"trainlist0{n}.txt").write_text("\r\n".join(train) + "\r\n")  # CRLF, as distributed
        (lists / f"testlist0{n}.txt").write_text("\r\n".join(test) + "\r\n")
    return root


def test_ucf101_splits_labels_and_clips(tmp_path):
    root = _ucf101(tmp_path / "ucf")
    cfg = load_config(CONFIGS / "ucf101.yaml", [f"data.root={root}", "data.image_size=32", "data.num_frames=4",
                                                 "data.options.all_videos=false"])
    train, test = build_dataset(cfg.data, "train"), build_dataset(cfg.data, "test")
    assert len(train) == 2 and len(test) == 2
    assert sorted(item["label"] for item in (train[0], train[1])) == [0, 1]  # HandStandPushups -> class 2
    item = test[1]
    assert item["video"].shape == (3, 4, 32, 32) and item["start"] == 0 and "_g01_" in item["path"]
    assert -1 <= item["video"].min() and item["video"].max() <= 1
    cfg.data.options["all_videos"] = True  # the paper: all 13,320 videos
    assert len(build_dataset(cfg.data, "train")) == 4


def test_ucf101_missing_and_corrupt_files_are_named(tmp_path):
    root = _ucf101(tmp_path / "ucf")
    victim = root / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi"
    victim.unlink()
    # by default (data.on_error=skip, issue 29) a missing listed file is left out with one warning and listed
    cfg = load_config(CONFIGS / "ucf101.yaml", [f"data.root={root}"])
    with pytest.warns(UserWarning, match="1 videos listed in .*trainlist01\\.txt .* are missing"):
        ds = build_dataset(cfg.data, "train")
    assert ds.skipped == [str(victim)]
    cfg = load_config(CONFIGS / "ucf101.yaml", [f"data.root={root}", "data.on_error=raise"])
    with pytest.raises(FileNotFoundError, match=r"v_ApplyEyeMakeup_g08_c01\.avi: listed in .*trainlist01\.txt"):
        build_dataset(cfg.data, "train")
    victim.write_bytes(b"not a video at all" * 10)
    ds = build_dataset(cfg.data, "train")
    with pytest.raises(Exception, match="v_ApplyEyeMakeup_g08_c01.avi") as e:
        ds[0]
    assert "\n" not in str(e.value)
    (root / "ucfTrainTestlist" / "classInd.txt").unlink()
    with pytest.raises(FileNotFoundError, match="classInd.txt"):
        build_dataset(cfg.data, "train")


# ------------------------------------------------------------------------------------------------------ BAIR

def _episode(seed: int, frames: np.ndarray | None = None) -> bytes:
    rng = np.random.default_rng(seed)
    frames = _frames(FRAMES_PER_EPISODE, 64, 64, seed) if frames is None else frames
    feats = {}
    for t in range(FRAMES_PER_EPISODE):
        feats[f"{t}/image_aux1/encoded"] = frames[t].tobytes()  # raw RGB bytes, not a JPEG
        feats[f"{t}/image_main/encoded"] = frames[t, ::-1].tobytes()
        feats[f"{t}/action"] = rng.standard_normal(4).astype(np.float32)
        feats[f"{t}/endeffector_pos"] = rng.standard_normal(3).astype(np.float32)
    return encode_example(feats)


def _bair(root: Path) -> Path:
    for split, seeds in (("train", (0, 1, 2)), ("test", (7,))):
        folder = root / "softmotion30_44k" / split
        folder.mkdir(parents=True)
        write_records(folder / f"traj_{seeds[0]}_to_{seeds[-1]}.tfrecords", [_episode(s) for s in seeds])
    return root


def test_crc32c_and_masking_against_known_values():
    assert crc32c(b"123456789") == 0xE3069283 == _crc32c_python(b"123456789")  # the CRC-32C check value
    assert crc32c(b"") == 0
    data = bytes(range(256)) * 5
    assert crc32c(data) == _crc32c_python(data)
    for blob in (b"", data, struct.pack("<Q", 12288)):  # unmasking (TensorFlow's crc32c::Unmask) gives the CRC
        rot = (masked_crc32c(blob) - 0xA282EAD8) & 0xFFFFFFFF
        assert ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF == crc32c(blob)


def test_example_proto_round_trip_and_unpacked_floats():
    feats = {"a": b"\x00\xffraw", "f": np.array([1.5, -2.25], np.float32), "i": np.array([-1, 2**40])}
    out = parse_example(encode_example(feats))
    assert out["a"] == [b"\x00\xffraw"] and out["f"].tolist() == [1.5, -2.25] and out["i"].tolist() == [-1, 2**40]
    # a FloatList written unpacked (one fixed32 per value, wire type 5) parses the same
    fl = b"".join(b"\x0d" + struct.pack("<f", v) for v in (1.5, -2.25))
    feature = b"\x12" + bytes([len(fl)]) + fl
    entry = b"\x0a\x01f" + b"\x12" + bytes([len(feature)]) + feature
    features = b"\x0a" + bytes([len(entry)]) + entry
    assert parse_example(b"\x0a" + bytes([len(features)]) + features)["f"].tolist() == [1.5, -2.25]


def test_bair_reads_raw_frames_actions_and_splits(tmp_path):
    root = _bair(tmp_path / "bair")
    cfg = load_config(CONFIGS / "bair.yaml", [f"data.root={root}"])
    train, test = build_dataset(cfg.data, "train"), build_dataset(cfg.data, "test")
    assert len(train) == 3 and len(test) == 1
    item = test[0]
    f = cfg.data.num_frames
    assert item["video"].shape == (3, f, 64, 64) and item["start"] == 0
    want = torch.from_numpy(_frames(FRAMES_PER_EPISODE, 64, 64, 7)[:f]).permute(3, 0, 1, 2).float() / 127.5 - 1
    assert torch.equal(item["video"], want)  # bit-exact raw frames, at 64x64 no resize
    rng = np.random.default_rng(7)
    first = rng.standard_normal(4).astype(np.float32)
    assert item["actions"].shape == (f, 4) and item["endeffector_pos"].shape == (f, 3)
    assert torch.equal(item["actions"][0], torch.from_numpy(first))
    s = train[1]["start"]
    assert 0 <= s <= FRAMES_PER_EPISODE - f


def test_bair_crc_mismatch_truncation_and_bad_frames_are_caught(tmp_path):
    root = _bair(tmp_path / "bair")
    path = next((root / "softmotion30_44k" / "train").glob("*.tfrecords"))
    cfg = load_config(CONFIGS / "bair.yaml", [f"data.root={root}"])
    raw = bytearray(path.read_bytes())
    raw[5000] ^= 0x01  # one flipped bit inside record 0's frames
    path.write_bytes(bytes(raw))
    ds = build_dataset(cfg.data, "train")  # the headers are intact: indexing succeeds
    with pytest.raises(TFRecordError, match=rf"{path.name}: record 0: data CRC mismatch"):
        ds[0]
    ds[1]  # the other records still read
    with pytest.raises(TFRecordError, match="data CRC mismatch"):
        list(iter_records(path))
    path.write_bytes(bytes(raw[:-10]))  # cut inside the last record
    with pytest.raises(TFRecordError, match=rf"{path.name}: record 2 .*truncated"):
        build_dataset(cfg.data, "train")
    small = _frames(FRAMES_PER_EPISODE, 32, 32, 0)  # frames of the wrong size: named, with the key
    write_records(path, [_episode(0, small)])
    with pytest.raises(TFRecordError, match=r"0/image_aux1/encoded has 3072 bytes"):
        build_dataset(cfg.data, "train")[0]
    with pytest.raises(FileNotFoundError, match="softmotion30_44k/test"):
        build_dataset(load_config(CONFIGS / "bair.yaml", [f"data.root={tmp_path}"]).data, "test")


# ------------------------------------------------------------------------------------------------------ Kinetics

def _kinetics(root: Path) -> tuple[Path, Path]:
    rows = [("abseiling", "aaaaaaaaaaa", 10, 20, "train"), ("zumba", "bbbbbbbbbbb", 0, 10, "train"),
            ("zumba", "ccccccccccc", 5, 15, "val")]
    for label, yid, s, e, split in rows:
        _write(root / "videos" / split / label / f"{yid}_{s:06d}_{e:06d}.mp4", _frames(10, 36, 48, len(yid) + s),
               "libx264")
    csv = root / "kinetics600.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\n"
                   + "".join(f"{a},{b},{c},{d},{e}\n" for a, b, c, d, e in rows))
    return root / "videos", csv


def test_kinetics_csv_splits_and_labels(tmp_path):
    videos, csv = _kinetics(tmp_path / "k600")
    cfg = load_config(CONFIGS / "kinetics600.yaml", [f"data.root={videos}", f"data.options.annotations={csv}",
                                                      "data.num_frames=4", "data.image_size=32"])
    train, test = build_dataset(cfg.data, "train"), build_dataset(cfg.data, "test")
    assert len(train) == 2 and len(test) == 1
    assert {train[i]["label"] for i in range(2)} == {0, 1} and test[0]["label"] == 1
    assert test[0]["video"].shape == (3, 4, 32, 32) and "ccccccccccc_000005_000015" in test[0]["path"]


def test_kinetics_missing_video_and_bad_csv_are_named(tmp_path):
    videos, csv = _kinetics(tmp_path / "k600")
    next(videos.rglob("bbbbbbbbbbb_*.mp4")).unlink()
    over = [f"data.root={videos}", f"data.options.annotations={csv}"]
    cfg = load_config(CONFIGS / "kinetics600.yaml", over + ["data.on_error=raise"])
    with pytest.raises(FileNotFoundError, match=r"bbbbbbbbbbb_000000_000010\.mp4: listed in .*kinetics600\.csv"):
        build_dataset(cfg.data, "train")
    cfg.data.on_error = "skip"
    with pytest.warns(UserWarning, match="1 videos listed"):
        assert len(build_dataset(cfg.data, "train")) == 1
    csv.write_text("label,youtube_id,time_start,split\nzumba,x,1,train\n")
    with pytest.raises(ValueError, match=r"kinetics600\.csv: missing column 'time_end'"):
        build_dataset(cfg.data, "train")


# ------------------------------------------------------------------------------------------------------ recipes

@pytest.mark.parametrize("recipe", ["ucf101", "bair", "kinetics600"])
def test_recipe_trains_two_steps_and_evaluates_on_native_files(tmp_path, recipe, one_thread):
    from videodiff.losses import diffusion_loss
    from videodiff.models import load_model
    from videodiff.train import train

    if recipe == "ucf101":
        over = [f"data.root={_ucf101(tmp_path / 'd')}"]
    elif recipe == "bair":
        over = [f"data.root={_bair(tmp_path / 'd')}"]
    else:
        videos, csv = _kinetics(tmp_path / "d")
        over = [f"data.root={videos}", f"data.options.annotations={csv}"]
    cfg = load_config(CONFIGS / f"{recipe}.yaml", over + TINY)
    res = train(cfg, tmp_path / "run", progress=False)
    assert res.step == 2 and np.isfinite(res.final_loss)
    # evaluation on the dataset's own test split: the EMA model's held-out loss at fixed noise levels
    loaded = load_model(res.checkpoint, device="cpu")
    test = build_dataset(loaded.config.data, "test")
    x = torch.stack([test[i]["video"] for i in range(len(test))])
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0.2, 0.8, len(x))
    eps = torch.randn(x.shape, generator=g)
    net = loaded.denoiser.net
    with torch.no_grad():
        loss = diffusion_loss(net, x, loaded.config.diffusion.schedule(t), eps,
                              parameterization=loaded.config.diffusion.parameterization)
    assert loss.shape == (len(x),) and torch.isfinite(loss).all() and (loss > 0).all()


# ------------------------------------------------------------------------------------------------------ plans

def test_plan_counts_match_the_real_network(one_thread):
    """The dry-run plan measures on the meta device; its parameters and FLOPs are those of the real network."""
    from videodiff.bench.flops import count_flops
    from videodiff.bench.plan import plan_recipe
    from videodiff.nn import UNet3D

    cfg = load_config(CONFIGS / "bair.yaml", TINY[:6] + ["train.batch_size=4", "train.steps=10",
                                                                "train.grad_accum=1"])
    plan = plan_recipe(cfg, gpus=2, mfu=0.5)
    torch.manual_seed(0)
    net = UNet3D(cfg.model).train()
    z = torch.randn(1, 3, cfg.data.num_frames, 32, 32)
    assert plan["params"] == sum(p.numel() for p in net.parameters())
    flops = count_flops(lambda: net(z, torch.zeros(1)).square().mean().backward())
    assert plan["flops_per_video"] == flops and plan["flops_per_step"] == 4 * flops
    assert plan["gpu_hours"]["A100"] == pytest.approx(10 * 4 * flops / (312e12 * 0.5) / 3600)
    assert plan["micro_batch"] == 2 and plan["state_bytes_per_gpu"] == 20 * plan["params"]
    assert plan["activation_bytes_per_video_checkpointed"] < plan["activation_bytes_per_video"]
    cfg.train.parallel = "fsdp"
    assert plan_recipe(cfg, gpus=2)["state_bytes_per_gpu"] == 10 * plan["params"]
    with pytest.raises(ValueError, match=r"divisible by the GPUs \(3, --gpus\)"):
        plan_recipe(cfg, gpus=3)


def test_dry_run_prints_the_plan_and_checks_the_data(tmp_path, capsys):
    from conftest import assert_one_line_error
    from videodiff.cli import main

    root = _bair(tmp_path / "bair")
    assert main(["train", "--config", str(CONFIGS / "bair.yaml"), "--dry-run", "--set", f"data.root={root}"]) == 0
    out = capsys.readouterr().out
    for words in ("parameters     : 291.6M", "FLOPs per step", "memory per GPU", "GPU-hours", "A100", "H100",
                  "train: 3 clips", "test: 1 clips"):
        assert words in out, (words, out)
    assert not (tmp_path / "runs").exists()
    next((root / "softmotion30_44k" / "test").glob("*.tfrecords")).write_bytes(b"\x00" * 7)
    assert main(["train", "--config", str(CONFIGS / "bair.yaml"), "--dry-run", "--set", f"data.root={root}"]) != 0
    assert_one_line_error(capsys, "traj_7_to_7.tfrecords", "truncated header")
