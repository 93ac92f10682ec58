"""Coverages, maps and EDR over HTTP with OWSLib, compared with the assets and the store."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pandas as pd
import pytest
import rasterio
from owslib.ogcapi.coverages import Coverages
from owslib.ogcapi.edr import EnvironmentalDataRetrieval
from rasterio.windows import from_bounds
from shikong.catalog import Catalog

pytestmark = pytest.mark.usefixtures("as_tester")  # a department user, see conftest


@pytest.fixture(scope="module")
def dem_path(demo_data):
    return str(Catalog.open(demo_data)["nrp-dem"].current.asset_path)


def _window_values(path, bounds):
    with rasterio.open(path) as src:
        window = from_bounds(*bounds, src.transform).round_offsets().round_lengths()
        return src.read(1, window=window)


def test_owslib_coverage_subset_equals_the_cog_window(server, dem_path):
    cov = Coverages(server.url)
    assert "nrp-dem" in cov.coverages()
    bounds = (113.1, 33.7, 113.2, 33.8)
    data = cov.coverage(
        "nrp-dem", subset={"x": bounds[::2], "y": bounds[1::2]}, properties=["elevation"]
    )
    body = data.read()
    truth = _window_values(dem_path, bounds)
    if body[:2] in (b"II", b"MM"):
        with rasterio.MemoryFile(body) as mem, mem.open() as src:
            got = src.read(1)
    else:
        import json

        covjson = json.loads(body)
        rng = covjson["ranges"]["elevation"]
        got = np.array(rng["values"], dtype=float).reshape(rng["shape"])
    np.testing.assert_allclose(got, truth)


def test_geotiff_with_bbox_and_scale_size(server, dem_path):
    response = httpx.get(
        f"{server.url}/collections/nrp-dem/coverage",
        params={"f": "GTiff", "bbox": "113.1,33.7,113.3,33.9", "scale-size": "x(40),y(20)"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/tiff")
    with rasterio.MemoryFile(response.content) as mem, mem.open() as src:
        assert (src.width, src.height) == (40, 20)
        assert src.crs.to_epsg() == 4490
        west, south, east, north = src.bounds
        assert (west, south, east, north) == pytest.approx((113.1, 33.7, 113.3, 33.9), abs=1e-3)
        mean = float(src.read(1).mean())
    truth = _window_values(dem_path, (113.1, 33.7, 113.3, 33.9))
    assert mean == pytest.approx(float(truth.mean()), rel=0.01)  # averaged, not sampled


def test_coverage_errors(server):
    base = f"{server.url}/collections/nrp-dem/coverage"
    for params, words in [
        ({"properties": "nope"}, "nope"),
        ({"bbox": "1,2"}, "bbox"),
        ({"scale-size": "x(a)"}, "scale-size"),
        ({"f": "GTiff"}, None),
    ]:
        response = httpx.get(base, params=params)
        if words is None:  # the whole raster is allowed (it is small)
            assert response.status_code == 200
            continue
        assert response.status_code == 400, response.text
        assert words in response.json()["description"]


def test_map_png(server):
    response = httpx.get(
        f"{server.url}/collections/nrp-dem/map",
        params={"width": 300, "height": 200, "bbox": "113.0,33.6,113.6,34.0"},
    )
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    from matplotlib.image import imread

    image = imread(io.BytesIO(response.content))
    assert image.shape[:2] == (200, 300)
    assert image[..., :3].std() > 0.01  # not a blank image


@pytest.fixture(scope="module")
def readings(demo_data):
    cat = Catalog.open(demo_data)
    return cat["wat-water_level_sensors"], cat.observations


def test_owslib_edr_position_matches_the_store(server, readings):
    layer, store = readings
    sensors = layer.to_geodataframe()
    first = sensors.iloc[0]
    _, last, _ = store.extent(layer.id)
    start = last - pd.Timedelta(hours=6)
    when = f"{start.strftime('%Y-%m-%dT%H:%M:%SZ')}/{last.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    edr = EnvironmentalDataRetrieval(server.url)
    body = edr.query_data(
        "wat-water_level_sensors",
        "position",
        coords=f"POINT({first.geometry.x} {first.geometry.y})",
        datetime_=when,
    )
    import json

    cov = json.loads(body.read()) if hasattr(body, "read") else body
    assert cov["domain"]["domainType"] == "PointSeries"
    truth = store.window(layer.id, [first.sensor_id], start, last)
    assert cov["ranges"]["value"]["values"] == pytest.approx(truth["value"].tolist())
    assert len(cov["domain"]["axes"]["t"]["values"]) == len(truth)


def test_edr_area_cube_locations_and_geojson(server, readings):
    layer, store = readings
    sensors = layer.to_geodataframe()
    base = f"{server.url}/collections/wat-water_level_sensors"
    cube = httpx.get(f"{base}/cube", params={"bbox": "113.0,33.6,113.6,34.0"}).json()
    assert cube["type"] == "CoverageCollection"
    assert sorted(c["shikong:sensor"] for c in cube["coverages"]) == sorted(sensors.sensor_id)
    listed = httpx.get(f"{base}/locations")
    assert listed.headers["content-type"].startswith("application/geo+json")
    assert sorted(f["id"] for f in listed.json()["features"]) == sorted(sensors.sensor_id)
    one = httpx.get(f"{base}/locations/{sensors.sensor_id.iloc[1]}", params={"f": "GeoJSON"})
    features = one.json()["features"]
    latest = store.latest(layer.id, [sensors.sensor_id.iloc[1]])
    assert features[-1]["properties"]["value"] == pytest.approx(latest["value"].iloc[0])
    area = httpx.get(
        f"{base}/area", params={"coords": "POLYGON((113 33.6,113.2 33.6,113.2 34,113 34,113 33.6))"}
    ).json()
    west = sensors[sensors.geometry.x < 113.2].sensor_id
    got = [c["shikong:sensor"] for c in area.get("coverages", [area])]
    assert sorted(got) == sorted(west) or (len(west) == 1 and area["type"] == "Coverage")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/collections/wat-water_level_sensors/position?coords=POINT(0%200)", 404),
        ("/collections/wat-water_level_sensors/position?coords=bogus", 400),
        ("/collections/wat-water_level_sensors/locations/NOPE", 404),
        (
            "/collections/wat-water_level_sensors/position?coords=POINT(113.3%2033.7)"
            "&parameter-name=nope",
            400,
        ),
        ("/collections/wat-water_level_sensors/cube?bbox=1,2", 400),
        ("/collections/wat-water_level_sensors/position?coords=POINT(113%2033)&datetime=x", 400),
    ],
)
def test_edr_errors(server, path, status):
    response = httpx.get(f"{server.url}{path}")
    assert response.status_code == status, response.text


def test_coveragejson_columns_equal_a_pandas_pivot():
    """Several sensors and parameters with readings at different times: each parameter's
    column, aligned on the union of times with gaps as NaN, equals pandas' pivot."""
    import numpy as np
    from shikong.server.providers.edr import _split_by_sensor, _time_by_parameter

    rng = np.random.default_rng(8)
    t0 = pd.Timestamp("2026-05-01", tz="UTC")
    rows = [
        (s, p, t0 + pd.Timedelta(minutes=int(m)), float(rng.normal()))
        for s in ("A1", "B2")
        for p in ("no2", "pm25")
        for m in rng.choice(60, 25, replace=False)
    ]
    frame = pd.DataFrame(rows, columns=["sensor_id", "parameter", "time", "value"])
    frame = frame.sort_values(["sensor_id", "parameter", "time"], ignore_index=True)
    split = _split_by_sensor(frame)
    assert sorted(split) == ["A1", "B2"]
    for sensor, part in frame.groupby("sensor_id"):
        truth = part.pivot_table(index="time", columns="parameter", values="value")
        times, columns = _time_by_parameter(*split[sensor], ["pm25", "no2", "so2"])
        assert times == [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in truth.index]
        for name in ("pm25", "no2"):
            np.testing.assert_array_equal(columns[name], truth[name].to_numpy())
        assert np.isnan(columns["so2"]).all()
