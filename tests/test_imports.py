"""The package's imports run one way: no cycle, counting every import the AST holds."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "userservice"


def module_names() -> dict[str, Path]:
    """Map each module's dotted name to its file (a package by its __init__.py)."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Return the service's modules that one module imports, anywhere in its file.

    Module level, inside functions and under `if TYPE_CHECKING:` all count; importing a
    submodule runs its packages' __init__ too, except the importer's own packages, which are
    already running.
    """
    is_package = path.name == "__init__.py"
    own_package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own_package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join([*base, *([node.module] if node.module else [])])
            else:
                stem = node.module or ""
            targets.add(stem)
            targets.update(f"{stem}.{alias.name}" for alias in node.names)
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
    found = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            candidate = ".".join(parts[:i])
            if candidate in known and candidate not in ancestors:
                found.add(candidate)
    return found


def graph() -> dict[str, set[str]]:
    """Return each module's imports of the service's own modules."""
    known = module_names()
    return {name: imported(name, path, known) for name, path in known.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a path that ends where it starts, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_service_has_no_import_cycle():
    cycle = find_cycle(graph())

    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_sees_a_cycle_through_a_function_level_import(tmp_path):
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_counts_relative_function_level_and_type_checking_imports():
    edges = graph()

    # auth/setup.py imports its verifier inside a function; bearer.py under TYPE_CHECKING.
    assert "userservice.auth.verifier" in edges["userservice.auth.setup"]
    assert "userservice.auth.verifier" in edges["userservice.auth.bearer"]
    # `from .. import spec` in auth/spec.py is the web layer's spec module.
    assert "userservice.spec" in edges["userservice.auth.spec"]
    # `from .db import REQUEST_ID` runs the db package's __init__.
    assert "userservice.db" in edges["userservice.hooks"]


def test_only_gunicorn_imports_the_worker():
    importers = [name for name, targets in graph().items() if "userservice.worker" in targets]

    assert importers == []


def test_gunicorn_conf_defines_no_class_and_imports_no_gunicorn_or_gevent():
    tree = ast.parse((ROOT / "gunicorn.conf.py").read_text(encoding="utf-8"))
    classes = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    modules = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    modules += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]

    assert classes == []
    assert [m for m in modules if m.split(".")[0] in {"gunicorn", "gevent"}] == []
