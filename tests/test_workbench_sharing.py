"""The access requests and usage statistics pages in a real browser (issue 22, points 2
and 4): Playwright driving Debian's Chromium against ``shikong serve`` over a copy of the
demo city (grants made here must not reach other tests' servers).

Truth comes from outside the pages: what the test itself asked and decided (rights,
dates, reasons), the API's own answers fetched here with the same keys (the 400 message,
``GET /stats``), and counts the test keeps of the requests it made (requests, features,
bytes received, refusals). Every page's request log must name no host but the server's.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from browser import CHROMIUM
from conftest import RunningServer, free_port
from shikong.server.identity import KeyStore

ROOT = Path(__file__).resolve().parent.parent
LAYER = "rer-parcels"
FIGURES = ("requests", "features", "bytes", "refusals")
TEMPLATES = ["_sharing.html", "requests.html", "stats.html"]
# English interface strings of the two pages that a Chinese page must not show
ENGLISH = [
    "Access requests",
    "Usage statistics",
    "Resource directory",
    "Requests of my department",
    "Requests for my department",
    "New request",
    "Send the request",
    "Owner department",
    "Rights asked",
    "End date",
    "Purpose",
    "Layer",
    "State",
    "Decision",
    "Requested",
    "Approved",
    "Refused",
    "Granted",
    "Approve",
    "Refuse",
    "Reason",
    "Read",
    "Personal data",
    "Loading",
    "Totals",
    "Per day",
    "Per layer and department",
    "Requests",
    "Features",
    "Bytes",
    "Refusals",
    "All layers",
    "Show",
    "From",
    "Home",
    "Workbench",
    "Sign in",
    "Sign out",
    "Signed in",
]

playwright_api = pytest.importorskip("playwright.sync_api")
if not os.path.exists(CHROMIUM):
    if os.environ.get("SHIKONG_REQUIRE_SERVICES"):
        raise RuntimeError("chromium is not installed and SHIKONG_REQUIRE_SERVICES is set")
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def data(demo_data, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("sharing-pages") / "data"
    shutil.copytree(demo_data, target, ignore=shutil.ignore_patterns("audit", "*.log"))
    return target


@pytest.fixture(scope="module")
def keys(data) -> dict[str, str]:
    store = KeyStore(data)
    made = {
        "hud": store.create("hud", "hud-clerk"),
        "rer_admin": store.create("rer", "rer-head", role="admin"),
        "wat": store.create("wat", "wat-clerk"),
        "auditor": store.create("ema", "inspector", role="auditor"),
    }
    return {name: key for name, (key, _) in made.items()}


@pytest.fixture(scope="module")
def site(data, keys):
    running = RunningServer(data, free_port())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(site, keys):
    """httpx clients of the server, one per key."""
    clients = {
        name: httpx.Client(base_url=site.url, headers={"X-API-Key": key}, timeout=60)
        for name, key in keys.items()
    }
    yield clients
    for client in clients.values():
        client.close()


class Tab:
    """A fresh browser context signed in with one key, and its request log."""

    def __init__(self, browser, site, key: str | None, path: str) -> None:
        self.site = site
        self.context = browser.new_context(viewport={"width": 1300, "height": 900})
        self.page = self.context.new_page()
        self.requests: list = []
        self.page.on("request", lambda r: self.requests.append(r))
        if key is not None:
            self.page.goto(f"{site.url}/signin?next={path.replace('&', '%26')}")
            self.page.fill("#sk-key", key)
            self.page.click("#sk-key-submit")
            self.page.wait_for_url(f"**{path.split('?')[0]}**")
        else:
            self.page.goto(f"{site.url}{path}")
        self.ready()

    def ready(self) -> None:
        self.page.wait_for_selector(".sk-sharing[data-ready=true]", timeout=60_000)

    def goto(self, path: str) -> None:
        self.page.goto(f"{self.site.url}{path}")
        self.ready()

    def hosts(self) -> set[str]:
        return {r.url.split("/")[2] for r in self.requests if r.url.startswith("http")}

    def text(self) -> str:
        return self.page.evaluate(
            "(() => { const b = document.body.cloneNode(true);"
            " b.querySelectorAll('.sk-lang-switch, script').forEach(e => e.remove());"
            " return b.innerText; })()"
        )

    def close(self) -> None:
        assert self.hosts() <= {self.site.url.split("/")[2]}, self.hosts()
        self.context.close()


def ask(tab: Tab, rights: list[str], purpose: str, until: str) -> None:
    """Fill and send the new-request form for LAYER."""
    page = tab.page
    page.select_option("#sk-new-collection", LAYER)
    for box in page.locator("#sk-new input[name=rights]").all():
        box.set_checked(box.get_attribute("value") in rights)
    page.fill("#sk-new-purpose", purpose)
    page.fill("#sk-new-until", until)
    page.click("#sk-new-submit")


def sent_request(tab: Tab) -> int:
    """The id of the request the form just made (the page says it once the API answered)."""
    tab.page.wait_for_selector("#sk-new-done[data-request]")
    rid = int(tab.page.get_attribute("#sk-new-done", "data-request"))
    tab.page.evaluate("document.getElementById('sk-new-done').removeAttribute('data-request')")
    return rid


def mine_row(tab: Tab, rid: int):
    return tab.page.locator(f'#sk-mine tr[data-request="{rid}"]')


def test_request_approve_narrowed_and_refuse_through_the_pages(browser, site, keys, api):
    today = datetime.now(UTC).date()
    asked_until, granted_until = str(today + timedelta(days=60)), str(today + timedelta(days=30))
    path = "/workbench/requests?lang=zh"

    hud = Tab(browser, site, keys["hud"], path)
    try:
        hud.page.wait_for_function(
            "document.getElementById('sk-who').textContent.includes('hud-clerk')"
        )
        assert "住房和城乡建设局" in hud.page.inner_text("#sk-who")
        # restricted: hud cannot read the layer before any grant
        assert api["hud"].get(f"/collections/{LAYER}/items?f=json&limit=1").status_code == 404

        ask(hud, ["read", "personal-data"], "住房保障资格核查", asked_until)
        first = sent_request(hud)
        row = mine_row(hud, first)
        row.locator("[data-state=requested]").wait_for()
        assert "待审批" in row.inner_text()
        # the request as the API holds it is what the test asked for
        held = api["hud"].get(f"/sharing/requests/{first}").json()
        assert (held["collection"], held["rights"], held["until"], held["state"]) == (
            LAYER,
            ["read", "personal-data"],
            asked_until,
            "requested",
        )
        # the write went through the API with the session's CSRF token
        posts = [
            r for r in hud.requests if r.method == "POST" and r.url.endswith("/sharing/requests")
        ]
        csrf = next(c["value"] for c in hud.context.cookies() if c["name"] == "shikong_csrf")
        assert posts and all(r.headers.get("x-csrf-token") == csrf for r in posts)

        # a bad end date: the API's 400 message, beside the end date field
        ask(hud, ["read"], "住房保障资格核查", "2020-01-01")
        slot = hud.page.locator('#sk-new [data-error-for="until"]')
        slot.wait_for(state="visible")
        body = {"collection": LAYER, "rights": ["read"], "purpose": "x", "until": "2020-01-01"}
        refused = api["hud"].post("/sharing/requests", json=body)
        assert refused.status_code == 400
        assert refused.json()["description"] in slot.inner_text()
        assert "2020-01-01" in slot.inner_text()

        # a second request, to be refused
        ask(hud, ["write"], "更新房屋信息", asked_until)
        second = sent_request(hud)
        mine_row(hud, second).locator("[data-state=requested]").wait_for()
    finally:
        hud.close()

    rer = Tab(browser, site, keys["rer_admin"], path)
    try:
        item = rer.page.locator(f'.sk-incoming-item[data-request="{first}"]')
        form = item.locator("form.sk-decide")
        form.locator("input[value=personal-data]").uncheck()
        form.locator("input[name=until]").fill(granted_until)
        form.locator(".sk-approve").click()
        rer.page.locator(
            f'.sk-incoming-item[data-request="{first}"][data-state=approved]'
        ).wait_for()

        other = rer.page.locator(f'.sk-incoming-item[data-request="{second}"] form.sk-decide')
        other.locator(".sk-refuse").click()  # no reason: the API's 400 beside the reason
        missing = other.locator('[data-error-for="reason"]')
        missing.wait_for(state="visible")
        assert "reason" in missing.inner_text()
        other.locator("input[name=reason]").fill("用途不明确")
        other.locator(".sk-refuse").click()
        rer.page.locator(
            f'.sk-incoming-item[data-request="{second}"][data-state=refused]'
        ).wait_for()
    finally:
        rer.close()

    hud = Tab(browser, site, keys["hud"], path)
    try:
        row = mine_row(hud, first)
        row.locator("[data-state=approved]").wait_for()
        assert row.locator(".sk-granted-rights").get_attribute("data-rights") == "read"
        assert row.locator(".sk-granted-until").get_attribute("data-until") == granted_until
        text = row.inner_text()
        assert "已批准" in text and "读取" in text and granted_until in text and "已缩减" in text
        assert "个人信息" not in row.locator(".sk-decision").inner_text()
        refused_row = mine_row(hud, second)
        assert refused_row.locator("[data-state=refused]").count() == 1
        assert "用途不明确" in refused_row.locator(".sk-reason").inner_text()
    finally:
        hud.close()
    # the grant acts at once: hud reads the layer
    assert api["hud"].get(f"/collections/{LAYER}/items?f=json&limit=1").status_code == 200
    decided = api["hud"].get(f"/sharing/requests/{first}").json()
    assert (decided["granted_rights"], decided["granted_until"]) == (["read"], granted_until)


def _stats_page_figures(tab: Tab) -> tuple[dict, dict, dict]:
    """(totals, per-day bars, per layer × department rows) as the page shows them."""
    page = tab.page
    totals = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#sk-totals dd')]"
        ".map(d => [d.dataset.figure, Number(d.dataset.value)]))"
    )
    bars = page.evaluate(
        "[...document.querySelectorAll('#sk-chart rect.sk-bar')]"
        ".map(r => [r.dataset.figure, r.dataset.day, Number(r.dataset.value)])"
    )
    rows = page.evaluate(
        "[...document.querySelectorAll('#sk-by-layer tbody tr')].map(tr => [tr.dataset.collection,"
        " tr.dataset.department, Object.fromEntries([...tr.querySelectorAll('td[data-figure]')]"
        ".map(td => [td.dataset.figure, Number(td.dataset.value)]))])"
    )
    per_day = {(figure, day): value for figure, day, value in bars}
    return totals, per_day, {(c, d): v for c, d, v in rows}


def test_the_stats_page_shows_what_stats_counts(browser, site, keys, api):
    since = _now()
    expected: dict[tuple[str, str], Counter] = {}

    def note(department: str, reply: httpx.Response, refused: bool = False) -> None:
        row = expected.setdefault((LAYER, department), Counter(dict.fromkeys(FIGURES, 0)))
        row["requests"] += 1
        row["bytes"] += reply.num_bytes_downloaded
        row["refusals"] += int(refused)
        if reply.status_code == 200 and "features" in reply.json():
            row["features"] += len(reply.json()["features"])

    until = str(datetime.now(UTC).date() + timedelta(days=10))
    asked = api["hud"].post(
        "/sharing/requests",
        json={"collection": LAYER, "rights": ["read"], "purpose": "统计测试", "until": until},
    )
    assert asked.status_code == 201, asked.text
    note("hud", asked)
    decided = api["rer_admin"].post(
        f"/sharing/requests/{asked.json()['id']}/decision", json={"decision": "approve"}
    )
    assert decided.status_code == 200, decided.text
    note("rer", decided)
    for limit in (3, 2):
        read = api["hud"].get(f"/collections/{LAYER}/items", params={"f": "json", "limit": limit})
        assert read.status_code == 200 and len(read.json()["features"]) == limit
        note("hud", read)
    hidden = api["wat"].get(f"/collections/{LAYER}/items", params={"f": "json", "limit": 2})
    assert hidden.status_code == 404  # not granted to wat: as if absent, a refusal
    note("wat", hidden, refused=True)
    # a bad end date names no layer that exists: not in the layer's figures
    assert api["hud"].post("/sharing/requests", json={"until": "x"}).status_code == 400

    stamp = since.replace(":", "%3A")
    tab = Tab(
        browser, site, keys["auditor"], f"/workbench/stats?since={stamp}&collection={LAYER}&lang=en"
    )
    try:
        totals, per_day, rows = _stats_page_figures(tab)
        assert tab.page.input_value("#sk-collection") == LAYER
        assert tab.page.input_value("#sk-since") == since
        answer = api["auditor"].get("/stats", params={"since": since, "collection": LAYER}).json()
        want = {k: dict(v) for k, v in expected.items()}
        # the page against /stats
        assert totals == answer["totals"]
        json_rows: dict[tuple, Counter] = {}
        json_days: Counter = Counter()
        for r in answer["rows"]:
            json_rows.setdefault((r["collection"], r["department"]), Counter()).update(
                {f: r[f] for f in FIGURES}
            )
            json_days.update({(f, r["day"]): r[f] for f in FIGURES})
        assert rows == {k: dict(v) for k, v in json_rows.items()}
        assert per_day == dict(json_days)
        # and against the requests this test made
        assert rows == want
        assert totals == {f: sum(v[f] for v in want.values()) for f in FIGURES}
        assert {f: sum(v for (g, _), v in per_day.items() if g == f) for f in FIGURES} == totals
        assert tab.page.locator("#sk-chart svg rect.sk-bar").count() == 4 * len(
            {d for _, d in per_day}
        )
    finally:
        tab.close()

    # an admin: the figures of its own department's layers, as /stats answers it
    tab = Tab(browser, site, keys["rer_admin"], f"/workbench/stats?since={stamp}&lang=en")
    try:
        totals, _, rows = _stats_page_figures(tab)
        answer = api["rer_admin"].get("/stats", params={"since": since}).json()
        assert totals == answer["totals"] and {c for c, _ in rows} == {LAYER}
        assert rows == want
        offered = tab.page.eval_on_selector_all(
            "#sk-collection option", "os => os.map(o => o.value)"
        )
        assert offered[0] == "" and all(o.startswith("rer-") for o in offered[1:])
    finally:
        tab.close()

    # a bad since: the API's 400 message beside the field
    tab = Tab(browser, site, keys["auditor"], "/workbench/stats?since=yesterday&lang=en")
    try:
        slot = tab.page.locator('#sk-filters [data-error-for="since"]')
        slot.wait_for(state="visible")
        bad = api["auditor"].get("/stats", params={"since": "yesterday"})
        assert bad.status_code == 400 and bad.json()["description"] in slot.inner_text()
    finally:
        tab.close()


def test_a_plain_user_gets_the_404_of_stats(browser, site, keys, api):
    assert api["hud"].get("/stats").status_code == 404
    assert api["hud"].get("/workbench/stats").status_code == 404
    assert httpx.get(f"{site.url}/workbench/stats").status_code == 404  # the public too
    tab = Tab(browser, site, keys["hud"], "/workbench/requests?lang=zh")
    try:
        reply = tab.page.goto(f"{site.url}/workbench/stats?lang=zh")
        assert reply.status == 404
        assert tab.page.locator("#sk-stats").count() == 0
        # the workbench's navigation offers the stats page to auditors and admins only
        tab.page.goto(f"{site.url}/signin")
        assert tab.page.locator("#sk-nav-requests").count() == 1
        assert tab.page.locator("#sk-nav-stats").count() == 0
    finally:
        tab.close()
    tab = Tab(browser, site, keys["auditor"], "/workbench/stats?lang=zh")
    try:
        tab.page.goto(f"{site.url}/signin")
        assert tab.page.locator("#sk-nav-stats").count() == 1
    finally:
        tab.close()


@pytest.mark.parametrize(
    ("who", "path", "chinese"),
    [
        (
            "hud",
            "/workbench/requests?lang=zh",
            ["访问申请", "本部门的申请", "新建申请", "提交申请"],
        ),
        ("rer_admin", "/workbench/requests?lang=zh", ["对本部门图层的申请", "已登录"]),
        (
            "auditor",
            "/workbench/stats?lang=zh",
            ["服务统计", "按日统计", "按图层和部门统计", "请求数"],
        ),
        (None, "/workbench/requests?lang=zh", ["请以部门身份登录"]),
    ],
)
def test_chinese_pages_show_no_english_interface(browser, site, keys, who, path, chinese):
    tab = Tab(browser, site, keys[who] if who else None, path)
    try:
        tab.page.wait_for_function("document.getElementById('sk-who').textContent.length > 0")
        text = tab.text()
        shown = [e for e in ENGLISH if re.search(rf"(?<![A-Za-z]){re.escape(e)}(?![A-Za-z])", text)]
        assert shown == []
        assert [c for c in chinese if c not in text] == []
        assert tab.page.get_attribute("html", "lang") == "zh-CN"
        here = urlsplit(site.url).netloc
        links = tab.page.eval_on_selector_all(
            "a[href]", "as => as.filter(a => !a.closest('.sk-lang-switch')).map(a => a.href)"
        )
        local = [h for h in links if urlsplit(h).netloc == here]
        assert local and [h for h in local if "lang=zh" not in h] == []
    finally:
        tab.close()


def test_the_english_page_stays_english(browser, site, keys):
    tab = Tab(browser, site, keys["hud"], "/workbench/requests?lang=en")
    try:
        text = tab.text()
        assert "Requests of my department" in text and "New request" in text
        assert "本部门的申请" not in text and "新建申请" not in text
    finally:
        tab.close()


def test_the_catalogue_translates_every_string_of_the_pages():
    """Each {% trans %} text and _() literal of the two pages has a Chinese entry."""
    from babel.messages.pofile import read_po

    with open(ROOT / "config/locale/zh/LC_MESSAGES/messages.po", "rb") as fh:
        catalogue = {m.id: m.string for m in read_po(fh) if m.id}
    wanted = set()
    for name in TEMPLATES:
        text = (ROOT / "server/templates/workbench" / name).read_text(encoding="utf-8")
        wanted |= set(re.findall(r"\{%-? trans[^%]*%\}(.*?)\{%-? endtrans -?%\}", text, re.S))
        wanted |= set(re.findall(r"_\('([^']*)'\)", text))
    assert len(wanted) > 50
    assert sorted(w for w in wanted if not catalogue.get(w)) == []
