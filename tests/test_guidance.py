"""Classifier-free guidance (eq. 5) as a denoiser wrapper: the formula on hand-computed values, raw vs clipped
predictions, one batched network call, the trained null condition, and composition with samplers and wrappers."""

import math

import pytest
import torch

from videodiff.denoiser import Denoiser
from videodiff.diffusion import eps_from_x, x_from_eps
from videodiff.sampling import sample_ancestral, sample_ddim
from videodiff.sampling.guidance import ClassifierFreeGuidance, classifier_free_guidance, null_condition
from videodiff.schedule import logsnr_cosine, time_grid

pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine


def two_valued(x_c, x_u, calls=None):
    """A denoiser predicting ``x_c`` for conditional examples (cond_keep True) and ``x_u`` for the null condition."""

    def denoise(z_t, logsnr, cond_keep=None, **kw):
        if calls is not None:
            calls.append((z_t.shape[0], cond_keep.clone()))
        keep = cond_keep.reshape(-1, *([1] * (z_t.ndim - 1)))
        x = torch.where(keep, torch.as_tensor(x_c, dtype=z_t.dtype), torch.as_tensor(x_u, dtype=z_t.dtype))
        return x.expand_as(z_t)

    return denoise


def test_hand_computed_case_and_w_zero():
    z, lam = torch.ones(1, 1, 1, 1, 1), torch.zeros(1)  # alpha = sigma = 1/sqrt(2)
    s = 1 / math.sqrt(2)
    eps_c, eps_u = (1 - s * 0.5) / s, (1 + s * 0.5) / s  # 0.9142, 1.9142
    w = 2.0
    eps = (1 + w) * eps_c - w * eps_u  # eq. (5): -1.0858
    expected = (1 - s * eps) / s  # = (1 + w) 0.5 - w (-0.5) = 2.5
    assert expected == pytest.approx(2.5)
    guided = ClassifierFreeGuidance(two_valued(0.5, -0.5), w)
    assert guided(z, lam).item() == pytest.approx(expected, abs=1e-6)
    assert ClassifierFreeGuidance(two_valued(0.5, -0.5), w, clip_x=True)(z, lam).item() == 1.0
    assert ClassifierFreeGuidance(two_valued(0.5, -0.5), 0.0)(z, lam).item() == pytest.approx(0.5, abs=1e-6)
    assert ClassifierFreeGuidance(two_valued(0.5, -0.5), -1.0)(z, lam).item() == pytest.approx(-0.5, abs=1e-6)


def test_exact_linear_combination_in_eps_space():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 1, 2, 4, 4, generator=g)
    x_c, x_u = torch.randn(z.shape, generator=g), torch.randn(z.shape, generator=g)
    lam = torch.tensor([-3.0, 0.5, 6.0])

    def denoise(z_t, logsnr, cond_keep):
        return torch.where(cond_keep.reshape(-1, 1, 1, 1, 1), torch.cat([x_c, x_c]), torch.cat([x_u, x_u]))

    for w in (0.0, 1.0, 2.0, 5.0):
        out = ClassifierFreeGuidance(denoise, w)(z, lam)
        eps = (1 + w) * eps_from_x(z, x_c, lam) - w * eps_from_x(z, x_u, lam)
        torch.testing.assert_close(eps_from_x(z, out, lam), eps, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out, (1 + w) * x_c - w * x_u, atol=1e-5, rtol=1e-5)  # affine: same in x space
    per_example = ClassifierFreeGuidance(denoise, torch.tensor([0.0, 1.0, 5.0]))(z, lam)  # a weight per example
    for i, w in enumerate((0.0, 1.0, 5.0)):
        torch.testing.assert_close(per_example[i], (1 + w) * x_c[i] - w * x_u[i], atol=1e-5, rtol=1e-5)


def test_guidance_combines_raw_predictions_then_clips():
    """A Denoiser clips x_hat to [-1, 1]; guidance must combine its *raw* predictions. Here x_c = -0.5 and the raw
    unconditional x_u = -1.5: raw guidance at w = 1 gives 2(-0.5) - (-1.5) = 0.5, combining the clipped predictions
    would give 2(-0.5) - (-1) = 0."""

    def net(z_t, logsnr, cond_keep):  # an eps-network whose x_hat is -0.5 (cond) / -1.5 (null)
        x = torch.where(cond_keep.reshape(-1, 1, 1, 1, 1), -0.5, -1.5).expand_as(z_t)
        return eps_from_x(z_t, x, logsnr)

    den = Denoiser(net, "eps", clip_x=True)
    z, lam = torch.full((2, 1, 1, 2, 2), 0.3), torch.tensor([1.0, 1.0])
    keep = torch.ones(2, dtype=torch.bool)
    assert den(z, lam, cond_keep=~keep).max().item() == -1.0  # the denoiser alone clips
    guided = ClassifierFreeGuidance(den, 1.0)
    torch.testing.assert_close(guided(z, lam), torch.full_like(z, 0.5))
    assert guided.clip_x and ClassifierFreeGuidance(den, 10.0)(z, lam).max().item() == 1.0  # clipped after guidance
    assert den.clip_x  # the caller's denoiser is unchanged


def test_one_batched_call_equals_two_calls():
    calls = []
    g = torch.Generator().manual_seed(1)
    z, lam = torch.randn(3, 1, 2, 4, 4, generator=g), torch.full((3,), 0.7)
    shared_mask = torch.eye(2, dtype=torch.bool)
    text = torch.randn(3, 5, 8, generator=g)

    def denoise(z_t, logsnr, cond_keep, text_emb, frame_mask):
        calls.append((z_t.shape[0], cond_keep.tolist(), text_emb.shape[0], frame_mask.shape))
        scale = 1 + cond_keep.float().reshape(-1, 1, 1, 1, 1) * text_emb.mean((1, 2)).reshape(-1, 1, 1, 1, 1)
        return torch.tanh(z_t * scale * logsnr.reshape(-1, 1, 1, 1, 1))

    batched = ClassifierFreeGuidance(denoise, 1.5)(z, lam, text_emb=text, frame_mask=shared_mask)
    assert calls == [(6, [True] * 3 + [False] * 3, 6, (2, 2))]  # one call; (F, F) mask shared, not doubled
    calls.clear()
    two = ClassifierFreeGuidance(denoise, 1.5, batched=False)(z, lam, text_emb=text, frame_mask=shared_mask)
    assert [c[0] for c in calls] == [3, 3]
    torch.testing.assert_close(batched, two)


def test_null_condition_for_vector_cond_and_errors():
    cond = torch.randn(2, 4)
    c, u = null_condition({"cond": cond}, 2)
    assert c["cond"] is cond and torch.equal(u["cond"], torch.zeros(2, 4)) and "cond_keep" not in u

    def denoise(z_t, logsnr, cond, scale):
        return z_t * scale

    with pytest.raises(ValueError, match="cannot batch the argument 'scale'"):
        ClassifierFreeGuidance(denoise, 1.0, null=lambda kw, b: (dict(kw, scale=1.0), dict(kw, scale=2.0)))(
            torch.ones(2, 1, 1, 1, 1), torch.zeros(2), cond=cond, scale=1.0)


def test_text_network_unconditional_pass_is_the_trained_null_condition():
    from test_text import tiny_text_net

    net = tiny_text_net()
    den = Denoiser(net, "eps", clip_x=True)
    g = torch.Generator().manual_seed(2)
    z, lam = torch.randn(2, 1, 3, 16, 16, generator=g), torch.tensor([-2.0, 3.0])
    text = {"text_emb": torch.randn(2, 4, 32, generator=g),
            "text_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]).bool()}
    with torch.no_grad():
        torch.testing.assert_close(ClassifierFreeGuidance(den, 0.0)(z, lam, **text), den(z, lam, **text),
                                   atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(ClassifierFreeGuidance(den, -1.0)(z, lam, **text), den(z, lam), atol=1e-5, rtol=1e-4)
        # Training's conditioning dropout (cond_keep=False) is the same null condition.
        torch.testing.assert_close(den(z, lam, cond_keep=torch.tensor([False, False]), **text), den(z, lam))


@pytest.mark.parametrize("sampler", [sample_ancestral, sample_ddim])
def test_composes_with_samplers(sampler):
    def denoise(z_t, logsnr, cond_keep):
        shift = torch.where(cond_keep, 0.3, -0.2).reshape(-1, 1, 1, 1, 1)
        return torch.tanh(torch.sigmoid(logsnr).sqrt().reshape(-1, 1, 1, 1, 1) * z_t + shift)

    def manual(z_t, logsnr):  # eq. (5) written out
        keep = torch.ones(z_t.shape[0], dtype=torch.bool)
        x_c, x_u = denoise(z_t, logsnr, keep), denoise(z_t, logsnr, ~keep)
        eps = 3.0 * eps_from_x(z_t, x_c, logsnr) - 2.0 * eps_from_x(z_t, x_u, logsnr)
        return x_from_eps(z_t, eps, logsnr)

    logsnrs = logsnr_cosine(time_grid(8))
    z = torch.randn(2, 1, 2, 3, 3, generator=torch.Generator().manual_seed(3))
    a = sampler(ClassifierFreeGuidance(denoise, 2.0), z, logsnrs, generator=torch.Generator().manual_seed(4))
    b = sampler(manual, z, logsnrs, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def _toy(z_t, logsnr, cond_keep):
    shift = torch.where(cond_keep, 0.4, -0.1).reshape(-1, 1, 1, 1, 1)
    return torch.tanh(0.8 * z_t + shift) + 0.1 * z_t.roll(1, dims=2)  # couples frames


def test_gradients_flow_through_guidance():
    """Outer wrappers (reconstruction guidance, eq. 6-7) differentiate through the guided denoiser."""
    z = torch.randn(2, 1, 3, 2, 2, generator=torch.Generator().manual_seed(5), requires_grad=True)
    lam = torch.tensor([0.2, 0.2])
    guided = ClassifierFreeGuidance(_toy, 2.0)(z, lam)
    (grad,) = torch.autograd.grad(guided[:, :, 0].square().sum(), z)
    keep = torch.ones(2, dtype=torch.bool)
    manual = 3.0 * _toy(z, lam, keep) - 2.0 * _toy(z, lam, ~keep)
    (grad_ref,) = torch.autograd.grad(manual[:, :, 0].square().sum(), z)
    torch.testing.assert_close(grad, grad_ref, atol=1e-5, rtol=1e-5)


def test_composes_with_reconstruction_guidance():
    rg = pytest.importorskip("videodiff.conditional.reconstruction", reason="reconstruction guidance not present")
    g = torch.Generator().manual_seed(6)
    z, lam = torch.randn(2, 1, 3, 2, 2, generator=g), torch.tensor([0.5, 0.5])
    x_a, mask = torch.randn(2, 1, 3, 2, 2, generator=g), torch.zeros(1, 1, 3, 1, 1)
    mask[:, :, 0] = 1  # frame 0 known
    keep = torch.ones(2, dtype=torch.bool)

    def guided_manual(z_t, logsnr):
        return 3.0 * _toy(z_t, logsnr, keep) - 2.0 * _toy(z_t, logsnr, ~keep)

    outer = rg.ReconstructionGuidance(classifier_free_guidance(_toy, 2.0), x_a=x_a, mask=mask)(z, lam)
    ref = rg.ReconstructionGuidance(guided_manual, x_a=x_a, mask=mask)(z, lam)
    torch.testing.assert_close(outer, ref, atol=1e-5, rtol=1e-5)
    # The other order needs two calls (the inner wrapper holds tensors of the original batch size).
    inner = ClassifierFreeGuidance(rg.ReconstructionGuidance(_toy, x_a=x_a, mask=mask), 2.0, batched=False,
                                   null=lambda kw, b: ({"cond_keep": keep}, {"cond_keep": ~keep}))(z, lam)
    assert inner.shape == z.shape and torch.isfinite(inner).all()
