"""The pages work on an intranet with no internet (issue 20, item 1): a real browser
(Playwright driving Debian's Chromium) loads them from a real server and every request
they make goes to that server; no script or style answers 404; the items map shows the
items over the platform's own basemap, or says there is no basemap; Swagger UI renders;
the coverage page shows a preview image instead of embedding the CoverageJSON.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def serving(data: Path, basemap: str) -> Iterator:
    """`shikong serve` with this SHIKONG_BASEMAP (the subprocess takes the environment)."""
    from conftest import RunningServer, free_port

    before = os.environ.get("SHIKONG_BASEMAP")
    os.environ["SHIKONG_BASEMAP"] = basemap
    try:
        running = RunningServer(data, free_port())
    finally:
        if before is None:
            os.environ.pop("SHIKONG_BASEMAP")
        else:
            os.environ["SHIKONG_BASEMAP"] = before
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def site(server):
    """The demo city served with the platform's own basemap: the session's server, whose
    SHIKONG_BASEMAP is unset (the platform's is the default)."""
    return server


class Visit:
    """One page load: every request the page made, and every failed answer."""

    def __init__(self, browser, url: str, wait_for: str | None = None) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.requests: list[str] = []
        self.failures: list[tuple[int, str, str]] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on(
            "response",
            lambda r: (
                self.failures.append((r.status, r.request.resource_type, r.url))
                if r.status >= 400
                else None
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.response = self.page.goto(url, wait_until="networkidle")
        if wait_for:
            self.page.wait_for_selector(wait_for, timeout=20_000)

    def hosts(self) -> set[str]:
        return {
            urlsplit(u).netloc for u in self.requests if urlsplit(u).scheme in ("http", "https")
        }

    def close(self) -> None:
        self.page.close()


PAGES = [
    ("/?f=html", None),
    ("/collections?f=html", None),
    ("/collections/wat-rivers?f=html", "#collection-map .leaflet-overlay-pane path"),
    ("/collections/wat-rivers/items?f=html", "#items-map .leaflet-overlay-pane path"),
    ("/collections/wat-rivers/items/1?f=html", None),
    ("/collections/nrp-dem/coverage?f=html", "#coverage-preview"),
    ("/collections/wat-rivers/queryables?f=html", None),
    ("/conformance?f=html", None),
    ("/processes?f=html", None),
    ("/processes/planning-compliance?f=html", None),
    ("/openapi?f=html", "#swagger-ui .info .title"),
    ("/openapi?f=html&ui=redoc", "#swagger-ui .info .title"),
]


@pytest.mark.parametrize(("path", "wait_for"), PAGES)
def test_every_request_of_a_page_goes_to_the_server(browser, site, path, wait_for):
    visit = Visit(browser, site.url + path, wait_for)
    try:
        assert visit.response.status == 200
        assert visit.hosts() == {urlsplit(site.url).netloc}, visit.requests
        broken = [f for f in visit.failures if f[1] in ("script", "stylesheet", "image", "font")]
        assert broken == []
        assert visit.errors == []
        loaded = {urlsplit(u).path for u in visit.requests}
        assert "/static/vendor/bootstrap-5.3.9/bootstrap.min.css" in loaded
        styled = visit.page.evaluate(
            "getComputedStyle(document.querySelector('.container')).maxWidth"
        )
        assert styled.endswith("px"), "Bootstrap's container has no max-width: unstyled page"
    finally:
        visit.close()


def test_the_items_map_draws_the_platform_basemap_and_the_items(browser, site):
    visit = Visit(browser, site.url + "/collections/wat-rivers/items?f=html")
    try:
        # the 4 demo rivers as Leaflet paths, over MapLibre's canvas of the platform's tiles
        visit.page.wait_for_selector("#items-map .leaflet-overlay-pane path")
        assert visit.page.locator("#items-map .leaflet-overlay-pane path").count() == 4
        assert visit.page.locator("#items-map canvas.maplibregl-canvas").count() == 1
        visit.page.wait_for_load_state("networkidle")
        paths = [urlsplit(u).path for u in visit.requests]
        assert "/styles/default" in paths
        assert any(
            re.fullmatch(r"/collections/[\w-]+/tiles/WebMercatorQuad/\d+/\d+/\d+", p) for p in paths
        )
        assert visit.page.locator(".sk-basemap-note").count() == 0
    finally:
        visit.close()


def test_without_a_basemap_the_map_says_so(browser, demo_data):
    with serving(demo_data, "none") as bare:
        for lang, note in (("zh", "无底图"), ("en", "No basemap configured")):
            visit = Visit(browser, f"{bare.url}/collections/wat-rivers/items?f=html&lang={lang}")
            try:
                visit.page.wait_for_selector("#items-map .leaflet-overlay-pane path")
                shown = visit.page.locator("#items-map .sk-basemap-note")
                assert shown.is_visible()
                assert note in shown.inner_text()
                assert visit.hosts() == {urlsplit(bare.url).netloc}
            finally:
                visit.close()


def test_the_coverage_page_shows_a_preview_not_the_coverage(browser, site):
    visit = Visit(browser, site.url + "/collections/nrp-dem/coverage?f=html", "#coverage-preview")
    try:
        body = visit.response.body()
        assert len(body) < 100_000  # pygeoapi's page embedded 15 MB of CoverageJSON
        # the preview is the Maps API's PNG, decoded by the browser at its real size
        width = visit.page.evaluate(
            "document.getElementById('coverage-preview').complete"
            " && document.getElementById('coverage-preview').naturalWidth"
        )
        assert width == 800
        links = visit.page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
        assert any("/collections/nrp-dem/coverage?f=json" in h for h in links)
        assert any("/collections/nrp-dem/coverage?f=GTiff" in h for h in links)
        # the DEM's band as rasterio reads it, independently of the page's code
        import rasterio
        from shikong.catalog import Catalog

        layer = Catalog.open(site.data).layer("nrp-dem")
        with rasterio.open(layer.current.asset_path) as src:
            band = src.descriptions[0] or "b1"
            dtype = src.dtypes[0]
        text = visit.page.inner_text("#coverage")
        assert band in text and dtype in text
    finally:
        visit.close()


def test_static_files_answer_and_a_missing_one_is_a_json_404(site):
    import httpx

    css = httpx.get(f"{site.url}/static/css/default.css")  # pygeoapi's, named by its pages
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    logo = httpx.get(f"{site.url}/static/img/logo.svg")
    assert logo.status_code == 200 and logo.content.startswith(b"<svg")
    favicon = httpx.get(f"{site.url}/static/img/favicon.ico")
    assert favicon.status_code == 200
    missing = httpx.get(f"{site.url}/static/nothing.js")
    assert missing.status_code == 404 and missing.json()["code"] == "NotFound"
    escape = httpx.get(f"{site.url}/static/..%2F..%2Fapp.py")
    assert escape.status_code == 404


def test_no_public_tile_server_or_cdn_is_named_anywhere():
    """No OpenStreetMap, no CDN in what the server ships (templates, scripts, config)."""
    pattern = re.compile(r"openstreetmap|unpkg\.com|jsdelivr|cdnjs|googleapis", re.I)
    found = []
    for folder in ("server", "config"):
        for path in (REPO / folder).rglob("*"):
            if "vendor" in path.parts or not path.is_file():
                continue
            shipped = path.suffix in (".py", ".html", ".js", ".css", ".yaml", ".json", ".po")
            if shipped and pattern.search(path.read_text(errors="ignore")):
                found.append(str(path.relative_to(REPO)))
    assert found == []


def test_the_basemap_setting():
    from shikong.server.workbench.basemap import basemap_config
    from shikong.spatial.errors import InputError

    assert basemap_config({})["kind"] == "platform"
    assert basemap_config({"SHIKONG_BASEMAP": "none"})["kind"] == "none"
    tianditu = (
        "http://t{s}.tianditu.gov.cn/vec_w/wmts?TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=KEY"
    )
    got = basemap_config({"SHIKONG_BASEMAP": tianditu, "SHIKONG_BASEMAP_SUBDOMAINS": "01234567"})
    assert got == {"kind": "url", "url": tianditu, "attribution": "", "subdomains": "01234567"}
    with pytest.raises(InputError, match="SHIKONG_BASEMAP"):
        basemap_config({"SHIKONG_BASEMAP": "osm"})


def test_the_vendored_libraries_stay_small():
    """JS and CSS under ~2 MB gzipped, each library with its licence."""
    import gzip

    vendor = REPO / "server" / "static" / "vendor"
    total = sum(
        len(gzip.compress(p.read_bytes(), 9))
        for p in vendor.rglob("*")
        if p.suffix in (".js", ".css")
    )
    assert total < 2_000_000
    for library in (p for p in vendor.iterdir() if p.is_dir()):
        assert any("licen" in f.name.lower() for f in library.iterdir()), library.name
