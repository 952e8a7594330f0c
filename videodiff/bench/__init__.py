"""Speed benchmark of the U-Net (``videodiff bench``, ``benchmarks/speed.py``): time, memory, FLOPs, achieved
fraction of the machine's matmul FLOP/s, and the same for ``video-diffusion-pytorch`` at a matched configuration.

Modules: :mod:`.options` (model shapes, command-line options), :mod:`.flops` (FLOP counting, matmul peak),
:mod:`.port` (the comparison model), :mod:`.measure` (one measurement, own process), :mod:`.runner` (all rows,
table, JSON). Nothing is imported here, so that building the command-line parser does not import torch.
"""
