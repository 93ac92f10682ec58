"""The pages complete in Chinese and English (issue 20, item 4): with ?lang=zh a real
browser finds none of a list of English interface strings and finds their Chinese ones,
every link to the server keeps lang=zh, the coverage breadcrumb names the collection (not
a raw {'en': …, 'zh': …}); the language switch keeps the page and its query; English
pages stay English.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from test_pages_offline import Visit, site  # noqa: F401 (fixture)

# (page, English strings that must not show in zh, Chinese strings that must)
ZH_PAGES = [
    (
        "/?f=html",
        [
            "Collections",
            "Home",
            "Contact point",
            "License",
            "platform operator",
            "proprietary: government data sharing",
            "Terms of service",
            "Powered by",
        ],
        ["首页", "数据集", "平台运维单位", "专有：政务数据共享", "时空信息云平台"],
    ),
    ("/collections?f=html", ["Collections", "Home", "Processes"], ["数据集", "河流"]),
    (
        "/collections/wat-rivers?f=html",
        [
            "This document as JSON",
            "Items as GeoJSON",
            "STAC collection",
            "Browse",
            "Queryables for this collection as HTML",
            "Styles of this collection",
        ],
        ["本文档（JSON）", "要素（GeoJSON）", "STAC 数据集", "河流"],
    ),
    (
        "/collections/wat-rivers/items?f=html",
        ["Items in this collection", "Limit", "Warning", "default", "Items"],
        ["本数据集中的要素", "每页数量", "要素"],
    ),
    (
        "/collections/nrp-dem/coverage?f=html",
        ["Coverage", "Bands", "Preview", "This document as CoverageJSON", "Range type", "{'en'"],
        ["覆盖数据", "波段", "数字高程模型"],
    ),
    (
        "/processes?f=html",
        ["Processes", "Planning compliance check", "Zonal statistics"],
        ["国土空间规划符合性审查", "分区统计"],
    ),
    (
        "/processes/planning-compliance?f=html",
        ["Proposal boundary", "As of", "Inputs", "Outputs", "Report", "Overlay a proposal"],
        ["方案范围", "数据日期", "报告", "国土空间规划符合性审查"],
    ),
    ("/openapi?f=html", ["The OpenAPI document of this server"], ["本服务的 OpenAPI 文档"]),
]


def _links(visit: Visit) -> list[str]:
    """Every link to the server on the page but the language switch's and Swagger UI's
    (whose own labels and links are the library's, outside our templates)."""
    return visit.page.eval_on_selector_all(
        "a[href]",
        "as => as.filter(a => !a.closest('.sk-lang-switch') && !a.closest('#swagger-ui'))"
        ".map(a => a.href)",
    )


def _text(visit: Visit) -> str:
    return visit.page.evaluate(
        "(() => { const b = document.body.cloneNode(true);"
        " b.querySelectorAll('#swagger-ui, .sk-lang-switch, script').forEach(e => e.remove());"
        " return b.innerText; })()"
    )


@pytest.mark.parametrize(("path", "english", "chinese"), ZH_PAGES)
def test_chinese_pages_show_no_english_interface(browser, site, path, english, chinese):  # noqa: F811
    visit = Visit(browser, f"{site.url}{path}&lang=zh")
    try:
        text = _text(visit)
        shown = [e for e in english if re.search(rf"(?<![A-Za-z]){re.escape(e)}(?![A-Za-z])", text)]
        assert shown == []
        assert [c for c in chinese if c not in text] == []
        assert visit.page.get_attribute("html", "lang") == "zh-CN"
        here = urlsplit(site.url).netloc
        links = [h for h in _links(visit) if urlsplit(h).netloc == here]
        assert links, "a page with no links to the server"
        assert [h for h in links if parse_qs(urlsplit(h).query).get("lang") != ["zh"]] == []
    finally:
        visit.close()


def test_the_language_switch_keeps_the_page_and_its_query(browser, site):  # noqa: F811
    visit = Visit(browser, f"{site.url}/collections/wat-rivers/items?f=html&limit=2&lang=zh")
    try:
        visit.page.click(".sk-lang-switch a[data-lang=en]")
        visit.page.wait_for_load_state("networkidle")
        query = parse_qs(urlsplit(visit.page.url).query)
        assert urlsplit(visit.page.url).path == "/collections/wat-rivers/items"
        assert query == {"f": ["html"], "limit": ["2"], "lang": ["en"]}
        text = _text(visit)
        assert "Items in this collection" in text and "本数据集中的要素" not in text
        assert visit.page.locator("#items-map .leaflet-overlay-pane path").count() == 2
        links = [h for h in _links(visit) if urlsplit(h).netloc == urlsplit(site.url).netloc]
        assert all(parse_qs(urlsplit(h).query).get("lang") == ["en"] for h in links)
    finally:
        visit.close()


def test_a_link_made_by_a_script_keeps_the_language(browser, site):  # noqa: F811
    """The items map's popup link, made after the page loaded, opens the item in zh."""
    visit = Visit(browser, f"{site.url}/collections/wat-rivers/items?f=html&lang=zh")
    try:
        visit.page.wait_for_selector("#items-map .leaflet-overlay-pane path")
        href = visit.page.evaluate(
            "(() => { let h = null; map.eachLayer(l => { if (!h && l.feature && l.getPopup())"
            " { const d = document.createElement('div'); d.innerHTML = l.getPopup().getContent();"
            " h = d.querySelector('a').href; } }); return h; })()"
        )
        assert parse_qs(urlsplit(href).query)["lang"] == ["zh"]
    finally:
        visit.close()


def test_english_pages_stay_english(browser, site):  # noqa: F811
    visit = Visit(browser, f"{site.url}/collections/wat-rivers?f=html&lang=en")
    try:
        text = _text(visit)
        assert "Collections" in text and "This document as JSON" in text
        assert "数据集" not in text and "本文档" not in text
        assert visit.page.get_attribute("html", "lang") == "en"
    finally:
        visit.close()


def test_the_catalogue_translates_every_string_of_our_templates():
    """Each {% trans %} text and _() literal of the pages as served (server/templates/ and
    pygeoapi's templates with our edits, server/page_templates.py) has a Chinese entry."""
    from pathlib import Path

    import jinja2
    from babel.messages.pofile import read_po
    from shikong.server.page_templates import page_loader

    root = Path(__file__).resolve().parents[1]
    with open(root / "config/locale/zh/LC_MESSAGES/messages.po", "rb") as fh:
        catalogue = {m.id: m.string for m in read_po(fh) if m.id}
    loader = page_loader([root / "server/templates"])
    environment = jinja2.Environment(loader=loader)
    wanted = set()
    for name in loader.list_templates():
        if name.startswith("workbench/") or not name.endswith(".html"):
            continue  # W2's pages, catalogued with their own strings
        text = loader.get_source(environment, name)[0]
        wanted |= set(re.findall(r"\{%-? trans[^%]*%\}(.*?)\{%-? endtrans -?%\}", text, re.S))
        wanted |= set(re.findall(r"_\('([^']*)'\)", text))
    missing = sorted(w for w in wanted if not catalogue.get(w))
    assert missing == []
