"""Raster jobs against brute force: pixel centres tested one by one with shapely."""

from __future__ import annotations

import dask
import geopandas as gpd
import numpy as np
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
