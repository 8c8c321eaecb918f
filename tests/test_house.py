"""The house rules, checked on the source: no import cycles, MLflow imported only by tracking and
the MLflow plugins, tracking split into modules of one job each."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (ROOT / "src", ROOT / "plugins")


def _modules() -> dict[str, Path]:
    mods = {}
    for base in SOURCES:
        for path in base.rglob("*.py"):
            parts = path.relative_to(base).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, at the top or inside a function (a local import is still an edge)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: {d for d in _imports(name, path) if d in mods and d != name} for name, path in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_project_modules() -> None:
    graph = _graph()
    assert "framework_arena.runner" in graph and graph["framework_arena.runner"], "the import graph was not read"
    cycle = _cycle(graph)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_only_tracking_and_the_mlflow_plugins_import_mlflow() -> None:
    allowed = ("framework_arena.tracking", "framework_arena_mlflow")
    offenders = sorted(
        name
        for name, path in _modules().items()
        if any(d == "mlflow" or d.startswith("mlflow.") for d in _imports(name, path)) and not name.startswith(allowed)
    )
    assert not offenders, f"modules importing mlflow outside tracking/: {offenders}"


def test_no_module_imports_another_modules_private_names() -> None:
    mods = _modules()
    offenders = []
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module in mods and node.module.rpartition(".")[0] != name.rpartition(".")[0]:
                offenders += [f"{name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not offenders, offenders
