"""The package's layering, read from the source: what may import what, and module size.

Imports inside functions count (they run too); those under ``if TYPE_CHECKING:`` don't.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "safedocker"
# The bottom layers, lowest first: each may import only itself and what is below it.
BOTTOM = ("safedocker.errors", "safedocker._internal", "safedocker.reference",
          "safedocker._docker")
MAX_LINES = 900


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            nodes: list[ast.AST] = list(node.orelse)
        else:
            nodes = [node]
        for child in nodes:
            if isinstance(child, ast.Import):
                found |= {alias.name for alias in child.names}
            elif isinstance(child, ast.ImportFrom) and child.module:
                found |= {child.module, *(f"{child.module}.{a.name}" for a in child.names)}
            found |= _imports(child)
    return found


SOURCES = {_name(path): path.read_text() for path in sorted(PACKAGE.rglob("*.py"))}
IMPORTS = {name: _imports(ast.parse(text)) for name, text in SOURCES.items()}
GRAPH = {name: {i for i in imports if i in SOURCES and i != name}
         for name, imports in IMPORTS.items()}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_no_import_cycles() -> None:
    try:
        tuple(TopologicalSorter(GRAPH).static_order())
    except CycleError as e:
        raise AssertionError(f"import cycle: {' imports '.join(reversed(e.args[1]))}") from None


def test_nothing_imports_the_entry_point_and_only_entries_import_cli() -> None:
    shim_users = {n for n, deps in GRAPH.items() if "safedocker.shim" in deps}
    assert shim_users <= {"safedocker.__main__"}  # python -m safedocker is the shim
    importers = {n for n, deps in GRAPH.items() if "safedocker.cli" in deps}
    assert importers <= {"safedocker.shim", "safedocker.plugin"}


def test_the_bottom_layers_import_nothing_above_them() -> None:
    for level, layer in enumerate(BOTTOM):
        allowed = BOTTOM[: level + 1]
        for name, deps in GRAPH.items():
            if _within(name, (layer,)):
                above = sorted(d for d in deps if not _within(d, allowed) and d != "safedocker")
                assert above == [], f"{name} imports {above}"


def test_no_module_is_over_900_lines() -> None:
    assert {n: t.count("\n") for n, t in SOURCES.items() if t.count("\n") > MAX_LINES} == {}


def test_only_cli_imports_typer() -> None:
    users = {n for n, imports in IMPORTS.items() if any(_within(i, ("typer",)) for i in imports)}
    assert users == {"safedocker.cli"}
