import pytest
import torch

from conftest import randomize_zero_init
from videodiff.nn import UNet3D, UNetConfig, identity_frame_mask, joint_frame_mask
from videodiff.nn.unet3d import pixel_coordinates


def tiny(**kw):
    cfg = dict(image_size=16, base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attn_resolutions=(16, 8),
               head_dim=8, dropout=0.0)
    cfg.update(kw)
    torch.manual_seed(0)
    return randomize_zero_init(UNet3D(UNetConfig(**cfg))).eval()


@pytest.mark.parametrize("frames,size,channels", [(1, 16, 1), (5, 16, 3), (8, 32, 1), (16, 8, 1)])
def test_output_shape(frames, size, channels):
    m = tiny(in_channels=channels)
    z = torch.randn(2, channels, frames, size, size)
    with torch.no_grad():
        assert m(z, torch.tensor([0.0, 3.0])).shape == z.shape


def test_conditioning_vector_changes_output_and_null_condition_is_zero():
    m = tiny(cond_dim=6)
    z, lam = torch.randn(1, 1, 4, 16, 16), torch.tensor([1.0])
    with torch.no_grad():
        a = m(z, lam, cond=torch.randn(1, 6))
        b = m(z, lam, cond=torch.zeros(1, 6))
        c = m(z, lam)
    assert (a - b).abs().max() > 1e-4
    torch.testing.assert_close(b, c)


def _frame_change(model, z, frame, mask):
    z2 = z.clone()
    z2[:, :, frame] += torch.randn_like(z2[:, :, frame])
    with torch.no_grad():
        d = (model(z2, torch.tensor([0.5]), frame_mask=mask) - model(z, torch.tensor([0.5]), frame_mask=mask))
    return d.abs().amax(dim=(0, 1, 3, 4))  # per-frame max change, (F,)


def test_identity_mask_makes_frames_independent():
    m, z = tiny(), torch.randn(1, 1, 6, 16, 16)
    change = _frame_change(m, z, frame=2, mask=identity_frame_mask(6))
    assert change[2] > 1e-3
    assert change[[0, 1, 3, 4, 5]].max() < 1e-6
    # Without the mask the same perturbation reaches every frame (the test can fail).
    assert _frame_change(m, z, frame=2, mask=None).min() > 1e-4


def test_joint_mask_separates_video_and_image_frames():
    m, z = tiny(), torch.randn(1, 1, 7, 16, 16)
    mask = joint_frame_mask(4, 3)  # 4 video frames then 3 independent images
    img = _frame_change(m, z, frame=5, mask=mask)
    assert img[5] > 1e-3 and torch.cat([img[:5], img[6:]]).max() < 1e-6
    vid = _frame_change(m, z, frame=1, mask=mask)
    assert vid[:4].min() > 1e-4 and vid[4:].max() < 1e-6


def test_batched_frame_mask():
    m, z = tiny(), torch.randn(2, 1, 4, 16, 16)
    masks = torch.stack([identity_frame_mask(4), torch.ones(4, 4, dtype=torch.bool)])
    with torch.no_grad():
        both = m(z, torch.tensor([0.5, 0.5]), frame_mask=masks)
        first = m(z[:1], torch.tensor([0.5]), frame_mask=identity_frame_mask(4))
        second = m(z[1:], torch.tensor([0.5]))
    torch.testing.assert_close(both, torch.cat([first, second]), atol=1e-5, rtol=1e-4)


def test_relative_positions_equivariant_to_time_shift_not_reversal():
    m, f, s = tiny(), 5, 3
    z = torch.randn(1, 1, f, 16, 16)
    lam = torch.tensor([0.0])
    with torch.no_grad():
        out = m(z, lam)
        # Shift: the same clip placed after s unrelated frames it cannot see. Only relative positions are used,
        # so its output is the same clip's output, shifted by s.
        long = torch.cat([torch.randn(1, 1, s, 16, 16), z], dim=2)
        mask = torch.zeros(f + s, f + s, dtype=torch.bool)
        mask[:s, :s] = torch.eye(s, dtype=torch.bool)
        mask[s:, s:] = True
        shifted = m(long, lam, frame_mask=mask)[:, :, s:]
        torch.testing.assert_close(shifted, out, atol=1e-5, rtol=1e-4)
        # Reversal: relative embeddings are directional, so reversing time is not a symmetry.
        rev = m(z.flip(2), lam).flip(2)
    assert (rev - out).abs().max() > 1e-3


def test_frame_positions_break_time_shift_symmetry_and_start_as_the_paper_net():
    z = torch.randn(1, 1, 1, 16, 16).expand(-1, -1, 6, -1, -1)  # a still clip: every frame the same
    lam = torch.tensor([-4.0])
    paper = tiny()
    with_pos = tiny(frame_positions=8)
    assert "frame_pos.weight" not in paper.state_dict()
    missing = with_pos.load_state_dict(paper.state_dict(), strict=False).missing_keys
    assert missing == ["frame_pos.weight"]
    with torch.no_grad():
        out = paper(z, lam)
        # relative positions only: a still clip gives a still output (no frame knows where it is in time)
        torch.testing.assert_close(out, out[:, :, :1].expand_as(out), atol=1e-5, rtol=1e-4)
        with_pos.frame_pos.weight.zero_()
        torch.testing.assert_close(with_pos(z, lam), out, rtol=0, atol=0)  # zero embedding: the paper's network
        torch.nn.init.normal_(with_pos.frame_pos.weight)
        moved = with_pos(z, lam)
    assert (moved[:, :, 0] - moved[:, :, -1]).abs().max() > 1e-3  # absolute positions: frames differ
    with pytest.raises(ValueError, match="frame_positions is 8"):
        with_pos(torch.randn(1, 1, 9, 16, 16), lam)
    with pytest.raises(ValueError, match="model.frame_positions"):
        UNetConfig(frame_positions=-1)


def test_spatial_positions_are_pixel_coordinates_and_start_as_the_paper_net():
    xy = pixel_coordinates(3, 5)
    assert xy.shape == (1, 2, 3, 5)
    torch.testing.assert_close(xy[0, 0, 1], torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))  # x: left -1 .. right 1
    torch.testing.assert_close(xy[0, 1, :, 2], torch.tensor([-1.0, 0.0, 1.0]))  # y: top -1 .. bottom 1
    z, lam = torch.randn(1, 1, 4, 16, 16), torch.tensor([-4.0])
    paper, coord = tiny(), tiny(spatial_positions=True)
    missing = coord.load_state_dict(paper.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["coord_in.bias", "coord_in.weight"]
    with torch.no_grad():
        coord.coord_in.weight.zero_()
        coord.coord_in.bias.zero_()
        torch.testing.assert_close(coord(z, lam), paper(z, lam), rtol=0, atol=0)  # zero-initialised: the paper's net
        torch.nn.init.normal_(coord.coord_in.weight)
        assert (coord(z, lam) - paper(z, lam)).abs().max() > 1e-3
        assert coord(torch.randn(2, 1, 3, 8, 8), lam.expand(2)).shape == (2, 1, 3, 8, 8)  # any resolution


def test_bad_inputs_raise_clear_errors():
    m = tiny()
    with pytest.raises(ValueError, match="divisible"):
        m(torch.randn(1, 1, 2, 15, 15), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="frame_mask"):
        m(torch.randn(1, 1, 3, 16, 16), torch.tensor([0.0]), frame_mask=identity_frame_mask(4))
    with pytest.raises(ValueError, match="head_dim"):
        UNetConfig(base_channels=16, head_dim=12, attn_resolutions=(64,))


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    z = torch.randn(1, 1, 3, 16, 16)
    grads = []
    for ckpt in (False, True):
        m = tiny(gradient_checkpointing=ckpt).train()
        m(z, torch.tensor([0.0])).pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)
