"""The workbench's tools in a real browser (issue 20, item 3): a polygon drawn on the map,
a GeoJSON file and a zipped Shapefile uploaded, each checked by planning-compliance and
land-approval-precheck; the report's print view; an alert on the page when a reading over
its sensor's warning level is posted to ``/readings``.

Truth for the areas comes from outside the server and the page: the proposal's outline
projected with pyproj to CGCS2000 / 3-degree Gauss-Krüger CM 114°E (EPSG:4547, the
city's zone 38, where the report's planar area is measured) and measured by shapely, in
亩 (m² × 15 / 10,000); the Shapefile is written by geopandas (pyogrio) in that CRS and
zipped here. The alert's threshold is the sensor's ``warning_level`` in its layer's
GeoParquet.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta

import geopandas as gpd
import httpx
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Polygon, mapping
from shikong.server.identity import KeyStore
from test_workbench_browser import Page

GK38 = "EPSG:4547"
# a block of the demo city (lon/lat) with planning zones under it
SQUARE = Polygon([(113.300, 33.790), (113.304, 33.790), (113.304, 33.7935), (113.300, 33.7935)])


def in_gk38(geometry_lonlat):
    """A lon/lat geometry in zone 38's plane coordinates (pyproj)."""
    to_gk = Transformer.from_crs("EPSG:4490", GK38, always_xy=True)
    return shapely.transform(
        geometry_lonlat, lambda xy: np.column_stack(to_gk.transform(xy[:, 0], xy[:, 1]))
    )


def mu_in_gk38(geometry_lonlat) -> float:
    """The planar area in zone 38 of a lon/lat geometry, in 亩."""
    return in_gk38(geometry_lonlat).area * 15 / 10_000


@pytest.fixture(scope="module")
def keys(demo_data):
    store = KeyStore(demo_data)
    return {
        "nrp": store.create("nrp", "tools-nrp")[0],
        "gateway": store.create("wat", "tools-gateway", role="gateway")[0],
    }


@pytest.fixture
def tab(browser, server, keys):
    opened = Page(browser, server)
    opened.sign_in(keys["nrp"])
    yield opened
    opened.close()


def run_checks(tab) -> float:
    """Run both processes on the page's proposal; the report's planar area in 亩."""
    tab.page.wait_for_selector("#sk-run:not([disabled])")
    tab.page.click("#sk-run")
    cell = tab.page.wait_for_selector(
        "#sk-report tr[data-row=proposal-planar] .sk-mu", timeout=120_000
    )
    status = tab.page.inner_text("#sk-proposal-status")
    assert status == "审查完成", status
    report = tab.page.inner_text("#sk-report")
    assert "国土空间规划符合性审查" in report and "建设用地报批预审" in report
    assert tab.page.locator("#sk-report [data-verdict]").count() >= 2
    return float(cell.inner_text().replace(",", ""))


def test_draw_a_polygon_and_check_it(tab):
    page = tab.page
    page.evaluate("() => window.shikongMap.jumpTo({center: [113.302, 33.792], zoom: 15})")
    tab.idle()
    box = page.locator("#sk-map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    clicks = ((-80, -60), (80, -60), (90, 70), (-70, 60))
    # where the clicks land on the map, before the page fits the map to the outline
    expected = page.evaluate(
        "offsets => offsets.map(([dx, dy]) => { const m = window.shikongMap;"
        " const c = m.getCanvas(); const p = m.unproject([c.clientWidth / 2 + dx,"
        " c.clientHeight / 2 + dy]); return [p.lng, p.lat]; })",
        [list(c) for c in clicks],
    )
    page.click("#sk-draw")
    for dx, dy in clicks:
        page.mouse.click(cx + dx, cy + dy)
    page.click("#sk-finish")
    assert "4 个拐点" in page.inner_text("#sk-proposal-status")
    drawn = page.evaluate("() => window.shikong.proposal")
    assert drawn["type"] == "Polygon" and len(drawn["coordinates"][0]) == 5
    for (lon, lat), (elon, elat) in zip(drawn["coordinates"][0][:4], expected, strict=True):
        assert abs(lon - elon) < 1e-4 and abs(lat - elat) < 1e-4  # a pixel at z15: ~5e-5
    shown = run_checks(tab)
    assert shown == pytest.approx(mu_in_gk38(shapely.geometry.shape(drawn)), abs=0.006)


def test_upload_geojson(tab, tmp_path):
    path = tmp_path / "红线.geojson"
    feature = {"type": "Feature", "properties": {"name": "试验"}, "geometry": mapping(SQUARE)}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    tab.page.set_input_files("#sk-proposal-file", str(path))
    tab.page.wait_for_function(
        "() => document.getElementById('sk-proposal-status').textContent.includes('已读取')"
    )
    assert run_checks(tab) == pytest.approx(mu_in_gk38(SQUARE), abs=0.006)


def test_upload_zipped_shapefile(tab, tmp_path):
    in_gk = in_gk38(SQUARE)
    folder = tmp_path / "shp"
    folder.mkdir()
    gpd.GeoDataFrame({"名称": ["试验地块"]}, geometry=[in_gk], crs=GK38).to_file(
        folder / "hongxian.shp", engine="pyogrio", encoding="UTF-8"
    )
    archive = tmp_path / "红线.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for part in sorted(folder.iterdir()):
            z.write(part, part.name)
    tab.page.set_input_files("#sk-proposal-file", str(archive))
    tab.page.wait_for_function(
        "() => document.getElementById('sk-proposal-status').textContent.includes('已读取')"
    )
    assert run_checks(tab) == pytest.approx(in_gk.area * 15 / 10_000, abs=0.006)


def test_print_view_shows_the_report(tab, tmp_path):
    path = tmp_path / "p.geojson"
    path.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": mapping(SQUARE)}))
    tab.page.set_input_files("#sk-proposal-file", str(path))
    run_checks(tab)
    page = tab.page
    page.emulate_media(media="print")
    try:
        assert page.locator("#sk-report").is_visible()
        assert not page.locator(".sk-main").is_visible()  # the map and panels are left out
        assert not page.locator("#sk-print").is_visible()
        text = page.inner_text("#sk-report")
        assert "项目用地审查报告" in text and "亩" in text and "公顷" in text
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
    finally:
        page.emulate_media(media="screen")


def test_alert_appears_when_a_reading_crosses_the_warning_level(tab, server, keys, demo_data):
    sensors = gpd.read_parquet(
        next((demo_data / "assets" / "wat" / "water_level_sensors").glob("*/data.parquet"))
    ).set_index("sensor_id")
    sensor = "WAT-WL-002"
    low, high, warning = sensors.loc[sensor, ["min_valid", "max_valid", "warning_level"]]
    below, above = (low + warning) / 2, (warning + high) / 2
    page = tab.page
    page.wait_for_function("() => window.shikong.events && window.shikong.events.readyState === 1")
    before = page.locator("#sk-alerts li.sk-alert").count()
    now = datetime.now(UTC).replace(microsecond=0)
    readings = [
        {"sensor_id": sensor, "time": (now - timedelta(seconds=2)).isoformat(), "value": below},
        {"sensor_id": sensor, "time": (now - timedelta(seconds=1)).isoformat(), "value": above},
    ]
    answer = httpx.post(
        f"{server.url}/readings", json=readings, headers={"X-API-Key": keys["gateway"]}
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 2, answer.text
    # on the page within 1 s of the answer (Playwright's wait is the only clock)
    alert = page.locator("#sk-alerts li.sk-alert", has_text=sensor).first
    alert.wait_for(state="visible", timeout=1_000)
    assert "警戒" in alert.inner_text()
    assert page.locator("#sk-alerts li.sk-alert").count() > before
