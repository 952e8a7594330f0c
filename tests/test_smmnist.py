"""Stochastic Moving MNIST (videodiff/data/smmnist.py) and its fixed-seed protocol splits."""

import numpy as np
import pytest
import torch

from videodiff.data.smmnist import StochasticMovingMNIST, trajectories


def test_positions_stay_inside_and_move_at_constant_velocity_between_walls():
    rng = np.random.default_rng(0)
    limit, changes_at_walls, changes_elsewhere = 32, 0, 0
    for _ in range(200):
        pos = trajectories(rng, 1, 30, limit, 4)[0]  # (F, 2)
        assert pos.min() >= 0 and pos.max() <= limit - 1
        v = np.diff(pos, axis=0)
        for t in range(1, len(v)):
            if (v[t] != v[t - 1]).any():
                # a velocity changes only around a wall: the step into it is cut short (clamped at frame t + 1),
                # the step out of it (from frame t) has the new velocity
                at_wall = any(((pos[i] == 0) | (pos[i] == limit - 1)).any() for i in (t, t + 1))
                changes_at_walls += at_wall
                changes_elsewhere += not at_wall
    assert changes_at_walls > 100 and changes_elsewhere == 0


class _Script:
    """A stand-in for numpy's Generator that returns scripted integers and checks the ranges asked for."""

    def __init__(self, *draws):
        self.draws = list(draws)

    def integers(self, low, high=None):
        value, (lo, hi) = self.draws.pop(0)
        assert (lo, hi) == ((0, low) if high is None else (low, high)), ((lo, hi), (low, high))
        return value


def test_bounce_clamps_and_draws_a_new_direction_away_from_the_wall():
    # start (10, 2), velocity (1, -4); at the top wall: dy ~ U{1..4} (here 3), then dx ~ U{-4..4} (here -2)
    script = _Script((10, (0, 32)), (2, (0, 32)), (1, (-4, 5)), (-4, (-4, 5)), (3, (1, 5)), (-2, (-4, 5)))
    pos = trajectories(script, 1, 4, 32, 4)[0]
    assert pos.tolist() == [[10, 2], [11, 0], [9, 3], [7, 6]] and not script.draws
    # the deterministic rule reflects instead and draws nothing at the wall
    script = _Script((10, (0, 32)), (2, (0, 32)), (1, (-4, 5)), (-4, (-4, 5)))
    assert trajectories(script, 1, 3, 32, 4, stochastic=False)[0].tolist() == [[10, 2], [11, 0], [12, 4]]


def test_directions_after_bounces_are_random():
    rng = np.random.default_rng(1)
    leaving_top = set()
    for _ in range(300):
        pos = trajectories(rng, 1, 40, 32, 4)[0]
        v = np.diff(pos, axis=0)
        leaving_top |= {tuple(v[t]) for t in range(len(v)) if pos[t, 1] == 0 and pos[t + 1, 1] > 0}
    assert len(leaving_top) > 20 and all(1 <= dy <= 4 for _, dy in leaving_top)


def test_two_digits_summed_and_clipped_and_reproducible():
    ds = StochasticMovingMNIST(num_frames=10, image_size=64, num_digits=2, num_clips=20, split="test", seed=3)
    item = ds[5]
    assert item["video"].shape == (1, 10, 64, 64) and item["labels"].shape == (2,)
    assert torch.equal(item["video"], ds[5]["video"])  # a function of (seed, split, index)
    s = ds.digit_size
    assert s == 32
    # rebuild the frames from the positions: sum of the two digits, clipped at 1
    digits = [ds.digits[np.flatnonzero(ds.pool == i)[0]] for i in item["digit_ids"].numpy()]
    for f in range(10):
        canvas = np.zeros((64, 64), np.float32)
        for d in range(2):
            x, y = item["positions"][d, f].tolist()
            canvas[y:y + s, x:x + s] += digits[d]
        expected = torch.from_numpy(np.minimum(canvas, 1.0)) * 2 - 1
        assert torch.allclose(item["video"][0, f], expected, atol=1e-6)
    other = StochasticMovingMNIST(num_frames=10, num_clips=20, split="test", seed=4)[5]["video"]
    assert not torch.equal(other, item["video"])


def test_splits_use_disjoint_digits():
    train = StochasticMovingMNIST(num_clips=1, split="train")
    test = StochasticMovingMNIST(num_clips=1, split="test")
    assert not set(train.pool) & set(test.pool)


def test_smmnist_is_a_registered_data_kind():
    from videodiff.config import load_config
    from videodiff.data import build_dataset

    cfg = load_config(None, ["data.kind=smmnist", "data.num_frames=6", "data.image_size=32",
                             "data.options.stochastic=false", "data.test_clips=3"])
    ds = build_dataset(cfg.data, "test")
    assert len(ds) == 3 and ds[0]["video"].shape == (1, 6, 32, 32) and ds.digit_size == 16 and ds.max_speed == 2
    with pytest.raises(ValueError, match="data.options.max_speed"):
        load_config(None, ["data.kind=smmnist", "data.options.max_speed=0"])


def test_protocol_split_file_is_checked(monkeypatch):
    from videodiff.evaluation import protocols

    videos = protocols.load_split("smmnist_test", 4)
    assert videos.shape == (4, 1, 20, 64, 64)
    rec = protocols.split_record("smmnist_test")
    assert rec["seed"] == 1234 and len(rec["indices"]) == 256
    changed = dict(rec, seed=1235)
    monkeypatch.setattr(protocols, "split_record", lambda name: changed)
    with pytest.raises(ValueError, match="do not match the digest"):
        protocols.load_split("smmnist_test", 4)
