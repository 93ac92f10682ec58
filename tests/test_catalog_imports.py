"""Inside ``catalog/`` imports form no cycle, and only the SQLite store touches SQLite.

Every import counts: at the top, inside functions and under ``TYPE_CHECKING`` (a cycle
hidden there is still two modules that cannot be understood apart). ARCHITECTURE.md
draws the order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CATALOG = Path(__file__).resolve().parents[1] / "catalog"


def module_name(path: Path) -> str:
    parts = path.relative_to(CATALOG).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__") or "__init__"


def catalog_imports(path: Path, name: str | None = None) -> set[str]:
    """The catalog modules a source file imports (relative or absolute, any depth);
    ``name`` is the file's module name inside catalog/ (from its path by default)."""
    name = name or module_name(path)
    package = name.rsplit(".", 1)[0] if "." in name else ""
    if path.name == "__init__.py":
        package = name if name != "__init__" else ""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                stem = ".".join([*base, node.module] if node.module else base)
                candidates = [f"{stem}.{a.name}" if stem else a.name for a in node.names]
                if not MODULES & set(candidates):  # names from a module, not submodules
                    candidates.append(stem)
            elif node.module and node.module.startswith("shikong.catalog"):
                stem = node.module.removeprefix("shikong.catalog").lstrip(".")
                candidates = [stem, *(f"{stem}.{a.name}" if stem else a.name for a in node.names)]
            else:
                continue
        elif isinstance(node, ast.Import):
            candidates = [
                a.name.removeprefix("shikong.catalog").lstrip(".")
                for a in node.names
                if a.name.startswith("shikong.catalog.")
            ]
        else:
            continue
        found |= {c for c in candidates if c and c in MODULES}
    found.discard(name)
    return found


MODULES = {module_name(p) for p in CATALOG.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): catalog_imports(p) for p in CATALOG.rglob("*.py")}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path of module names, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_inside_catalog():
    graph = import_graph()
    graph.pop("__init__", None)  # the package's re-exports sit above everything
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_the_walk_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_walk_sees_type_checking_and_function_imports(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .catalog import Catalog\n"
        "def f():\n    from . import assets\n"
    )
    assert catalog_imports(source, "view") >= {"catalog", "assets"}


SQLITE_HOMES = {
    "index",  # the catalog store's tables and queries
    "sqlite_store",  # the catalog store
    "storage",  # connection pool and transactions shared by both SQLite stores
    # the observation store (its own SQLite files) and the alert rules run inside it
    "alerts",
    "observations",
    "observation_files",
    "observation_writes",
    "observation_compaction",
    "observation_queries",
}


@pytest.mark.parametrize("path", sorted(CATALOG.rglob("*.py")), ids=module_name)
def test_only_the_stores_touch_sqlite(path):
    if module_name(path) in SQLITE_HOMES:
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {
        a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for a in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "sqlite3" not in names
    assert not {"index", "sqlite_store"} & catalog_imports(path) or module_name(path) in (
        "catalog",  # the facade opens the SQLite store of a data directory
    )
