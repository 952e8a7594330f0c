"""A sampler added as one file + one registry entry (docs/architecture.md): the ancestral step of eq. (4) with
gamma = 0 (the posterior q(z_s | z_t, x_hat) of eq. 3) and its noise scaled by ``noise_scale``.

``noise_scale = 1`` is the ancestral sampler with gamma = 0; ``noise_scale = 0`` keeps only the posterior mean (a
deterministic sampler that under-disperses). Not a method of the paper: an example of the extension point.
"""

from __future__ import annotations

from videodiff.diffusion import posterior_variance, q_posterior
from videodiff.sampling.common import run_sampler
from videodiff.sampling.registry import SamplerOption, SamplerSpec


def sample_scaled(denoise, z, logsnrs, *, noise_scale: float = 1.0, **kwargs):
    if noise_scale < 0:
        raise ValueError(f"noise_scale must be >= 0, got {noise_scale}")

    def update(z_t, x_hat, logsnr_t, logsnr_s, noise):
        mean, _ = q_posterior(z_t, x_hat, logsnr_t, logsnr_s)  # eq. (3)
        std = posterior_variance(logsnr_t, logsnr_s).sqrt().to(z_t.dtype)
        return mean + noise_scale * std * noise()

    return run_sampler(update, denoise, z, logsnrs, desc="scaled", **kwargs)


# The registry entry (a built-in sampler has this line in videodiff/sampling/registry.py's BUILTIN instead).
SPEC = SamplerSpec("scaled", sample_scaled,
                   (SamplerOption("noise_scale", float, 1.0, "scale of the posterior noise (example sampler)"),),
                   "example: eq. (4) with gamma = 0 and scaled noise")
