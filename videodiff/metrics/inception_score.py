"""Inception Score, IS-avg / IS-first on frames (Sec. 4.2, Tables 2-3) and C3D IS on clips (Table 1).

IS = exp(E_x KL(p(y|x) || p(y))), with p(y) the mean of p(y|x) over the split; the samples are cut into
``splits`` contiguous parts ``[i*n//splits, (i+1)*n//splits)`` and the mean and standard deviation of the
per-split scores are reported (openai/improved-gan, tgan2 ``inception_score``). The paper reports "averaged
scores across 1 split and 10 splits". KL terms use x*log(x) = 0 at x = 0 instead of tgan2's +1e-20.

IS-avg needs a per-video class distribution from per-frame activations. The paper says only "averaging
activations across frames"; the default here averages the per-frame logits and takes their softmax
(``reduce='logits'``); ``reduce='probs'`` averages the per-frame softmax distributions instead.
"""
from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, xlogy

from .c3d import C3D
from .fid import activations, protocol_record


def inception_score(x, splits: int = 10, from_logits: bool = True) -> tuple[float, float]:
    """(mean, std) of the Inception Score of (N, K) logits (or probabilities if ``from_logits=False``)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected (N, K) scores, got {x.shape}")
    n = x.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be in [1, N={n}], got {splits}")
    probs = np.exp(log_softmax(x, axis=1)) if from_logits else x
    if not from_logits and (np.any(probs < 0) or not np.allclose(probs.sum(1), 1.0, atol=1e-6)):
        raise ValueError("probabilities must be non-negative and sum to 1 over classes")
    scores = []
    for i in range(splits):
        part = probs[i * n // splits:(i + 1) * n // splits]
        p_y = part.mean(axis=0, keepdims=True)  # marginal p(y) of the split
        kl = (xlogy(part, part) - xlogy(part, p_y)).sum(axis=1)  # KL(p(y|x) || p(y)) per sample
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def video_inception_score(videos, model, *, frames: str = "avg", splits=(1, 10), reduce: str = "logits",
                          batch_size: int = 32, progress: bool = False) -> dict:
    """IS-avg / IS-first with an InceptionV3 on frames, or the C3D IS on 16-frame clips (``model`` a C3D).

    Returns {'IS@1': (mean, std), 'IS@10': (mean, std), ..., 'protocol': {...}}.
    """
    if reduce not in ("logits", "probs"):
        raise ValueError(f"reduce must be 'logits' or 'probs', got {reduce!r}")
    act = activations(videos, model, frames, batch_size, progress)
    scores = act["logits"] if reduce == "logits" else act["probs"]
    out = {f"IS@{k}": inception_score(scores, k, from_logits=(reduce == "logits")) for k in splits}
    name = "IS" if isinstance(model, C3D) else f"IS-{frames}"
    out["protocol"] = {**protocol_record(name, videos, None, model, frames), "reduce": reduce,
                       "splits": list(splits)}
    return out

