"""The package's shape: imports point one way, no module reaches into another's private names, files stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "recae"
MAX_LINES = 370  # "about 350": a file past this is split by what it holds


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def relative_imports(name: str, path: Path):
    """(line, imported module, imported names) of each ``from . import`` in a module."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            yield node.lineno, target, [a.name for a in node.names]


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph = {m: set() for m in mods}
    for name, path in mods.items():
        for _, target, names in relative_imports(name, path):
            for n in names:
                dep = f"{target}.{n}" if f"{target}.{n}" in mods else target
                if dep in mods and dep != name and not name.startswith(dep + "."):
                    graph[name].add(dep)
    return graph


def test_no_import_cycle():
    graph, state, stack, cycles = import_graph(), {}, [], []

    def visit(u):
        state[u] = "open"
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                cycles.append(" -> ".join(stack[stack.index(v):] + [v]))
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = "done"

    for u in sorted(graph):
        if u not in state:
            visit(u)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_nothing_imports_names_from_the_package_root():
    # ``recae/__init__`` assembles the public API; modules import what they need from its source
    bad = [f"{name}:{line} imports {names} from recae" for name, path in modules().items() if name != "recae"
           for line, target, names in relative_imports(name, path)
           if target == "recae" and any(f"recae.{n}" not in modules() for n in names)]
    assert not bad, "\n".join(bad)


def test_no_private_names_across_modules():
    bad = [f"{name}:{line} imports {n} from {target}" for name, path in modules().items()
           for line, target, names in relative_imports(name, path)
           for n in names if n.startswith("_") and not n.startswith("__")]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", sorted(modules()))
def test_files_stay_small(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (limit {MAX_LINES}): split it by what it holds"


def test_no_private_calls_across_modules():
    """``obj._name`` only where the module itself defines ``_name`` (a class reaching its own kind)."""
    bad = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        own = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        own |= {t.attr for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Attribute)}
        own |= {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id not in ("self", "cls")
                    and node.attr not in own):
                bad.append(f"{name}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not bad, "\n".join(bad)
