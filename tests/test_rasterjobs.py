"""Raster jobs against brute force: pixel centres tested one by one with shapely."""

from __future__ import annotations

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (registers the .rio accessor)
import shapely
import xarray as xr
from shapely.geometry import Polygon, box
from shikong.spatial.rasterjobs import change, ndvi, zonal_stats

H, W = 60, 80
X0, Y0, RES = 113.0, 33.9, 0.001  # north-west corner, 0.001° pixels


def grid(values: np.ndarray, chunks=(1, 25, 30)) -> xr.DataArray:
    da_ = xr.DataArray(
        values[None].astype("float64"),
        dims=("band", "y", "x"),
        coords={
            "band": [1],
            "y": Y0 - (np.arange(values.shape[0]) + 0.5) * RES,
            "x": X0 + (np.arange(values.shape[1]) + 0.5) * RES,
        },
    ).rio.write_crs(4490)
    return da_.chunk({"band": chunks[0], "y": chunks[1], "x": chunks[2]})


def brute_force(values: np.ndarray, polygon) -> np.ndarray:
    """Values of the pixels whose centre lies in the polygon (shapely, one by one)."""
    rows, cols = np.indices(values.shape)
    xs = X0 + (cols + 0.5) * RES
    ys = Y0 - (rows + 0.5) * RES
    inside = shapely.contains_xy(polygon, xs.ravel(), ys.ravel()).reshape(values.shape)
    picked = values[inside]
    return picked[np.isfinite(picked)]


@pytest.fixture(scope="module")
def raster_and_zones():
    rng = np.random.default_rng(5)
    values = rng.normal(100, 20, (H, W))
    values[10:15, 10:20] = np.nan  # nodata
    polygons = [
        box(X0 + 0.005, Y0 - 0.030, X0 + 0.025, Y0 - 0.008),  # over the nodata hole
        box(X0 + 0.010, Y0 - 0.020, X0 + 0.040, Y0 - 0.010),  # edges on pixel edges
        Polygon(
            [(X0 + 0.0301, Y0 - 0.0501), (X0 + 0.0705, Y0 - 0.0402), (X0 + 0.0503, Y0 - 0.0203)]
        ),  # a triangle
        box(X0 + 0.070, Y0 - 0.070, X0 + 0.100, Y0 - 0.050),  # partly outside
        box(X0 + 0.2, Y0 - 0.2, X0 + 0.3, Y0 - 0.1),  # wholly outside
    ]
    zones = gpd.GeoDataFrame({"zid": [10, 20, 30, 40, 50]}, geometry=polygons, crs=4490)
    return values, zones


def test_zonal_stats_equal_brute_force(raster_and_zones):
    values, zones = raster_and_zones
    stats = ("count", "sum", "mean", "min", "max", "std")
    got = zonal_stats(grid(values), zones, stats=stats, percentiles=(10, 50, 90), id_field="zid")
    for zid, polygon in zip(zones.zid, zones.geometry, strict=True):
        truth = brute_force(values, polygon)
        row = got.loc[zid]
        assert row["count"] == truth.size
        if truth.size == 0:
            assert np.isnan(row["mean"])
            continue
        assert row["sum"] == pytest.approx(truth.sum(), rel=1e-12)
        assert row["mean"] == pytest.approx(truth.mean(), rel=1e-12)
        assert row["min"] == truth.min() and row["max"] == truth.max()
        assert row["std"] == pytest.approx(truth.std(), rel=1e-9)
        for q in (10, 50, 90):
            assert row[f"p{q}"] == pytest.approx(np.percentile(truth, q), rel=1e-12)


def test_overlapping_polygons_each_get_their_pixels(raster_and_zones):
    values, zones = raster_and_zones
    got = zonal_stats(grid(values), zones.iloc[:2], stats=("count", "mean"), id_field="zid")
    for zid, polygon in zip(zones.zid[:2], zones.geometry[:2], strict=True):
        assert got.loc[zid, "count"] == brute_force(values, polygon).size


def test_one_worker_and_two_give_identical_results(raster_and_zones):
    values, zones = raster_and_zones
    with dask.config.set(scheduler="threads", num_workers=1):
        one = zonal_stats(
            grid(values), zones, stats=("count", "sum", "mean", "std"), id_field="zid"
        )
    with dask.config.set(scheduler="threads", num_workers=2):
        two = zonal_stats(
            grid(values), zones, stats=("count", "sum", "mean", "std"), id_field="zid"
        )
    assert one.equals(two)


def test_ndvi_and_change_on_known_grids():
    red = grid(np.full((4, 4), 0.1))
    nir = grid(np.full((4, 4), 0.5))
    value = ndvi(red, nir).compute()
    np.testing.assert_allclose(value, (0.5 - 0.1) / (0.5 + 0.1), rtol=1e-6)
    zero = ndvi(grid(np.zeros((4, 4))), grid(np.zeros((4, 4)))).compute()
    assert np.isnan(zero).all()
    later = ndvi(grid(np.full((4, 4), 0.3)), grid(np.full((4, 4), 0.3))).compute()  # bare soil
    delta = change(value, later).compute()
    np.testing.assert_allclose(delta, 0.0 - 2 / 3, rtol=1e-6)


def test_ndvi_of_raw_integer_bands_honours_their_nodata():
    """Raw counts with a nodata value give what masking to NaN first and dividing gives."""
    rng = np.random.default_rng(5)
    for dtype, nodata in (("uint16", 65535), ("int16", -9999), ("uint8", 0), ("int32", -1)):
        info = np.iinfo(dtype)
        low = max(info.min, 1) if nodata == 0 else max(info.min, 0)
        red = rng.integers(low, min(info.max, 5000), (20, 30)).astype(dtype)
        nir = rng.integers(low, min(info.max, 5000), (20, 30)).astype(dtype)
        red[2, :5] = nodata
        nir[7, 3:9] = nodata
        red[11, 11] = nir[11, 11] = 0 if nodata != 0 else 1  # both zero (or equal): no NaN trap
        expected = np.full(red.shape, np.nan, np.float64)
        valid = (red != nodata) & (nir != nodata)
        r, n = red.astype(np.float64), nir.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            expected[valid] = ((n - r) / (n + r))[valid]

        def band(values, nd, dtype=dtype):
            return grid(values).astype(dtype).rio.write_nodata(nd)

        value = ndvi(band(red, nodata), band(nir, nodata)).compute().values[0]
        assert value.dtype == np.float32
        np.testing.assert_allclose(value, expected, rtol=1e-6, equal_nan=True)
        # one band without a nodata value: only the other band's nodata masks
        mixed = ndvi(band(red, None), band(nir, nodata)).compute().values[0]
        only_nir = np.where(nir == nodata, np.nan, (n - r) / np.where(n + r == 0, np.nan, n + r))
        np.testing.assert_allclose(mixed, only_nir, rtol=1e-6, equal_nan=True)


def projected(values: np.ndarray, res: float = 10.0, chunks: int = 16) -> xr.DataArray:
    """A grid in EPSG:4547 (GK zone 38), res-metre pixels."""
    h, w = values.shape
    return (
        xr.DataArray(
            values.astype("float64"),
            dims=("y", "x"),
            coords={
                "y": 3_737_000 - (np.arange(h) + 0.5) * res,
                "x": 500_000 + (np.arange(w) + 0.5) * res,
            },
        )
        .rio.write_crs(4547)
        .chunk(chunks)
    )


def test_slope_and_aspect_of_a_plane():
    from shikong.spatial.rasterjobs import slope_aspect

    rows, cols = np.indices((40, 50))
    # rises 1 m per 10 m pixel eastwards: slope atan(0.1), facing (downslope) west
    dem = projected(cols * 1.0)
    slope, aspect = slope_aspect(dem)
    np.testing.assert_allclose(slope.values, np.degrees(np.arctan(0.1)), rtol=1e-9)
    np.testing.assert_allclose(aspect.values, 270.0, atol=1e-9)
    # rises northwards (towards smaller row numbers): downslope faces south
    _, aspect_n = slope_aspect(projected((40 - rows) * 2.0))
    np.testing.assert_allclose(aspect_n.values, 180.0, atol=1e-9)


def test_subsidence_volume_of_a_known_bowl():
    from shikong.spatial.rasterjobs import subsidence

    grid = np.zeros((30, 30))
    grid[5:15, 5:15] = -0.5  # 100 cells sank 0.5 m
    grid[20:22, 20:25] = -0.005  # 10 cells sank 5 mm: below a 1 cm threshold
    result = subsidence(projected(grid), threshold_m=0.01)
    assert result["area_m2"] == pytest.approx(100 * 100.0)
    assert result["volume_m3"] == pytest.approx(100 * 100.0 * 0.5)
    zones = gpd.GeoDataFrame(
        {"mine": ["a", "b"]},
        geometry=[
            box(500_000, 3_737_000 - 100, 500_100, 3_737_000),  # rows 0..9, cols 0..9
            box(500_200, 3_737_000 - 300, 500_300, 3_737_000 - 200),
        ],
        crs=4547,
    )
    per_zone = subsidence(projected(grid), threshold_m=0.01, zones=zones)
    # zone a covers the bowl's rows 5..9, cols 5..9: 25 cells
    assert per_zone["volume_m3"].iloc[0] == pytest.approx(25 * 100.0 * 0.5)
    assert per_zone["volume_m3"].iloc[1] == 0


def test_cell_areas_on_lon_lat_match_the_geodesic():
    from pyproj import Geod
    from shikong.spatial.rasterjobs import cell_areas

    grid_values = np.zeros((5, 4))
    lonlat = xr.DataArray(
        grid_values,
        dims=("y", "x"),
        coords={
            "y": 33.9 - (np.arange(5) + 0.5) * 0.001,
            "x": 113.0 + (np.arange(4) + 0.5) * 0.001,
        },
    ).rio.write_crs(4490)
    areas = cell_areas(lonlat)
    geod = Geod(ellps="GRS80")
    lat0 = 33.9 - 0.001
    truth, _ = geod.polygon_area_perimeter(
        [113.0, 113.001, 113.001, 113.0], [lat0, lat0, 33.9, 33.9]
    )
    assert float(areas[0, 0]) == pytest.approx(abs(truth), rel=1e-5)


def test_slope_on_lon_lat_uses_metres():
    from shikong.spatial.rasterjobs import _pixel_sizes, slope_aspect

    _, cols = np.indices((20, 30))
    lonlat = xr.DataArray(
        cols * 1.0,
        dims=("y", "x"),
        coords={
            "y": 33.9 - (np.arange(20) + 0.5) * 0.0001,
            "x": 113.0 + (np.arange(30) + 0.5) * 0.0001,
        },
    ).rio.write_crs(4490)
    dx, _ = _pixel_sizes(lonlat)
    slope, _ = slope_aspect(lonlat)
    expect = np.degrees(np.arctan(1.0 / np.asarray(dx)))[:, None]
    np.testing.assert_allclose(slope.values, np.broadcast_to(expect, (20, 30)), rtol=1e-9)


def test_a_job_runs_on_a_cluster_given_by_its_scheduler_address(raster_and_zones, monkeypatch):
    from distributed import LocalCluster
    from shikong.spatial import compute

    values, zones = raster_and_zones
    local = zonal_stats(grid(values), zones, stats=("count", "sum"), id_field="zid")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        monkeypatch.setenv("SHIKONG_DASK_SCHEDULER", cluster.scheduler_address)
        compute.close()
        client = compute.get_client()
        try:
            assert client.scheduler.address == cluster.scheduler_address
            remote = zonal_stats(
                grid(values), zones, stats=("count", "sum"), id_field="zid", client=client
            )
            assert len(client.scheduler_info()["workers"]) == 2
        finally:
            compute.close()
    assert remote.equals(local)


def _random_polygons(rng, n):
    """Polygons with holes, multipolygons and overlaps, in pixel-ish units of 0.001°."""
    out = []
    for k in range(n):
        cx, cy = X0 + rng.uniform(-0.005, 0.085), Y0 - rng.uniform(-0.005, 0.065)
        angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 12)))
        radius = rng.uniform(0.001, 0.02, angles.size)
        shell = Polygon(
            np.column_stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)])
        )
        if k % 4 == 1:
            shell = shell.buffer(0.004).difference(shapely.Point(cx, cy).buffer(0.003))  # hole
        elif k % 4 == 2:
            shell = shapely.MultiPolygon([shell, box(cx + 0.025, cy - 0.004, cx + 0.03, cy)])
        out.append(shapely.make_valid(shell))
    return out


@pytest.mark.parametrize("dtype", ["float32", "int16", "uint16"])
def test_span_kernel_burns_the_pixels_gdal_burns(dtype):
    """Each polygon's pixels per the scanline kernel equal GDAL's rasterize of it alone,
    and the sums equal numpy over those pixels: holes, multipolygons, overlaps, edges."""
    from affine import Affine
    from rasterio.features import rasterize
    from shikong.spatial.zonalkernel import accumulate, block_spans, polygon_edges

    rng = np.random.default_rng(11)
    values = rng.integers(-500, 500, (H, W)).astype(dtype)
    if values.dtype.kind == "f":
        values[::7, ::3] = np.nan
    polygons = _random_polygons(rng, 60)
    transform = Affine(RES, 0, X0, 0, -RES, Y0)
    edges = polygon_edges(np.array(polygons, dtype=object), transform)
    for r0, c0, h, w in [(0, 0, H, W), (17, 23, 30, 41)]:  # the whole grid and a window
        window = values[r0 : r0 + h, c0 : c0 + w]
        block = block_spans(edges, r0, c0, h, w)
        count, total, squares, low, high = accumulate(window, block)
        for zone, polygon in enumerate(polygons):
            burnt = rasterize([(polygon, 1)], out_shape=(H, W), transform=transform)
            picked = window[burnt[r0 : r0 + h, c0 : c0 + w] == 1].astype("f8")
            picked = picked[np.isfinite(picked)]
            slot = np.searchsorted(block.zones, zone)
            if slot == len(block.zones) or block.zones[slot] != zone:
                assert picked.size == 0
                continue
            assert count[slot] == picked.size
            if picked.size:
                assert total[slot] == pytest.approx(picked.sum(), rel=1e-12)
                assert squares[slot] == pytest.approx((picked**2).sum(), rel=1e-12)
                assert (low[slot], high[slot]) == (picked.min(), picked.max())


def test_freed_block_memory_is_kept_for_reuse_on_glibc(monkeypatch):
    """glibc accepts the thresholds; a user's own setting is left alone."""
    import platform

    from shikong.spatial import memory

    monkeypatch.setattr(memory, "_done", False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    assert memory.reuse_freed_memory() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    if platform.libc_ver()[0] == "glibc":
        assert memory.reuse_freed_memory() is True


# -- zone labels: the zone layer's id field and name, in the library, CLI and process ---
MINES = {  # 许可证号 -> (矿山名称, box in pixels: col0, row0, col1, row1)
    "CK-001": ("东岭煤矿", (5, 5, 25, 20)),
    "CK-002": ("西沟煤矿", (30, 10, 50, 40)),
    "CK-007": ("南山煤矿", (55, 30, 78, 58)),
}


def mine_zones() -> gpd.GeoDataFrame:
    """Mines in a shuffled order (labels must follow the ids, not the row positions)."""
    ids = ["CK-007", "CK-001", "CK-002"]
    return gpd.GeoDataFrame(
        {
            "许可证号": ids,
            "矿山名称": [MINES[i][0] for i in ids],
            "采矿权人": ["甲公司", "乙公司", "丙公司"],
            "矿区面积公顷": [1.5, 2.5, 3.5],
        },
        geometry=[pixel_box(*MINES[i][1]) for i in ids],
        crs=4490,
    )


def pixel_box(c0, r0, c1, r1):
    return box(X0 + c0 * RES, Y0 - r1 * RES, X0 + c1 * RES, Y0 - r0 * RES)


def mine_values() -> np.ndarray:
    """Every pixel a distinct whole number: sums and means are exact in float32."""
    return np.arange(H * W, dtype="float32").reshape(H, W)


def truth_per_mine(values) -> dict[str, tuple[int, float]]:
    """(count, mean) per mine by the pixel-centre rule, one pixel at a time."""
    out = {}
    for zid, (_name, cells) in MINES.items():
        picked = brute_force(values.astype("float64"), pixel_box(*cells))
        out[zid] = (picked.size, picked.mean())
    return out


def test_zones_are_labelled_by_their_id_field_and_carry_their_name():
    values = mine_values()
    got = zonal_stats(grid(values), mine_zones(), stats=("count", "mean"), id_field="许可证号")
    assert got.index.name == "许可证号"
    assert list(got.columns) == ["矿山名称", "count", "mean"]
    assert got.attrs == {"id_field": "许可证号", "name_field": "矿山名称"}
    for zid, (count, mean) in truth_per_mine(values).items():
        assert got.loc[zid, "矿山名称"] == MINES[zid][0]
        assert got.loc[zid, "count"] == count > 0
        assert got.loc[zid, "mean"] == pytest.approx(mean, rel=1e-12)
    plain = zonal_stats(grid(values), mine_zones(), id_field="许可证号", name_field=False)
    assert "矿山名称" not in plain.columns and plain.attrs["name_field"] is None


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"code": ["a"], "NAME": ["x"], "项目名称": ["y"]}, "NAME"),  # exactly name, any case
        ({"名称": ["x"], "矿山名称": ["y"]}, "名称"),
        ({"编号": ["a"], "矿山名称": ["x"], "项目名称": ["y"]}, "矿山名称"),  # first *名称
        ({"river_name": ["x"], "GHFQMC": ["y"]}, "river_name"),  # *_name before *MC
        ({"GHFQDM": ["11"], "GHFQMC": ["城镇发展区"]}, "GHFQMC"),
        ({"owner_name": ["张三"], "权利人名称": ["李四"], "姓名": ["王五"]}, None),  # personal
        ({"name": [3], "BSM": ["1"]}, None),  # a number is not a name
        ({"DLBM": ["0101"]}, None),
    ],
)
def test_the_name_field_rule(columns, expected):
    from shikong.spatial.rasterjobs import name_field_of

    assert name_field_of(pd.DataFrame(columns)) == expected


def test_bad_zone_labels_name_the_problem():
    from shikong.spatial.errors import InputError

    values, zones = mine_values(), mine_zones()
    with pytest.raises(InputError, match="no column 'mine_id'.*许可证号"):
        zonal_stats(grid(values), zones, id_field="mine_id")
    with pytest.raises(InputError, match="'CK-007' repeats in '许可证号'"):
        zonal_stats(grid(values), pd.concat([zones, zones.iloc[:1]]), id_field="许可证号")
    with pytest.raises(InputError, match="no column '名字'"):
        zonal_stats(grid(values), zones, id_field="许可证号", name_field="名字")


@pytest.fixture(scope="module")
def mines_catalog(tmp_path_factory):
    """A catalog holding the test raster and the mines, whose declared id is 许可证号."""
    from shikong.catalog import Catalog

    root = tmp_path_factory.mktemp("mines")
    grid(mine_values()).rio.to_raster(root / "values.tif")
    mine_zones().to_file(root / "mines.geojson")
    catalog = Catalog.open(root / "data")
    catalog.ingest(root / "values.tif", department="nrp", layer="values", valid_from="2024-01-01")
    catalog.ingest(
        root / "mines.geojson",
        department="nrp",
        layer="mines",
        valid_from="2024-01-01",
        id_field="许可证号",
    )
    return root / "data"


def test_cli_zonal_stats_rows_are_the_mines_ids_and_names(mines_catalog):
    import io
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("shikong")
    done = subprocess.run(
        [exe, "raster", "zonal-stats", "--raster", "nrp-values", "--zones", "nrp-mines",
         "--stats", "count,mean", "--data", str(mines_catalog)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(io.StringIO(done.stdout), index_col=0)
    assert table.index.name == "许可证号" and sorted(table.index) == sorted(MINES)
    for zid, (count, mean) in truth_per_mine(mine_values()).items():
        assert table.loc[zid, "矿山名称"] == MINES[zid][0]
        assert table.loc[zid, "count"] == count
        assert table.loc[zid, "mean"] == pytest.approx(mean, rel=1e-9)


def test_zonal_statistics_process_rows_carry_id_and_name(mines_catalog, tmp_path):
    import shutil
    import time

    import httpx
    from conftest import RunningServer, free_port
    from shikong.server.identity import KeyStore

    data = tmp_path / "data"
    shutil.copytree(mines_catalog, data)
    key, _ = KeyStore(data).create("nrp", "analyst")
    running = RunningServer(data, free_port())
    try:
        headers = {"X-API-Key": key}
        reply = httpx.post(
            f"{running.url}/processes/zonal-statistics/execution",
            json={"inputs": {"raster": "nrp-values", "zones": "nrp-mines", "stats": ["count"]}},
            headers=headers,
            timeout=120,
        )
        assert reply.status_code == 201, reply.text
        job = reply.headers["location"].rsplit("/", 1)[-1]
        for _ in range(1200):
            status = httpx.get(f"{running.url}/jobs/{job}?f=json", headers=headers).json()
            if status["status"] in ("successful", "failed"):
                break
            time.sleep(0.1)
        assert status["status"] == "successful", status
        result = httpx.get(f"{running.url}/jobs/{job}/results?f=json", headers=headers).json()
    finally:
        running.stop()
    assert (result["id_field"], result["name_field"]) == ("许可证号", "矿山名称")
    truth = truth_per_mine(mine_values())
    assert {r["id"]: (r["name"], r["count"]) for r in result["rows"]} == {
        zid: (MINES[zid][0], truth[zid][0]) for zid in MINES
    }
