"""Preprocessing of the evaluation networks: TF1 bilinear resize (FVD/FID reference graphs), [-1, 1] scaling."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from videodiff.metrics.preprocess import preprocess_images, preprocess_videos, resize_bilinear_tf1, resize_frames


def _tf1_resize_loop(img, out_h, out_w):
    """Scalar transcription of TF's legacy resize_bilinear kernel (align_corners=False, no half pixel)."""
    in_h, in_w = img.shape
    sy, sx = np.float32(in_h / out_h), np.float32(in_w / out_w)
    out = np.zeros((out_h, out_w), np.float32)
    for i in range(out_h):
        y = np.float32(i) * sy
        y0, y1, ly = int(np.floor(y)), min(int(np.ceil(y)), in_h - 1), y - np.floor(y)
        for j in range(out_w):
            x = np.float32(j) * sx
            x0, x1, lx = int(np.floor(x)), min(int(np.ceil(x)), in_w - 1), x - np.floor(x)
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * lx
            bottom = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * lx
            out[i, j] = top + (bottom - top) * ly
    return out


def test_tf1_resize_known_values_and_differs_from_torch():
    x = torch.tensor([[[[0.0, 10.0]]]])  # (1, 1, 1, 2)
    tf1 = resize_bilinear_tf1(x, (1, 4))
    torch.testing.assert_close(tf1, torch.tensor([[[[0.0, 5.0, 10.0, 10.0]]]]))  # src = dst * in/out
    pt = F.interpolate(x, size=(1, 4), mode="bilinear", align_corners=False)
    torch.testing.assert_close(pt, torch.tensor([[[[0.0, 2.5, 7.5, 10.0]]]]))  # half-pixel centres
    assert not torch.allclose(resize_frames(x, (1, 4), "tf1"), resize_frames(x, (1, 4), "torch"))


@pytest.mark.parametrize("src,dst", [((5, 7), (9, 4)), ((64, 64), (224, 224)), ((13, 6), (3, 11))])
def test_tf1_resize_matches_scalar_kernel(src, dst):
    img = np.random.default_rng(0).uniform(0, 255, src).astype(np.float32)
    got = resize_bilinear_tf1(torch.from_numpy(img)[None, None], dst)[0, 0].numpy()
    np.testing.assert_allclose(got, _tf1_resize_loop(img, *dst), rtol=1e-6, atol=1e-4)


def test_tf1_integer_downsample_is_subsampling():
    x = torch.rand(2, 3, 8, 12)
    torch.testing.assert_close(resize_bilinear_tf1(x, (4, 4)), x[:, :, ::2, ::3])


def test_preprocess_videos_layout_and_range():
    v = np.zeros((2, 9, 16, 20, 3), np.uint8)
    v[..., 0], v[..., 1], v[..., 2] = 0, 255, 51  # distinct per channel
    for mode in ("tf1", "torch"):
        x = preprocess_videos(v, 224, mode)
        assert x.shape == (2, 3, 9, 224, 224) and x.dtype == torch.float32
        torch.testing.assert_close(x[:, 0], torch.full_like(x[:, 0], -1.0))
        torch.testing.assert_close(x[:, 1], torch.full_like(x[:, 1], 1.0))
        torch.testing.assert_close(x[:, 2], torch.full_like(x[:, 2], 51 / 255 * 2 - 1))


def test_preprocess_errors():
    with pytest.raises(ValueError, match="at least 9"):
        preprocess_videos(np.zeros((1, 8, 4, 4, 3), np.uint8), min_frames=9)
    with pytest.raises(ValueError, match="resize mode"):
        preprocess_videos(np.zeros((1, 9, 4, 4, 3), np.uint8), resize="nearest")
    with pytest.raises(ValueError, match="B, T, H, W, 3"):
        preprocess_videos(np.zeros((1, 9, 3, 4, 4), np.uint8))
    assert preprocess_images(np.zeros((2, 8, 8, 3), np.uint8), 299).shape == (2, 3, 299, 299)
