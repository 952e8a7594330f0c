"""What the training loss averages over with appended image frames (Sec. 4.2), the video-frames-only restriction of
``benchmarks/joint_gradient_variance.py``, and its gradient-noise estimator (tr Sigma, |G|^2, B_simple)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import randomize_zero_init
from videodiff.losses import diffusion_loss
from videodiff.nn import UNet3D, UNetConfig, joint_frame_mask

pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine

_spec = importlib.util.spec_from_file_location(
    "joint_gradient_variance", Path(__file__).parents[1] / "benchmarks" / "joint_gradient_variance.py")
jgv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(jgv)

F, N = 3, 2


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 1, F + N, 16, 16, generator=g).clamp(-1, 1)
    return x, torch.tensor([0.7, -1.5]), torch.randn(x.shape, generator=g)


@pytest.mark.parametrize("param", ["eps", "v"])
def test_training_loss_is_the_uniform_mean_over_video_and_image_frames(param):
    """``diffusion_loss`` gives each clip the mean squared error over all C x (F + N) x H x W elements: the video
    frames weigh F / (F + N), each image frame 1 / (F + N), per clip (not per frame kind, not over the batch)."""
    from test_text import tiny_text_net

    net = tiny_text_net().train()
    x, lam, eps = _batch()
    kw = dict(text_emb=torch.randn(2, F + N, 4, 32), frame_mask=joint_frame_mask(F, N))
    joint, video, images = jgv.frame_losses(net, x, lam, eps, F, param, **kw)
    assert joint.shape == video.shape == images.shape == (2,)
    torch.testing.assert_close(joint, diffusion_loss(net, x, lam, eps, parameterization=param, **kw))
    torch.testing.assert_close(joint, (F * video + N * images) / (F + N))
    assert (video - images).abs().min() > 1e-4  # the weighting is visible: the two parts differ


def test_video_only_loss_is_the_loss_without_image_frames():
    """With the joint frame mask and per-frame GroupNorm, the video-frames-only loss (and its gradient) with N image
    frames appended is the N = 0 training loss of the same clips: changing the image frames' content, noise and
    captions changes the joint loss but not the video-only one."""
    from test_text import tiny_text_net

    net = tiny_text_net().train()
    params = list(net.parameters())
    x, lam, eps = _batch()
    text = torch.randn(2, 4, 32)  # one caption per video
    per_frame = torch.cat([text[:, None].expand(2, F, 4, 32), torch.randn(2, N, 4, 32)], 1)
    keep = torch.tensor([[True] * F + [False, True], [False] * F + [True, True]])  # caption dropout, per frame
    mask = joint_frame_mask(F, N)
    joint, video, _ = jgv.frame_losses(net, x, lam, eps, F, "v", text_emb=per_frame, cond_keep=keep, frame_mask=mask)
    alone = diffusion_loss(net, x[:, :, :F], lam, eps[:, :, :F], parameterization="v", text_emb=text,
                           cond_keep=keep[:, 0])  # N = 0: no image frames, no mask
    torch.testing.assert_close(video, alone, atol=1e-6, rtol=1e-5)
    for a, b in zip(torch.autograd.grad(video.sum(), params, retain_graph=True),
                    torch.autograd.grad(alone.sum(), params)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)

    x2, _, eps2 = _batch(seed=1)
    x2[:, :, :F], eps2[:, :, :F] = x[:, :, :F], eps[:, :, :F]  # the same video, other image frames
    per_frame2 = per_frame.clone()
    per_frame2[:, F:] = torch.randn(2, N, 4, 32)
    joint2, video2, _ = jgv.frame_losses(net, x2, lam, eps2, F, "v", text_emb=per_frame2, cond_keep=keep,
                                         frame_mask=mask)
    torch.testing.assert_close(video2, video, atol=1e-6, rtol=1e-5)
    assert (joint2 - joint).abs().min() > 1e-4


def test_widened_frame_positions_keep_the_video_frames():
    torch.manual_seed(0)
    net = randomize_zero_init(UNet3D(UNetConfig(image_size=16, base_channels=16, channel_mults=(1, 2),
                                                num_res_blocks=1, attn_resolutions=(8,), head_dim=8, dropout=0.0,
                                                frame_positions=F))).eval()
    x, lam, _ = _batch()
    with torch.no_grad():
        before = net(x[:, :, :F], lam)
        jgv.widen_frame_positions(net, F + N)
        after = net(x, lam, frame_mask=joint_frame_mask(F, N))
    assert net.frame_pos.weight.shape[0] == F + N and not net.frame_pos.weight[F:].any()
    torch.testing.assert_close(after[:, :, :F], before, atol=1e-6, rtol=1e-5)


def test_noise_estimator_against_a_known_gaussian():
    """G_m = g + L z_m: tr(Sigma) = |L|_F^2 and |g|^2 are known; the estimates are within 4 standard errors, tr is
    the unbiased sample covariance's trace exactly, and the bootstrap intervals cover the truth."""
    rng = np.random.default_rng(0)
    p, m, batch = 40, 400, 8
    g = rng.normal(size=p) * 0.5
    chol = rng.normal(size=(p, p)) / np.sqrt(p)
    sigma = chol @ chol.T
    grads = g + rng.normal(size=(m, p)) @ chol.T
    st = jgv.noise_stats(grads @ grads.T, batch)
    assert st["trace_cov"] == pytest.approx(np.trace(np.cov(grads.T)), rel=1e-10)
    tr, tr2 = np.trace(sigma), np.trace(sigma @ sigma)
    assert abs(st["trace_cov"] - tr) < 4 * np.sqrt(2 * tr2 / (m - 1))
    assert abs(st["grad_sq"] - g @ g) < 4 * np.sqrt(4 * g @ sigma @ g / m + 2 * tr2 / m**2)
    assert st["b_simple"] == pytest.approx(batch * st["trace_cov"] / st["grad_sq"])
    base, scaled = jgv.bootstrap([grads @ grads.T, 4 * grads @ grads.T], batch, reps=300)
    assert base["trace_cov_ci"][0] < tr < base["trace_cov_ci"][1]
    assert base["grad_sq_ci"][0] < g @ g < base["grad_sq_ci"][1]
    assert base["b_simple_ci"][0] < batch * tr / (g @ g) < base["b_simple_ci"][1]
    # paired resampling: a rescaled copy has exactly the same B_simple and 4 x the trace in every resample
    assert scaled["b_simple_ratio_ci"] == pytest.approx([1, 1])
    assert scaled["trace_cov_ratio_ci"] == pytest.approx([4, 4])
    assert jgv.noise_stats(np.ones((3, 3)), batch)["b_simple"] == 0.0  # no noise
    v = np.stack([g, -g])  # mean 0: the unbiased |G|^2 is negative, B_simple unbounded
    assert jgv.noise_stats(v @ v.T, batch)["grad_sq"] < 0 and jgv.noise_stats(v @ v.T, batch)["b_simple"] == np.inf
