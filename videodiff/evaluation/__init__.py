"""Evaluation (app tier, paper Sec. 4): video sets and clip sources in, metrics with protocol records out.

* :mod:`.video_sets`: sets held whole (folders, grid videos, tensors, run directories, a dataset split);
* :mod:`.clip_source`: folders of videos decoded clip by clip (:class:`ClipSpec`);
* :mod:`.evaluate`: :func:`compute_metrics` on whole sets, :func:`evaluate_paths`, :func:`evaluate_checkpoint`,
  the report (:func:`format_results`, :func:`write_results`);
* :mod:`.stream`: the same metrics between clip sources, chunk by chunk;
* :mod:`.classifier_train`: training of the Moving MNIST evaluation classifier (``videodiff train-classifier``).

The metrics themselves live in :mod:`videodiff.metrics` (components); nothing there imports from here.
"""
from .clip_source import ClipSpec
from .evaluate import (METRICS, compute_metrics, evaluate_checkpoint, evaluate_paths, format_results,
                       write_results)
from .video_sets import VideoSet, dataset_videos, find_grid, load_video_set, parse_grid, tensor_to_uint8

__all__ = ["METRICS", "VideoSet", "ClipSpec", "load_video_set", "parse_grid", "find_grid", "tensor_to_uint8",
           "dataset_videos", "compute_metrics", "evaluate_paths", "evaluate_checkpoint", "format_results",
           "write_results"]
