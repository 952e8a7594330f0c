import torch

from videodiff.diffusion import (
    eps_from_v,
    eps_from_x,
    forward_variance,
    posterior_variance,
    q_posterior,
    q_sample,
    v_from_x_eps,
    x_from_eps,
    x_from_v,
)
from videodiff.schedule import alpha_sigma

g = torch.Generator().manual_seed(0)
X = torch.randn(3, 2, 4, 5, 5, generator=g, dtype=torch.float64)
EPS = torch.randn(3, 2, 4, 5, 5, generator=g, dtype=torch.float64)
LAM = torch.tensor([-8.0, 0.3, 9.0], dtype=torch.float64)


def test_eps_x_v_round_trips():
    z = q_sample(X, LAM, EPS)
    torch.testing.assert_close(x_from_eps(z, EPS, LAM), X)
    torch.testing.assert_close(eps_from_x(z, X, LAM), EPS)
    v = v_from_x_eps(X, EPS, LAM)
    torch.testing.assert_close(x_from_v(z, v, LAM), X)
    torch.testing.assert_close(eps_from_v(z, v, LAM), EPS)


def test_posterior_matches_gaussian_conditioning():
    # q(z_s | z_t, x) from Bayes on the joint Gaussian of (z_s, z_t) given x (eq. 1) equals eq. (3).
    ls, lt = torch.tensor(2.0, dtype=torch.float64), torch.tensor(-1.0, dtype=torch.float64)
    a_s, s_s = alpha_sigma(ls)
    a_t, s_t = alpha_sigma(lt)
    a_ts = a_t / a_s
    var_ts = s_t**2 - a_ts**2 * s_s**2  # Var[z_t | z_s] from the Markov property
    torch.testing.assert_close(var_ts, forward_variance(lt, ls))
    # Joint: z_s = a_s x + s_s e1, z_t = a_ts z_s + sqrt(var_ts) e2 -> Cov[z_s, z_t] = a_ts s_s^2.
    cov_st, var_t = a_ts * s_s**2, s_t**2
    z_t = q_sample(X, lt, EPS)
    mean_bayes = a_s * X + cov_st / var_t * (z_t - a_t * X)
    var_bayes = s_s**2 - cov_st**2 / var_t
    mean, var = q_posterior(z_t, X, lt, ls)
    torch.testing.assert_close(mean, mean_bayes)
    torch.testing.assert_close(var.reshape(()), var_bayes)
    torch.testing.assert_close(posterior_variance(lt, ls), var_bayes)


def test_parameterizations_round_trip_and_loss_target():
    """videodiff/parameterization.py: a network that outputs the loss target exactly implies x_hat = x (both
    parameterisations), and diffusion_loss of that network is zero; an unknown name is refused naming the option."""
    import pytest

    from videodiff.diffusion import q_sample
    from videodiff.losses import diffusion_loss
    from videodiff.parameterization import PARAMETERIZATIONS, check_parameterization, target, x_from_output

    x, eps = torch.randn(3, 2, 4, 5, 5).clamp(-1, 1), torch.randn(3, 2, 4, 5, 5)
    lam = torch.tensor([-6.0, 0.0, 7.0])
    z = q_sample(x, lam, eps)
    for name in PARAMETERIZATIONS:
        goal = target(name, x, eps, lam)
        torch.testing.assert_close(x_from_output(name, z, goal, lam), x, atol=2e-4, rtol=0)
        loss = diffusion_loss(lambda z_t, logsnr, goal=goal: goal, x, lam, eps, parameterization=name)
        assert float(loss.abs().max()) < 1e-10
    torch.testing.assert_close(target("eps", x, eps, lam), eps)
    with pytest.raises(ValueError, match="diffusion.parameterization must be one of"):
        check_parameterization("x0", "diffusion.parameterization")
