"""OGC API Features details a new user hit (issue 16): each checked against the source data."""

from __future__ import annotations

import csv
import itertools
import urllib.parse

import httpx
import pyogrio
import pytest
from shikong.catalog import Catalog

pytestmark = pytest.mark.usefixtures("as_tester")


def get(server, path: str, **params) -> httpx.Response:
    query = urllib.parse.urlencode(params)
    return httpx.get(f"{server.url}{path}{'?' + query if query else ''}", timeout=60)


def test_limit_over_the_maximum_serves_a_server_limited_page_with_next(server, demo_data):
    total = len(Catalog.open(demo_data)["nrp-landuse"].to_geodataframe())
    assert total > 1000  # the page is limited by the server, not by the data
    reply = get(server, "/collections/nrp-landuse/items", f="json", limit=50000)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len(body["features"]) == 1000 and body["numberMatched"] == total
    following = next(link["href"] for link in body["links"] if link["rel"] == "next")
    assert "offset=1000" in following
    second = httpx.get(following, timeout=60).json()
    assert len(second["features"]) == min(1000, total - 1000)
    first_ids = {f["id"] for f in body["features"]}
    assert first_ids.isdisjoint(f["id"] for f in second["features"])


@pytest.mark.parametrize("query", ["foo=bar", "ghfqmc=农田保护区", "Limit=5", "bbox_crs=x"])
def test_unknown_query_parameters_are_a_400_naming_them(server, query):
    name = query.split("=")[0]
    reply = httpx.get(f"{server.url}/collections/nrp-landuse/items?f=json&{query}")
    assert reply.status_code == 400, reply.text
    assert repr(name) in reply.json()["description"]
    one = httpx.get(f"{server.url}/collections/nrp-landuse/items/1?f=json&{query}")
    assert one.status_code == 400 and repr(name) in one.json()["description"]


def test_a_collection_field_is_a_defined_parameter(server, demo_data):
    landuse = Catalog.open(demo_data)["nrp-landuse"].to_geodataframe()
    reply = get(server, "/collections/nrp-landuse/items", f="json", DLMC="旱地", limit=1000)
    assert reply.status_code == 200
    expect = landuse[landuse["DLMC"] == "旱地"]
    assert reply.json()["numberMatched"] == len(expect) > 0


def test_cql2_text_takes_unquoted_chinese_and_one_letter_property_names(server, demo_data):
    landuse = Catalog.open(demo_data)["nrp-landuse"].to_geodataframe()
    expect = sorted(landuse.loc[landuse["DLMC"] == "旱地", "fid"])
    reply = get(
        server, "/collections/nrp-landuse/items", f="json", filter="DLMC='旱地'", limit=1000
    )
    assert sorted(f["id"] for f in reply.json()["features"]) == expect
    # a Chinese property name, unquoted: the layer has none, so the 400 must name it
    # (a parse error would say "Bad CQL text" instead)
    unknown = get(server, "/collections/nrp-landuse/items", f="json", filter="类别='二级甲等'")
    assert unknown.status_code == 400 and "类别" in unknown.json()["description"]
    short = get(server, "/collections/nrp-landuse/items", f="json", filter="a=1")
    assert short.status_code == 400 and "unknown properties a" in short.json()["description"]


def test_gdal_opens_layers_in_their_storage_crs_epsg_4490(server):
    described = get(server, "/collections/tra-roads", f="json").json()
    assert described["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/4490"
    assert "storageCrsCoordinateEpoch" not in described  # CGCS2000 is a static CRS
    listed = get(server, "/collections", f="json").json()["collections"]
    served = [c for c in listed if "storageCrs" in c]
    assert served and all(c["storageCrs"].endswith("EPSG/0/4490") for c in served)
    info = pyogrio.read_info(f"OAPIF:{server.url}/collections/tra-roads")
    assert info["crs"] == "EPSG:4490"
    frame = pyogrio.read_dataframe(f"OAPIF:{server.url}/collections/tra-roads", max_features=3)
    x, y = frame.geometry.iloc[0].coords[0]
    assert 112 < x < 115 and 33 < y < 35  # GIS order in GDAL: lon, lat


def test_sensor_numbers_are_numbers_and_filter_as_numbers(server, demo_data):
    source = demo_data.parent / "sources" / "wat" / "water_level_sensors.csv"
    with source.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expect = sorted(r["sensor_id"] for r in rows if float(r["warning_level"]) > 100)
    assert 0 < len(expect) < len(rows) or len(expect) == len(rows)
    reply = get(
        server,
        "/collections/wat-water_level_sensors/items",
        f="json",
        filter="warning_level > 100",
        limit=1000,
    )
    assert reply.status_code == 200, reply.text
    assert sorted(f["id"] for f in reply.json()["features"]) == expect
    higher = max(float(r["warning_level"]) for r in rows) - 1
    expect_high = sorted(r["sensor_id"] for r in rows if float(r["warning_level"]) > higher)
    reply = get(
        server,
        "/collections/wat-water_level_sensors/items",
        f="json",
        filter=f"warning_level > {higher}",
    )
    assert sorted(f["id"] for f in reply.json()["features"]) == expect_high
    queryables = get(server, "/collections/wat-water_level_sensors/queryables", f="json").json()
    types = {k: v.get("type") for k, v in queryables["properties"].items()}
    assert types["warning_level"] == "number" and types["min_valid"] == "number"
    assert types["lon"] == "number" and types["sensor_id"] == "string"
    feature = reply.json()["features"][0]["properties"]
    assert isinstance(feature["warning_level"], float)


def _signed_area(ring: list[list[float]]) -> float:
    """Shoelace: positive for a counter-clockwise ring (x east, y north)."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0, *_), (x1, y1, *_) in itertools.pairwise(ring))


def _polygons(geometry: dict) -> list[list[list[list[float]]]]:
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    if geometry["type"] == "MultiPolygon":
        return geometry["coordinates"]
    return []


@pytest.mark.parametrize(
    "collection", ["nrp-landuse", "nrp-planning_zones", "nrp-farmland_protection"]
)
def test_geojson_rings_follow_rfc_7946(server, collection):
    body = get(server, f"/collections/{collection}/items", f="json", limit=300).json()
    polygons = [p for f in body["features"] if f["geometry"] for p in _polygons(f["geometry"])]
    assert polygons, f"{collection} served no polygons"
    for rings in polygons:
        assert _signed_area(rings[0]) > 0  # exterior counter-clockwise
        assert all(_signed_area(hole) < 0 for hole in rings[1:])  # holes clockwise


def test_a_clockwise_source_is_stored_counter_clockwise(tmp_path):
    import json

    from shikong.spatial.readers import read

    exterior = [[113.0, 33.0], [113.0, 33.1], [113.1, 33.1], [113.1, 33.0], [113.0, 33.0]]
    hole = [[113.02, 33.02], [113.08, 33.02], [113.08, 33.08], [113.02, 33.08], [113.02, 33.02]]
    assert _signed_area(exterior) < 0 and _signed_area(hole) > 0  # the wrong way round
    source = tmp_path / "cw.geojson"
    geometry = {"type": "Polygon", "coordinates": [exterior, hole]}
    feature = {"type": "Feature", "properties": {"n": 1}, "geometry": geometry}
    source.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    frame, _ = read(source)
    polygon = frame.geometry.iloc[0]
    assert _signed_area([list(c) for c in polygon.exterior.coords]) > 0
    assert _signed_area([list(c) for c in polygon.interiors[0].coords]) < 0
    assert abs(polygon.area - (0.01 - 0.0036)) < 1e-12  # the same ground


def test_an_edr_query_that_selects_nothing_says_why(server, demo_data):
    from pyproj import Geod

    sensors = Catalog.open(demo_data)["wat-water_level_sensors"].to_geodataframe()
    far = (113.9, 34.3)  # inside the county's envelope, away from every gauge
    _, _, metres = Geod(ellps="GRS80").inv(
        [far[0]] * len(sensors), [far[1]] * len(sensors), sensors.geometry.x, sensors.geometry.y
    )
    nearest = sensors["sensor_id"].iloc[int(metres.argmin())]
    base = f"{server.url}/collections/wat-water_level_sensors"
    reply = httpx.get(f"{base}/position", params={"coords": f"POINT({far[0]} {far[1]})"})
    assert reply.status_code == 404 and reply.headers["content-type"].startswith("application/json")
    text = reply.json()["description"]
    assert "no sensor" in text and nearest in text
    assert f"{metres.min() / 1000:,.2f} km" in text
    gauge = sensors.iloc[0]
    old = httpx.get(
        f"{base}/position",
        params={
            "coords": f"POINT({gauge.geometry.x} {gauge.geometry.y})",
            "datetime": "2000-01-01T00:00:00Z/2000-01-02T00:00:00Z",
        },
    )
    assert old.status_code == 404 and "no readings of" in old.json()["description"]
    assert gauge["sensor_id"] in old.json()["description"]


def test_refused_requests_log_one_line_without_a_traceback(server):
    from pathlib import Path

    log = Path(server.log.name)
    before = log.read_text()
    for path in (
        "/collections/nrp-landuse/items?bbox=1,2,3",
        "/collections/nrp-landuse/items?filter=NOPE%3D1",
        "/collections/nrp-landuse/items?crs=EPSG:9999",
        "/collections/wat-water_level_sensors/position?coords=POINT(0%200)",
        "/collections/wat-water_level_sensors/locations/NOPE",
        "/collections/nope",
    ):
        assert 400 <= httpx.get(f"{server.url}{path}").status_code < 500
    server.log.flush()
    added = log.read_text()[len(before) :]
    assert "Traceback" not in added, added


def test_the_rainfall_datacube_is_served_as_edr_and_coverage(server, demo_data):
    import numpy as np
    import xarray as xr

    layer = Catalog.open(demo_data)["met-rainfall_grid"]
    cube = xr.open_zarr(layer.current.asset_path, consolidated=False)["precipitation"]
    listed = {c["id"] for c in get(server, "/collections", f="json").json()["collections"]}
    assert "met-rainfall_grid" in listed
    base = f"{server.url}/collections/met-rainfall_grid"
    at = httpx.get(f"{base}/position", params={"coords": "POINT(113.3 33.8)", "f": "json"})
    assert at.status_code == 200, at.text
    expect = cube.sel(x=113.3, y=33.8, method="nearest").values
    got = next(iter(at.json()["ranges"].values()))["values"]
    np.testing.assert_allclose(np.asarray(got, dtype=float), expect, rtol=1e-6)
    box = httpx.get(f"{base}/cube", params={"bbox": "113.2,33.7,113.3,33.8", "f": "json"})
    assert box.status_code == 200, box.text
    inside = cube.where(
        (cube.x >= 113.2) & (cube.x <= 113.3) & (cube.y >= 33.7) & (cube.y <= 33.8), drop=True
    )
    values = next(iter(box.json()["ranges"].values()))["values"]
    assert len(values) == inside.size
    assert np.isclose(np.nansum(np.asarray(values, dtype=float)), float(inside.sum()), rtol=1e-5)
    whole = httpx.get(f"{base}/coverage", params={"f": "json"})
    assert whole.status_code == 200
    assert next(iter(whole.json()["ranges"].values()))["shape"] == list(cube.shape)


@pytest.mark.parametrize(
    "query", ["cube?bbox=0,0,0,0", "position?coords=POINT(0%200)", "cube?bbox=100,20,101,21"]
)
def test_a_datacube_query_outside_the_grid_is_a_404_saying_where_the_grid_is(server, query):
    reply = httpx.get(f"{server.url}/collections/met-rainfall_grid/{query}")
    assert reply.status_code == 404 and "the grid covers 113" in reply.json()["description"]


def test_a_readings_collection_pages_its_readings_as_features(server, demo_data):
    import pandas as pd

    source = pd.read_csv(demo_data.parent / "sources" / "eco" / "air_quality_readings.csv")
    source["time"] = pd.to_datetime(source["time"], utc=True)
    one = source[(source.sensor_id == "ECO-AQ-001") & (source.parameter == "pm25")]
    window = f"{one.time.min():%Y-%m-%dT%H:%M:%SZ}/{one.time.max():%Y-%m-%dT%H:%M:%SZ}"
    base = f"{server.url}/collections/eco-air_quality_readings"
    described = httpx.get(base, params={"f": "json"}).json()
    assert described["itemType"] == "record"  # readings are records, not a feature layer
    assert any(link["rel"] == "items" for link in described["links"])
    page = httpx.get(
        f"{base}/items",
        params={
            "f": "json",
            "sensor_id": "ECO-AQ-001",
            "parameter": "pm25",
            "datetime": window,
            "limit": 1000,
        },
    ).json()
    assert page["numberMatched"] == len(one)
    assert any(link["rel"] == "self" for link in page["links"])
    got = {f["properties"]["time"]: f["properties"]["value"] for f in page["features"]}
    expect = {f"{t:%Y-%m-%dT%H:%M:%SZ}": float(v) for t, v in zip(one.time, one.value, strict=True)}
    assert got == expect
    first = page["features"][0]
    again = httpx.get(f"{base}/items/{first['id']}", params={"f": "json"}).json()
    assert again["properties"] == first["properties"]
    default = httpx.get(f"{base}/items", params={"f": "json"}).json()
    assert default["features"] and default["numberReturned"] == len(default["features"])
    refused = httpx.get(f"{base}/items", params={"f": "json", "filter": "value > 3"})
    assert refused.status_code == 400 and "not supported" in refused.json()["description"]


def test_the_datacube_coverage_answers_formats_it_cannot_serve_with_a_400(server):
    reply = httpx.get(f"{server.url}/collections/met-rainfall_grid/coverage?f=jsonld")
    assert reply.status_code == 400 and "f=json" in reply.json()["description"]
