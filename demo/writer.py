"""Writing the files departments deliver, byte-for-byte reproducibly.

GDAL stamps files with the current date (the DBF header, GeoPackage's gpkg_contents),
which would make two runs differ; we pin those dates. Everything is written in EPSG:4490
unless the delivery format says otherwise (the GK shapefile, the GK camera CSV, the
coordinate text file).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import xarray as xr
from shikong.spatial.raster import write_cog
from shikong.spatial.readers.coordinate_file import write_coordinate_file

from .geography import STORAGE_EPSG

FIXED_TIMESTAMP = "2026-01-01T00:00:00.000Z"  # what GeoPackages record as last change


@contextmanager
def _gdal_config(**options: str) -> Iterator[None]:
    """Set GDAL config options for the block, restoring the previous values after."""
    old = {k: pyogrio.get_gdal_config_option(k) for k in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(old)


def _prepare(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _storage(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf if gdf.crs.to_epsg() == STORAGE_EPSG else gdf.to_crs(STORAGE_EPSG)


def write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """GeoJSON in EPSG:4490 (GDAL names the CRS in the file's "crs" member)."""
    pyogrio.write_dataframe(_storage(gdf), _prepare(path), layer=path.stem, driver="GeoJSON")


def write_gpkg(gdf: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    """A one-layer GeoPackage in EPSG:4490 with a pinned last-change timestamp."""
    _prepare(path).unlink(missing_ok=True)
    with _gdal_config(OGR_CURRENT_DATE=FIXED_TIMESTAMP):
        pyogrio.write_dataframe(_storage(gdf), path, layer=layer, driver="GPKG")


def write_gbk_shapefile(gdf: gpd.GeoDataFrame, path: Path, epsg: int, stamp: date) -> None:
    """A shapefile the way Chinese survey software leaves it: GBK text, no .cpg, no
    language-driver id in the DBF, so readers must detect the encoding themselves."""
    _prepare(path)
    for old in path.parent.glob(f"{path.stem}.*"):
        old.unlink()
    pyogrio.write_dataframe(gdf.to_crs(epsg), path, encoding="GBK", driver="ESRI Shapefile")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    dbf = path.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    data[1:4] = struct.pack("<BBB", stamp.year - 1900, stamp.month, stamp.day)  # last update
    data[29] = 0  # language driver id: undeclared
    dbf.write_bytes(bytes(data))


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """UTF-8 CSV with LF line ends; floats as the frame holds them."""
    df.to_csv(_prepare(path), index=False, lineterminator="\n", encoding="utf-8")


def write_readings(df: pd.DataFrame, path: Path, decimals: int) -> None:
    """Readings with a fixed number of decimals, so equal values print equally."""
    df.to_csv(
        _prepare(path),
        index=False,
        lineterminator="\n",
        encoding="utf-8",
        float_format=f"%.{decimals}f",
    )


def write_submission(gdf: gpd.GeoDataFrame, path: Path, produced: date) -> None:
    """A 坐标报盘 text file (GBK, zone-38 prefixed eastings) as surveyors hand it in."""
    write_coordinate_file(
        _storage(gdf),
        _prepare(path),
        zone_width=3,
        prefixed=True,
        encoding="gbk",
        header={"数据产生单位": "市自然资源和规划局", "数据产生日期": produced.isoformat()},
    )


def write_raster(da: xr.DataArray, path: Path, nodata: float) -> None:
    write_cog(da, _prepare(path), nodata=nodata)


def write_netcdf(ds: xr.Dataset, path: Path) -> None:
    """NetCDF-3 through scipy (no HDF5 timestamps), hours since the first step as int32."""
    first = pd.Timestamp(ds["time"].values[0]).strftime("%Y-%m-%d %H:%M:%S")
    encoding = {
        "time": {"units": f"hours since {first}", "dtype": "int32", "calendar": "standard"},
        # keep rioxarray's grid_mapping so readers find the CRS in spatial_ref
        "precipitation": {
            **ds["precipitation"].encoding,
            "dtype": "float32",
            "_FillValue": -9999.0,
        },
    }
    _prepare(path).unlink(missing_ok=True)
    ds.to_netcdf(path, engine="scipy", encoding=encoding)
