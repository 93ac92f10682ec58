"""The demo city generator: complete, deterministic, readable and coherent across layers."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.features
import rioxarray  # noqa: F401  (registers the .rio accessor)
import shapely
import xarray as xr
from shikong.config import load
from shikong.demo import MANIFEST, SourceFile, generate
from shikong.spatial.readers import read
from shikong.spatial.unit_code import is_valid_unit_code

SEED = 20261125
EXTENT = (113.0, 33.6, 113.6, 34.0)
MARGIN = 0.01
GK = "EPSG:4547"
CULTIVATED = ("0101", "0102", "0103")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SourceFile]]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate(out, scale="small", seed=SEED)


def _one(files: list[SourceFile], layer: str, version: str | None = None) -> SourceFile:
    found = [f for f in files if f.layer == layer and (version is None or f.version == version)]
    assert len(found) == 1, (layer, version, found)
    return found[0]


def _frame(root: Path, record: SourceFile) -> gpd.GeoDataFrame:
    return read(root / record.path, **record.options).frame


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- manifest ---------------------------------------------------------------------------


def test_manifest_lists_what_generate_returns(demo) -> None:
    root, files = demo
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    assert manifest == [asdict(f) for f in files]
    for f in files:
        assert (root / f.path).is_file(), f.path


def test_all_departments_and_enough_layers(demo) -> None:
    _, files = demo
    codes = {d["code"] for d in load("departments")["departments"]}
    assert len(codes) == 13
    assert {f.department for f in files} == codes
    assert len({f.collection for f in files}) >= 25


def test_records_are_well_formed(demo) -> None:
    _, files = demo
    for f in files:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", f.layer), f.layer
        assert f.classification in ("public", "shared", "restricted")
        assert f.kind in ("vector", "raster", "sensors", "readings", "datacube")
        date.fromisoformat(f.valid_from)
        assert f.title and f.title_en and f.description and f.keywords
        assert "/" in f.path and "\\" not in f.path and not f.path.startswith("/")
        assert (f.kind == "readings") == (f.sensor_layer is not None)


def test_manifest_order_versions_then_readings_after_sensors(demo) -> None:
    _, files = demo
    seen: dict[str, str] = {}
    for i, f in enumerate(files):
        if f.collection in seen:
            assert f.valid_from >= seen[f.collection], f.collection
        seen[f.collection] = f.valid_from
        if f.kind == "readings":
            sensors_at = [
                j
                for j, g in enumerate(files)
                if g.department == f.department and g.layer == f.sensor_layer
            ]
            assert sensors_at and max(sensors_at) < i
            assert files[sensors_at[0]].kind == "sensors"
    landuse = [f.version for f in files if f.layer == "landuse"]
    assert landuse == ["2020", "2023"]


def test_same_seed_gives_identical_bytes(demo, tmp_path: Path) -> None:
    root, _ = demo
    again = tmp_path / "again"
    generate(again, scale="small", seed=SEED)
    first, second = _hashes(root), _hashes(again)
    assert first.keys() == second.keys()
    differing = [name for name in first if first[name] != second[name]]
    assert differing == []


def test_unknown_scale_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate(tmp_path, scale="huge")


# --- every vector file reads ------------------------------------------------------------


def test_vector_and_sensor_files_read_into_the_city(demo) -> None:
    root, files = demo
    checked = 0
    for f in files:
        if f.kind in ("readings", "raster", "datacube"):
            continue
        result = read(root / f.path, **f.options)
        frame, report = result.frame, result.report
        assert frame.crs.to_epsg() == 4490, f.path
        assert len(frame) > 0, f.path
        assert report.repaired == [], (f.path, report.repaired[:3])
        assert not (frame.geometry.isna() | frame.geometry.is_empty).any(), f.path
        x0, y0, x1, y1 = frame.total_bounds
        assert x0 >= EXTENT[0] - MARGIN and y0 >= EXTENT[1] - MARGIN, f.path
        assert x1 <= EXTENT[2] + MARGIN and y1 <= EXTENT[3] + MARGIN, f.path
        checked += 1
    assert checked >= 20


def test_landuse_2020_is_a_gbk_shapefile_without_cpg(demo) -> None:
    root, files = demo
    record = _one(files, "landuse", "2020")
    shp = root / record.path
    assert shp.suffix == ".shp"
    assert not shp.with_suffix(".cpg").exists()
    assert shp.with_suffix(".dbf").read_bytes()[29] == 0
    assert "旱地".encode("gbk") in shp.with_suffix(".dbf").read_bytes()
    result = read(shp)
    assert result.report.crs == "EPSG:4526"
    assert result.report.encoding.startswith(("gbk", "gb18030"))
    frame = result.frame
    assert {"DLBM", "DLMC", "QSXZ", "ZLDWMC", "BSM"} <= set(frame.columns)
    assert "旱地" in set(frame["DLMC"])
    assert frame["ZLDWMC"].str.contains("村|社区").all()
    names = load("land_classes")["classes"]
    assert all(names[c]["name"] == n for c, n in zip(frame["DLBM"], frame["DLMC"], strict=True))


def test_camera_csv_is_in_gauss_kruger(demo) -> None:
    root, files = demo
    record = _one(files, "camera_sites")
    assert record.options == {"crs": GK}
    raw = pd.read_csv(root / record.path)
    assert raw["x"].between(300_000, 600_000).all()


# --- land use, approvals and control lines ---------------------------------------------------


def _landuse(root: Path, files: list[SourceFile]) -> dict[str, gpd.GeoDataFrame]:
    return {v: _frame(root, _one(files, "landuse", v)).to_crs(GK) for v in ("2020", "2023")}


def test_landuse_patches_tile_without_overlap_and_changed(demo) -> None:
    root, files = demo
    versions = _landuse(root, files)
    extent = gpd.GeoSeries([shapely.box(*EXTENT)], crs=4490).to_crs(GK).area.iloc[0]
    totals = {}
    for version, frame in versions.items():
        summed = frame.area.sum()
        union = shapely.union_all(frame.geometry.values).area
        assert abs(summed - union) / union < 1e-6, version
        assert abs(union - extent) / extent < 1e-3, version
        assert frame["BSM"].is_unique
        totals[version] = frame.assign(a=frame.area).groupby("DLBM")["a"].sum()
    old, new = totals["2020"], totals["2023"]
    assert new[list(CULTIVATED)].sum() < old[list(CULTIVATED)].sum() - 100_000
    assert new["0602"] != pytest.approx(old["0602"], rel=0.01)
    assert new["0301"] > old["0301"]
    assert len(versions["2023"]) != len(versions["2020"])


def test_farmland_protection_lies_inside_2023_cultivated_land(demo) -> None:
    root, files = demo
    cultivated = _landuse(root, files)["2023"]
    cultivated = shapely.union_all(cultivated[cultivated["DLBM"].isin(CULTIVATED)].geometry.values)
    protected = _frame(root, _one(files, "farmland_protection")).to_crs(GK)
    assert len(protected) > 10
    outside = shapely.union_all(protected.geometry.values).difference(cultivated).area
    assert outside < 1.0
    redline = _frame(root, _one(files, "eco_redline")).to_crs(GK)
    overlap = shapely.union_all(protected.geometry.values).intersection(
        shapely.union_all(redline.geometry.values)
    )
    assert overlap.area < 1.0


def test_planning_zones_partition_the_extent(demo) -> None:
    root, files = demo
    zones = _frame(root, _one(files, "planning_zones")).to_crs(GK)
    union = shapely.union_all(zones.geometry.values).area
    assert abs(zones.area.sum() - union) / union < 1e-6
    extent = gpd.GeoSeries([shapely.box(*EXTENT)], crs=4490).to_crs(GK).area.iloc[0]
    assert abs(union - extent) / extent < 1e-3
    assert {"生态保护区", "城镇发展区", "农田保护区", "矿产能源发展区"} <= set(zones["GHFQMC"])


def test_approvals_do_not_overlap_and_the_submission_is_one_of_them(demo) -> None:
    root, files = demo
    approvals = _frame(root, _one(files, "approved_land")).to_crs(GK)
    assert len(approvals) >= 20
    assert approvals["批准文号"].str.fullmatch(r"豫政土〔\d{4}〕\d+号").all()
    assert approvals["批准文号"].is_unique
    union = shapely.union_all(approvals.geometry.values).area
    assert abs(approvals.area.sum() - union) / union < 1e-6
    submission = _frame(root, _one(files, "approval_submission")).to_crs(GK)
    assert len(submission) == 1
    shape = submission.geometry.iloc[0]
    best = approvals.geometry.intersection(shape).area.max()
    assert best / shape.area > 0.999


def test_mining_rights(demo) -> None:
    root, files = demo
    rights = _frame(root, _one(files, "mining_rights"))
    assert 6 <= len(rights) <= 12
    assert set(rights["矿种"]) == {"煤"}
    assert rights["许可证号"].str.fullmatch(r"C\d{22}").all()
    assert set(rights["状态"]) == {"有效", "注销"}
    centre = shapely.union_all(rights.geometry.values).centroid
    assert abs(centre.x - 113.45) < 0.05 and abs(centre.y - 33.66) < 0.05


# --- cadastre -----------------------------------------------------------------------------------


def _id_check(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


@pytest.fixture(scope="module")
def parcels(demo) -> gpd.GeoDataFrame:
    root, files = demo
    return _frame(root, _one(files, "parcels"))


def test_parcel_unit_codes_are_valid_and_unique(parcels) -> None:
    assert len(parcels) > 50
    assert all(is_valid_unit_code(c) for c in parcels["unit_code"])
    assert parcels["unit_code"].is_unique
    assert (parcels["parcel_code"] == parcels["unit_code"].str[:19]).all()
    assert set(parcels["unit_code"].str[:6]) <= {"410402", "410403"}


def test_id_numbers_have_valid_check_digits(parcels) -> None:
    ids = parcels["id_number"]
    assert ids.str.fullmatch(r"\d{17}[\dX]").all()
    assert all(_id_check(i[:17]) == i[17] for i in ids)


def test_current_parcels_do_not_overlap(parcels) -> None:
    current = parcels[parcels["state"] == 1].to_crs(GK)
    assert current["valid_to"].isna().all()
    union = shapely.union_all(current.geometry.values).area
    assert abs(current.area.sum() - union) / union < 1e-6


def test_parcel_history_has_split_merge_and_rebound(parcels) -> None:
    by_code = parcels.set_index("unit_code")
    changed = parcels[parcels["change_type"].notna()]
    kinds = changed.groupby("change_type")
    assert {"split", "merge", "rebound"} <= set(kinds.groups)
    splits = changed[changed["change_type"] == "split"].groupby("parent_codes").size()
    assert (splits == 2).all()
    merges = changed[changed["change_type"] == "merge"]
    assert merges["parent_codes"].str.split(",").map(len).eq(2).all()
    rebounds = changed[changed["change_type"] == "rebound"]
    assert not rebounds["parent_codes"].str.contains(",").any()
    for _, child in changed.iterrows():
        assert child["state"] == 1 and pd.isna(child["valid_to"])
        for code in child["parent_codes"].split(","):
            old = by_code.loc[code]
            assert old["state"] == 2
            assert old["valid_to"] == child["valid_from"]
            assert old["geometry"].intersects(child["geometry"])
    assert (parcels[parcels["state"] == 2]["valid_to"].notna()).all()


# --- rasters and cubes --------------------------------------------------------------------------


def _mean_ndvi(path: Path, polygons: gpd.GeoSeries) -> float:
    with rasterio.open(path) as src:
        red, nir = (src.read(i).astype("float64") for i in (1, 2))
        inside = rasterio.features.geometry_mask(
            polygons.to_crs(src.crs).geometry.values,
            out_shape=(src.height, src.width),
            transform=src.transform,
            invert=True,
        )
    ndvi = (nir - red) / (nir + red)
    return float(ndvi[inside].mean())


def test_ndvi_rises_on_the_remediated_mine_and_falls_on_active_ones(demo) -> None:
    root, files = demo
    before = root / _one(files, "rs_mining", "2019").path
    after = root / _one(files, "rs_mining", "2024").path
    remediated = _frame(root, _one(files, "mine_remediation"))
    assert _mean_ndvi(after, remediated.geometry) - _mean_ndvi(before, remediated.geometry) > 0.3
    rights = _frame(root, _one(files, "mining_rights"))
    active = rights[rights["状态"] == "有效"]
    assert len(active) >= 5
    for geom in active.geometry:
        one = gpd.GeoSeries([geom], crs=rights.crs)
        assert _mean_ndvi(after, one) < _mean_ndvi(before, one) - 0.02


def test_rasters_are_cogs_in_cgcs2000(demo) -> None:
    root, files = demo
    for f in (x for x in files if x.kind == "raster"):
        with rasterio.open(root / f.path) as src:
            assert src.crs.to_epsg() == 4490
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert src.nodata is not None
            b = src.bounds
            assert b.left >= EXTENT[0] - MARGIN and b.right <= EXTENT[2] + MARGIN
    with rasterio.open(root / _one(files, "dem").path) as src:
        dem = src.read(1)
        width = src.width
    west, east = dem[:, : width // 6].mean(), dem[:, -width // 6 :].mean()
    assert west > east + 150


def test_rainfall_cube(demo) -> None:
    root, files = demo
    record = _one(files, "rainfall_grid")
    with xr.open_dataset(root / record.path, engine="scipy", decode_coords="all") as ds:
        rain = ds["precipitation"]
        assert rain.dims == ("time", "y", "x")
        assert rain.rio.crs.to_epsg() == 4490
        assert rain.sizes["time"] == 72
        values = rain.values
    assert np.nanmin(values) >= 0 and np.nanmax(values) > 10


# --- sensors and readings ---------------------------------------------------------------


def test_readings_belong_to_their_sensors(demo) -> None:
    root, files = demo
    for f in (x for x in files if x.kind == "readings"):
        sensors = pd.read_csv(root / _one(files, f.sensor_layer).path)
        readings = pd.read_csv(root / f.path)
        assert {"sensor_id", "time", "value"} <= set(readings.columns)
        assert set(readings["sensor_id"]) <= set(sensors["sensor_id"])
        assert readings["time"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00").all()
        assert readings["time"].is_monotonic_increasing


def test_storm_lifts_water_above_warning(demo) -> None:
    root, files = demo
    sensors = pd.read_csv(root / _one(files, "water_level_sensors").path)
    assert set(sensors.columns) >= {
        "sensor_id", "name", "kind", "lon", "lat", "unit", "min_valid", "max_valid",
        "warning_level",
    }  # fmt: skip
    readings = pd.read_csv(root / _one(files, "water_level_readings").path)
    merged = readings.merge(sensors, on="sensor_id")
    valid = merged[merged["value"].between(merged["min_valid"], merged["max_valid"])]
    assert len(valid) < len(merged)  # a few glitches are part of the feed
    above = valid[valid["value"] > valid["warning_level"]]
    assert len(above) > 0
    assert len(above["sensor_id"].unique()) < len(sensors)  # not every gauge floods


def test_air_quality_readings_carry_a_parameter(demo) -> None:
    root, files = demo
    readings = pd.read_csv(root / _one(files, "air_quality_readings").path)
    assert set(readings["parameter"]) == {"pm25", "aqi"}
