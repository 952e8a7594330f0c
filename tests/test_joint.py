"""Joint image-video training (Sec. 3, 4.2): per-frame conditioning in UNet3D, the independence of appended image
frames through the full training-time network (text pooling included), and the image-frame data."""

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import randomize_zero_init
from videodiff.data import DataConfig, ImageFolder, MovingMNIST, WithImageFrames, build_dataset, collate_clips
from videodiff.losses import diffusion_loss
from videodiff.nn import UNet3D, UNetConfig, identity_frame_mask, joint_frame_mask

pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine


def tiny_unet(cond_dim=6):
    torch.manual_seed(0)
    return randomize_zero_init(UNet3D(UNetConfig(image_size=16, base_channels=16, channel_mults=(1, 2),
                                                 num_res_blocks=1, attn_resolutions=(16, 8), head_dim=8, dropout=0.0,
                                                 cond_dim=cond_dim))).eval()


def test_per_frame_cond_is_backwards_compatible_and_local():
    m = tiny_unet()
    z, lam, c = torch.randn(2, 1, 4, 16, 16), torch.tensor([0.3, -1.0]), torch.randn(2, 6)
    with torch.no_grad():
        per_video = m(z, lam, cond=c)
        per_frame = m(z, lam, cond=c[:, None].expand(2, 4, 6))
        torch.testing.assert_close(per_frame, per_video, atol=1e-5, rtol=1e-5)  # matmul shapes differ: fp32 rounding (1.2e-6 on an AVX2 Zen 3)
        # Under the identity mask, a frame's condition reaches only that frame.
        cf = c[:, None].repeat(1, 4, 1)
        cf2 = cf.clone()
        cf2[:, 2] = torch.randn(2, 6)
        mask = identity_frame_mask(4)
        d = (m(z, lam, cond=cf2, frame_mask=mask) - m(z, lam, cond=cf, frame_mask=mask)).abs().amax(dim=(0, 1, 3, 4))
    assert d[2] > 1e-3 and d[[0, 1, 3]].max() == 0
    with pytest.raises(ValueError, match="per-frame cond"):
        m(z, lam, cond=torch.randn(2, 3, 6))


def test_image_frames_are_independent_through_the_training_network():
    """Jacobian check through TextConditionedUNet in training mode, with per-frame caption embeddings and the joint
    mask: an image frame's output depends only on its own input and caption; video frames depend on each other but
    on no image frame."""
    from test_text import tiny_text_net

    f, n = 3, 2
    net = tiny_text_net().train()  # dropout is 0: training mode differs only in what would be random
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 1, f + n, 16, 16, generator=g, requires_grad=True)
    text = torch.randn(2, f + n, 4, 32, generator=g, requires_grad=True)
    mask = torch.ones(2, f + n, 4, dtype=torch.bool)
    mask[:, f + 1, 2:] = False  # some padding
    out = net(z, torch.tensor([0.5, -2.0]), text_emb=text, text_mask=mask,
              cond_keep=torch.tensor([[True] * (f + n), [True, True, True, False, True]]),
              frame_mask=joint_frame_mask(f, n))

    def influence(frames):
        gz, gt = torch.autograd.grad(out[:, :, frames].square().sum(), (z, text), retain_graph=True)
        return gz.abs().sum(dim=(0, 1, 3, 4)), gt.abs().sum(dim=(0, 2, 3))  # per source frame, (F+N,) each

    for k in range(f, f + n):  # each image frame
        gz, gt = influence([k])
        others = [j for j in range(f + n) if j != k]
        assert gz[k] > 0 and gt[k] > 0
        assert gz[others].max() == 0 and gt[others].max() == 0  # exactly zero: no path from any other frame
    gz, gt = influence(list(range(f)))  # the video frames
    assert gz[:f].min() > 0 and gt[:f].min() > 0
    assert gz[f:].max() == 0 and gt[f:].max() == 0
    gz0, _ = influence([0])
    assert gz0[1:f].min() > 0  # the test can fail: video frames do attend to each other


def test_with_image_frames_from_the_same_dataset():
    base = MovingMNIST(num_frames=4, image_size=16, num_digits=1, num_clips=30)
    from videodiff.data.captions import CaptionedMovingMNIST

    ds = WithImageFrames(CaptionedMovingMNIST(base), 3, seed=1)
    item = ds[7]
    assert item["video"].shape == (1, 7, 16, 16) and item["num_image_frames"] == 3
    assert torch.equal(item["video"][:, :4], base[7]["video"])  # the video itself is unchanged
    for i, (j, k) in enumerate(ds.sources(7)):  # each image is frame k of clip j, with clip j's caption
        assert torch.equal(item["video"][:, 4 + i], base[j]["video"][:, k])
        assert item["image_captions"][i] == ds.dataset[j]["caption"]
    assert torch.equal(ds[7]["video"], item["video"])  # deterministic per index
    assert len({tuple(ds.sources(i)) for i in range(10)}) == 10  # different draws for different clips
    batch = collate_clips([ds[0], ds[1]])
    assert batch["video"].shape == (2, 1, 7, 16, 16) and len(batch["image_captions"][0]) == 3


def test_with_image_frames_from_an_image_folder(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(tmp_path / f"im{i}.png")
    (tmp_path / "im1.txt").write_text("a gray square\n")
    images = ImageFolder(tmp_path, image_size=8, channels=1)
    assert images[1]["caption"] == "a gray square" and images[0]["caption"] == ""
    assert images[2]["image"].shape == (1, 8, 8)
    cfg = DataConfig(image_size=8, num_frames=2, num_digits=1, train_clips=5, captions=True, image_frames=4,
                     image_root=str(tmp_path))
    item = build_dataset(cfg, "train")[0]
    assert item["video"].shape == (1, 6, 8, 8) and len(item["image_captions"]) == 4
    assert set(item["image_captions"]) <= {"", "a gray square"}
    assert build_dataset(cfg, "test")[0]["video"].shape == (1, 2, 8, 8)  # only training clips get image frames


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
def test_training_batch_loss_covers_image_frames(tmp_path):
    from test_text import make_tiny_bert
    from videodiff.config import load_config
    from videodiff.pipeline import build_model
    from videodiff.text import build_text_cache
    from videodiff.train.loop import _net_kwargs
    from videodiff.train.randomness import draw_step_noise

    make_tiny_bert(tmp_path / "bert")
    cfg = load_config(None, ["data.image_size=16", "data.num_frames=3", "data.num_digits=1", "data.image_frames=2",
                             "model.base_channels=16", "model.channel_mults=[1, 2]", "model.num_res_blocks=1",
                             "model.attn_resolutions=[8]", "model.head_dim=8", f"text.encoder={tmp_path / 'bert'}",
                             f"text.cache_dir={tmp_path / 'cache'}", "text.cond_dim=8", "train.cond_drop_prob=0.5"])
    batch = collate_clips([build_dataset(cfg.data, "train")[i] for i in range(4)])
    keep = draw_step_noise(range(4), tuple(batch["video"].shape[1:]), seed=0, step=0, global_batch=4, drop_prob=0.5,
                           video_frames=3, image_frames=2).keep  # conditioning dropout per video and image frame
    kw = _net_kwargs(batch, cfg, build_text_cache(cfg.text), keep, "cpu")
    assert torch.equal(kw["frame_mask"], joint_frame_mask(3, 2))
    assert kw["text_emb"].shape[:2] == (4, 5) and kw["cond_keep"].shape == (4, 5)
    torch.manual_seed(0)
    net = randomize_zero_init(build_model(cfg))
    x = batch["video"]
    lam, eps = torch.zeros(4), torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    loss = diffusion_loss(net, x, lam, eps, **kw)
    x2 = x.clone()
    x2[:, :, 4] = -x2[:, :, 4]  # change only the last image frame's target
    assert (diffusion_loss(net, x2, lam, eps, **kw) - loss).abs().min() > 0
