"""Conditional generation with an unconditional model (paper Sec. 3.1, 4.4, Fig. 2).

* :class:`ReplacementHook`: the replacement method (ref. [35]) as a sampler ``step_hook``, eq. (1) or (3) draws.
* :class:`LowResReplacementHook`: its analogue for a low-resolution view (area ``D``): low frequencies replaced.
* :class:`ReconstructionGuidance`: the gradient method, an adjusted denoiser (eq. 6) that can also constrain a
  downsampled view (eq. 7); it wraps any denoiser and composes with other wrappers.
* :func:`sample_conditional`: one conditional sample with either method around any sampler.
* :func:`extend`, :func:`predict`, :func:`interpolate`, :func:`upsample`, :func:`cascade`: the applications, window by window
  (:mod:`.blocks` has the schedules).
"""

from .blocks import Block, cascade_plan, extension_plan, interpolation_plan, plan_blocks, run_plan
from .defaults import TASK_DEFAULTS, TaskDefaults, task_options
from .downsample import DOWNSAMPLE_MODES, Downsample, upsample_bicubic, upsample_nearest
from .extend import extend
from .predict import default_context, predict
from .interpolate import interpolate, linear_blend
from .masks import as_mask, blend, frame_mask
from .reconstruction import ReconstructionGuidance, reconstruction_guidance
from .replacement import VARIANTS, Hooks, LowResReplacementHook, ReplacementHook
from .sample import METHODS, sample_conditional
from .superres import cascade, upsample
from .visualize import align_frames, comparison_grid, frame_strip, mark_frames

__all__ = [
    "Block", "plan_blocks", "extension_plan", "interpolation_plan", "cascade_plan", "run_plan",
    "TASK_DEFAULTS", "TaskDefaults", "task_options", "Downsample", "DOWNSAMPLE_MODES", "upsample_nearest",
    "upsample_bicubic",
    "extend", "predict", "default_context", "interpolate", "linear_blend", "upsample", "cascade",
    "as_mask", "blend", "frame_mask",
    "ReconstructionGuidance", "reconstruction_guidance", "ReplacementHook", "LowResReplacementHook", "Hooks", "VARIANTS",
    "sample_conditional", "METHODS",
    "mark_frames", "align_frames", "comparison_grid", "frame_strip",
]
