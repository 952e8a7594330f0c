"""``videodiff.VideoPipeline``: one object over a trained model for every task of the paper (Sec. 3.1, 4.3, 4.4,
Fig. 2), in the manner of diffusers' pipelines without their mixins.

``from_pretrained(name | folder | run)`` / ``save_pretrained(folder)``, ``.to(device)``, ``precision=``, and one
method per task: :meth:`~VideoPipeline.generate` (text to video, eq. 5), :meth:`~VideoPipeline.extend` (Sec. 3.1,
4.4), :meth:`~VideoPipeline.interpolate`, :meth:`~VideoPipeline.upsample` (eq. 7) and :meth:`~VideoPipeline.cascade`
(Fig. 2), each returning float ``(B, C, F, H, W)`` videos in [-1, 1] on the CPU; :meth:`~VideoPipeline.save_video`
writes mp4/gif/png. Every default is resolved in one place, :meth:`~VideoPipeline.settings`: a task's sampler and
steps from :data:`videodiff.conditional.TASK_DEFAULTS` over the model's ``sample`` config, the guidance weight from
``sample.guidance``. The CLI, the app, the demo and the benchmarks call these methods and wire nothing themselves.
Sampler options travel one way, ``options={"gamma": 0.3}``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .models import LoadedModel, denoiser_device, load_model

__all__ = ["VideoPipeline"]


class VideoPipeline:
    """A loaded model (:class:`videodiff.models.LoadedModel`) and its text cache, with one method per task."""

    def __init__(self, model: LoadedModel, *, cache=None, source: str | Path | None = None):
        self.model = model
        self._cache = cache
        self.source = source if source is not None else model.path  # what finetune() starts from

    # ---------------------------------------------------------------------------------------------- loading

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, *, device: str = "auto", precision: str | None = None,
                        compile: bool | None = None, ema: bool = True, adapter: str | Path | None = None):
        """A shipped model by name (``"moving-mnist"``), a folder of :meth:`save_pretrained`, or a training run /
        checkpoint (EMA weights unless ``ema=False``). ``precision``: ``auto | fp32 | bf16`` (None: the model's
        ``sample.precision``). ``adapter``: a LoRA adapter of ``videodiff export --adapter`` for this model."""
        model = load_model(name_or_path, ema=ema, device=device, precision=precision, compile=compile)
        if adapter is not None:
            from .finetune import apply_adapter

            model = apply_adapter(model, adapter)
        return cls(model, source=name_or_path)

    def save_pretrained(self, folder: str | Path, *, name: str | None = None) -> Path:
        """Write the weights (safetensors), ``NAME.json`` (config, step, sha256) and a model card ``NAME.md`` into
        ``folder`` (the shipped models' layout, ``NAME`` = the folder's name); :meth:`from_pretrained` loads it
        offline. A LoRA model is saved with its adapters merged."""
        from .config import config_to_dict
        from .pretrained import plain_network, write_model

        folder = Path(folder)
        name = name or folder.resolve().name
        state, config = plain_network(self.denoiser.net.state_dict(), config_to_dict(self.config))
        keep = {k: v for k, v in self.model.meta.items() if k in ("cascade_high", "base_model")}
        card = (f"# Model card: `{name}`\n\nSaved by `VideoPipeline.save_pretrained` from `{self.model.path}` "
                f"(step {self.model.step}). {self.config.data.num_frames} frames of {self.config.data.image_size}x"
                f"{self.config.data.image_size}, {self.config.data.channels} channel(s), "
                f"{'text-conditioned' if self.config.text.enabled else 'unconditional'}, "
                f"{self.config.diffusion.parameterization}-prediction. Load: "
                f"`VideoPipeline.from_pretrained({str(folder)!r})`.\n")
        write_model(state, config, self.model.step, name, folder, extra={"source": str(self.model.path), **keep},
                    card=card)
        return folder

    def to(self, device: str | torch.device) -> "VideoPipeline":
        """Move the model to ``device``; the precision it asked for is resolved again there (``auto``: bf16 only
        where that device has native bf16)."""
        from .models import pick_device
        from .precision import precision_name, prepare_network, resolve_precision

        dev = pick_device(str(device))
        den = self.model.denoiser
        dtype = resolve_precision(self.model.requested_precision or self.config.sample.precision, dev)
        den.to(dev)
        prepare_network(den.net, dtype)
        den.autocast_dtype = dtype
        self.model.precision = precision_name(dtype)
        return self

    @property
    def config(self):
        return self.model.config

    @property
    def denoiser(self):
        return self.model.denoiser

    @property
    def device(self) -> torch.device:
        return denoiser_device(self.model.denoiser)

    @property
    def precision(self) -> str:
        """What the network runs in: ``"fp32"`` or ``"bf16"``."""
        return self.model.precision

    @property
    def cache(self):
        """The frozen text encoder's embedding cache (built on first use; None for an unconditional model)."""
        if self._cache is None and self.config.text.enabled:
            from .text import build_text_cache

            self._cache = build_text_cache(self.config.text)
        return self._cache

    # ---------------------------------------------------------------------------------------------- defaults

    def settings(self, task: str, *, sampler=None, steps=None, options=None, **task_overrides) -> dict:
        """The sampling keywords of ``task`` (``generate``, ``extend``, ``interpolate``, ``upsample``, ``cascade``):
        what is given, else :data:`videodiff.conditional.TASK_DEFAULTS` over the model's ``sample`` config. Returns
        ``sampler``, ``steps``, ``options`` and, for the conditional tasks, ``w_r``, ``guidance_clip`` (and
        ``down_mode``, ``w_r_low`` for upsample/cascade). A distilled student (``distill.source`` set) samples every
        task on the grid it was distilled for (its ``sample.sampler`` and ``sample.steps``) unless told otherwise."""
        from .conditional import TASK_DEFAULTS, task_options
        from .sampling.registry import check_options, resolve_options

        sc = self.config.sample
        if self.distilled and task != "generate":
            sampler, steps = sampler or sc.sampler, sc.steps if steps is None else steps
        if task == "generate":
            sampler = sampler or sc.sampler
            return {"sampler": sampler, "steps": sc.steps if steps is None else steps,
                    "options": resolve_options(sampler, sc, **check_options(sampler, options))}
        if task not in TASK_DEFAULTS:
            raise ValueError(f"unknown task {task!r}; one of generate, {', '.join(sorted(TASK_DEFAULTS))}")
        resolved = sampler or TASK_DEFAULTS[task].resolve(sc).sampler
        return task_options(task, sc, sampler=sampler, steps=steps, **check_options(resolved, options),
                            **task_overrides)

    def guidance_weight(self, guidance: float | None) -> float:
        """The classifier-free guidance weight ``w`` of eq. (5) used for a prompt: ``guidance``, else the model's
        ``sample.guidance``. A guidance-distilled student (``model.guidance_input``) refuses a ``w`` outside the range
        it was distilled for (``distill.guidance_range``)."""
        w = self.config.sample.guidance if guidance is None else float(guidance)
        span = self.guidance_range
        if span is not None and not span[0] <= w <= span[1]:
            raise ValueError(f"guidance w = {w:g} is outside [{span[0]:g}, {span[1]:g}], the range this student was "
                             f"distilled for (distill.guidance_range); use its teacher {self.config.distill.source} "
                             f"for other weights")
        return w

    @property
    def distilled(self) -> bool:
        """Whether the model is a progressively distilled student (:mod:`videodiff.distill`)."""
        from .distill.config import is_student

        return is_student(self.config)

    def teacher(self) -> "VideoPipeline | None":
        """A distilled student's teacher (its ``distill.source``), loaded on this pipeline's device with the precision
        this one asked for; None for a model that is not a student, or whose teacher (a run directory) is not on this
        machine. The demo and the app give it the conditional tasks, where a 4-step student loses (extension by eq. 6:
        block seams and speckle; interpolation and super-resolution: 3-6 dB; docs/distillation.md)."""
        from .pretrained import is_model_name

        if not self.distilled:
            return None
        source = str(self.config.distill.source)
        if not (is_model_name(source) or Path(source).exists()):
            return None
        return VideoPipeline.from_pretrained(source, device=str(self.device),
                                             precision=self.model.requested_precision)

    @property
    def guidance_range(self) -> tuple[float, float] | None:
        """``(w_min, w_max)`` of a guidance-distilled student (it takes ``w`` as an input), else None."""
        from .distill.config import student_guidance_range

        return student_guidance_range(self.config)

    def condition(self, prompt: str | list[str] | None, num: int, guidance: float | None):
        """``(denoiser, extra_args)`` for ``num`` videos of one ``prompt`` (or a list of ``num``, one per video) with
        classifier-free guidance (eq. 5) of weight ``guidance`` (None: the model's ``sample.guidance``);
        ``prompt=None``: the unconditional c = 0."""
        from .pipeline import text_condition
        from .sampling.guidance import guided

        if prompt is None:
            if guidance:
                raise ValueError("guidance needs a prompt (guidance strengthens a text condition)")
            return self.denoiser, {}
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if len(prompts) not in (1, num):
            raise ValueError(f"{len(prompts)} prompts for {num} videos: give one, or one per video")
        w = self.guidance_weight(guidance)
        text = text_condition(self.config, prompts, cache=self.cache)
        text = {k: v.expand(num, *v.shape[1:]).to(self.device) for k, v in text.items()}
        return guided(self.denoiser, w, w_input=self.config.model.guidance_input), text

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed)

    # ---------------------------------------------------------------------------------------------- tasks

    def generate(self, prompt: str | list[str] | None = None, *, num: int = 1, num_frames: int | None = None,
                 guidance: float | None = None, steps: int | None = None, sampler: str | None = None,
                 options: dict | None = None, seed: int = 0, batch_size: int = 16,
                 progress: bool = False, on_batch=None) -> torch.Tensor:
        """``num`` videos per prompt (prompt-major; ``prompt=None``: ``num`` unconditional ones), reproducibly:
        video ``i`` depends only on ``seed`` and ``i``. Guidance ``w`` of eq. (5) (None: the model's).
        ``on_batch(done, total)``: called after every batch of ``batch_size`` videos."""
        from .pipeline import sample_from_prompts, sample_videos

        s = self.settings("generate", sampler=sampler, steps=steps, options=options)
        kw = dict(seed=seed, batch_size=batch_size, num_frames=num_frames, progress=progress, on_batch=on_batch, **s)
        if prompt is None:
            if guidance:
                raise ValueError("guidance needs a prompt (guidance strengthens a text condition)")
            return sample_videos(self.denoiser, self.config, num, **kw)
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        w = self.guidance_weight(guidance)
        return sample_from_prompts(self.denoiser, self.config, prompts, num, guidance=w, cache=self.cache, **kw)

    def extend(self, video: torch.Tensor | None = None, *, frames: int, num: int | None = None,
               prompt: str | list[str] | None = None, guidance: float | None = None, method: str | None = None,
               context: int | None = None, variant: str = "marginal", w_r: float | None = None,
               clamp: bool | None = None, steps: int | None = None, sampler: str | None = None,
               options: dict | None = None, seed: int = 0, progress: bool = False) -> torch.Tensor:
        """``video`` ``(B, C, L, H, W)`` (or, without it, ``num`` fresh videos) extended autoregressively to
        ``frames`` frames, every block conditioned on the last ``context`` frames (default half a block) by the
        gradient method (eq. 6), the replacement method or ``context`` (None: :meth:`default_method`); one generator
        seeded with ``seed`` drives every block."""
        from .conditional import extend

        method = self.check_method(method)
        cfg = self.config
        block = cfg.data.num_frames
        context = block // 2 if context is None else context
        if not 0 <= context < block or frames < 1:
            raise ValueError(f"need frames >= 1 and context in [0, {block}) for this {block}-frame model, got "
                             f"frames={frames}, context={context}")
        if video is None:
            if num is None or num < 1:
                raise ValueError("extend needs a video or num >= 1 fresh ones")
            start = dict(num_videos=num, frame_shape=(cfg.data.channels, cfg.data.image_size, cfg.data.image_size),
                         device=self.device)
        else:
            num, start = video.shape[0], dict(video=video.to(self.device))
        den, text = self.condition(prompt, num, guidance)
        s = self.settings("extend", sampler=sampler, steps=steps, options=options, w_r=w_r, clamp=clamp)
        return extend(den, cfg.diffusion.schedule, total_frames=frames, block_frames=block, context=context,
                      method=method, variant=variant, generator=self._generator(seed), progress=progress,
                      extra_args=text, **start, **s).float().cpu()

    def predict(self, video: torch.Tensor, *, given: int, frames: int, samples: int = 1,
                prompt: str | list[str] | None = None, guidance: float | None = None, method: str | None = None,
                context: int | None = None, variant: str = "marginal", w_r: float | None = None,
                clamp: bool | None = None, steps: int | None = None, sampler: str | None = None,
                options: dict | None = None, seed: int = 0, batch_size: int = 16,
                progress: bool = False) -> torch.Tensor:
        """Video prediction (Sec. 3.1, 4.4): ``samples`` continuations of each video ``(B, C, L, H, W)`` from its
        first ``given`` frames to ``frames`` frames, autoregressively past the model's frame count, by the gradient
        method (eq. 6, the paper's), the replacement method or, for a model trained with ``train.context_frames``,
        the ``context`` method (given frames clean in the network's input; the default for such a model, see
        :meth:`default_method`); ``given=1`` is image-to-video; ``prompt``: one, or one
        per video, for a text-conditioned model (guidance ``w`` of eq. 5). Each block conditions
        on every known frame the window holds (``context``, default ``min(given, F - 1)``). Continuation ``k`` of
        video ``b`` draws its noise from a generator seeded ``sample_seed(seed, b * samples + k)``, so it does not
        depend on ``batch_size``. Returns ``(B, samples, C, frames, H, W)``; frames ``:given`` are the input's."""
        from .conditional import predict
        from .pipeline import sample_seed

        if video.ndim != 5:
            raise ValueError(f"predict needs videos (B, C, F, H, W), got shape {tuple(video.shape)}")
        method = self.check_method(method)
        block = self.config.data.num_frames
        if context is not None and not 0 <= context < block:
            raise ValueError(f"context must be in [0, {block}) for this {block}-frame model, got {context}")
        n = video.shape[0] * samples
        if prompt is not None and not isinstance(prompt, str) and len(prompt) == video.shape[0]:
            prompt = [p for p in prompt for _ in range(samples)]  # one per continuation, video-major
        den, text = self.condition(prompt, n, guidance)
        s = self.settings("predict", sampler=sampler, steps=steps, options=options, w_r=w_r, clamp=clamp)
        if method == "replacement":
            s["variant"] = variant
        gens = [self._generator(sample_seed(seed, i)) for i in range(n)]
        out = predict(den, self.config.diffusion.schedule, video.to(self.device), given=given, total_frames=frames,
                      block_frames=block, samples=samples, generators=gens, context=context, method=method,
                      batch_size=batch_size, progress=progress, extra_args=text, **s)
        return out.float().cpu().clamp(-1.0, 1.0)

    @property
    def context_trained(self) -> bool:
        """True for a model trained with clean context frames (``train.context_frames``, :mod:`videodiff.context`)."""
        return bool(self.config.train.context_frames)

    def default_method(self) -> str:
        """The conditioning method used when none is given: ``context`` for a model trained with context frames
        (its explicit conditional), else the paper's gradient method (eq. 6)."""
        return "context" if self.context_trained else "gradient"

    def check_method(self, method: str | None) -> str:
        """``method`` (None: :meth:`default_method`), refused when it is ``context`` and the model was not trained
        for it."""
        method = self.default_method() if method is None else method
        if method == "context" and not self.context_trained:
            raise ValueError("method 'context' needs a model trained with train.context_frames (videodiff/context.py);"
                             " this model is unconditional: use gradient or replacement")
        return method

    def interpolate(self, video: torch.Tensor, factor: int, *, prompt: str | list[str] | None = None,
                    guidance: float | None = None, method: str = "gradient", variant: str = "marginal",
                    w_r: float | None = None, clamp: bool | None = None, steps: int | None = None,
                    sampler: str | None = None, options: dict | None = None, seed: int = 0,
                    progress: bool = False) -> torch.Tensor:
        """Key frames ``(B, C, L, H, W)`` at frameskip ``factor`` -> ``(B, C, (L - 1) factor + 1, H, W)``; output
        frame ``i * factor`` is input frame ``i`` exactly (Sec. 3.1)."""
        from .conditional import interpolate

        if video.ndim != 5 or video.shape[2] < 2:
            raise ValueError(f"interpolate needs (B, C, F, H, W) with at least 2 key frames, got {tuple(video.shape)}")
        den, text = self.condition(prompt, video.shape[0], guidance)
        s = self.settings("interpolate", sampler=sampler, steps=steps, options=options, w_r=w_r, clamp=clamp)
        return interpolate(den, self.config.diffusion.schedule, video.to(self.device), factor,
                           block_frames=self.config.data.num_frames, method=method, variant=variant,
                           generator=self._generator(seed), progress=progress, extra_args=text, **s).float().cpu()

    def upsample(self, video: torch.Tensor, *, prompt: str | list[str] | None = None,
                 guidance: float | None = None,
                 method: str = "gradient", variant: str = "marginal", down: str | None = None,
                 w_r_low: float | None = None, context: int | None = None, w_r: float | None = None,
                 clamp: bool | None = None, steps: int | None = None, sampler: str | None = None,
                 options: dict | None = None, seed: int = 0, progress: bool = False) -> torch.Tensor:
        """Spatial super-resolution (eq. 7) of ``(B, C, F, h, w)`` to the model's size; ``method="replacement"``
        replaces the low frequencies of ``z_s`` instead (needs ``down="area"``)."""
        size = self.config.data.image_size
        if video.shape[-1] >= size:
            raise ValueError(f"the input is {video.shape[-1]}x{video.shape[-1]}, not below the model's {size}x{size}")
        return self._superres("upsample", video, 1, prompt=prompt, guidance=guidance, method=method,
                              variant=variant, down=down, w_r_low=w_r_low, context=context, w_r=w_r, clamp=clamp,
                              steps=steps, sampler=sampler, options=options, seed=seed, progress=progress)

    def cascade(self, prompt: str | list[str] | None = None, *, high: "VideoPipeline | str | None" = None,
                video: torch.Tensor | None = None, num: int = 4, guidance: float | None = None,
                high_guidance: float = 0.0, factor: int | None = None, low_steps: int | None = None,
                seed: int = 0, progress: bool = False, **high_kw) -> tuple[torch.Tensor, torch.Tensor]:
        """Fig. 2: ``num`` samples of this (low-resolution) model, or the given low-resolution ``video``, brought
        to ``high``'s resolution and frame rate at once (default: the high model a shipped low model names, else
        this one for a given video). ``factor``: the temporal factor (default: the ratio of the frameskips).
        ``high_kw``: :meth:`upsample`'s settings for the high model. Returns ``(high_video, low_video)``."""
        from .data.transforms import to_channels

        low_fs = None
        if video is None:
            video = self.generate(prompt, num=num, guidance=guidance, steps=low_steps, seed=seed, progress=progress)
            low_fs = self.config.data.frameskip
        name = high if high is not None else self.model.meta.get("cascade_high")
        if name is None and low_fs is not None:
            raise ValueError("cascade needs a high-resolution model (high=); only a shipped low model names its own")
        high = self if name is None else name if isinstance(name, VideoPipeline) else VideoPipeline.from_pretrained(
            name, device=str(self.device), precision=self.model.requested_precision)
        hcfg = high.config
        b, c, f, h, w = video.shape
        video = to_channels(video.transpose(1, 2).flatten(0, 1), hcfg.data.channels)
        video = video.reshape(b, f, -1, h, w).transpose(1, 2)  # (B, C_high, F, h, w)
        if factor is None:
            if low_fs is None:
                raise ValueError("cascade of a given video needs factor= (its frameskip is unknown)")
            if low_fs % hcfg.data.frameskip:
                raise ValueError(f"low frameskip {low_fs} is not a multiple of the high model's "
                                 f"{hcfg.data.frameskip}; pass factor=")
            factor = low_fs // hcfg.data.frameskip
        if h > hcfg.data.image_size:
            raise ValueError(f"low-resolution frames ({h}) are larger than the high model's {hcfg.data.image_size}")
        if isinstance(prompt, (list, tuple)) and len(prompt) != b:  # prompt-major samples of the low model
            prompt = [p for p in prompt for _ in range(b // len(prompt))]
        out = high._superres("cascade", video, factor, prompt=prompt, guidance=high_guidance, seed=seed + 1,
                             progress=progress, **high_kw)
        return out, video

    def _superres(self, task: str, video: torch.Tensor, factor: int, *, prompt, guidance, seed, progress,
                  method: str = "gradient", variant: str = "marginal", down=None, w_r_low=None, context=None,
                  w_r=None, clamp=None, steps=None, sampler=None, options=None) -> torch.Tensor:
        from .conditional import cascade

        size = self.config.data.image_size
        s = self.settings(task, sampler=sampler, steps=steps, options=options, w_r=w_r, clamp=clamp, down=down,
                          w_r_low=w_r_low)
        if method == "replacement" and s["down_mode"] != "area":
            raise ValueError("the replacement method replaces low frequencies through area downsampling: "
                             "use --down area (down='area')")
        if s["down_mode"] == "area" and size % video.shape[-1]:
            raise ValueError(f"area downsampling needs an integer factor: {size} is not a multiple of the input's "
                             f"{video.shape[-1]}; use --down bilinear (down='bilinear') or --low-size {size // 2}")
        den, text = self.condition(prompt, video.shape[0], guidance)
        return cascade(den, self.config.diffusion.schedule, video.to(self.device), size=size, factor=factor,
                       block_frames=self.config.data.num_frames, context=context, method=method, variant=variant,
                       generator=self._generator(seed), progress=progress, extra_args=text, **s).float().cpu()

    # ---------------------------------------------------------------------------------------------- fine-tuning

    def finetune(self, data: str | Path, out: str | Path, *, lora_rank: int = 0, steps: int = 500,
                 progress: bool = False, **kwargs) -> "VideoPipeline":
        """Fine-tune this model on ``data`` (a folder of videos or a caption manifest) into the run ``out``, fully
        or (``lora_rank`` > 0) with LoRA adapters (:mod:`videodiff.finetune`; rerun to resume); returns the
        fine-tuned model's pipeline on this device. ``kwargs``: ``lora_alpha``, ``lr``, ``batch_size``,
        ``overrides`` (``["train.ckpt_every=100"]``)."""
        from .finetune import finetune

        finetune(self.source, data, out, lora_rank=lora_rank, steps=steps, progress=progress, **kwargs)
        return VideoPipeline.from_pretrained(out, device=str(self.device), precision=self.model.requested_precision)

    # ---------------------------------------------------------------------------------------------- output

    def save_video(self, videos: torch.Tensor, path: str | Path, *, fps: int | None = None,
                   nrow: int | None = None) -> Path:
        """Write ``(B, C, F, H, W)`` videos as one grid video: ``.mp4``, ``.gif`` or ``.png`` (a frame strip) by
        the extension; ``fps`` defaults to the model's ``sample.fps``."""
        from .io import save_video_grid

        save_video_grid(videos, path, nrow=nrow, fps=self.config.sample.fps if fps is None else fps)
        return Path(path)
