"""Rasters and the data cube: DEM (nrp), red/NIR images of the mining area (nrp), hourly
rainfall grid (met).

The images are drawn from the land-use surveys (2020 for the 2019 image, 2023 for the
2024 image), so NDVI falls where mines grew and rises on the remediated mine, exactly where
the vector layers say. Terrain and texture noise is drawn on fixed coarse grids and
interpolated, so every scale shows the same landscape at a different resolution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import rasterio.features
import xarray as xr
from affine import Affine
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

from .geography import EXTENT_LONLAT, Geography, hill_edge_lon, lonlat_geom, river_bed_m
from .landuse import Patch
from .model import Scale, rng_for
from .weather import Weather

RS_BOUNDS = (113.37, 33.60, 113.53, 33.72)  # the mining area, lon/lat
DEM_NODATA = -9999.0
RS_NODATA = 65535
RAIN_GRID_DEG = 0.02
_M_PER_DEG = 111_320.0  # metres per degree of latitude (and of longitude at the equator)

# Mean (red, NIR) reflectance of each first-level class in September; codes looked up by
# full DLBM first, then by the first two digits.
_REFLECTANCE = {
    "01": (0.05, 0.38),
    "02": (0.05, 0.33),
    "03": (0.04, 0.34),
    "04": (0.08, 0.28),
    "05": (0.14, 0.19),
    "06": (0.14, 0.19),
    "0602": (0.09, 0.11),  # coal yards and spoil: dark, bare
    "07": (0.14, 0.19),
    "0702": (0.10, 0.22),
    "08": (0.13, 0.20),
    "09": (0.13, 0.20),
    "10": (0.12, 0.16),
    "11": (0.05, 0.03),
    "1107": (0.07, 0.20),
    "12": (0.12, 0.20),
}


def _grid(
    bounds: tuple[float, float, float, float], width: int, height: int
) -> tuple[np.ndarray, np.ndarray, Affine]:
    """Pixel-centre lon (w,) and lat (h,) and the affine transform of a north-up grid."""
    x0, y0, x1, y1 = bounds
    rx, ry = (x1 - x0) / width, (y1 - y0) / height
    lon = x0 + (np.arange(width) + 0.5) * rx
    lat = y1 - (np.arange(height) + 0.5) * ry
    return lon, lat, Affine(rx, 0.0, x0, 0.0, -ry, y1)


def _smooth_noise(
    rng: np.random.Generator, coarse: tuple[int, int], shape: tuple[int, int]
) -> np.ndarray:
    """Noise drawn on a coarse (h, w) grid, cubic-interpolated to ``shape``; about [-1, 1]."""
    base = rng.normal(0.0, 1.0, coarse)
    rows = np.linspace(0, coarse[0] - 1, shape[0])
    cols = np.linspace(0, coarse[1] - 1, shape[1])
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    out = ndimage.map_coordinates(base, [rr, cc], order=3, mode="nearest")
    return out / max(np.abs(out).max(), 1e-9)


def _burn(
    shapes: list[tuple[BaseGeometry, int]], transform: Affine, shape: tuple[int, int]
) -> np.ndarray:
    return rasterio.features.rasterize(
        shapes, out_shape=shape, transform=transform, fill=0, dtype="int32"
    )


def _dataarray(values: np.ndarray, lon: np.ndarray, lat: np.ndarray, **attrs) -> xr.DataArray:
    dims = ("band", "y", "x") if values.ndim == 3 else ("y", "x")
    coords = {"y": lat, "x": lon}
    if values.ndim == 3:
        coords["band"] = np.arange(1, values.shape[0] + 1)
    da = xr.DataArray(values, dims=dims, coords=coords, attrs=attrs)
    return da.rio.write_crs(4490)


def dem(geo: Geography, scale: Scale, seed: int) -> xr.DataArray:
    """Elevation (m, 1985 datum): a plain sloping east, hills rising west of the hill edge,
    valleys cut to the river bed, reservoirs flat at their normal level."""
    rng = rng_for(seed, "dem")
    width, height = scale.dem_shape
    lon, lat, transform = _grid(EXTENT_LONLAT, width, height)
    glon, glat = np.meshgrid(lon, lat)
    relief = (_smooth_noise(rng, (16, 24), (height, width)) + 1) / 2
    detail = _smooth_noise(rng, (160, 240), (height, width))
    plain = 72.0 + 70.0 * (EXTENT_LONLAT[2] - glon) / 0.6
    edge = hill_edge_lon(glat, geo.hill_phases)
    hillness = 1.0 / (1.0 + np.exp(-(edge - glon) / 0.012))
    z = plain + hillness * (150.0 + 550.0 * relief) + (8.0 + 40.0 * hillness) * detail
    river = _burn([(lonlat_geom(geo.river_line), 1)], transform, (height, width))
    dy = _M_PER_DEG * -transform.e  # pixel size in metres
    dx = _M_PER_DEG * np.cos(np.radians(33.8)) * transform.a
    dist = ndimage.distance_transform_edt(river == 0, sampling=(dy, dx))
    bed = river_bed_m(glon)
    z = bed + np.maximum(z - bed, 0.0) * (1.0 - np.exp(-dist / 1500.0))
    for reservoir in geo.reservoirs:
        lake = _burn([(lonlat_geom(reservoir.shape), 1)], transform, (height, width))
        z = np.where(lake == 1, reservoir.normal_level_m, z)
    values = np.round(z, 1).astype("float32")
    return _dataarray(values, lon, lat, long_name="elevation", units="m")


def _reflectance(code: str) -> tuple[float, float]:
    return _REFLECTANCE.get(code) or _REFLECTANCE[code[:2]]


def mining_image(patches: list[Patch], scale: Scale, seed: int, year: int) -> xr.DataArray:
    """Red and NIR reflectance (×10000, uint16) of the mining area from a land-use survey."""
    rng = rng_for(seed, f"rs_mining_{year}")
    texture_rng = rng_for(seed, "rs_mining_texture")  # the same fields on both dates
    width, height = scale.rs_shape
    lon, lat, transform = _grid(RS_BOUNDS, width, height)
    codes = sorted({p.dlbm for p in patches})
    index = {c: i + 1 for i, c in enumerate(codes)}
    x0, y0, x1, y1 = RS_BOUNDS
    shapes = []
    for p in patches:
        g = lonlat_geom(p.geom)
        gx0, gy0, gx1, gy1 = g.bounds
        if gx1 >= x0 and gx0 <= x1 and gy1 >= y0 and gy0 <= y1:
            shapes.append((g, index[p.dlbm]))
    classes = _burn(shapes, transform, (height, width))
    table = np.array([(0.1, 0.2)] + [_reflectance(c) for c in codes])
    red, nir = table[classes, 0], table[classes, 1]
    texture = _smooth_noise(texture_rng, (60, 80), (height, width))
    season = rng.normal(1.0, 0.03)  # a slightly different day
    red = red * (1 + 0.10 * texture) + rng.normal(0.0, 0.006, red.shape)
    nir = nir * (1 + 0.08 * texture) * season + rng.normal(0.0, 0.01, nir.shape)
    bands = np.stack([red, nir])
    values = np.clip(np.round(bands * 10_000), 1, 10_000).astype("uint16")
    return _dataarray(
        values,
        lon,
        lat,
        long_name=("red", "nir"),
        reflectance_scale="0.0001",
        acquired=f"{year}-09-15",
    )


def rainfall_grid(weather: Weather) -> xr.Dataset:
    """Hourly rainfall (mm) on a 0.02° grid over the city, times in UTC."""
    x0, y0, x1, y1 = EXTENT_LONLAT
    width = round((x1 - x0) / RAIN_GRID_DEG)
    height = round((y1 - y0) / RAIN_GRID_DEG)
    lon, lat, _ = _grid(EXTENT_LONLAT, width, height)
    lon, lat = np.round(lon, 4), np.round(lat, 4)
    times = weather.times(60)
    glon, glat = np.meshgrid(lon, lat)
    rain = weather.totals(times, 60, glon.ravel(), glat.ravel())
    values = np.round(rain, 1).astype("float32").reshape(len(times), height, width)
    utc = pd.DatetimeIndex(times.tz_convert("UTC").tz_localize(None))
    da = xr.DataArray(
        values,
        dims=("time", "y", "x"),
        coords={"time": utc, "y": lat, "x": lon},
        attrs={
            "long_name": "小时降水量 hourly rainfall",
            "units": "mm",
            "cell_methods": "time: sum",
        },
    )
    da.attrs["cell_methods"] = "time: sum"
    da = da.rio.write_crs(4490)
    ds = da.to_dataset(name="precipitation")
    ds["x"].attrs.update(units="degrees_east", long_name="longitude")
    ds["y"].attrs.update(units="degrees_north", long_name="latitude")
    ds.attrs.update(
        title="示范城市逐小时降水格点",
        institution="met 气象局",
        source="demo generator (synthetic)",
        Conventions="CF-1.8",
    )
    return ds
