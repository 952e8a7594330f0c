"""Data-parallel training: 2 gloo processes under torchrun reach the parameters of one process with the same global
batch; gradient accumulation is the same optimizer step; a run resumes exactly with another world size; streamed
(IterableDataset) data resumes through ``skip(n)``; each clip's noise is independent of how the batch is split."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest
import torch

from videodiff.checkpoint import load_checkpoint
from videodiff.config import load_config
from videodiff.pipeline import build_model
from videodiff.train import train
from videodiff.train.distributed import GlobalIndexStream, RankSlice
from videodiff.train.randomness import draw_step_noise

pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine

TINY = [
    "data.image_size=8", "data.num_frames=4", "data.num_digits=1", "data.train_clips=16", "data.test_clips=2",
    "model.base_channels=8", "model.channel_mults=[1, 2]", "model.num_res_blocks=1",
    "model.attn_resolutions=[4]", "model.head_dim=8", "model.dropout=0.0",
    "train.batch_size=4", "train.warmup_steps=2", "train.lr=1e-3", "train.log_every=1", "train.ckpt_every=1",
    "train.keep_checkpoints=10", "train.device=cpu", "diffusion.low_discrepancy=true",
    "sample.steps=1", "sample.num=1",
    "train.precision=fp32",  # the data-parallel mechanism is compared at fp32 tolerances (bf16: tests/test_precision.py)
]
TOL = dict(rtol=1e-4, atol=1e-5)  # float summation order differs between one batch of 4 and two of 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(out, overrides, nproc=2, timeout=150):
    """``torchrun --nproc_per_node 2 -m videodiff train`` on the CPU (gloo); returns the finished process."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "videodiff", "train", "--out", str(out), "--no-progress"]
    for o in overrides:
        cmd += ["--set", o]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: a hang kills torchrun and both ranks
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s:\n{out[-3000:]}\n{err[-3000:]}")
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _norm(a, b=None):
    return float(sum(((a[k] - (b[k] if b is not None else 0)).double() ** 2).sum() for k in a) ** 0.5)


def _assert_same_weights(a, b, cfg):
    """Two runs took the same optimizer steps: the same gradients (Adam's moments, to float precision) and the same
    weights and EMA, relative to how far they moved from the initialisation.

    The weights are compared as a whole because Adam turns a gradient element that is pure float noise (a bias whose
    gradient cancels to ~0) into a full +-lr step; measured: moments agree to ~3e-7, weights to ~5e-4 of the update.
    """
    assert a["step"] == b["step"]
    for moment in ("exp_avg", "exp_avg_sq"):
        ma, mb = ({k: v[moment] for k, v in c["optimizer"]["state"].items()} for c in (a, b))
        assert _norm(ma, mb) <= 1e-5 * _norm(ma), moment
    torch.manual_seed(cfg.train.seed)  # the initialisation train() draws
    init = build_model(cfg).state_dict()
    for which in ("model", "ema"):
        assert a[which].keys() == b[which].keys() == init.keys()
        assert _norm(a[which], b[which]) <= 2e-3 * _norm(a[which], init), which


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_match_one_and_resume_on_another_world_size(tmp_path):
    # 2 ranks x 2 clips, 3 steps, checkpoints at every step (rank 0 only)
    proc = _torchrun(tmp_path / "w2", TINY + ["train.steps=3"])
    assert "diverged" not in proc.stderr  # the EMA weights agreed on both ranks at every checkpoint
    assert proc.stdout.count("trained run to step 3 of 3") == 1  # rank 0 reports
    ckdir = tmp_path / "w2" / "checkpoints"
    assert sorted(p.name for p in ckdir.glob("step_*")) == ["step_000001", "step_000002", "step_000003"]
    assert len(_losses(tmp_path / "w2")) == 3  # one log line per step, not one per rank
    assert sorted(p.name for p in (tmp_path / "w2" / "samples").iterdir()) == ["step_000003.gif", "step_000003.mp4"]
    meta = json.loads((ckdir / "step_000002" / "state.json").read_text())
    assert (meta["step"], meta["samples_seen"], meta["world_size"]) == (2, 8, 2)

    # one process, the same global batch of 4, 4 steps
    cfg = load_config(None, TINY + ["train.steps=4"])
    train(cfg, tmp_path / "w1", progress=False)
    w2, w1 = load_checkpoint(ckdir / "step_000003"), load_checkpoint(tmp_path / "w1" / "checkpoints" / "step_000003")
    _assert_same_weights(w2, w1, cfg)
    torch.testing.assert_close(_losses(tmp_path / "w2"), _losses(tmp_path / "w1")[:3], **TOL)

    # resume the world-2 run from step 2 in one process, to step 4: the same as 4 steps straight
    shutil.copytree(tmp_path / "w2", tmp_path / "re")
    shutil.rmtree(tmp_path / "re" / "checkpoints" / "step_000003")
    (tmp_path / "re" / "checkpoints" / "latest").write_text("step_000002")
    train(cfg, tmp_path / "re", progress=False)
    _assert_same_weights(load_checkpoint(tmp_path / "re"), load_checkpoint(tmp_path / "w1"), cfg)
    torch.testing.assert_close(_losses(tmp_path / "re"), _losses(tmp_path / "w1"), **TOL)


def test_gradient_accumulation_is_the_same_step(tmp_path):
    common = TINY + ["train.steps=3", "train.ckpt_every=10"]
    cfg = load_config(None, common)
    train(cfg, tmp_path / "a1", progress=False)
    train(load_config(None, common + ["train.grad_accum=2"]), tmp_path / "a2", progress=False)
    _assert_same_weights(load_checkpoint(tmp_path / "a1"), load_checkpoint(tmp_path / "a2"), cfg)
    torch.testing.assert_close(_losses(tmp_path / "a1"), _losses(tmp_path / "a2"), **TOL)
    with pytest.raises(ValueError, match="grad_accum"):
        load_config(None, common + ["train.grad_accum=3"])


def test_text_conditioned_accumulation_drops_the_same_captions(tmp_path):
    pytest.importorskip("transformers")
    from test_text import make_tiny_bert

    make_tiny_bert(tmp_path / "bert")
    common = TINY + ["train.steps=1", "text.cond_dim=16", "train.cond_drop_prob=0.5",
                     "data.image_frames=2", f"text.encoder={tmp_path / 'bert'}", f"text.cache_dir={tmp_path / 'c'}"]
    cfg = load_config(None, common)
    train(cfg, tmp_path / "a1", progress=False)
    train(load_config(None, common + ["train.grad_accum=4"]), tmp_path / "a4", progress=False)
    a1, a4 = load_checkpoint(tmp_path / "a1"), load_checkpoint(tmp_path / "a4")
    assert any(k.startswith("pool.") for k in a1["model"])
    _assert_same_weights(a1, a4, cfg)


class _Stream(torch.utils.data.IterableDataset):
    """Seeded clips in a fixed order, with ``skip(n)`` like a shard reader that can seek."""

    def __init__(self):
        self.start, self.skipped = 0, []

    def skip(self, n, batch_size=None):
        self.skipped.append((n, batch_size))
        self.start += n

    def __iter__(self):
        i = self.start
        while True:
            yield {"video": torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(i)).clamp(-1, 1)}
            i += 1


def test_iterable_dataset_resumes_through_skip(tmp_path):
    common = TINY + ["train.ckpt_every=10"]
    train(load_config(None, common + ["train.steps=4"]), tmp_path / "full", progress=False, dataset=_Stream())
    train(load_config(None, common + ["train.steps=2"]), tmp_path / "part", progress=False, dataset=_Stream())
    stream = _Stream()
    train(load_config(None, common + ["train.steps=4"]), tmp_path / "part", progress=False, dataset=stream)
    assert stream.skipped == [(8, 4)]  # 2 steps x 4 clips consumed by this (only) rank, in micro-batches of 4
    assert _losses(tmp_path / "part") == _losses(tmp_path / "full")  # the same split: bit-exact
    a, b = load_checkpoint(tmp_path / "part"), load_checkpoint(tmp_path / "full")
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k


def test_rank_slices_partition_each_global_batch():
    stream = GlobalIndexStream(10, seed=3, start=4)
    it = iter(stream)
    expected = [next(it) for _ in range(12)]  # 2 global batches of 6, across an epoch boundary
    parts = []
    for rank in range(3):
        it = iter(RankSlice(stream, 6, rank, 3))
        parts.append([next(it) for _ in range(4)])
    got = [i for b in range(2) for r in range(3) for i in parts[r][2 * b : 2 * b + 2]]
    assert got == expected
    with pytest.raises(ValueError, match="divisible"):
        RankSlice(stream, 6, 0, 4)


@pytest.mark.parametrize("low_discrepancy", [False, True])
def test_step_noise_does_not_depend_on_the_split(low_discrepancy):
    kw = dict(seed=1, step=5, global_batch=6, low_discrepancy=low_discrepancy, drop_prob=0.3, video_frames=3,
              image_frames=2)
    whole = draw_step_noise(range(0, 6), (1, 5, 4, 4), **kw)
    halves = [draw_step_noise(range(a, a + 3), (1, 5, 4, 4), **kw) for a in (0, 3)]
    for field in ("t", "eps", "keep"):
        assert torch.equal(getattr(whole, field), torch.cat([getattr(h, field) for h in halves])), field
    assert whole.keep.shape == (6, 5) and bool((whole.keep[:, :3] == whole.keep[:, :1]).all())
    other = draw_step_noise(range(0, 6), (1, 5, 4, 4), **{**kw, "step": 6})
    assert not torch.equal(whole.eps, other.eps)
    if low_discrepancy:  # stratified over the global batch: one t per sixth of [0, 1)
        assert sorted((whole.t * 6).floor().tolist()) == list(range(6))
