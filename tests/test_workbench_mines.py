"""The workbench's mine-remediation view (issue 20, item 3): NDVI change tiles and the
per-mine table come from the server, for callers who may see the imagery; the public
(who may not) gets 404 for both.

Truth is computed here from the imagery's two COGs with rasterio and numpy: NDVI =
(nir - red) / (nir + red) per pixel (nodata 65535, and red = nir = 0, left out), its
change, and its mean over each mining right's pixels whose centre is inside
(rasterio's geometry_mask). A tile's pixel over a place of strong loss is brown, over a
strong gain green; the page shows the table and draws the tiles; no request leaves the
server.
"""

from __future__ import annotations

import io
import math

import geopandas as gpd
import httpx
import numpy as np
import pytest
import rasterio
from rasterio.features import geometry_mask
from shikong.server.identity import KeyStore
from test_workbench_browser import Page

TILES = "/workbench/mines/ndvi-change/tiles/WebMercatorQuad"


def _ndvi(path) -> tuple[np.ndarray, rasterio.Affine]:
    with rasterio.open(path) as src:
        red, nir = (src.read(i).astype("float64") for i in (1, 2))
        bad = (red == src.nodata) | (nir == src.nodata) | ((red + nir) == 0)
        transform = src.transform
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (nir - red) / (nir + red)
    out[bad] = np.nan
    return out, transform


@pytest.fixture(scope="module")
def truth(demo_data):
    """The change raster, its transform, and the mean change per mining right."""
    folders = sorted(p for p in (demo_data / "assets" / "nrp" / "rs_mining").iterdir())
    assert len(folders) >= 2
    before, transform = _ndvi(folders[0] / "data.tif")
    after, _ = _ndvi(folders[-1] / "data.tif")
    delta = after - before
    mines = gpd.read_parquet(
        next((demo_data / "assets" / "nrp" / "mining_rights").glob("*/data.parquet"))
    )
    means = {}
    for fid, geometry in zip(mines["fid"], mines.geometry, strict=True):
        inside = ~geometry_mask([geometry], delta.shape, transform, all_touched=False)
        values = delta[inside & np.isfinite(delta)]
        means[int(fid)] = float(values.mean()) if values.size else None
    return {"delta": delta, "transform": transform, "means": means, "mines": mines}


@pytest.fixture(scope="module")
def nrp_key(demo_data):
    return KeyStore(demo_data).create("nrp", "mines-view")[0]


def test_the_public_gets_404(server):
    for path in ("/workbench/mines/ndvi-change", f"{TILES}/14/6679/13403"):
        answer = httpx.get(f"{server.url}{path}")
        assert answer.status_code == 404, (path, answer.status_code)


def test_per_mine_table_matches_numpy(server, nrp_key, truth):
    answer = httpx.get(
        f"{server.url}/workbench/mines/ndvi-change",
        headers={"X-API-Key": nrp_key},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    rows = {row["id"]: row for row in report["mines"]}
    assert set(rows) == set(truth["means"])
    for fid, mean in truth["means"].items():
        if mean is None:
            continue
        assert rows[fid]["ndvi_change"] == pytest.approx(mean, abs=1e-4), fid
    assert any(m is not None and m < -0.05 for m in truth["means"].values())


def _pixel_of(lon: float, lat: float, z: int) -> tuple[int, int, int, int]:
    """WebMercatorQuad tile (x, y) and the pixel (column, row) in its 256 x 256 image."""
    n = 2**z
    fx = (lon + 180) / 360 * n
    fy = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int(fx), int(fy), int((fx % 1) * 256), int((fy % 1) * 256)


def _strong_cell(delta: np.ndarray, sign: int) -> tuple[int, int]:
    """A cell whose 5 x 5 neighbourhood all changed by more than 0.3 in ``sign``'s way."""
    strong = np.nan_to_num(sign * delta, nan=-1) > 0.3
    rows, cols = strong.shape
    for r, c in zip(*np.nonzero(strong), strict=True):
        if 2 <= r < rows - 2 and 2 <= c < cols - 2 and strong[r - 2 : r + 3, c - 2 : c + 3].all():
            return int(r), int(c)
    pytest.skip(f"no place of strong NDVI change ({sign:+d}) in the demo imagery")


@pytest.mark.parametrize("sign", [-1, 1])
def test_change_tiles_colour_loss_brown_and_gain_green(server, nrp_key, truth, sign):
    from PIL import Image

    r, c = _strong_cell(truth["delta"], sign)
    lon, lat = truth["transform"] * (c + 0.5, r + 0.5)
    z = 15
    x, y, px, py = _pixel_of(lon, lat, z)
    answer = httpx.get(
        f"{server.url}{TILES}/{z}/{y}/{x}", headers={"X-API-Key": nrp_key}, timeout=120
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    red, green, blue, alpha = (
        Image.open(io.BytesIO(answer.content)).convert("RGBA").getpixel((px, py))
    )
    assert alpha == 255
    if sign < 0:
        assert red > blue + 40, (red, green, blue)  # brown
    else:
        assert green > red + 40, (red, green, blue)  # green


def test_the_page_shows_the_view(browser, server, nrp_key, truth):
    tab = Page(browser, server)
    try:
        tab.sign_in(nrp_key)
        tiles: list[tuple[str, int]] = []
        tab.page.on("response", lambda r: TILES in r.url and tiles.append((r.url, r.status)))
        tab.page.click("#sk-mine-view")
        tab.page.wait_for_selector("#sk-mine-change tr[data-mine]", timeout=120_000)
        tab.page.wait_for_function("() => window.shikongMap.getLayer('sk-ndvi-change')")
        tab.idle()
        shown = {
            int(row.get_attribute("data-mine")): row.locator("td.sk-change").inner_text()
            for row in tab.page.locator("#sk-mine-change tr[data-mine]").all()
        }
        assert set(shown) == set(truth["means"])
        for fid, mean in truth["means"].items():
            if mean is not None:
                assert float(shown[fid]) == pytest.approx(mean, abs=0.0006), fid
        assert tiles and all(status in (200, 204) for _, status in tiles), tiles
        assert any(status == 200 for _, status in tiles)
        assert tab.page.locator("#sk-mine-project-table tr").count() > 1
    finally:
        tab.close()
