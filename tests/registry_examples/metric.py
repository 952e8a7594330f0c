"""Two example metrics for tests/test_metric_registry.py: what adding a metric to ``videodiff eval`` takes, i.e. this
file and one ``register_metric(...)`` line (here in the test's fixture, so that the test can remove it again).

* ``mad``: mean absolute pixel difference of paired videos (uint8 units), on the built-in ``pixels`` features;
* ``brightness_gap``: |mean pixel of the fake set - mean pixel of the real set|, unpaired, so it also streams.
"""
import numpy as np

from videodiff.metrics.registry import Metric


def _mad(ctx, real, fake) -> dict:
    diff = np.abs(real["videos"].astype(np.float64) - fake["videos"].astype(np.float64))
    per_pair = diff.reshape(len(diff), -1).mean(1)
    return {"mad": {"value": float(per_pair.mean()), "per_pair": per_pair.tolist(),
                    "protocol": {"metric": "mean |fake - real| over pixels, uint8 units", "pairs": len(per_pair)}}}


def _brightness_gap(ctx, real, fake) -> dict:
    gap = abs(float(fake["videos"].mean(dtype=np.float64)) - float(real["videos"].mean(dtype=np.float64)))
    return {"brightness_gap": {"value": gap, "protocol": {"num_real": ctx.counts["real"],
                                                          "num_fake": ctx.counts["fake"]}}}


MAD = Metric("mad", "pixels", _mad, paired=True)
BRIGHTNESS_GAP = Metric("brightness_gap", "pixels", _brightness_gap)
