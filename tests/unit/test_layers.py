"""The architecture as a checked fact: layer order and no import cycles (docs/architecture.md).

Every import in geomas/, steps/ and pipelines/ counts, including those inside functions (a lazy
import is still a dependency). An import may point to its own layer or below, never above, and
no set of modules may import each other in a cycle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("geomas", "steps", "pipelines")

#: Bottom to top. A module belongs to the longest prefix listed.
LAYERS: tuple[tuple[str, ...], ...] = (
    # helpers: names, errors, IO, records, text, hashing, progress, MLflow helpers
    ("geomas", "geomas.names", "geomas.errors", "geomas.io", "geomas.records", "geomas.text",
     "geomas.hashing", "geomas.progress", "geomas.tracking"),
    ("geomas.config",),
    # domain packages: pure, no ZenML
    ("geomas.ingest", "geomas.validate", "geomas.ner", "geomas.qa", "geomas.clean",
     "geomas.split", "geomas.formats", "geomas.train", "geomas.evaluate", "geomas.registry",
     "geomas.trigger", "geomas.models", "geomas.sample", "geomas.report", "geomas.core"),
    # adapters: the ZenML stack, Kubernetes settings
    ("geomas.stack", "geomas.k8s"),
    ("steps",),
    ("pipelines",),
    ("geomas.runner",),
    # the control panel (web app + API); the CLI serves it
    ("geomas.panel",),
    ("geomas.cli",),
)
DOMAIN = LAYERS[2]


def _modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (the longest known prefix of each name)."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = module.split(".") if is_package else module.split(".")[:-1]
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                target = resolve(name)
                # a package's own parents are imported by Python anyway; not a dependency
                if target and target != module and not module.startswith(target + "."):
                    edges[module].add(target)
    return edges


def _layer(module: str) -> int:
    best: tuple[int, int] | None = None
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[1]
            ):
                best = (index, len(prefix))
    if best is None:
        raise AssertionError(f"{module} belongs to no layer; add it to LAYERS and to "
                             "docs/architecture.md")
    return best[0]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _imports(_modules())


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        _layer(module)


def test_imports_never_point_up(graph: dict[str, set[str]]) -> None:
    upward = [f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
              for m, targets in sorted(graph.items()) for t in sorted(targets)
              if _layer(t) > _layer(m)]
    assert not upward, "imports that break the layer order:\n" + "\n".join(upward)


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    assert _cycles(graph) == []


def test_domain_packages_do_not_import_zenml() -> None:
    offenders = []
    for module, path in _modules().items():
        if _layer(module) > LAYERS.index(DOMAIN):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{module}: {n}" for n in names if n.split(".")[0] == "zenml"]
    assert not offenders, offenders


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The checks are live: a lazy upward import and the cycle it closes are both found."""
    (tmp_path / "geomas" / "config").mkdir(parents=True)
    (tmp_path / "geomas" / "cli").mkdir()
    for init in ("geomas", "geomas/config", "geomas/cli"):
        (tmp_path / init / "__init__.py").write_text("")
    (tmp_path / "geomas" / "config" / "base.py").write_text(
        "def f():\n    from geomas.cli.app import main\n")
    (tmp_path / "geomas" / "cli" / "app.py").write_text("from geomas.config import base\n")
    edges = _imports(_modules(tmp_path))
    assert edges["geomas.config.base"] == {"geomas.cli.app"}
    assert _layer("geomas.cli.app") > _layer("geomas.config.base")
    assert _cycles(edges) == [["geomas.cli.app", "geomas.config", "geomas.config.base"]] or \
        _cycles(edges) == [["geomas.cli.app", "geomas.config.base"]]
