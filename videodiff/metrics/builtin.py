"""The built-in entries of the metric registry (:mod:`.registry`): the metrics of the paper (Sec. 4) and of the
project's tasks, on uint8 ``(N, F, H, W, 3)`` sets.

Feature extractors (each loaded once per evaluation, shared by the metrics that name it):

* ``i3d``: the I3D of FVD (:mod:`.fvd`; TF-Hub weights). It needs >= 9 frames; with ``fvd_repeat_frames`` every
  frame is repeated ``ceil(9 / F)`` times for shorter videos (recorded, not comparable with published FVD);
* ``classifier``: the project's Moving MNIST classifier (:mod:`.classifier`; the shipped one matching the fake
  set's size unless ``classifier`` names one): penultimate features and digit logits;
* ``inception``: InceptionV3 from a user-supplied weights file (``inception``), on all frames (avg) and the
  first frame (first), as in Tables 2-3: pool_3 features and logits;
* ``pixels``: the clips themselves, for the paired metrics.

Metrics: ``fvd``; ``fid`` -> ``fid_avg``/``fid_first``; ``is`` -> ``is_avg``/``is_first`` (IS@1, IS@10 as
(mean, std) of the fake and, as a reference, the real set); ``cfvd``; ``cis``; ``psnr`` and ``ssim``
(:func:`.paired.paired_metrics`: the i-th fake video against the i-th real one; mean, t-interval, per-frame means).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .registry import Features, Metric, register_features, register_metric


def _is_dict(scores, splits=(1, 10)) -> dict:
    """IS@k (mean, std over k splits) for the split counts that leave >= 2 samples per split."""
    from .classifier import usable_splits
    from .inception_score import inception_score

    return {f"IS@{k}": list(inception_score(scores, k)) for k in usable_splits(len(scores), splits)}


def _frechet(real, fake, key: str) -> float:
    from .frechet import frechet_distance_from_features

    return frechet_distance_from_features(real[key], fake[key])


# ---------------------------------------------------------------------------------------------------- I3D: fvd


def _i3d_load(ctx):
    from . import i3d

    k = i3d.repeat_factor(min(s[0] for s in ctx.shapes.values()), ctx.fvd_repeat_frames, f"{ctx.unit}s")
    return i3d.load_i3d().to(ctx.device), k


def _i3d_extract(loaded, chunk, ctx, progress) -> dict:
    from .fvd import cached_i3d_features

    model, k = loaded
    chunk = np.repeat(chunk, k, axis=1) if k > 1 else chunk
    return {"i3d": cached_i3d_features(chunk, model, None if ctx.cache_dir is None else str(ctx.cache_dir),
                                       batch_size=ctx.batch_size, progress=progress)}


def _fvd(ctx, real, fake) -> dict:
    from .fvd import protocol_record, reference_check
    from .i3d import MIN_FRAMES

    model, k = ctx.loaded["i3d"]
    r, f = (ctx.stub(label, ctx.shapes[label][0] * k) for label in ("real", "fake"))
    protocol = {**protocol_record(r, f, model, "tf1"), "frames_repeated": k,
                "i3d_reference": reference_check(model, ctx.batch_size)}
    if k > 1:
        protocol["note"] = (f"every frame repeated {k} times to reach I3D's {MIN_FRAMES}: not comparable with "
                            f"published FVD")
    return {"fvd": {"value": _frechet(real, fake, "i3d"), "protocol": protocol}}


# ---------------------------------------------------------------------------------- Moving MNIST classifier: cfvd, cis


def _classifier_load(ctx):
    from .classifier import default_classifier_name, load_classifier

    frames, size, _ = ctx.shapes["fake"]
    model = load_classifier(ctx.classifier or default_classifier_name(frames, size), device=ctx.device)
    for label, shape in ctx.shapes.items():
        if shape[0] < model.cfg.num_frames:
            raise ValueError(f"classifier {model.name} needs {model.cfg.num_frames} frames, the {label} {ctx.unit}s "
                             f"have {shape[0]}; pass --classifier with a shorter one")
    return model


def _classifier_extract(model, chunk, ctx, progress) -> dict:
    from .classifier import classifier_outputs

    out = classifier_outputs(chunk, model, max(ctx.batch_size, 32), progress)
    return {"features": out["features"], "digit_logits": out["digit_logits"]}


def _classifier_protocol(ctx, metric: str) -> dict:
    from .classifier import protocol_record

    return protocol_record(metric, ctx.loaded["classifier"], real=ctx.stub("real"), fake=ctx.stub("fake"))


def _cfvd(ctx, real, fake) -> dict:
    return {"cfvd": {"value": _frechet(real, fake, "features"), "protocol": _classifier_protocol(ctx, "cFVD")}}


def _cis(ctx, real, fake) -> dict:
    return {"cis": {"fake": _is_dict(fake["digit_logits"]), "real": _is_dict(real["digit_logits"]),
                    "protocol": {**_classifier_protocol(ctx, "cIS"), "splits_requested": [1, 10],
                                 "max_value": 10 / ctx.loaded["classifier"].cfg.num_digits}}}


# ----------------------------------------------------------------------------------------------- InceptionV3: fid, is


def _inception_check(ctx) -> None:
    if ctx.inception is None:
        raise ValueError(f"{' and '.join(ctx.users('inception'))} need InceptionV3 weights: pass --inception PATH "
                         f"(pytorch-fid's pt_inception-2015-12-05 .pth; no package ships them)")
    if not Path(ctx.inception).is_file():
        raise FileNotFoundError(f"--inception {ctx.inception}: no such file")


def _inception_load(ctx):
    from .inception import load_inception

    return load_inception(str(ctx.inception)).to(ctx.device).eval()


def _inception_extract(model, chunk, ctx, progress) -> dict:
    from .fid import activations

    out = {}
    for frames in ("avg", "first"):
        a = activations(chunk, model, frames, ctx.batch_size, progress)
        out[f"pool_{frames}"], out[f"logits_{frames}"] = a["pool"], a["logits"]
    return out


def _fid(ctx, real, fake) -> dict:
    from .fid import protocol_record

    r, f, model = ctx.stub("real"), ctx.stub("fake"), ctx.loaded["inception"]
    return {f"fid_{frames}": {"value": _frechet(real, fake, f"pool_{frames}"),
                              "protocol": protocol_record(f"FID-{frames}", r, f, model, frames)}
            for frames in ("avg", "first")}


def _is(ctx, real, fake) -> dict:
    from .fid import protocol_record

    f, model = ctx.stub("fake"), ctx.loaded["inception"]
    return {f"is_{frames}": {"fake": _is_dict(fake[f"logits_{frames}"]), "real": _is_dict(real[f"logits_{frames}"]),
                             "protocol": {**protocol_record(f"IS-{frames}", f, None, model, frames), "reduce": "logits",
                                          "splits_requested": [1, 10]}}
            for frames in ("avg", "first")}


# ------------------------------------------------------------------------------------------- paired: psnr, ssim


def _paired(name: str):
    def reduce(ctx, real, fake) -> dict:
        from .paired import paired_metrics

        return paired_metrics(real["videos"], fake["videos"], [name], batch_size=ctx.batch_size, device=ctx.device)
    return reduce


register_features(Features("i3d", _i3d_extract, load=_i3d_load))
register_features(Features("classifier", _classifier_extract, load=_classifier_load))
register_features(Features("inception", _inception_extract, load=_inception_load, check=_inception_check))
register_features(Features("pixels", lambda loaded, chunk, ctx, progress: {"videos": chunk}))

register_metric(Metric("fvd", "i3d", _fvd, order=3))
register_metric(Metric("fid", "inception", _fid, outputs=("fid_avg", "fid_first"), order=2))
register_metric(Metric("is", "inception", _is, outputs=("is_avg", "is_first"), order=2))
register_metric(Metric("cfvd", "classifier", _cfvd, order=1))
register_metric(Metric("cis", "classifier", _cis, order=1))
register_metric(Metric("psnr", "pixels", _paired("psnr"), paired=True, order=0))
register_metric(Metric("ssim", "pixels", _paired("ssim"), paired=True, order=0))
