"""The metric registry (videodiff.metrics.registry): a metric added with one register_metric call is accepted, listed
and computed by `videodiff eval` (whole and streamed), unknown names fail in one line, and metrics that share a
network compute its features once per evaluation."""
import json

import numpy as np
import pytest
import torch

from registry_examples import metric as example_metric
from conftest import assert_one_line_error
from videodiff.cli import main
from videodiff.evaluation import METRICS, compute_metrics
from videodiff.metrics.registry import (Metric, check_metric_names, metric_names, register_metric,
                                        unregister_metric)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def registered():
    """The example metrics, registered for one test and removed afterwards."""
    entries = (example_metric.MAD, example_metric.BRIGHTNESS_GAP)
    for entry in entries:
        register_metric(entry)
    yield
    for entry in entries:
        unregister_metric(entry.name)


def _save_sets(tmp_path, n=4, shape=(1, 8, 32, 32), seed=0):
    """Two .pt sets (N, C, F, H, W) in [-1, 1] whose pixels are whole uint8 levels; returns them as uint8 arrays."""
    rng = np.random.default_rng(seed)
    sets = {}
    for name in ("real", "fake"):
        u8 = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        torch.save(torch.from_numpy(u8).float() / 127.5 - 1, tmp_path / f"{name}.pt")
        sets[name] = u8.astype(np.float64)
    return sets["real"], sets["fake"]


def test_builtin_names_and_the_one_line_error():
    assert METRICS == ("fvd", "fid", "is", "cfvd", "cis", "psnr", "ssim") == metric_names()
    assert check_metric_names(["FVD", "cis"]) == ["fvd", "cis"]
    with pytest.raises(ValueError, match="^--metrics: unknown metric 'lpips'; choose from fvd, fid, is, cfvd, cis"):
        check_metric_names(["cfvd", "lpips"], flag="--metrics")
    with pytest.raises(ValueError, match="already registered"):
        register_metric(Metric("fvd", "i3d", lambda ctx, r, f: {}))
    with pytest.raises(ValueError, match="unknown features 'nope'"):
        register_metric(Metric("x", "nope", lambda ctx, r, f: {}))
    assert "x" not in metric_names()


def test_example_metric(tmp_path, capsys, registered):
    real, fake = _save_sets(tmp_path)
    out = tmp_path / "res.json"
    assert main(["eval", "--real", str(tmp_path / "real.pt"), "--fake", str(tmp_path / "fake.pt"), "--metrics", "mad",
                 "--json", str(out), "--no-progress"]) == 0
    m = json.loads(out.read_text())["metrics"]
    per_pair = np.abs(real - fake).reshape(len(real), -1).mean(1)  # gray -> RGB copies: the same mean
    assert list(m) == ["mad"] and m["mad"]["value"] == pytest.approx(per_pair.mean(), rel=1e-12)
    assert m["mad"]["per_pair"] == pytest.approx(per_pair.tolist(), rel=1e-12) and m["mad"]["protocol"]["pairs"] == 4
    assert "mad" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "psnr,ssim,mad,brightness_gap" in capsys.readouterr().out  # the help lists registered names
    # paired: a set of another count is refused before anything is computed, in one line
    torch.save(torch.zeros(3, 1, 8, 32, 32), tmp_path / "three.pt")
    assert main(["eval", "--real", str(tmp_path / "real.pt"), "--fake", str(tmp_path / "three.pt"),
                 "--metrics", "mad", "--no-progress"]) == 2
    assert_one_line_error(capsys, "pair", "4 videos", "3 videos")
    assert main(["eval", "--real", str(tmp_path / "real.pt"), "--fake", str(tmp_path / "fake.pt"),
                 "--metrics", "mad,madd", "--no-progress"]) == 2
    assert_one_line_error(capsys, "--metrics: unknown metric 'madd'", "ssim, mad, brightness_gap")


def test_example_metric_unregistered_is_unknown(tmp_path, capsys):
    _save_sets(tmp_path)
    assert main(["eval", "--real", str(tmp_path / "real.pt"), "--fake", str(tmp_path / "fake.pt"), "--metrics", "mad",
                 "--no-progress"]) == 2
    assert_one_line_error(capsys, "--metrics: unknown metric 'mad'; choose from fvd, fid, is, cfvd, cis, psnr, ssim")


def test_registered_metric_streams_after_the_builtin_ones(tmp_path, registered):
    real, fake = _save_sets(tmp_path, n=5)
    out = tmp_path / "res.json"
    assert main(["eval", "--real", str(tmp_path / "real.pt"), "--fake", str(tmp_path / "fake.pt"), "--metrics",
                 "brightness_gap,cfvd", "--chunk", "2", "--json", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert res["protocol"]["streamed"] is True and res["protocol"]["chunk"] == 2
    m = res["metrics"]
    assert list(m) == ["cfvd", "brightness_gap"]  # built-in families first, new metrics after them
    assert m["brightness_gap"]["value"] == pytest.approx(abs(fake.mean() - real.mean()), rel=1e-12)
    assert m["brightness_gap"]["protocol"] == {"num_real": 5, "num_fake": 5}
    with pytest.raises(ValueError, match="mad pair whole sets; they are computed with --no-stream"):
        from videodiff.evaluation.stream import compute_metrics_streamed

        compute_metrics_streamed([], [], ["mad"])


def test_metrics_sharing_a_network_compute_its_features_once(tmp_path, monkeypatch):
    import importlib

    import videodiff.metrics.classifier as clf
    import videodiff.metrics.inception as inc

    fid = importlib.import_module("videodiff.metrics.fid")  # the package exports a function of that name

    calls = {"load": 0, "activations": 0, "classifier": 0}

    def tiny_inception(path, **kw):
        calls["load"] += 1
        torch.manual_seed(0)
        return inc.InceptionV3(width=0.125, resolution=75)

    def counted(name, fn):
        def wrapper(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return wrapper

    monkeypatch.setattr(inc, "load_inception", tiny_inception)
    monkeypatch.setattr(fid, "activations", counted("activations", fid.activations))
    monkeypatch.setattr(clf, "classifier_outputs", counted("classifier", clf.classifier_outputs))
    (tmp_path / "inception.pth").write_bytes(b"read by the stub")
    rng = np.random.default_rng(1)
    real, fake = (rng.integers(0, 256, (3, 8, 32, 32, 3), dtype=np.uint8) for _ in range(2))
    res = compute_metrics(real, fake, ["is", "cis", "fid", "cfvd"], inception=tmp_path / "inception.pth")
    assert list(res) == ["cfvd", "cis", "fid_avg", "is_avg", "fid_first", "is_first"]  # the report order
    assert calls == {"load": 1, "activations": 4, "classifier": 2}  # (avg, first) x (real, fake); one per set
