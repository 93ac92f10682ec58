"""The workbench in Chinese and English (issue 20, point 4): Playwright driving Debian's
Chromium against ``shikong serve`` on the demo city.

With ``?lang=en`` none of a list of the workbench's Chinese interface strings shows in the
page's rendered text once the map and panels are loaded, a feature clicked, a proposal
checked (the report and its print view), the mine-remediation view opened and the time
slider moved; with ``?lang=zh`` none of a list of English ones does. The browser's own
``Accept-Language`` is set to the other language each time, so ``lang=`` is what decides.
The language switch goes to the other language on the same page with the same query;
every local link keeps ``lang``; the sign-in page is in both; field aliases (Chinese data,
``config/field_aliases.yaml``) show on the Chinese page and the field names on the
English one. The lists are written here, not taken from the catalogue.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

# (importing it skips this module where Chromium or Playwright is missing)
import test_workbench_browser  # noqa: F401
import yaml
from shapely.geometry import Polygon, mapping
from shikong.server.identity import KeyStore

ROOT = Path(__file__).resolve().parent.parent
# a block of the demo city with planning zones under it (as in test_workbench_tools.py)
SQUARE = Polygon([(113.300, 33.790), (113.304, 33.790), (113.304, 33.7935), (113.300, 33.7935)])

# interface strings of the workbench's frame, panels, popups, report, print view and
# mine-remediation view: none may show on the page of the other language
CHINESE_UI = [
    "一张图",
    "工作台",
    "数据目录",
    "分析服务",
    "访问申请",
    "已登录",
    "退出登录",
    "现行版本",
    "起有效的版本",
    "单击要素查看属性",
    "项目红线审查",
    "绘制红线",
    "上传",
    "运行规划符合性审查",
    "实时告警",
    # (not "矿山生态修复", the view's heading: the demo's project names hold it as data)
    "显示植被变化",
    "不动产登记记录",
    "至少需要",
    "已读取",
    "项目用地审查报告",
    "红线来源",
    "高斯-克吕格",
    "审查日期",
    "红线面积",
    "国土空间规划符合性审查",
    "建设用地报批预审",
    "重叠 m²",
    "公顷",
    "亩",
    "结论",
    "需补充耕地",
    "界址检查",
    "界址点",
    "与已批用地重叠",
    "打印报告",
    "审查完成",
    "合规",
    "需复核",
    "各矿山植被变化",
    "受损（公顷）",
    "恢复（公顷）",
    "修复项目",
    "所属矿山",
    "许可证号",
    "修复方式",
    "竣工日期",
    "耕地",
    "农用地",
]
ENGLISH_UI = [
    "One map",
    "Workbench",
    "Data catalogue",
    "Analysis services",
    "Access requests",
    "Signed in",
    "Sign out",
    "Current versions",
    "Versions valid from",
    "Click a feature",
    "Project red line check",
    "Draw the red line",
    "Upload",
    "Run the planning compliance check",
    "Live alerts",
    "Mine remediation",
    "Show the vegetation change",
    "At least 3 corners",
    "Read ",
    "Project land check report",
    "Red line from",
    "Gauss-Krüger",
    "checked on",
    "Red line area",
    "Planning compliance check",
    "Land approval pre-check",
    "Overlap",
    "Hectares",
    "Verdict",
    "Cultivated land",
    "Boundary check",
    "boundary points",
    "approved land",
    "Print the report",
    "Check finished",
    "Compliant",
    "Needs review",
    "Vegetation change per mine",
    "Disturbed (ha)",
    "Recovered (ha)",
    "Remediation projects",
    "Licence number",
    "Remediation method",
    "Completed on",
    "Agricultural land",
]
OTHER = {"zh": "en", "en": "zh"}
BROWSER_LOCALE = {"zh": "zh-CN", "en": "en-US"}


@pytest.fixture(scope="module")
def keys(demo_data):
    return {"nrp": KeyStore(demo_data).create("nrp", "lang-nrp")[0]}


@pytest.fixture(scope="module")
def aliases():
    data = yaml.safe_load((ROOT / "config" / "field_aliases.yaml").read_text(encoding="utf-8"))
    return data["fields"]


class Tab:
    """A browser whose Accept-Language is the other language than ``lang``; its
    request log."""

    def __init__(self, browser, server, lang: str) -> None:
        self.server, self.lang = server, lang
        self.context = browser.new_context(
            viewport={"width": 1400, "height": 900}, locale=BROWSER_LOCALE[OTHER[lang]]
        )
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))

    def sign_in(self, key: str) -> None:
        page = self.page
        page.goto(f"{self.server.url}/signin?next=/workbench&lang={self.lang}")
        page.fill("#sk-key", key)
        page.click("#sk-key-submit")
        page.wait_for_url(f"**/workbench?lang={self.lang}")
        self.ready()

    def ready(self) -> None:
        self.page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        self.idle()

    def idle(self) -> None:
        self.page.evaluate(
            "() => new Promise(r => { const m = window.shikongMap;"
            " if (m.loaded() && m.areTilesLoaded()) r(); else m.once('idle', r); })"
        )

    def local_links(self) -> list[str]:
        """Every link of the page to this server (absolute, as the browser reads them)
        but the language switch's (to the other language: its own test)."""
        links = self.page.eval_on_selector_all(
            "a[href]:not(#sk-lang-switch a)", "as => as.map(a => a.href)"
        )
        return [href for href in links if href.startswith(self.server.url)]

    def close(self) -> None:
        hosts = {u.split("/")[2] for u in self.requests if u.startswith("http")}
        assert hosts <= {self.server.url.split("/")[2]}, hosts
        self.context.close()


def shown(text: str, strings: list[str]) -> list[str]:
    return [s for s in strings if s in text]


def assert_keeps_lang(links: list[str], lang: str) -> None:
    assert links
    for href in links:
        assert parse_qs(urlsplit(href).query).get("lang") == [lang], href


def click_and_draw(tab: Tab) -> list[str]:
    """A feature clicked, then a red line started and finished too early: the status
    lines shown on the way (a later step replaces them)."""
    page, seen = tab.page, []
    # a feature's attributes
    page.evaluate("() => window.shikongMap.jumpTo({center: [113.302, 33.792], zoom: 15})")
    tab.idle()
    box = page.locator("#sk-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#sk-info .sk-feature tr[data-field]", timeout=30_000)
    # drawing: the hint, then too few corners
    page.click("#sk-draw")
    seen.append(page.inner_text("#sk-proposal-status"))
    page.click("#sk-finish")
    seen.append(page.inner_text("#sk-proposal-status"))
    return seen


def check_proposal(tab: Tab, folder: Path) -> list[str]:
    """A proposal uploaded and checked: the status it read, and the print view's text."""
    page, seen = tab.page, []
    path = folder / "proposal.geojson"
    path.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": mapping(SQUARE)}))
    page.set_input_files("#sk-proposal-file", str(path))
    page.wait_for_selector("#sk-run:not([disabled])", timeout=30_000)
    seen.append(page.inner_text("#sk-proposal-status"))
    page.click("#sk-run")
    page.wait_for_selector("#sk-report tr[data-row=proposal-planar] .sk-mu", timeout=120_000)
    page.wait_for_selector("#sk-run:not([disabled])", timeout=120_000)
    page.emulate_media(media="print")
    try:
        assert page.locator("#sk-report").is_visible()
        seen.append(page.inner_text("body"))  # the print view: the report alone
    finally:
        page.emulate_media(media="screen")
    return seen


def open_mines(tab: Tab) -> None:
    page = tab.page
    page.click("#sk-mine-view")
    page.wait_for_selector("#sk-mine-change tr[data-mine]", timeout=120_000)
    page.wait_for_selector("#sk-mine-project-table", timeout=60_000)


def move_the_time_slider(tab: Tab) -> str:
    page = tab.page
    page.eval_on_selector(
        "#sk-time", "s => { s.value = '0'; s.dispatchEvent(new Event('input')); }"
    )
    return page.inner_text("#sk-time-label")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_workbench_in_one_language(browser, server, keys, aliases, lang, tmp_path):
    tab = Tab(browser, server, lang)
    try:
        tab.sign_in(keys["nrp"])
        page = tab.page
        assert page.get_attribute("html", "lang") == ("zh-CN" if lang == "zh" else "en")
        seen = click_and_draw(tab)
        # the clicked features' attributes: aliases (data) on the Chinese page, the
        # field names on the English one
        fields = page.eval_on_selector_all(
            "#sk-info tr[data-field]",
            "rows => rows.map(r => [r.dataset.field, r.querySelector('th').textContent])",
        )
        assert fields
        for field, label in fields:
            alias = aliases.get(field, {}).get("alias")
            if alias is None:
                continue
            assert label == (alias if lang == "zh" else field), (field, label)
        seen += check_proposal(tab, tmp_path)
        open_mines(tab)
        seen.append(move_the_time_slider(tab))
        text = "\n".join([page.inner_text("body"), *seen])
        # what the check and the views wrote is there, in this language
        if lang == "en":
            assert "Project land check report" in text and "Mu" in text
            assert "Vegetation change per mine" in text and "Versions valid from" in text
            assert "Check finished" in text and "At least 3 corners are needed" in text
            assert page.inner_text(".sk-mines-box h2") == "Mine remediation"
            assert shown(text, CHINESE_UI) == []
        else:
            assert "项目用地审查报告" in text and "亩" in text and "公顷" in text
            assert "各矿山植被变化" in text and "起有效的版本" in text
            assert "审查完成" in text and "至少需要 3 个拐点" in text
            assert shown(text, ENGLISH_UI) == []
        assert_keeps_lang(tab.local_links(), lang)
    finally:
        tab.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_switch_goes_to_the_other_language_on_the_same_page(browser, server, keys, lang):
    tab = Tab(browser, server, lang)
    try:
        tab.sign_in(keys["nrp"])
        page = tab.page
        page.goto(f"{server.url}/workbench?layers=tra-roads&lang={lang}")
        tab.ready()
        other = OTHER[lang]
        page.click(f"#sk-lang-switch a[data-lang={other}]")
        page.wait_for_url(f"**/workbench?*lang={other}*")
        tab.ready()
        url = urlsplit(page.url)
        assert url.path == "/workbench"
        assert parse_qs(url.query) == {"layers": ["tra-roads"], "lang": [other]}
        assert page.get_attribute("html", "lang") == ("zh-CN" if other == "zh" else "en")
        run = page.inner_text("#sk-run")
        assert run == (
            "运行规划符合性审查与报批预审"
            if other == "zh"
            else "Run the planning compliance check and the land approval pre-check"
        )
        on = page.evaluate(
            "() => Object.values(window.shikong.layers).filter(l => l.on).map(l => l.meta.id)"
        )
        assert on == ["tra-roads"]
        assert_keeps_lang(tab.local_links(), other)
    finally:
        tab.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_signin_page_in_both_languages(browser, server, keys, lang):
    tab = Tab(browser, server, lang)
    try:
        page = tab.page
        page.goto(f"{server.url}/signin?next=/workbench&lang={lang}")
        text = page.inner_text("body")
        if lang == "en":
            assert page.inner_text("h1") == "Sign in"
            assert "Not signed in (public)" in text and "API key" in text
            assert shown(text, ["登录", "密钥", "未登录", "公开图层", *CHINESE_UI]) == []
        else:
            assert page.inner_text("h1") == "登录"
            assert "未登录（公众）" in text and "API 密钥" in text
            english = ["Sign in", "API key", "Not signed in", "public layers", *ENGLISH_UI]
            assert shown(text, english) == []
        assert_keeps_lang(tab.local_links(), lang)
        # a wrong key: the page again, in its language
        page.fill("#sk-key", "sk_not-a-key")
        page.click("#sk-key-submit")
        error = page.inner_text(".sk-error")
        assert error == (
            "Sign-in failed: unknown API key" if lang == "en" else "登录失败：未知的 API 密钥"
        )
        # the public's workbench says what it lists in this language
        page.goto(f"{server.url}/workbench?lang={lang}")
        tab.ready()
        note = page.inner_text("#sk-anonymous-note")
        assert note.startswith("Not signed in: only public layers" if lang == "en" else "未登录：")
        # signing in from here comes back to the workbench in this language
        page.click(".sk-signin")
        page.fill("#sk-key", keys["nrp"])
        page.click("#sk-key-submit")
        page.wait_for_url(f"**/workbench?lang={lang}")
        tab.ready()
        assert "lang-nrp" in page.inner_text("#sk-who")
        # and signing out goes to the sign-in page in this language
        page.click(".sk-signout button")
        page.wait_for_url(f"**/signin?lang={lang}")
        assert page.inner_text("h1") == ("Sign in" if lang == "en" else "登录")
    finally:
        tab.close()


def test_without_lang_the_page_follows_accept_language_then_chinese(server):
    def title(headers: dict[str, str]) -> str:
        page = httpx.get(f"{server.url}/workbench", headers=headers).text
        return re.search(r'<html lang="([^"]+)"', page).group(1)

    assert title({"accept-language": "en-GB,en;q=0.9"}) == "en"
    assert title({"accept-language": "zh-CN,zh;q=0.9,en;q=0.5"}) == "zh-CN"
    assert title({"accept-language": "fr-FR"}) == "zh-CN"
    assert title({}) == "zh-CN"


def test_the_catalogue_translates_every_string_of_the_workbench_pages():
    """Each {% trans %} text and _() literal of the workbench's templates has exactly one
    Chinese entry (a second entry of the same msgid would shadow the first)."""
    from babel.messages.pofile import read_po
    from jinja2.ext import babel_extract

    po = ROOT / "config" / "locale" / "zh" / "LC_MESSAGES" / "messages.po"
    ids = re.findall(r'^msgid "(.+)"$', po.read_text(encoding="utf-8"), re.M)
    assert sorted({i for i in ids if ids.count(i) > 1}) == []
    with open(po, "rb") as fh:
        catalogue = {m.id: m.string for m in read_po(fh) if m.id}
    wanted = set()
    for name in ("base.html", "signin.html", "workbench.html"):
        with open(ROOT / "server" / "templates" / "workbench" / name, "rb") as fh:
            for _line, _func, message, _comments in babel_extract(
                fh, ("_", "gettext"), [], {"trimmed": "false"}
            ):
                wanted.add(message)
    assert len(wanted) > 100
    assert sorted(w for w in wanted if not catalogue.get(w)) == []
