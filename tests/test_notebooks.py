"""The example notebooks run top to bottom, as a user would run them, and what is
committed of them says nothing about the machine that ran them."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
# a path of the machine that ran it: POSIX homes and scratch folders, macOS, Windows
ABSOLUTE = re.compile(
    r"(?<![\w.~])(/(tmp|work|home|root|Users|private|var/folders|mnt|opt)/|[A-Za-z]:\\\\?Users)"
)


def outputs_text(nb) -> list[str]:
    """Every text a notebook's code cells printed or displayed."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else ():
            out.append("".join(o.get("text", "")))
            out += ["".join(v) for k, v in o.get("data", {}).items() if k.startswith("text/")]
            out += o.get("traceback", [])
    return out


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(notebook, tmp_path, monkeypatch):
    from shikong.spatial.fonts import cjk_font

    monkeypatch.setenv("SHIKONG_DATA", str(tmp_path / "data"))  # build its own demo city
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}
    )
    client.execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    assert os.environ["SHIKONG_DATA"].startswith(str(tmp_path))
    if cjk_font() is None and not os.environ.get("SHIKONG_REQUIRE_SERVICES"):
        return  # no CJK font here: the notebooks warn, the glyph check needs one
    boxes = [t for t in outputs_text(nb) if "missing from font" in t or "CJKFontMissing" in t]
    assert not boxes, boxes[0][:300]  # Chinese labels drew as glyphs, not empty boxes


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_holds_no_absolute_path(notebook):
    nb = nbformat.read(notebook, as_version=4)
    texts = [c.source for c in nb.cells] + outputs_text(nb) + [str(nb.metadata)]
    found = [m.group(0) for t in texts for m in ABSOLUTE.finditer(t)]
    assert not found, f"{notebook.name} holds {found[:3]}: re-run it from a relative data path"
    warnings = [t for t in outputs_text(nb) if "Warning" in t]
    assert not warnings, warnings[0][:300]  # committed runs are clean


def test_the_absolute_path_check_sees_what_it_must():
    for path in ("/tmp/shikong-demo-3jn6588q/data", "x /work/main/.venv/lib", "C:\\Users\\li"):
        assert ABSOLUTE.search(path), path
    for relative in ("../data", "data/sources/nrp", "EPSG:4490 /1024", "https://x.org/tmp/"):
        assert not ABSOLUTE.search(relative), relative
