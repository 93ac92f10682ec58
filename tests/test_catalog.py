"""The catalog: versions, time travel, search, crash safety, STAC validity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import xarray as xr
from shapely.geometry import Point, box
from shikong.catalog import Catalog
from shikong.catalog.extension import validation_errors
from shikong.spatial.errors import InputError
from shikong.spatial.raster import is_cog


def write_geojson(path: Path, boxes: list[tuple], **columns) -> Path:
    frame = gpd.GeoDataFrame(
        columns or {"n": list(range(len(boxes)))}, geometry=[box(*b) for b in boxes], crs=4490
    )
    frame.to_file(path)
    return path


def all_stac_errors(data: Path) -> list[str]:
    errors = []
    for path in sorted((data / "stac").rglob("*.json")):
        errors += [f"{path.name}: {e}" for e in validation_errors(json.loads(path.read_text()))]
    return errors


@pytest.fixture
def cat(tmp_path) -> Catalog:
    return Catalog.open(tmp_path / "data")


def test_versions_and_time_travel_at_the_boundaries(cat, tmp_path):
    a = write_geojson(tmp_path / "a.geojson", [(113.1, 33.7, 113.2, 33.8)], DLBM=["0103"])
    b = write_geojson(tmp_path / "b.geojson", [(113.1, 33.7, 113.2, 33.8)], DLBM=["0701"])
    cat.ingest(a, department="nrp", layer="landuse", version="2020", valid_from="2020-12-31")
    cat.ingest(b, department="nrp", layer="landuse", version="2023", valid_from="2023-12-31")
    layer = cat.layer("nrp-landuse")
    assert [v.version for v in layer.versions] == ["2020", "2023"]
    assert layer.as_of("2021-06-30").version == "2020"
    assert layer.as_of("2023-12-30T23:59:59Z").version == "2020"
    assert layer.as_of("2023-12-31T00:00:00Z").version == "2023"  # the start is inclusive
    assert layer.as_of("2030-01-01").version == "2023"
    with pytest.raises(InputError, match="no version was valid on 2019-01-01"):
        layer.as_of("2019-01-01")
    assert layer.to_geodataframe(as_of="2021-06-30")["DLBM"].tolist() == ["0103"]
    assert layer.to_geodataframe()["DLBM"].tolist() == ["0701"]
    old = layer.versions[0].item["properties"]
    assert old["shikong:valid_to"] == "2023-12-31T00:00:00Z" and old["deprecated"] is True
    assert old["start_datetime"] == "2020-12-31T00:00:00Z" and old["datetime"] is None
    assert all_stac_errors(cat.paths.root) == []


def test_versions_arriving_out_of_order_are_chained_by_validity(cat, tmp_path):
    b = write_geojson(tmp_path / "b.geojson", [(113.1, 33.7, 113.2, 33.8)], DLBM=["0701"])
    a = write_geojson(tmp_path / "a.geojson", [(113.1, 33.7, 113.2, 33.8)], DLBM=["0103"])
    cat.ingest(b, department="nrp", layer="landuse", version="2023", valid_from="2023-12-31")
    cat.ingest(a, department="nrp", layer="landuse", version="2020", valid_from="2020-12-31")
    layer = cat.layer("nrp-landuse")
    assert layer.as_of("2022-01-01").version == "2020"
    assert layer.current.version == "2023"
    c = write_geojson(tmp_path / "c.geojson", [(113.1, 33.7, 113.2, 33.8)], DLBM=["0301"])
    cat.ingest(c, department="nrp", layer="landuse", version="2021", valid_from="2021-12-31")
    layer = cat.layer("nrp-landuse")  # a version between two others relinks both
    assert [v.version for v in layer.versions] == ["2020", "2021", "2023"]
    assert layer.as_of("2022-01-01").version == "2021"
    assert (
        cat.search(ids=["nrp-landuse-v2020"]).items[0]["properties"]["shikong:valid_to"]
        == "2021-12-31T00:00:00Z"
    )


def test_identical_reingest_is_a_noop(cat, tmp_path):
    a = write_geojson(tmp_path / "a.geojson", [(113.1, 33.7, 113.2, 33.8)])
    first = cat.ingest(a, department="nrp", layer="landuse")
    files = sorted(p for p in cat.paths.root.rglob("*") if p.is_file() and "sqlite" not in p.name)
    mtimes = [p.stat().st_mtime_ns for p in files]
    again = cat.ingest(a, department="nrp", layer="landuse")
    assert again.status == "unchanged" and again.item_id == first.item_id
    assert cat.version == first.catalog_version
    assert [p.stat().st_mtime_ns for p in files] == mtimes
    assert len(cat.layer("nrp-landuse").versions) == 1


def test_a_version_label_cannot_be_reused_for_other_content(cat, tmp_path):
    a = write_geojson(tmp_path / "a.geojson", [(113.1, 33.7, 113.2, 33.8)])
    b = write_geojson(tmp_path / "b.geojson", [(113.2, 33.7, 113.3, 33.8)])
    cat.ingest(a, department="nrp", layer="landuse", version="1")
    with pytest.raises(InputError, match="versions never change"):
        cat.ingest(b, department="nrp", layer="landuse", version="1")


def test_corrupt_source_is_refused_and_changes_nothing(cat, tmp_path):
    good = write_geojson(tmp_path / "a.geojson", [(113.1, 33.7, 113.2, 33.8)])
    cat.ingest(good, department="nrp", layer="landuse")
    before = cat.version
    snapshot = {p: p.read_bytes() for p in (cat.paths.root / "stac").rglob("*.json")}
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(InputError, match="bad.geojson"):
        cat.ingest(bad, department="nrp", layer="landuse")
    assert cat.version == before
    assert {p: p.read_bytes() for p in (cat.paths.root / "stac").rglob("*.json")} == snapshot
    assert sorted(p.name for p in (cat.paths.root / "assets/nrp/landuse").iterdir()) == ["1"]


@pytest.mark.parametrize(
    "bad",
    [
        {"department": "xyz"},
        {"layer": "Land Use"},
        {"classification": "secret"},
        {"version": "a b"},
    ],
)
def test_bad_requests_name_the_problem(cat, tmp_path, bad):
    a = write_geojson(tmp_path / "a.geojson", [(113.1, 33.7, 113.2, 33.8)])
    args = {"department": "nrp", "layer": "landuse", **bad}
    with pytest.raises(InputError, match=str(next(iter(bad.values())))):
        cat.ingest(a, **args)


def test_gbk_shapefile_in_prefixed_zone_38(cat, tmp_path):
    frame = gpd.GeoDataFrame(
        {"地类名称": ["旱地", "城镇住宅用地"], "权属单位": ["东村", "西村"]},
        geometry=[
            box(38_500_000, 3_737_000, 38_500_100, 3_737_100),
            box(38_501_000, 3_737_000, 38_501_100, 3_737_100),
        ],
        crs=4526,
    )
    shp = tmp_path / "地类图斑.shp"
    pyogrio.write_dataframe(frame, shp, encoding="GBK")
    shp.with_suffix(".cpg").unlink()
    result = cat.ingest(shp, department="nrp", layer="landuse", title="土地利用现状")
    assert result.report.encoding == "gbk (detected)"
    stored = cat.layer("nrp-landuse").to_geodataframe()
    assert stored.crs.to_epsg() == 4490
    assert stored["地类名称"].tolist() == ["旱地", "城镇住宅用地"]
    assert stored.total_bounds[0] == pytest.approx(114.0, abs=1e-3)  # zone 38's meridian
    item = cat.layer("nrp-landuse").current.item
    assert item["properties"]["shikong:source"]["crs"] == "EPSG:4526"
    assert item["properties"]["proj:code"] == "EPSG:4490"
    names = [c["name"] for c in item["properties"]["table:columns"]]
    assert "地类名称" in names


def test_geoparquet_asset_has_a_bbox_covering_column(cat, tmp_path):
    import pyarrow.parquet as pq

    a = write_geojson(tmp_path / "a.geojson", [(113.1, 33.7, 113.2, 33.8)])
    cat.ingest(a, department="nrp", layer="landuse")
    path = cat.layer("nrp-landuse").current.asset_path
    geo = json.loads(pq.read_schema(path).metadata[b"geo"])
    assert geo["version"] == "1.1.0"
    assert geo["columns"]["geometry"]["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    item = cat.layer("nrp-landuse").current.item
    size = item["assets"]["data"]["file:size"]
    assert size == path.stat().st_size
    import hashlib

    assert (
        item["assets"]["data"]["file:checksum"]
        == "1220" + hashlib.sha256(path.read_bytes()).hexdigest()
    )


def test_raster_ingest_writes_a_cog(cat, tmp_path):
    h, w = 300, 400
    da = xr.DataArray(
        np.arange(h * w, dtype="float32").reshape(1, h, w),
        dims=("band", "y", "x"),
        coords={
            "band": [1],
            "y": 33.9 - (np.arange(h) + 0.5) * 1e-3,
            "x": 113.0 + (np.arange(w) + 0.5) * 1e-3,
        },
    ).rio.write_crs(4490)
    src = tmp_path / "dem.tif"
    da.rio.to_raster(src)  # a plain striped GeoTIFF, as departments deliver
    assert not is_cog(src)
    cat.ingest(src, department="nrp", layer="dem", valid_from="2024-01-01")
    layer = cat.layer("nrp-dem")
    assert layer.kind == "raster" and is_cog(layer.current.asset_path)
    arr = layer.to_xarray()
    assert float(arr.sum()) == pytest.approx(h * w * (h * w - 1) / 2, rel=1e-6)
    props = layer.current.item["properties"]
    assert props["proj:shape"] == [h, w] and props["proj:code"] == "EPSG:4490"
    assert layer.current.item["bbox"] == pytest.approx([113.0, 33.6, 113.4, 33.9])
    assert all_stac_errors(cat.paths.root) == []


def test_datacube_ingest_writes_zarr(cat, tmp_path):
    times = pd.date_range("2024-07-01", periods=24, freq="h")
    ds = xr.Dataset(
        {"rain": (("time", "lat", "lon"), np.ones((24, 5, 6), dtype="float32"), {"units": "mm"})},
        coords={
            "time": times,
            "lat": np.linspace(33.6, 34.0, 5),
            "lon": np.linspace(113.0, 113.6, 6),
        },
    )
    src = tmp_path / "rain.nc"
    ds.to_netcdf(src, engine="h5netcdf")
    cat.ingest(src, department="met", layer="rainfall_grid", valid_from="2024-07-01")
    out = cat.layer("met-rainfall_grid").to_xarray()
    assert float(out.rain.sum()) == 24 * 5 * 6
    assert (
        cat.layer("met-rainfall_grid").current.item["properties"]["shikong:variables"]["rain"][
            "unit"
        ]
        == "mm"
    )


def test_readings_are_validated_and_idempotent(cat, tmp_path):
    sensors = tmp_path / "sensors.csv"
    sensors.write_text(
        "sensor_id,name,lon,lat,unit,min_valid,max_valid\n"
        "WL01,东湖,113.3,33.78,m,0,50\nWL02,西湖,113.1,33.7,m,0,50\n",
        encoding="utf-8",
    )
    cat.ingest(sensors, department="wat", layer="water_level_sensors", kind="sensors")
    readings = tmp_path / "readings.csv"
    readings.write_text(
        "sensor_id,time,value\n"
        "WL01,2024-07-01T08:00:00+08:00,12.5\n"
        "WL01,2024-07-01T08:10:00+08:00,12.7\n"
        "WL02,2024-07-01T08:00:00+08:00,9.1\n"
        "WL01,2024-07-01T08:10:00+08:00,12.7\n"  # duplicate
        "WL99,2024-07-01T08:00:00+08:00,1\n"  # unknown sensor
        "WL01,yesterday,1\n"  # unparseable time
        "WL01,2024-07-01T08:20:00+08:00,999\n"  # outside 0..50
        "WL02,2099-01-01T00:00:00+08:00,1\n"  # future
        "WL02,2024-07-01T08:10:00+08:00,abc\n"
    )  # not a number
    result = cat.ingest(
        readings, department="wat", layer="water_level_readings", sensor_layer="water_level_sensors"
    )
    r = result.readings
    assert (r.accepted, r.duplicates) == (3, 1)
    assert dict(r.rejected) == {
        "unknown sensor": 1,
        "unparseable time": 1,
        "value outside the sensor's valid range": 1,
        "time in the future": 1,
        "value is not a number": 1,
    }
    again = cat.ingest(
        readings, department="wat", layer="water_level_readings", sensor_layer="water_level_sensors"
    )
    assert again.status == "unchanged" and again.readings.accepted == 0
    window = cat.layer("wat-water_level_readings").readings(sensors=["WL01"])
    assert window["value"].tolist() == [12.5, 12.7]
    assert window["time"].iloc[0] == pd.Timestamp("2024-07-01T00:00:00Z")
    latest = cat.layer("wat-water_level_sensors").latest()
    assert dict(zip(latest.sensor_id, latest.value, strict=True)) == {"WL01": 12.7, "WL02": 9.1}
    assert all_stac_errors(cat.paths.root) == []


def test_search_matches_an_independent_filter(cat, tmp_path):
    rng = np.random.default_rng(7)
    truth = []
    depts = ["nrp", "wat", "eco", "agr"]
    for i in range(24):
        x, y = 113.0 + rng.uniform(0, 0.5), 33.6 + rng.uniform(0, 0.35)
        b = (x, y, x + 0.05, y + 0.05)
        dept = depts[i % 4]
        year = 2018 + i % 6
        title = ["耕地保护", "河流水系", "空气质量", "农田水利"][i % 4] + f" {i}"
        src = write_geojson(tmp_path / f"l{i}.geojson", [b])
        cat.ingest(
            src, department=dept, layer=f"layer_{i}", valid_from=f"{year}-01-01", title=title
        )
        truth.append(
            {"id": f"{dept}-layer_{i}-v1", "bbox": b, "dept": dept, "year": year, "title": title}
        )

    def ids(result):
        return sorted(result.ids)

    q = (113.2, 33.7, 113.3, 33.8)
    expect = sorted(
        t["id"]
        for t in truth
        if t["bbox"][0] <= q[2]
        and t["bbox"][2] >= q[0]
        and t["bbox"][1] <= q[3]
        and t["bbox"][3] >= q[1]
    )
    assert ids(cat.search(bbox=q)) == expect and expect
    # every layer has one version, open-ended: valid on a date iff it started by then
    expect = sorted(t["id"] for t in truth if t["year"] <= 2020)
    assert ids(cat.search(datetime="2020-06-30")) == expect
    expect = sorted(t["id"] for t in truth if t["year"] <= 2022)  # open-ended validity
    assert ids(cat.search(datetime="2021-01-01/2022-12-31", current_only=True)) == expect
    assert ids(cat.search(datetime="../2019-12-31")) == sorted(
        t["id"] for t in truth if t["year"] <= 2019
    )
    assert ids(cat.search(departments=["wat"])) == sorted(
        t["id"] for t in truth if t["dept"] == "wat"
    )
    assert ids(cat.search(text="河流")) == sorted(t["id"] for t in truth if "河流" in t["title"])
    assert ids(cat.search(text="空气质量")) == sorted(
        t["id"] for t in truth if "空气质量" in t["title"]
    )
    assert ids(cat.search(text="水利局")) == sorted(  # the department's name is searchable
        t["id"] for t in truth if t["dept"] == "wat"
    )
    tri = box(113.0, 33.6, 113.25, 33.95)
    hit = cat.search(intersects=tri.__geo_interface__)
    assert ids(hit) == sorted(t["id"] for t in truth if box(*t["bbox"]).intersects(tri))
    page = cat.search(limit=5, offset=5, sortby=[("id", True)])
    assert page.ids == sorted(t["id"] for t in truth)[5:10] and page.matched == 24


def test_catalog_tree_links_resolve_and_validate(cat, tmp_path):
    import pystac

    a = write_geojson(tmp_path / "a.geojson", [(113.1, 33.7, 113.2, 33.8)])
    cat.ingest(a, department="nrp", layer="landuse", title="土地利用现状")
    cat.ingest(a, department="wat", layer="rivers", title="河流")
    root = pystac.Catalog.from_file(str(cat.paths.root_catalog))
    assert sorted(c.id for c in root.get_children()) == ["nrp", "wat"]
    items = list(root.get_items(recursive=True))
    assert sorted(i.id for i in items) == ["nrp-landuse-v1", "wat-rivers-v1"]
    for item in items:
        assert Path(item.assets["data"].get_absolute_href()).exists()
    assert root.extra_fields["shikong:catalog_version"] == cat.version
    assert all_stac_errors(cat.paths.root) == []


KILL_SCRIPT = """
import sys
from shikong.catalog import Catalog
Catalog.open(sys.argv[1]).ingest(sys.argv[2], department="nrp", layer="landuse",
                                 version="2", valid_from="2024-01-01")
"""


@pytest.mark.parametrize("point", ["after-asset", "before-export"])
def test_kill_9_mid_ingest_leaves_a_valid_catalog(cat, tmp_path, point):
    a = write_geojson(tmp_path / "a.geojson", [(113.1, 33.7, 113.2, 33.8)], DLBM=["0103"])
    b = write_geojson(tmp_path / "b.geojson", [(113.1, 33.7, 113.2, 33.8)], DLBM=["0701"])
    cat.ingest(a, department="nrp", layer="landuse", version="1", valid_from="2020-01-01")
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(cat.paths.root), str(b)],
        env={**os.environ, "SHIKONG_FAULT": point},
        capture_output=True,
    )
    assert proc.returncode == -9, proc.stderr.decode()
    reopened = Catalog.open(cat.paths.root)
    assert all_stac_errors(reopened.paths.root) == []
    versions = [v.version for v in reopened.layer("nrp-landuse").versions]
    if point == "after-asset":  # died before the commit: the old catalog, whole
        assert versions == ["1"]
        assert reopened.layer("nrp-landuse").to_geodataframe()["DLBM"].tolist() == ["0103"]
    else:  # died after the commit: the next opener finished the export
        assert versions == ["1", "2"]
        item = json.loads(
            (reopened.paths.stac / "nrp/landuse/items/nrp-landuse-v2.json").read_text()
        )
        assert item["id"] == "nrp-landuse-v2"
    # and the catalog still takes the ingest the dead process was doing
    again = reopened.ingest(
        b, department="nrp", layer="landuse", version="2", valid_from="2024-01-01"
    )
    assert again.status in ("created", "unchanged")
    assert reopened.layer("nrp-landuse").current.to_geodataframe()["DLBM"].tolist() == ["0701"]


def test_kill_9_at_a_random_moment_of_a_big_ingest(cat, tmp_path):
    rng = np.random.default_rng(1)
    pts = gpd.GeoDataFrame(
        {"v": np.arange(200_000)},
        geometry=gpd.points_from_xy(
            rng.uniform(113, 113.6, 200_000), rng.uniform(33.6, 34, 200_000)
        ),
        crs=4490,
    )
    big = tmp_path / "big.parquet"
    pts.to_parquet(big)
    small = write_geojson(tmp_path / "a.geojson", [(113.1, 33.7, 113.2, 33.8)])
    cat.ingest(small, department="nrp", layer="landuse", version="1", valid_from="2020-01-01")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(cat.paths.root), str(big)])
    import time

    time.sleep(1.5)
    proc.kill()
    proc.wait()
    reopened = Catalog.open(cat.paths.root)
    assert all_stac_errors(reopened.paths.root) == []
    layer = reopened.layer("nrp-landuse")
    for version in layer.versions:  # whatever got committed is whole
        assert len(version.to_geodataframe()) in (1, 200_000)


def test_cli_ingest_and_list(tmp_path):
    from click.testing import CliRunner
    from shikong.server.cli import main

    a = write_geojson(tmp_path / "a.geojson", [(113.1, 33.7, 113.2, 33.8)])
    data = tmp_path / "data"
    run = CliRunner().invoke(
        main,
        [
            "ingest",
            str(a),
            "-d",
            "nrp",
            "-l",
            "landuse",
            "--data",
            str(data),
            "--title",
            "土地利用现状",
            "--valid-from",
            "2020-01-01",
            "--classification",
            "public",
        ],
    )
    assert run.exit_code == 0, run.output
    assert "created nrp-landuse-v1" in run.output
    listed = CliRunner().invoke(main, ["catalog", "list", "--data", str(data)])
    assert "nrp-landuse" in listed.output and "public" in listed.output
    valid = CliRunner().invoke(main, ["catalog", "validate", "--data", str(data)])
    assert valid.exit_code == 0 and "0 errors" in valid.output
    bad = CliRunner().invoke(main, ["ingest", str(a), "-d", "zzz", "-l", "x", "--data", str(data)])
    assert bad.exit_code == 2 and "unknown department 'zzz'" in bad.output


def test_points_layer_footprint(cat, tmp_path):
    src = tmp_path / "p.geojson"
    gpd.GeoDataFrame(geometry=[Point(113.3, 33.78)], crs=4490).to_file(src)
    cat.ingest(src, department="psb", layer="cameras", classification="restricted")
    hit = cat.search(bbox=(113.29, 33.77, 113.31, 33.79))
    assert hit.ids == ["psb-cameras-v1"]
    assert cat.layer("psb-cameras").classification == "restricted"


def test_demo_build_small(tmp_path):
    """The whole demo city: 13 departments, >= 25 layers, every STAC file valid."""
    from click.testing import CliRunner
    from shikong.server.cli import main

    data = tmp_path / "data"
    run = CliRunner().invoke(main, ["demo", "build", "--scale", "small", "--data", str(data)])
    assert run.exit_code == 0, run.output
    cat = Catalog.open(data)
    assert len(cat.departments) == 13
    assert len(cat.collections()) >= 25
    assert all_stac_errors(data) == []
    kinds = {layer.kind for layer in cat.collections()}
    assert kinds == {"vector", "raster", "sensors", "readings", "datacube"}
    # a second build finds every source unchanged
    version = cat.version
    again = CliRunner().invoke(main, ["demo", "build", "--scale", "small", "--data", str(data)])
    assert again.exit_code == 0, again.output
    assert Catalog.open(data).version == version


def test_resampled_aggregates_match_pandas(cat, tmp_path):
    sensors = tmp_path / "s.csv"
    sensors.write_text("sensor_id,lon,lat,min_valid,max_valid\nS1,113.3,33.7,0,1000\n")
    cat.ingest(sensors, department="wat", layer="gauges", kind="sensors")
    rng = np.random.default_rng(3)
    times = pd.date_range("2024-07-01", periods=500, freq="7min", tz="UTC")
    values = rng.uniform(0, 100, len(times)).round(3)
    frame = pd.DataFrame(
        {"sensor_id": "S1", "time": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": values}
    )
    readings = tmp_path / "r.csv"
    frame.to_csv(readings, index=False)
    cat.ingest(readings, department="wat", layer="gauge_readings", sensor_layer="gauges")
    layer = cat["wat-gauges"]
    truth = pd.Series(values, index=times)
    hourly = layer.resample("1h", "mean")
    expect = truth.resample("1h").mean().dropna()
    np.testing.assert_allclose(hourly["mean"], expect.values, rtol=1e-12)
    assert hourly["time"].tolist() == expect.index.tolist()
    daily = layer.resample("1D", "max")
    np.testing.assert_allclose(daily["max"], truth.resample("1D").max().values)


@pytest.mark.parametrize(
    "ring, is_box",
    [
        ([[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]], True),
        ([[0, 0], [0, 1], [2, 1], [2, 0], [0, 0]], True),
        ([[0, 0], [2, 1], [0, 1], [2, 0], [0, 0]], False),  # bowtie through the corners
        ([[0, 0], [0, 1], [0, 0], [0, 1], [0, 0]], False),  # no width
        ([[0, 0], [2, 0], [0, 0], [2, 0], [0, 0]], False),  # back and forth
        ([[0, 0], [3, 0], [3, 1], [0, 1], [0, 0]], False),  # another box
    ],
)
def test_only_a_footprint_that_is_its_bbox_is_left_to_the_bbox(ring, is_box):
    """A footprint equal to its bbox rectangle is not stored twice; any other is kept."""
    from shikong.catalog.sqlite_store import _footprint

    item = {"geometry": {"type": "Polygon", "coordinates": [ring]}, "bbox": [0, 0, 2, 1]}
    assert (_footprint(item) is None) == is_box
