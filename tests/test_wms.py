"""WMS 1.3.0 and 1.1.1 (issue 19, item 5): capabilities, GetMap, GetFeatureInfo, exceptions.

Truth is computed here without the server: features read from the GeoParquet assets with
geopandas, rasterised with rasterio (GDAL, pixel-centre rule), reprojected with pyproj,
coloured from the style document's JSON by a plain dictionary lookup, and points tested
with shapely. OWSLib (a real WMS client) reads a real uvicorn server.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from lxml import etree
from PIL import Image
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.transform import from_bounds
from scipy.ndimage import binary_erosion
from shikong.catalog.masking import mask_id_number, mask_name
from shikong.server.identity import KeyStore

STYLES = Path(__file__).resolve().parents[1] / "config" / "styles"
OGC = "{http://www.opengis.net/ogc}"
WMS = "{http://www.opengis.net/wms}"
ZONES = "nrp-planning_zones"  # public polygons, coloured by zone code (a match expression)
CITY = (113.0, 33.6, 113.6, 34.0)  # lon/lat
SQUARE = np.ones((3, 3), bool)  # erosion by whole pixels in every direction


def truth_of(data: Path, collection: str) -> gpd.GeoDataFrame:
    department, layer = collection.split("-", 1)
    versions = sorted((data / "assets" / department / layer).glob("*/data.parquet"))
    return gpd.read_parquet(versions[-1])


@pytest.fixture(scope="module")
def client(demo_data):
    from shikong.server.app import create_app
    from starlette.testclient import TestClient

    return TestClient(create_app(demo_data, url=None, watch=False))


@pytest.fixture(scope="module")
def keys(demo_data) -> dict[str, str]:
    store = KeyStore(demo_data)
    return {
        "rer": store.create("rer", "wms-owner")[0],  # owns the parcels: unmasked
        "nrp": store.create("nrp", "wms-reader")[0],  # granted read: masked
        "wat": store.create("wat", "wms-other")[0],  # may not see the parcels
    }


def wms(client, key: str | None = None, **params: str):
    headers = {"X-API-Key": key} if key else {}
    return client.get("/wms", params={"SERVICE": "WMS", **params}, headers=headers)


def get_map(client, key=None, version="1.3.0", **params):
    base = {
        "REQUEST": "GetMap",
        "VERSION": version,
        "STYLES": "",
        "FORMAT": "image/png",
        "WIDTH": "400",
        "HEIGHT": "300",
    }
    return wms(client, key, **{**base, **params})


def pixels(reply) -> np.ndarray:
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(reply.content)).convert("RGBA"))


def exception_code(reply) -> str:
    root = etree.fromstring(reply.content)
    found = root.find(f"{OGC}ServiceException")
    if found is None:
        found = root.find("ServiceException")
    return found.get("code")


# -- capabilities -----------------------------------------------------------------------
def test_capabilities_list_what_the_caller_may_see(client, keys):
    def names(key):
        reply = wms(client, key, REQUEST="GetCapabilities", VERSION="1.3.0")
        assert reply.status_code == 200
        root = etree.fromstring(reply.content)
        return {n.text for n in root.iter(f"{WMS}Name")} - {"WMS"}

    public, owner, other = names(None), names(keys["rer"]), names(keys["wat"])
    assert ZONES in public and "nrp-dem" in public
    assert "rer-parcels" not in public and "nrp-landuse" not in public  # restricted, shared
    assert "rer-parcels" in owner and "nrp-landuse" in owner
    assert "rer-parcels" not in other and "nrp-landuse" in other


def test_capabilities_axis_order_per_version(client, demo_data):
    """1.3.0 BoundingBox in the CRS's order (EPSG:4490 latitude first, GK northing first),
    1.1.1 always x/y."""
    west, south, east, north = truth_of(demo_data, ZONES).total_bounds

    def box(version: str, crs: str) -> list[float]:
        reply = wms(client, REQUEST="GetCapabilities", VERSION=version)
        root = etree.fromstring(reply.content)
        ns = WMS if version == "1.3.0" else ""
        attr = "CRS" if version == "1.3.0" else "SRS"
        for layer in root.iter(f"{ns}Layer"):
            if layer.findtext(f"{ns}Name") == ZONES:
                found = next(b for b in layer.findall(f"{ns}BoundingBox") if b.get(attr) == crs)
                return [float(found.get(k)) for k in ("minx", "miny", "maxx", "maxy")]
        raise AssertionError(f"{ZONES} not listed")

    assert box("1.3.0", "EPSG:4490") == pytest.approx([south, west, north, east], abs=1e-6)
    assert box("1.3.0", "CRS:84") == pytest.approx([west, south, east, north], abs=1e-6)
    assert box("1.1.1", "EPSG:4490") == pytest.approx([west, south, east, north], abs=1e-6)
    gk = Transformer.from_crs(4490, 4547, always_xy=True)
    e0, n0, e1, n1 = gk.transform_bounds(west, south, east, north, densify_pts=21)
    assert box("1.3.0", "EPSG:4547") == pytest.approx([n0, e0, n1, e1], abs=1)
    assert box("1.1.1", "EPSG:4547") == pytest.approx([e0, n0, e1, n1], abs=1)
    root = etree.fromstring(wms(client, REQUEST="GetCapabilities", VERSION="1.3.0").content)
    offered = {c.text for c in root.iter(f"{WMS}CRS")}
    assert {"EPSG:4490", "EPSG:4326", "EPSG:3857", "CRS:84", "EPSG:4526", "EPSG:4547"} <= offered
    assert {f"EPSG:{c}" for c in range(4513, 4555)} <= offered  # every CGCS2000 3° GK zone


# -- GetMap -----------------------------------------------------------------------------
def _zone_colours() -> dict[str, tuple[int, int, int]]:
    """code → RGB over white, read from the style file by hand (not the server's code)."""
    spec = json.loads((STYLES / f"{ZONES}.json").read_text(encoding="utf-8"))
    fill = next(layer for layer in spec["layers"] if layer["type"] == "fill")["paint"]
    match = fill["fill-color"]
    opacity = fill["fill-opacity"]
    pairs = dict(zip(match[2:-1:2], match[3:-1:2], strict=True))
    pairs[None] = match[-1]

    def over_white(hex_colour: str) -> tuple[int, int, int]:
        rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
        return tuple(round(c * opacity + 255 * (1 - opacity)) for c in rgb)

    return {k: over_white(v) for k, v in pairs.items()}


def _check_against_truth(image: np.ndarray, frame: gpd.GeoDataFrame, bounds, shape) -> None:
    """Inside each polygon (3 px away from every edge: outlines and the pixel-centre rule
    differ there) the pixel has its zone's colour; away from every polygon, white."""
    colours = _zone_colours()
    transform = from_bounds(*bounds, shape[1], shape[0])
    index = rasterize(
        ((g, i + 1) for i, g in enumerate(frame.geometry)),
        out_shape=shape,
        transform=transform,
        fill=0,
        dtype="int32",
    )
    checked = 0
    for i, code in enumerate(frame["GHFQDM"], 1):
        inside = binary_erosion(index == i, structure=SQUARE, iterations=3)
        if not inside.any():
            continue
        expected = np.array(colours.get(code, colours[None]))
        got = image[inside][:, :3].astype(int)
        assert np.abs(got - expected).max() <= 2, (code, expected, np.unique(got, axis=0)[:5])
        checked += int(inside.sum())
    assert checked > 0.5 * shape[0] * shape[1]  # most of the map was compared
    outside = binary_erosion(index == 0, structure=SQUARE, iterations=3)
    assert (image[outside][:, :3] == 255).all()


def test_get_map_colours_match_an_independent_rasterisation(client, demo_data):
    frame = truth_of(demo_data, ZONES)
    bounds = (113.05, 33.65, 113.55, 33.95)
    image = pixels(get_map(client, LAYERS=ZONES, CRS="CRS:84", BBOX="113.05,33.65,113.55,33.95"))
    _check_against_truth(image, frame, bounds, (300, 400))


def test_get_map_in_a_gauss_krueger_zone(client, demo_data):
    """EPSG:4547 in 1.3.0: BBOX northing first; truth reprojected by pyproj."""
    frame = truth_of(demo_data, ZONES).to_crs(4547)
    e0, n0, e1, n1 = 410_000.0, 3_725_000.0, 455_000.0, 3_755_000.0
    reply = get_map(client, LAYERS=ZONES, CRS="EPSG:4547", BBOX=f"{n0},{e0},{n1},{e1}")
    _check_against_truth(pixels(reply), frame, (e0, n0, e1, n1), (300, 400))


@pytest.mark.parametrize(
    ("crs", "box_130", "box_111"),
    [
        ("EPSG:4490", "33.7,113.1,33.9,113.4", "113.1,33.7,113.4,33.9"),
        ("EPSG:4326", "33.7,113.1,33.9,113.4", "113.1,33.7,113.4,33.9"),
        ("EPSG:4526", "3735000,38420000,3750000,38440000", "38420000,3735000,38440000,3750000"),
    ],
)
def test_axis_order_per_version_draws_the_same_map(client, crs, box_130, box_111):
    layers = f"{ZONES},tra-roads,wat-rivers"
    new = pixels(get_map(client, LAYERS=layers, CRS=crs, BBOX=box_130))
    old = pixels(get_map(client, version="1.1.1", LAYERS=layers, SRS=crs, BBOX=box_111))
    assert (new == old).all()
    assert len(np.unique(new.reshape(-1, 4), axis=0)) > 5  # something was drawn
    if crs != "EPSG:4526":
        lonlat = pixels(get_map(client, LAYERS=layers, CRS="CRS:84", BBOX=box_111))
        assert (new == lonlat).all()


def test_get_map_web_mercator_and_raster(client):
    image = pixels(
        get_map(client, LAYERS="nrp-dem", CRS="EPSG:3857", BBOX="12590000,3980000,12640000,4020000")
    )
    assert image[..., 3].min() == 255  # the DEM covers the view: drawn, opaque background
    assert len(np.unique(image.reshape(-1, 4), axis=0)) > 20  # a colour ramp, not one colour


def test_transparent_background(client):
    image = pixels(
        get_map(
            client,
            LAYERS="tra-roads",
            CRS="CRS:84",
            BBOX="113.1,33.7,113.4,33.9",
            TRANSPARENT="TRUE",
        )
    )
    assert (image[..., 3] == 0).mean() > 0.5 and (image[..., 3] == 255).any()


# -- GetFeatureInfo ---------------------------------------------------------------------
def _info(client, key, layer, bbox, i, j, version="1.3.0", **extra):
    params = {
        "REQUEST": "GetFeatureInfo",
        "LAYERS": layer,
        "QUERY_LAYERS": layer,
        "CRS" if version == "1.3.0" else "SRS": "CRS:84" if version == "1.3.0" else "EPSG:4326",
        "BBOX": ",".join(map(str, bbox)),
        "INFO_FORMAT": "application/json",
        "FEATURE_COUNT": "50",
        "I" if version == "1.3.0" else "X": str(i),
        "J" if version == "1.3.0" else "Y": str(j),
        **extra,
    }
    return get_map(client, key, version=version, **params)


def test_get_feature_info_answers_the_features_at_the_pixel(client, demo_data):
    frame = truth_of(demo_data, ZONES)
    rng = np.random.default_rng(19)
    bbox = (113.05, 33.65, 113.55, 33.95)
    width, height = 400, 300
    tried = 0
    for _ in range(40):
        i, j = int(rng.integers(0, width)), int(rng.integers(0, height))
        lon = bbox[0] + (i + 0.5) * (bbox[2] - bbox[0]) / width
        lat = bbox[3] - (j + 0.5) * (bbox[3] - bbox[1]) / height
        point = shapely.Point(lon, lat)
        if shapely.distance(frame.boundary.values, point).min() < 0.002:  # on an edge: either
            continue
        expected = set(frame.loc[frame.contains(point), "fid"])
        reply = _info(client, None, ZONES, bbox, i, j)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert {f["id"] for f in body["features"]} == expected
        for f in body["features"]:
            row = frame.set_index("fid").loc[f["id"]]
            assert f["properties"]["GHFQDM"] == row["GHFQDM"]
        tried += 1
    assert tried >= 20


def test_get_feature_info_masks_personal_fields(client, keys, demo_data):
    frame = truth_of(demo_data, "rer-parcels")
    parcel = frame.iloc[len(frame) // 2]
    point = parcel.geometry.representative_point()
    bbox = (point.x - 0.001, point.y - 0.001, point.x + 0.001, point.y + 0.001)
    # the point is the centre of pixel (50, 50) of a 101 x 101 map
    d = 0.002 / 101
    bbox = (point.x - 50.5 * d, point.y - 50.5 * d, point.x + 50.5 * d, point.y + 50.5 * d)
    params = {"WIDTH": "101", "HEIGHT": "101"}
    owner = _info(client, keys["rer"], "rer-parcels", bbox, 50, 50, **params).json()
    reader = _info(client, keys["nrp"], "rer-parcels", bbox, 50, 50, **params).json()
    mine = next(f for f in owner["features"] if f["id"] == parcel["fid"])
    theirs = next(f for f in reader["features"] if f["id"] == parcel["fid"])
    assert mine["properties"]["id_number"] == parcel["id_number"]
    assert mine["properties"]["owner_name"] == parcel["owner_name"]
    assert theirs["properties"]["id_number"] == mask_id_number(parcel["id_number"])
    assert theirs["properties"]["owner_name"] == mask_name(parcel["owner_name"])
    assert parcel["id_number"] not in json.dumps(reader, ensure_ascii=False)
    for media in ("text/html", "text/plain"):
        text = _info(client, keys["nrp"], "rer-parcels", bbox, 50, 50, INFO_FORMAT=media, **params)
        assert text.status_code == 200 and parcel["id_number"] not in text.text
        assert mask_id_number(parcel["id_number"]) in text.text


# -- access and exceptions ----------------------------------------------------------------
def test_hidden_layer_is_layer_not_defined_like_an_absent_one(client, keys):
    box = {"CRS": "CRS:84", "BBOX": "113.29,33.78,113.31,33.79"}
    for key in (None, keys["wat"]):
        hidden = get_map(client, key, LAYERS="rer-parcels", **box)
        absent = get_map(client, key, LAYERS="rer-nothing", **box)
        assert hidden.status_code == absent.status_code == 404
        assert exception_code(hidden) == exception_code(absent) == "LayerNotDefined"
        assert hidden.content.replace(b"rer-parcels", b"X") == absent.content.replace(
            b"rer-nothing", b"X"
        )
        info = _info(client, key, "rer-parcels", (113.29, 33.78, 113.31, 33.79), 10, 10)
        assert info.status_code == 404 and exception_code(info) == "LayerNotDefined"
        assert b"owner_name" not in info.content
    assert get_map(client, keys["rer"], LAYERS="rer-parcels", **box).status_code == 200


def test_hidden_layer_request_is_audited_as_a_refusal(client, keys, demo_data):
    get_map(client, keys["wat"], LAYERS="rer-parcels", CRS="CRS:84", BBOX="113,33,114,34")
    lines = (demo_data / "audit" / "audit.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines if '"path":"/wms"' in line]
    assert any(
        e["user"] == "wms-other" and "rer-parcels" in e["collections"] and e.get("denied")
        for e in entries
    )


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"LAYERS": ""}, "MissingParameterValue"),
        ({"CRS": "EPSG:2000"}, "InvalidCRS"),
        ({"FORMAT": "image/gif"}, "InvalidFormat"),
        ({"BBOX": "113,34,113.5"}, "InvalidParameterValue"),
        ({"BBOX": "34,113,33,113.5"}, "InvalidParameterValue"),
        ({"WIDTH": "5000"}, "InvalidParameterValue"),
        ({"STYLES": "nosuch"}, "StyleNotDefined"),
        ({"REQUEST": "GetLegend"}, "OperationNotSupported"),
        ({"TIME": "not-a-time"}, "InvalidDimensionValue"),
    ],
)
def test_bad_requests_are_service_exceptions(client, params, code):
    base = {"LAYERS": ZONES, "CRS": "EPSG:4490", "BBOX": "33.7,113.1,33.9,113.4"}
    reply = get_map(client, **{**base, **params})
    assert 400 <= reply.status_code < 600 and reply.status_code != 500
    assert reply.headers["content-type"].startswith("text/xml")
    assert exception_code(reply) == code


def test_bad_pixel_in_get_feature_info(client):
    reply = _info(client, None, ZONES, CITY, 400, 10)  # I runs 0..399
    assert reply.status_code == 400 and exception_code(reply) == "InvalidPoint"


# -- a real client over a real server -----------------------------------------------------
def test_owslib_reads_capabilities_map_and_feature_info(server, as_tester, demo_data):
    from owslib.wms import WebMapService

    client = WebMapService(f"{server.url}/wms", version="1.3.0")
    assert ZONES in client.contents and "nrp-landuse" in client.contents  # shared: key sent
    assert "EPSG:4547" in client[ZONES].crsOptions
    bbox = (113.05, 33.65, 113.55, 33.95)
    reply = client.getmap(
        layers=[ZONES],
        styles=[""],
        srs="CRS:84",
        bbox=bbox,
        size=(400, 300),
        format="image/png",
    )
    image = np.asarray(Image.open(io.BytesIO(reply.read())).convert("RGBA"))
    _check_against_truth(image, truth_of(demo_data, ZONES), bbox, (300, 400))
    info = client.getfeatureinfo(
        layers=[ZONES],
        srs="CRS:84",
        bbox=bbox,
        size=(400, 300),
        format="image/png",
        query_layers=[ZONES],
        info_format="application/json",
        xy=(200, 150),
        feature_count=5,
    )
    body = json.loads(info.read())
    lon = bbox[0] + 200.5 * (bbox[2] - bbox[0]) / 400
    lat = bbox[3] - 150.5 * (bbox[3] - bbox[1]) / 300
    frame = truth_of(demo_data, ZONES)
    expected = set(frame.loc[frame.contains(shapely.Point(lon, lat)), "fid"])
    assert {f["id"] for f in body["features"]} == expected and expected
