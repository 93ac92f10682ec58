"""The three floors import downward only: server → catalog → spatial (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {"spatial": 0, "catalog": 1, "demo": 1, "server": 2}


def imported_floors(path: Path) -> set[tuple[str, int]]:
    """(module named, its floor) for every shikong import of a source file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "shikong" and len(parts) > 1 and parts[1] in FLOORS:
                found.add((name, FLOORS[parts[1]]))
    return found


def test_no_module_imports_a_floor_above_its_own():
    upward = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder, level in FLOORS.items()
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name, floor in imported_floors(path)
        if floor > level
    ]
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from shikong.server.app import create_app\nimport shikong.catalog.view\n")
    assert {floor for _, floor in imported_floors(bad)} == {1, 2}
