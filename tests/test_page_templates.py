"""Pages from pygeoapi's own templates, edited as they load (server/page_templates.py):
every edit's anchor is found in the installed pygeoapi as often as declared, every page
it serves loads with nothing from a CDN or OpenStreetMap left, a changed pygeoapi page
fails loudly naming the template and the anchor, and no file of server/templates/ is a
copy of a pygeoapi template (at most 30 % of its lines shared).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import jinja2
import pygeoapi
import pytest
from babel import Locale
from pygeoapi import util as pygeoapi_util
from shikong.server import page_templates, pygeoapi_fixes
from shikong.server.page_templates import (
    EDITS,
    NOT_SERVED,
    RULES,
    PatchedTemplateLoader,
    TemplatePatchError,
    page_loader,
)

REPO = Path(__file__).resolve().parents[1]
OURS = REPO / "server" / "templates"
THEIRS = Path(pygeoapi.__file__).resolve().parent / "templates"  # the installed pygeoapi
OUR_NAMES = {p.relative_to(OURS).as_posix() for p in OURS.rglob("*.html")}
SERVED = sorted(
    p.relative_to(THEIRS).as_posix()
    for p in THEIRS.rglob("*.html")
    if p.relative_to(THEIRS).as_posix() not in OUR_NAMES | NOT_SERVED
)
EXTERNAL = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(https?://[^\"]+)\"")


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    return jinja2.Environment(loader=loader, extensions=["jinja2.ext.i18n"])


@pytest.mark.parametrize("template", SERVED)
def test_every_served_pygeoapi_page_loads_with_nothing_from_outside(template):
    loader = page_loader([OURS])
    source, filename, _ = loader.get_source(_environment(loader), template)
    assert Path(filename) == THEIRS / template  # pygeoapi's file, not a copy of ours
    _environment(loader).parse(source)  # still a valid template after the edits
    assert EXTERNAL.findall(source) == []
    for name in ("unpkg.com", "jsdelivr", "cdnjs", "openstreetmap", "googleapis"):
        assert name not in source
    assert "config['server']['map']['url']" not in source
    if template.endswith(".html") and "_base.html" in source:
        assert '{% import "_shikong.html" as sk with context %}' in source


@pytest.mark.parametrize(
    ("template", "edit"), [(t, e) for t, edits in EDITS.items() for e in edits]
)
def test_every_edit_anchor_is_in_the_installed_pygeoapi(template, edit):
    assert template in SERVED, f"{template}: an edit of a page pygeoapi does not serve here"
    text = (THEIRS / template).read_text(encoding="utf-8")
    found = len(re.findall(edit.find, text, re.S)) if edit.regex else text.count(edit.find)
    assert found >= 1 and (edit.count is None or found == edit.count), (template, edit.find)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_every_rule_still_edits_some_pygeoapi_page(rule):
    texts = [(THEIRS / t).read_text(encoding="utf-8") for t in SERVED]
    assert any(rule.find.search(t) for t in texts), rule.name


def _their_page_with(tmp_path: Path, template: str, old: str, new: str) -> Path:
    folder = tmp_path / "pygeoapi-templates"
    shutil.copytree(THEIRS, folder)
    page = folder / template
    text = page.read_text(encoding="utf-8")
    assert old in text
    page.write_text(text.replace(old, new), encoding="utf-8")
    return folder


def test_a_changed_pygeoapi_page_fails_naming_template_and_anchor(tmp_path):
    anchor = "query_string.join('&')"
    folder = _their_page_with(tmp_path, "collections/items/index.html", anchor, "qs.join('&')")
    loader = PatchedTemplateLoader(folder)
    with pytest.raises(TemplatePatchError) as raised:
        loader.get_source(_environment(loader), "collections/items/index.html")
    assert raised.value.template == "collections/items/index.html"
    assert raised.value.anchor == anchor
    assert "collections/items/index.html" in str(raised.value) and anchor in str(raised.value)


def test_a_new_cdn_url_fails_instead_of_being_served(tmp_path):
    url = "https://unpkg.com/some-new-library@1.0/lib.js"
    folder = _their_page_with(
        tmp_path,
        "conformance.html",
        "{% block body %}",
        f'{{% block body %}}<script src="{url}"></script>',
    )
    loader = PatchedTemplateLoader(folder)
    with pytest.raises(TemplatePatchError, match=re.escape(url)):
        loader.get_source(_environment(loader), "conformance.html")


def test_a_basemap_pygeoapi_draws_differently_fails(tmp_path):
    """OpenStreetMap's URL expression left after the edits is refused, not served."""
    folder = _their_page_with(
        tmp_path, "stac/item.html", "map.addLayer(new L.TileLayer(", "map.addLayer(L.tileLayer("
    )
    loader = PatchedTemplateLoader(folder)
    with pytest.raises(TemplatePatchError, match=r"map'\]\['url'\]"):
        loader.get_source(_environment(loader), "stac/item.html")


def test_pages_not_served_and_paths_outside_are_not_found():
    loader = page_loader([OURS])
    for name in [*NOT_SERVED, "../util.py", "nope.html"]:
        with pytest.raises(jinja2.TemplateNotFound):
            loader.get_source(_environment(loader), name)


def test_the_server_renders_through_the_patched_loader():
    pygeoapi_fixes.apply()
    assert pygeoapi_util.FileSystemLoader is page_templates.page_loader
    html = pygeoapi_util.render_j2_template(
        {
            "server": {"url": "http://x.test", "encoding": "utf-8", "map": {}},
            "metadata": {
                "identification": {"title": "T", "description": "D", "keywords": []},
                "contact": {},
            },
        },
        {"path": str(OURS)},
        "conformance.html",
        {"conformsTo": ["http://x.test/conf/core"], "links": []},
        Locale.parse("zh"),
    )
    assert 'href="./conformance?lang=zh"' in html  # pygeoapi's crumb, kept in zh
    assert '<html lang="zh-CN"' in html  # our frame


def _meaningful(lines: list[str]) -> list[str]:
    """Lines that say something: not blank, not only Jinja statements or bare tags."""
    out = []
    for line in lines:
        rest = re.sub(r"\{%-?.*?-?%\}|\{#.*?#\}|</?[a-z0-9]+>", "", line.strip())
        if re.search(r"\w", rest):
            out.append(line.strip())
    return out


@pytest.mark.parametrize("template", sorted(OUR_NAMES))
def test_no_template_of_ours_is_a_copy_of_pygeoapis(template):
    if template.startswith("workbench/") or not (THEIRS / template).is_file():
        return  # no pygeoapi page of that name
    ours = _meaningful((OURS / template).read_text(encoding="utf-8").splitlines())
    theirs = set(_meaningful((THEIRS / template).read_text(encoding="utf-8").splitlines()))
    shared = [line for line in ours if line in theirs]
    assert len(shared) <= 0.30 * len(ours), (template, shared)
