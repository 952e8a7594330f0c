"""The samplers users choose from, named once (paper Sec. 2): each entry is a sampler function and its own options.

Everything that offers a choice of sampler reads this registry: ``sample.sampler`` in configs, the ``--sampler``
choices and the per-sampler flags (``--gamma``, ``--eta``, ...) of every command, the app's menu. To add a sampler,
write its update rule in a new file (see :mod:`.ddim`: a function ``fn(denoise, z, logsnrs, *, <options>,
**kwargs)`` that calls :func:`.common.run_sampler`) and add one :class:`SamplerSpec` line to :data:`BUILTIN` (or
call :func:`register_sampler` from your own code).

Sampler options (``gamma``, ``eta``) are the sampler's hyperparameters; they travel apart from the denoiser's keyword
arguments (``text_emb``, ``cond``, ...): every sampling entry point takes the first as ``options={...}`` and the
second as ``extra_args={...}`` (k-diffusion's separation), and nothing else; loose keywords are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .ancestral import sample_ancestral
from .ddim import sample_ddim
from .dpm_solver import sample_dpmpp2m

__all__ = ["SamplerOption", "SamplerSpec", "BUILTIN", "register_sampler", "unregister_sampler", "get_sampler",
           "sampler_names", "check_options", "option_owners", "sampler_options", "resolve_options", "SAMPLERS", "RUN_ARGS"]

# Keywords of run_sampler that belong to the sampling run, not to the denoiser.
RUN_ARGS = ("generator", "step_hook", "callback", "progress", "extra_args")


@dataclass(frozen=True)
class SamplerOption:
    """One hyperparameter of a sampler: its keyword, type, default (``None``: the function's own), and help text."""

    name: str
    type: type = float
    default: Any = None
    help: str = ""


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler: ``fn(denoise, z, logsnrs, *, generator, step_hook, callback, progress, <options>, **extra_args)``."""

    name: str
    fn: Callable
    options: tuple[SamplerOption, ...] = ()
    help: str = ""

    def option(self, name: str) -> SamplerOption | None:
        return next((o for o in self.options if o.name == name), None)


BUILTIN = (
    SamplerSpec("ancestral", sample_ancestral,
                (SamplerOption("gamma", float, 0.3, "ancestral stochasticity gamma of eq. (4), in [0, 1]"),),
                "ancestral sampler, eq. (4)"),
    SamplerSpec("ddim", sample_ddim, (SamplerOption("eta", float, 0.0, "DDIM stochasticity eta, >= 0"),), "DDIM"),
    SamplerSpec("dpmpp2m", sample_dpmpp2m, (), "DPM-Solver++(2M), deterministic"),
)

_REGISTRY: dict[str, SamplerSpec] = {}


def register_sampler(spec: SamplerSpec) -> SamplerSpec:
    """Add ``spec`` (a new name; an option's name must mean the same type in every sampler that has it)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"a sampler named {spec.name!r} is already registered")
    for opt in spec.options:
        if opt.name in RUN_ARGS:
            raise ValueError(f"sampler option {opt.name!r} clashes with a run argument ({', '.join(RUN_ARGS)})")
        for other in _REGISTRY.values():
            o = other.option(opt.name)
            if o is not None and o.type is not opt.type:
                raise ValueError(f"option {opt.name!r} is {o.type.__name__} in {other.name}, {opt.type.__name__} here")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_sampler(name: str) -> None:
    """Remove a sampler (for tests and plug-ins that register temporarily)."""
    _REGISTRY.pop(name, None)


def sampler_names() -> list[str]:
    return list(_REGISTRY)


def get_sampler(name: str, option: str = "sampler") -> SamplerSpec:
    """The registered sampler ``name``, or a ValueError naming ``option`` and the choices."""
    if name not in _REGISTRY:
        raise ValueError(f"{option} must be one of {sorted(_REGISTRY)}, got {name!r}")
    return _REGISTRY[name]


def check_options(sampler: str, options: dict | None) -> dict:
    """``options`` (the sampler's own, e.g. ``{"gamma": 0.3}``) as a new dict; a name ``sampler`` does not take is
    an error that lists the ones it does."""
    spec = get_sampler(sampler)
    for name in options or {}:
        if spec.option(name) is None:
            raise ValueError(f"sampler {sampler} has no option {name!r} (its options: "
                             f"{', '.join(o.name for o in spec.options) or 'none'})")
    return dict(options or {})


def option_owners() -> dict[str, list[SamplerOption | str]]:
    """``{option name: [its SamplerOption, owner sampler names...]}`` over every registered sampler."""
    out: dict[str, list] = {}
    for spec in _REGISTRY.values():
        for opt in spec.options:
            out.setdefault(opt.name, [opt]).append(spec.name)
    return out


def sampler_options(sampler: str, **options) -> dict:
    """The options among ``options`` (e.g. ``gamma=..., eta=...``) that ``sampler`` takes, leaving out ``None``s.

    Lets callers hold one set of settings (``cfg.sample``) and pass each sampler only its own.
    """
    spec = get_sampler(sampler)
    return {k: v for k, v in options.items() if spec.option(k) is not None and v is not None}


def resolve_options(sampler: str, sample_cfg=None, **given) -> dict:
    """Every option of ``sampler``: ``given`` (``None``: not given) over ``sample_cfg``'s value (its
    ``options`` mapping, then a field of the same name, e.g. ``sample.gamma``) over the registry default; options
    without any value are left to the function's default."""
    spec = get_sampler(sampler)
    cfg_options = getattr(sample_cfg, "options", None) or {}
    out = {}
    for opt in spec.options:
        for value in (given.get(opt.name), cfg_options.get(opt.name), getattr(sample_cfg, opt.name, None),
                      opt.default):
            if value is not None:
                out[opt.name] = value
                break
    return out


class _Functions(Mapping):
    """``SAMPLERS[name]``: the registered sampler functions by name (a live view of the registry)."""

    def __getitem__(self, name: str) -> Callable:
        return _REGISTRY[name].fn

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return f"SAMPLERS({', '.join(_REGISTRY)})"


SAMPLERS: Mapping[str, Callable] = _Functions()

for _spec in BUILTIN:
    register_sampler(_spec)
