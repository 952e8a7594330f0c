"""Evaluation metrics of the paper (Sec. 4): FVD (I3D), FID/IS on frames (InceptionV3, avg and first),
FID/IS with C3D on UCF101 clips (Table 1), and the Fréchet distance they share; for the built-in Moving MNIST
data, classifier-FVD / classifier-IS / digit accuracy with the project's own classifier; and for tasks with ground
truth (super-resolution, interpolation), per-frame PSNR / SSIM of paired videos (:mod:`.paired`).

The names ``videodiff eval --metrics`` accepts are entries of :mod:`.registry` (built-in ones: :mod:`.builtin`)."""
from .classifier import (classifier_fvd, classifier_inception_score, digit_accuracy, direction_accuracy,
                         load_classifier)
from .fid import fid, frame_activations
from .frechet import MetricResult, frechet_distance, gaussian_stats
from .fvd import extract_i3d_features, fvd, fvd_from_features
from .i3d import MIN_FRAMES, InceptionI3d, load_i3d
from .inception_score import inception_score, video_inception_score
from .paired import frame_pair_metrics, mean_ci, psnr, ssim
from .registry import (Features, Metric, MetricRun, check_metric_names, metric_names, paired_names, register_features,
                       register_metric, unregister_metric)
from . import builtin  # registers fvd, fid, is, cfvd, cis, psnr, ssim (after .registry)

__all__ = ["classifier_fvd", "classifier_inception_score", "digit_accuracy", "direction_accuracy", "load_classifier",
           "MIN_FRAMES", "InceptionI3d", "MetricResult", "extract_i3d_features", "fid", "frame_activations",
           "frechet_distance", "fvd", "fvd_from_features", "gaussian_stats", "inception_score", "load_i3d",
           "video_inception_score", "frame_pair_metrics", "mean_ci", "psnr", "ssim", "Features", "Metric", "MetricRun",
           "check_metric_names", "metric_names", "paired_names", "register_features", "register_metric",
           "unregister_metric", "builtin"]
