"""FSDP2 (``train.parallel: fsdp``) beside DDP, on the CPU with 2 gloo processes under torchrun: the same loss curve
for 20 steps, and sharded checkpoints (torch.distributed.checkpoint) written at world size 2 that resume at world
size 1 exactly as the same state saved unsharded does."""

import json
import shutil

import pytest
import torch

from test_distributed import TINY, _torchrun
from videodiff.checkpoint import load_checkpoint, save_checkpoint
from videodiff.config import load_config
from videodiff.models import build_model
from videodiff.train import train

pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine

RUN = TINY + ["train.steps=20", "train.ckpt_every=10", "train.loggers=[]", "diffusion.low_discrepancy=false"]
# Measured on 2 gloo CPU ranks: identical losses but for 1-ulp differences (5.96e-8) from step 9 on, where the
# gradient norm (a sum over shards in FSDP, over whole tensors in DDP) differs in its last bit and so does the
# clipping factor. The tolerance leaves 100x room.
CURVE_RTOL = 1e-5


def _losses(run):
    return {r["step"]: r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


def _unshard(run, cfg):
    """Rewrite the latest (sharded) checkpoint of ``run`` as an ordinary unsharded one holding the same state."""
    ck = load_checkpoint(run)
    torch.manual_seed(0)
    model, ema = build_model(cfg), build_model(cfg)
    model.load_state_dict(ck["model"])
    ema.load_state_dict(ck["ema"])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, betas=cfg.train.betas)
    opt.load_state_dict(ck["optimizer"])
    shutil.rmtree(ck["path"])
    extra = {k: ck[k] for k in ("samples_seen", "world_size", "grad_accum", "skipped_steps")}
    save_checkpoint(run, ck["step"], model, ema, opt, {}, ck["config"], extra=extra)


def test_fsdp_matches_ddp_and_sharded_checkpoint_resumes_on_one_process(tmp_path):
    ddp, fsdp = tmp_path / "ddp", tmp_path / "fsdp"
    _torchrun(ddp, RUN + ["train.parallel=ddp"], timeout=300)
    _torchrun(fsdp, RUN + ["train.parallel=fsdp"], timeout=300)
    a, b = _losses(ddp), _losses(fsdp)
    assert sorted(a) == sorted(b) == list(range(1, 21))
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=CURVE_RTOL), step

    # the FSDP run's checkpoints are sharded: one file of shards per rank, plus DCP's metadata
    ck10 = fsdp / "checkpoints" / "step_000010"
    meta = json.loads((ck10 / "state.json").read_text())
    assert meta["sharded"] and meta["world_size_saved"] == 2
    assert sorted(p.name for p in (ck10 / "dcp").iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp"]

    # resume step 10 -> 20 in one process: from the sharded checkpoint, and from the same state saved unsharded
    cfg = load_config(None, RUN + ["train.parallel=fsdp"])
    sharded, unsharded = tmp_path / "resume_sharded", tmp_path / "resume_unsharded"
    for run in (sharded, unsharded):
        shutil.copytree(fsdp, run)
        shutil.rmtree(run / "checkpoints" / "step_000020")
        (run / "checkpoints" / "latest").unlink()
    _unshard(unsharded, cfg)
    assert not (unsharded / "checkpoints" / "step_000010" / "dcp").exists()
    for run in (sharded, unsharded):
        assert train(cfg, run, progress=False).step == 20
    x, y = _losses(sharded), _losses(unsharded)
    assert [x[s] for s in range(11, 21)] == [y[s] for s in range(11, 21)]  # bit-exact
    fx, fy = load_checkpoint(sharded), load_checkpoint(unsharded)
    for group in ("model", "ema"):
        assert all(torch.equal(fx[group][k], fy[group][k]) for k in fx[group])
    # and the world-size-1 continuation follows the uninterrupted world-size-2 run
    for step in range(11, 21):
        assert x[step] == pytest.approx(b[step], rel=CURVE_RTOL), step
