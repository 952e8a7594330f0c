import pytest
import torch
from torch import nn

# Under VIDEODIFF_REQUIRE_DEPS=1 (.ci/run) a skip for a missing dependency is a failure (tests/require_deps.py).
pytest_plugins = ["require_deps"]


def randomize_zero_init(model: nn.Module, std: float = 0.05, seed: int = 0) -> nn.Module:
    """Give zero-initialised parameters (output convs, attention projections) random values, so that a fresh
    network's output actually depends on its input in tests."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if bool((p == 0).all()):
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


@pytest.fixture(scope="module")
def one_thread():
    """One torch and one BLAS thread for a test module: on a shared 2-core machine, busy-waiting thread pools are
    many times slower under contention, and small metric computations gain little from a second thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional; only limits BLAS threads
        threadpool_limits = None
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    limits = threadpool_limits(1) if threadpool_limits else None
    yield
    torch.set_num_threads(n)
    if limits is not None:
        limits.restore_original_limits()


def assert_one_line_error(capsys, *words) -> str:
    """The README's contract for an expected failure: the last stderr line is ``videodiff: error: ...`` naming
    ``words``; before it only notes and progress bars; no traceback, never torch's weights_only=False advice."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("videodiff: error: "), err
    # before it, at most notes and progress bars: the error is that one line
    assert all(line.startswith("note:") or "it/s]" in line for line in lines[:-1]), err
    assert "Traceback" not in err and "weights_only=False" not in err, err
    for w in words:
        assert w in lines[-1], (w, lines[-1])
    return lines[-1]


@pytest.fixture(autouse=True)
def no_precision_probe(monkeypatch):
    """No timed precision probe in tests (videodiff/precision_probe.py): ``auto`` follows the hardware rule, so that
    tests neither time anything nor write the user's cache. tests/test_precision_probe.py turns it on with injected
    timings."""
    monkeypatch.setenv("VIDEODIFF_PRECISION_PROBE", "0")
