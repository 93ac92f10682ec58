"""WMTS 1.0.0 (issue 19, item 5): capabilities, KVP and RESTful GetTile, GDAL and OWSLib.

Truth: tile bounds from morecantile's own matrix sets, the WMTS PNG compared with the WMS
GetMap of the same bounds (one renderer, so the same pixels), the MVT with the OGC API
Tiles answer of the same z/y/x, GDAL's WMTS driver and OWSLib reading a real server.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from pathlib import Path

import morecantile
import numpy as np
import pytest
from lxml import etree
from PIL import Image
from shikong.server.identity import KeyStore

OWS = "{http://www.opengis.net/ows/1.1}"
WMTS = "{http://www.opengis.net/wmts/1.0}"
ZONES = "nrp-planning_zones"
CAPS = "/wmts/1.0.0/WMTSCapabilities.xml"
TILE = morecantile.tms.get("WebMercatorQuad").tile(113.3, 33.8, 12)


@pytest.fixture(scope="module")
def client(demo_data):
    from shikong.server.app import create_app
    from starlette.testclient import TestClient

    return TestClient(create_app(demo_data, url=None, watch=False))


@pytest.fixture(scope="module")
def rer_key(demo_data) -> str:
    return KeyStore(demo_data).create("rer", "wmts-owner")[0]


def code_of(reply) -> str:
    root = etree.fromstring(reply.content)
    return root.find(f"{OWS}Exception").get("exceptionCode")


def layer_ids(client, key=None) -> set[str]:
    reply = client.get(CAPS, headers={"X-API-Key": key} if key else {})
    assert reply.status_code == 200
    root = etree.fromstring(reply.content)
    return {layer.findtext(f"{OWS}Identifier") for layer in root.iter(f"{WMTS}Layer")}


def test_capabilities_list_visible_layers_only(client, rer_key):
    public = layer_ids(client)
    assert ZONES in public and "nrp-dem" in public and "rer-parcels" not in public
    assert "rer-parcels" in layer_ids(client, rer_key)
    kvp = client.get("/wmts", params={"SERVICE": "WMTS", "REQUEST": "GetCapabilities"})
    assert kvp.status_code == 200 and kvp.content == client.get(CAPS).content


def test_tile_matrix_sets_in_the_crs_axis_order(client):
    """TopLeftCorner and scale denominators as the OGC matrix sets define them (morecantile):
    latitude first for EPSG:4490 (CGCS2000Quad), x/y for EPSG:3857."""
    root = etree.fromstring(client.get(CAPS).content)
    sets = {
        s.findtext(f"{OWS}Identifier"): s
        for s in root.find(f"{WMTS}Contents").findall(f"{WMTS}TileMatrixSet")
    }
    cgcs = sets["CGCS2000Quad"]
    assert cgcs.findtext(f"{OWS}SupportedCRS") == "urn:ogc:def:crs:EPSG::4490"
    first = cgcs.find(f"{WMTS}TileMatrix")
    assert [float(v) for v in first.findtext(f"{WMTS}TopLeftCorner").split()] == [90.0, -180.0]
    assert first.findtext(f"{WMTS}MatrixWidth") == "2"  # 天地图 level 1: two tiles of 180°
    mercator = sets["WebMercatorQuad"]
    assert mercator.findtext(f"{OWS}SupportedCRS") == "urn:ogc:def:crs:EPSG::3857"
    tms = morecantile.tms.get("WebMercatorQuad")
    for matrix in mercator.findall(f"{WMTS}TileMatrix"):
        z = int(matrix.findtext(f"{OWS}Identifier"))
        corner = [float(v) for v in matrix.findtext(f"{WMTS}TopLeftCorner").split()]
        assert corner == pytest.approx([-20037508.342789244, 20037508.342789244])
        assert float(matrix.findtext(f"{WMTS}ScaleDenominator")) == pytest.approx(
            tms.matrix(z).scaleDenominator
        )


def _rest(client, layer, tms, z, y, x, ext="png", key=None, **headers):
    if key:
        headers["X-API-Key"] = key
    return client.get(f"/wmts/1.0.0/{layer}/default/{tms}/{z}/{y}/{x}.{ext}", headers=headers)


def test_png_tile_is_the_wms_map_of_its_bounds(client):
    tms = morecantile.tms.get("WebMercatorQuad")
    bounds = tms.xy_bounds(TILE)
    tile = _rest(client, ZONES, "WebMercatorQuad", TILE.z, TILE.y, TILE.x)
    assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"
    kvp = client.get(
        "/wmts",
        params={
            "SERVICE": "WMTS", "REQUEST": "GetTile", "VERSION": "1.0.0", "LAYER": ZONES,
            "STYLE": "default", "FORMAT": "image/png", "TILEMATRIXSET": "WebMercatorQuad",
            "TILEMATRIX": str(TILE.z), "TILEROW": str(TILE.y), "TILECOL": str(TILE.x),
        },
    )  # fmt: skip
    assert kvp.content == tile.content
    wms = client.get(
        "/wms",
        params={
            "SERVICE": "WMS", "REQUEST": "GetMap", "VERSION": "1.3.0", "LAYERS": ZONES,
            "STYLES": "", "CRS": "EPSG:3857", "BBOX": ",".join(map(str, bounds)),
            "WIDTH": "256", "HEIGHT": "256", "FORMAT": "image/png", "TRANSPARENT": "TRUE",
        },
    )  # fmt: skip
    a = np.asarray(Image.open(io.BytesIO(tile.content)).convert("RGBA"))
    b = np.asarray(Image.open(io.BytesIO(wms.content)).convert("RGBA"))
    assert (a == b).all() and a[..., 3].any()


def test_cgcs2000_tile_covers_its_ground(client):
    """A CGCS2000Quad tile of the city, drawn in EPSG:4490 lon/lat."""
    document = Path(__file__).resolve().parents[1] / "config/tilematrixsets/CGCS2000Quad.json"
    tms = morecantile.TileMatrixSet.model_validate_json(document.read_text(encoding="utf-8"))
    tile = tms.tile(113.3, 33.8, 12)
    reply = _rest(client, ZONES, "CGCS2000Quad", tile.z, tile.y, tile.x)
    image = np.asarray(Image.open(io.BytesIO(reply.content)).convert("RGBA"))
    assert image[..., 3].all()  # the planning zones cover the whole city: no gap


def test_vector_tile_is_the_ogc_api_tile(client):
    wmts = _rest(client, "tra-roads", "WebMercatorQuad", TILE.z, TILE.y, TILE.x, "mvt")
    api = client.get(f"/collections/tra-roads/tiles/WebMercatorQuad/{TILE.z}/{TILE.y}/{TILE.x}")
    assert wmts.status_code == api.status_code
    assert wmts.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert wmts.content == api.content and wmts.content


def test_raster_tile_and_etag(client):
    first = _rest(client, "nrp-dem", "WebMercatorQuad", TILE.z, TILE.y, TILE.x)
    assert first.status_code == 200
    image = np.asarray(Image.open(io.BytesIO(first.content)).convert("RGBA"))
    assert image[..., 3].all() and len(np.unique(image.reshape(-1, 4), axis=0)) > 10
    again = _rest(
        client, "nrp-dem", "WebMercatorQuad", TILE.z, TILE.y, TILE.x,
        **{"If-None-Match": first.headers["etag"]},
    )  # fmt: skip
    assert again.status_code == 304


def test_hidden_layer_tiles_are_layer_not_defined(client, rer_key):
    for ext in ("png", "mvt"):
        hidden = _rest(client, "rer-parcels", "WebMercatorQuad", 15, 13295, 26687, ext)
        absent = _rest(client, "rer-nothing", "WebMercatorQuad", 15, 13295, 26687, ext)
        assert hidden.status_code == absent.status_code == 404
        assert code_of(hidden) == code_of(absent) == "LayerNotDefined"
    owner = _rest(client, "rer-parcels", "WebMercatorQuad", 15, 13295, 26687, key=rer_key)
    assert owner.status_code == 200


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (f"{ZONES}/default/WebMercatorQuad/12/99999/1.png", "TileOutOfRange"),
        (f"{ZONES}/default/WebMercatorQuad/30/0/0.png", "InvalidParameterValue"),
        (f"{ZONES}/default/NoSuchSet/1/0/0.png", "InvalidParameterValue"),
        (f"{ZONES}/nosuch/WebMercatorQuad/1/0/0.png", "InvalidParameterValue"),
        (f"{ZONES}/default/WebMercatorQuad/1/0/0.gif", "InvalidParameterValue"),
        ("nrp-dem/default/WebMercatorQuad/1/0/0.mvt", "InvalidParameterValue"),
    ],
)
def test_bad_tiles_are_ows_exceptions(client, path, code):
    reply = client.get(f"/wmts/1.0.0/{path}")
    assert 400 <= reply.status_code < 500
    assert reply.headers["content-type"] == "application/xml"
    assert code_of(reply) == code


def test_kvp_missing_parameter(client):
    reply = client.get("/wmts", params={"SERVICE": "WMTS", "REQUEST": "GetTile", "LAYER": ZONES})
    assert reply.status_code == 400 and code_of(reply) == "MissingParameterValue"


# -- real clients over a real server --------------------------------------------------------
def test_owslib_reads_a_layer(server, as_tester):
    from owslib.wmts import WebMapTileService

    client = WebMapTileService(f"{server.url}{CAPS}")
    assert ZONES in client.contents and "nrp-landuse" in client.contents  # shared: key sent
    assert {"WebMercatorQuad", "CGCS2000Quad"} <= set(client.tilematrixsets)
    tile = client.gettile(
        layer=ZONES, tilematrixset="WebMercatorQuad", tilematrix=str(TILE.z),
        row=TILE.y, column=TILE.x, format="image/png",
    )  # fmt: skip
    image = np.asarray(Image.open(io.BytesIO(tile.read())).convert("RGBA"))
    assert image.shape == (256, 256, 4) and image[..., 3].all()


def _gdal(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GDAL_HTTP")}
    env["GDAL_DEFAULT_WMS_CACHE_PATH"] = tempfile.mkdtemp()  # not ./gdalwmscache
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)


def test_gdal_wmts_driver_reads_a_layer(server, tmp_path):
    url = f"WMTS:{server.url}{CAPS},layer={ZONES},tilematrixset=CGCS2000Quad"
    info = _gdal("gdalinfo", url)
    assert info.returncode == 0, info.stderr
    assert "Band 4" in info.stdout and "ColorInterp=Alpha" in info.stdout
    # the layer's extent, longitude and latitude where they belong (EPSG:4490 lat/lon axes)
    assert "Upper Left  ( 113.0000000,  34.0000" in info.stdout, info.stdout
    assert "Lower Right ( 113.59999" in info.stdout and "33.6000" in info.stdout
    out = tmp_path / "zones.png"
    done = _gdal("gdal_translate", "-q", "-of", "PNG", "-outsize", "300", "0", url, str(out))
    assert done.returncode == 0, done.stderr
    image = np.asarray(Image.open(out).convert("RGBA"))
    assert (image[..., 3] > 0).mean() > 0.95  # the zones cover the city (their fill is 50 %)
    assert len(np.unique(image.reshape(-1, 4), axis=0)) > 5
