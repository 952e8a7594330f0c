"""The package's layers (docs/architecture.md, issue 18): imports go one way, core <- components <- app, and no
module imports itself back through others (no cycles). The imports are read from the source (every ``import``
statement, also those inside functions), so a lazy import counts like any other; imports under
``if TYPE_CHECKING:`` (annotations only, never run) do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "videodiff"

# Layer of each module, by longest matching prefix (dotted, below "videodiff"). Lower numbers are lower layers.
CORE, COMPONENTS, APP = 0, 1, 2
LAYERS = {
    # videodiff/__init__.py: the version string and `videodiff.VideoPipeline`, re-exported lazily: the package's
    # public face, above every layer (nothing in the package imports it but for __version__)
    "": APP,
    # core: tensors in, tensors out; no files, no configs
    "schedule": CORE, "diffusion": CORE, "parameterization": CORE, "losses": CORE, "denoiser": CORE,
    "gaussian": CORE, "distillation": CORE, "precision": CORE, "frames": CORE, "nn": CORE, "sampling": CORE,
    "context": CORE,
    "conditional": CORE,
    # components: files, configs, data, text encoders, models, training, metrics
    "io": COMPONENTS, "checkpoint": COMPONENTS, "config": COMPONENTS, "runtime": COMPONENTS,
    "pretrained": COMPONENTS, "models": COMPONENTS, "precision_probe": COMPONENTS, "pipeline": COMPONENTS,
    "video_pipeline": COMPONENTS,
    "finetune": COMPONENTS, "data": COMPONENTS,
    "text": COMPONENTS, "train": COMPONENTS, "metrics": COMPONENTS, "distill": COMPONENTS,
    # app: what a user runs
    "cli": APP, "evaluation": APP, "demo": APP, "demo_tasks": APP, "app": APP, "bench": APP, "__main__": APP,
}
NAMES = {CORE: "core", COMPONENTS: "components", APP: "app"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(target: str, modules: set[str]) -> str:
    """The module a dotted import names: itself if it is a module, else its longest prefix that is one."""
    while target not in modules and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of this package it imports}`` (``from pkg import sub`` counts as importing ``pkg.sub``)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                if mod.split(".")[0] != "videodiff":
                    continue
                for alias in node.names:  # `from .x import y`: y may be a submodule
                    deps.add(_resolve(f"{mod}.{alias.name}", modules))
            elif isinstance(node, ast.Import):
                deps |= {_resolve(a.name, modules) for a in node.names if a.name.split(".")[0] == "videodiff"}
        graph[name] = deps - {name}
    return graph


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def layer_of(module: str) -> int:
    rel = module.split(".", 1)[1] if "." in module else ""
    keys = [k for k in LAYERS if rel == k or rel.startswith(k + ".") or k == ""]
    return LAYERS[max(keys, key=len)]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    unassigned = [m for m in import_graph() if m != "videodiff" and not any(
        m.split(".", 1)[1] == k or m.split(".", 1)[1].startswith(k + ".") for k in LAYERS if k)]
    assert not unassigned, f"modules without a layer in tests/test_architecture.py LAYERS: {unassigned}"


def test_imports_go_down_the_layers():
    graph = import_graph()
    up = [f"{m} ({NAMES[layer_of(m)]}) imports {d} ({NAMES[layer_of(d)]})"
          for m, deps in sorted(graph.items()) for d in sorted(deps) if layer_of(d) > layer_of(m)]
    assert not up, "imports from a higher layer:\n" + "\n".join(up)


def test_the_root_package_imports_only_the_pipeline_and_lazily():
    import subprocess
    import sys

    assert import_graph()["videodiff"] == {"videodiff.video_pipeline"}
    code = "import sys, videodiff; assert 'torch' not in sys.modules; print(videodiff.VideoPipeline.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert out.returncode == 0 and out.stdout.strip() == "VideoPipeline", out.stderr


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_catch_violations():
    """The checks themselves: a made-up upward import and a made-up cycle are found."""
    graph = {"videodiff.schedule": {"videodiff.cli.main"}, "videodiff.cli.main": {"videodiff.schedule"}}
    assert layer_of("videodiff.schedule") == CORE and layer_of("videodiff.cli.main") == APP
    assert cycles(graph) == [["videodiff.cli.main", "videodiff.schedule"]]
    assert layer_of("videodiff.metrics.fvd") == COMPONENTS and layer_of("videodiff.sampling.registry") == CORE


@pytest.mark.parametrize("module", ["videodiff.conditional", "videodiff.sampling", "videodiff.nn"])
def test_core_packages_import_no_files_or_configs(module):
    """Core modules take tensors: they import nothing from io, config, data or checkpoint (also indirectly)."""
    graph = import_graph()
    seen, todo = set(), [m for m in graph if m == module or m.startswith(module + ".")]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    forbidden = {"videodiff.io", "videodiff.config", "videodiff.checkpoint"} | {m for m in seen if
                                                                                m.startswith("videodiff.data")}
    assert not seen & forbidden, f"{module} reaches {sorted(seen & forbidden)}"
