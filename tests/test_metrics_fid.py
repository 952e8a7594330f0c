"""FID/IS on frames (InceptionV3, avg and first) and the C3D hook, on small randomly initialised networks.

No InceptionV3 or C3D weights ship with any package; these tests check the architecture/layout, the
frame handling and the exact IS formula, not reference values.
"""
import numpy as np
import pytest
import torch

from videodiff.metrics.c3d import C3D, load_c3d, save_c3d_npz
from videodiff.metrics.fid import fid, fid_from_features, frame_activations
from videodiff.metrics.inception import InceptionV3, load_inception
from videodiff.metrics.inception_score import inception_score, video_inception_score


pytestmark = pytest.mark.usefixtures("one_thread")


def _small_inception(seed=0, **kw):
    torch.manual_seed(seed)
    return InceptionV3(width=0.125, resolution=75, **kw)  # 75: the smallest input InceptionV3 accepts


def _videos(n, t=3, size=32, seed=0, low=0, high=256):
    return np.random.default_rng(seed).integers(low, high, (n, t, size, size, 3), dtype=np.uint8)


def test_full_inception_layout_and_shapes(tmp_path):
    torch.manual_seed(0)
    net = InceptionV3(resolution=75)  # full width; small input keeps the forward fast
    sd = net.state_dict()
    shapes = {"Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
              "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7), "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
              "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1), "Mixed_7c.branch_pool.bn.running_var": (192,),
              "fc.weight": (1008, 2048), "fc.bias": (1008,)}  # pytorch-fid pt_inception-2015-12-05 names/shapes
    assert all(tuple(sd[k].shape) == s for k, s in shapes.items())
    assert net.Mixed_7b.branch1x1.bn.eps == 1e-3
    path = tmp_path / "pt_inception-2015-12-05.pth"
    torch.save({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}, path)
    loaded = load_inception(str(path), resolution=75)
    x = torch.from_numpy(_videos(2, 1, 40)[:, 0]).permute(0, 3, 1, 2).float()
    with torch.inference_mode():
        pool, logits = net(x)
        pool2, logits2 = loaded(x)
        unbiased = pool @ net.fc.weight.t()
    assert pool.shape == (2, 2048) and logits.shape == (2, 1008)
    torch.testing.assert_close(pool2, pool)
    torch.testing.assert_close(logits2, logits)
    torch.testing.assert_close(logits, unbiased)  # IS logits: pool_3 @ W without the bias (improved-gan)
    assert len(loaded.weights_sha256) == 64


def test_input_normalisation():
    x = torch.tensor([0.0, 255.0]).view(2, 1, 1, 1).expand(2, 3, 5, 5)
    tf = InceptionV3(width=0.125).prepare(x)
    assert tf.shape == (2, 3, 299, 299) and tf[0].eq(-1).all() and tf[1].eq(127 / 128).all()
    assert _small_inception(normalize="pytorch-fid").prepare(x)[1].eq(1).all()


def test_frame_modes_and_determinism():
    net = _small_inception()
    v = _videos(4, t=3)
    avg = frame_activations(v, net, "avg", batch_size=5)
    first = frame_activations(v, net, "first")
    assert avg["pool"].shape == (4, net.num_features) and avg["logits"].shape == (4, 1008)
    assert avg["pool"].dtype == np.float64
    per_frame = [frame_activations(v[:, t:t + 1], net, "first") for t in range(3)]
    for key in ("pool", "logits", "probs"):
        np.testing.assert_allclose(avg[key], np.mean([p[key] for p in per_frame], 0), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(first[key], per_frame[0][key], rtol=1e-6, atol=1e-8)
    again = frame_activations(v, net, "avg", batch_size=12)
    np.testing.assert_allclose(again["pool"], avg["pool"], rtol=1e-5, atol=1e-7)
    images = frame_activations(v[:, 0], net)  # (N, H, W, 3) images are videos with T = 1
    np.testing.assert_allclose(images["pool"], first["pool"], rtol=1e-6, atol=1e-8)


def test_fid_properties():
    net = _small_inception()
    a, b = _videos(12, t=2, seed=1), _videos(12, t=2, seed=2, high=128)
    res = fid(a, a, net, frames="avg")
    assert abs(res.value) < 1e-3
    assert res.protocol["metric"] == "FID-avg" and res.protocol["num_real"] == 12
    assert fid(a, b, net, frames="first").protocol["metric"] == "FID-first"
    fa, fb = frame_activations(a, net)["pool"], frame_activations(b, net)["pool"]
    assert fid_from_features(fa, fb) > 0
    assert fid_from_features(fa, fb) == pytest.approx(fid_from_features(fb, fa), rel=1e-6)
    shifts = [fid_from_features(fa, fa + s) for s in (0.0, 0.1, 0.5, 1.0)]
    assert all(x < y for x, y in zip(shifts, shifts[1:]))
    assert shifts[-1] == pytest.approx(fa.shape[1], rel=1e-6)  # ||1||^2 = D for a unit shift


def test_inception_score_formula():
    k, m = 7, 4
    logits = np.zeros((k * m * 10, k))
    logits[np.arange(len(logits)), np.arange(len(logits)) % k] = 1000.0  # confident, classes uniform
    mean, std = inception_score(logits, splits=1)
    assert mean == pytest.approx(k, rel=1e-12) and std == 0
    mean, std = inception_score(logits, splits=10)  # each contiguous split holds every class m times
    assert mean == pytest.approx(k, rel=1e-12) and std == pytest.approx(0, abs=1e-12)
    assert inception_score(np.tile([[3.0, -1.0, 0.5]], (10, 1)), splits=2) == pytest.approx((1.0, 0.0))
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    pbar = p.mean(0)
    expected = np.exp(np.mean(np.sum(p * np.log(p / pbar), 1)))
    assert inception_score(p, 1, from_logits=False)[0] == pytest.approx(expected, rel=1e-12)
    two = inception_score(np.array([[5.0, 0.0], [0.0, 5.0], [0.0, 5.0], [0.0, 5.0]]), splits=2)
    parts = [inception_score(np.array([[5.0, 0.0], [0.0, 5.0]]), 1)[0], 1.0]  # splits [0:2], [2:4]
    assert two == pytest.approx((np.mean(parts), np.std(parts)))
    with pytest.raises(ValueError):
        inception_score(logits[:5], splits=10)
    with pytest.raises(ValueError):
        inception_score(np.array([[0.5, 0.6]]), 1, from_logits=False)


def test_video_inception_score_frames():
    net = _small_inception()
    v = _videos(10, t=2)
    out = video_inception_score(v, net, frames="avg", splits=(1, 10))
    assert set(out) == {"IS@1", "IS@10", "protocol"} and out["protocol"]["metric"] == "IS-avg"
    act = frame_activations(v, net)
    assert out["IS@1"] == pytest.approx(inception_score(act["logits"], 1))
    assert out["IS@10"] == (1.0, 0.0)  # one sample per split has KL 0
    probs = video_inception_score(v, net, frames="first", reduce="probs", splits=(1,))
    assert probs["IS@1"][0] >= 1.0 and probs["protocol"]["metric"] == "IS-first"


def _small_c3d(seed=0, mean=None):
    torch.manual_seed(seed)
    return C3D(mean=mean, width=0.0625)


def test_c3d_pipeline_and_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    mean = rng.uniform(80, 120, (1, 3, 16, 128, 171)).astype(np.float32)  # Caffe-style (1, 3, 16, H, W) clip
    net = _small_c3d(mean=mean)
    x = torch.full((1, 3, 16, 40, 40), 0.5)
    x[:, 0] = -1.0  # R = -1, G = B = 0.5
    pre = net.prepare(x)
    assert pre.shape == (1, 3, 16, 112, 112)
    crop = torch.from_numpy(mean[0, :, :, 8:120, 8:120])
    torch.testing.assert_close(pre[0, 0], 1.5 * 128 - crop[0])  # channel 0 is B
    torch.testing.assert_close(pre[0, 2], 0.0 * 128 - crop[2])  # channel 2 is R
    clips = torch.rand(2, 3, 16, 40, 40) * 2 - 1
    with torch.inference_mode():
        fc7, fc8 = net(clips)
    assert fc7.shape == (2, net.fc7.out_features) and fc8.shape == (2, 101) and (fc7 >= 0).all()
    assert net.fc6.in_features == net.conv5b.out_channels * 1 * 4 * 4  # pool5 with cover_all: 7x7 -> 4x4
    np.savez(tmp_path / "mean2.npz", mean=mean[0])
    save_c3d_npz(net, str(tmp_path / "c3d.npz"))
    loaded = load_c3d(str(tmp_path / "c3d.npz"), str(tmp_path / "mean2.npz"), width=0.0625)
    with torch.inference_mode():
        fc7b, fc8b = loaded(clips)
    torch.testing.assert_close(fc7b, fc7)
    torch.testing.assert_close(fc8b, fc8)
    with pytest.raises(ValueError, match="16"):
        net(torch.zeros(1, 3, 8, 40, 40))


def test_c3d_fid_and_is_hooks():
    net = _small_c3d()
    a, b = _videos(6, t=16, size=24, seed=3), _videos(6, t=16, size=24, seed=4, high=100)
    res = fid(a, b, net)
    assert np.isfinite(res.value) and res.value > 0 and res.protocol["network"] == "c3d-ucf101"
    assert abs(fid(a, a, net).value) < 1e-3
    out = video_inception_score(a, net, splits=(1, 3))
    assert out["protocol"]["metric"] == "IS" and out["IS@1"][0] >= 1.0
