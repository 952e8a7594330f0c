"""Speed of the factorized 3D U-Net beside the machine's own matmul FLOP/s and beside video-diffusion-pytorch.

A thin wrapper of ``videodiff bench`` (the code lives in ``videodiff/bench/``)::

    python benchmarks/speed.py                                   # 16x64x64 and 16x32x32, batch 1
    python benchmarks/speed.py --compare-port --checkpointing --json benchmarks/results/speed.json
    python benchmarks/speed.py --models demo-8x32x32 --levers    # channels-last and torch.compile, side by side
"""

import sys

from videodiff.bench.runner import main

if __name__ == "__main__":
    sys.exit(main(prog="benchmarks/speed.py"))
