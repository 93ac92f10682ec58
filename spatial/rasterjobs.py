"""Raster jobs on xarray/dask: NDVI, change between dates, zonal statistics.

Everything stays lazy and chunked: a job builds a dask graph whose pieces each read one
block, so memory is bounded by the chunk size and the worker count, not the raster.
Zonal statistics follow the pixel-centre rule (a pixel belongs to a polygon when its
centre does), like rasterstats' default.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import shapely
import xarray as xr
from affine import Affine
from rasterio.features import rasterize

from .errors import InputError

BASIC = ("count", "sum", "mean", "min", "max", "std")


def ndvi(red: xr.DataArray, nir: xr.DataArray) -> xr.DataArray:
    """(NIR - red) / (NIR + red) as float32; NaN where either is nodata or both are 0."""
    red = red.astype("float32")
    nir = nir.astype("float32")
    total = nir + red
    out = xr.where(total != 0, (nir - red) / total, np.nan).astype("float32")
    out.name = "ndvi"
    return out.rio.write_crs(red.rio.crs) if red.rio.crs else out


def change(before: xr.DataArray, after: xr.DataArray) -> xr.DataArray:
    """after - before on one grid (the inputs must be aligned: same shape and transform)."""
    if before.shape != after.shape:
        raise InputError(
            "change",
            f"grids differ: {before.shape} vs {after.shape}; reproject one onto the other first",
        )
    out = (after - before).astype("float32")
    out.name = "change"
    return out


def _groups(polygons: gpd.GeoSeries) -> list[np.ndarray]:
    """Split polygons into groups without overlaps (greedy), so each rasterises cleanly."""
    tree = shapely.STRtree(polygons.values)
    group_of = np.full(len(polygons), -1)
    for i, geom in enumerate(polygons.values):
        neighbours = tree.query(geom, predicate="intersects")
        taken = {
            group_of[j]
            for j in neighbours
            if j != i
            and group_of[j] >= 0
            and shapely.area(shapely.intersection(geom, polygons.values[j])) > 0
        }
        g = 0
        while g in taken:
            g += 1
        group_of[i] = g
    return [np.flatnonzero(group_of == g) for g in range(group_of.max() + 1)]


def _block_stats(
    values: np.ndarray,
    transform: Affine,
    shapes: list,
    ids: np.ndarray,
    percentiles: Sequence[float],
) -> pd.DataFrame:
    """Partial aggregates of one block: per zone count, sum, sum of squares, min, max."""
    values = np.asarray(values, dtype="float64")
    if values.ndim == 3:
        values = values[0]
    labels = rasterize(
        shapes,
        out_shape=values.shape,
        transform=transform,
        fill=0,
        dtype="int32",
        all_touched=False,
    )
    mask = (labels > 0) & np.isfinite(values)
    if not mask.any():
        return pd.DataFrame(columns=["zone", "count", "sum", "sumsq", "min", "max", "values"])
    z, v = labels[mask], values[mask]
    frame = pd.DataFrame({"zone": z, "v": v})
    grouped = frame.groupby("zone")["v"]
    out = pd.DataFrame(
        {
            "count": grouped.size(),
            "sum": grouped.sum(),
            "sumsq": grouped.apply(lambda s: float(np.dot(s, s))),
            "min": grouped.min(),
            "max": grouped.max(),
        }
    )
    if percentiles:
        out["values"] = grouped.apply(lambda s: s.to_numpy())
    else:
        out["values"] = None
    out = out.reset_index()
    out["zone"] = ids[out["zone"].to_numpy() - 1]
    return out


def zonal_stats(
    raster: xr.DataArray,
    polygons: gpd.GeoDataFrame,
    stats: Sequence[str] = ("count", "mean", "min", "max"),
    percentiles: Sequence[float] = (),
    id_field: str | None = None,
) -> pd.DataFrame:
    """Statistics of a raster inside each polygon (pixel-centre rule), lazily per block.

    ``raster`` is (y, x) or (1, y, x) with NaN (or masked) nodata; polygons are reprojected
    to the raster's CRS. Zones with no valid pixel get count 0 and NaN statistics.
    """
    unknown = [s for s in stats if s not in BASIC]
    if unknown:
        raise InputError(
            "stats",
            f"unknown statistics {', '.join(unknown)}; choose from "
            f"{', '.join(BASIC)} and percentiles",
        )
    if (
        raster.rio.crs is not None
        and polygons.crs is not None
        and not polygons.crs.equals(raster.rio.crs)
    ):
        polygons = polygons.to_crs(raster.rio.crs)
    ids = polygons[id_field].to_numpy() if id_field else polygons.index.to_numpy()
    data = raster.data if isinstance(raster.data, da.Array) else da.from_array(raster.data)
    if data.ndim == 3:
        data = data[0]
    transform = raster.rio.transform()
    row_starts = np.cumsum((0, *data.chunks[0][:-1]))
    col_starts = np.cumsum((0, *data.chunks[1][:-1]))
    tree = shapely.STRtree(polygons.geometry.values)
    parts = []
    blocks = data.to_delayed()
    for bi, r0 in enumerate(row_starts):
        for bj, c0 in enumerate(col_starts):
            h, w = data.chunks[0][bi], data.chunks[1][bj]
            block_transform = transform * Affine.translation(c0, r0)
            x0, y0 = block_transform * (0, h)
            x1, y1 = block_transform * (w, 0)
            near = tree.query(shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
            if near.size == 0:
                continue
            for group in _groups(polygons.geometry.iloc[near]):
                members = near[group]
                shapes = [(geom, k + 1) for k, geom in enumerate(polygons.geometry.values[members])]
                parts.append(
                    dask.delayed(_block_stats)(
                        blocks[bi, bj], block_transform, shapes, ids[members], tuple(percentiles)
                    )
                )
    computed = dask.compute(*parts) if parts else []
    frames = [f for f in computed if len(f)]
    result = pd.DataFrame(index=pd.Index(ids, name="zone"))
    if frames:
        every = pd.concat(frames, ignore_index=True)
        g = every.groupby("zone")
        count = g["count"].sum()
        total = g["sum"].sum()
        sumsq = g["sumsq"].sum()
        agg = pd.DataFrame(
            {"count": count, "sum": total, "min": g["min"].min(), "max": g["max"].max()}
        )
        agg["mean"] = total / count
        agg["std"] = np.sqrt(np.maximum(sumsq / count - agg["mean"] ** 2, 0.0))
        if percentiles:
            values = g["values"].apply(lambda s: np.concatenate(list(s)))
            for q in percentiles:
                agg[f"p{q:g}"] = values.apply(lambda v, q=q: float(np.percentile(v, q)))
        result = result.join(agg, how="left")
    columns = list(stats) + [f"p{q:g}" for q in percentiles]
    for c in columns:
        if c not in result:
            result[c] = np.nan
    result["count"] = result["count"].fillna(0).astype("int64") if "count" in result else 0
    return result[columns]
