"""Background grain of the shipped model's samples per sampler (issue 14's I3D FVD finding): the RMS of (x + 1)
over near-black pixels (x < -0.8) of 16 unconditional samples, against 16 real held-out clips.

    python benchmarks/sampler_grain.py
"""
import torch
from videodiff.pipeline import load_model, sample_videos
from videodiff.data import build_dataset
m = load_model("moving-mnist", device="cpu")
real = torch.stack([build_dataset(m.config.data, "test")[i]["video"] for i in range(16)])
def grain(v):  # RMS of (x + 1) over pixels below -0.8 (the near-black background)
    bg = v < -0.8
    return float((v[bg] + 1).square().mean().sqrt()), float(bg.float().mean())
print("real", grain(real))
for sampler, steps in [("ancestral", 50), ("ddim", 32), ("dpmpp2m", 20)]:
    v = sample_videos(m.denoiser, m.config, 16, steps=steps, sampler=sampler, seed=0)
    print(sampler, steps, grain(v))
