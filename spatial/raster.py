"""Raster helpers: lazy chunked reading and Cloud-Optimized GeoTIFF writing.

Rasters in this platform are larger than memory, so nothing here loads a whole band:
reads are dask-backed and COGs are written block by block by GDAL's COG driver.
"""

from __future__ import annotations

import os
from pathlib import Path

import rasterio
import rioxarray
import xarray as xr
from rasterio.errors import RasterioIOError

from .errors import CRSError, FormatError, InputError

DEFAULT_CHUNK = 1024  # pixels; a multiple of the 512-px COG block


def open_raster(
    path: str | Path, *, chunks: int | dict | str | None = DEFAULT_CHUNK, masked: bool = True
) -> xr.DataArray:
    """A GeoTIFF as a lazy, chunked DataArray (band, y, x) with its CRS and transform.

    ``masked=True`` turns nodata into NaN so statistics skip it. A raster that declares
    no nodata keeps its own data type (masking would only convert every pixel to float,
    which costs more than the computation on it, e.g. NDVI from uint16 bands).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    if isinstance(chunks, int):
        chunks = {"band": 1, "x": chunks, "y": chunks}
    try:
        if masked:
            with rasterio.open(path) as src:
                masked = any(v is not None for v in src.nodatavals) or src.dtypes[0].startswith(
                    "float"
                )
        da = rioxarray.open_rasterio(path, chunks=chunks, masked=masked, lock=False)
    except RasterioIOError as exc:
        raise FormatError(path, f"not a readable raster: {exc}") from exc
    if da.rio.crs is None:
        raise CRSError(path, "raster has no coordinate reference system")
    return da


def write_cog(
    da: xr.DataArray,
    path: str | Path,
    *,
    compress: str = "DEFLATE",
    blocksize: int = 512,
    overview_resampling: str = "average",
    nodata: float | None = None,
) -> Path:
    """Write a DataArray as a Cloud-Optimized GeoTIFF, atomically (temp file + rename).

    GDAL's COG driver writes tiles and overviews; a reader fetching a window reads only
    the blocks it needs, from disk or object storage.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if nodata is not None:
        da = da.rio.write_nodata(nodata, encoded=False)
    elif da.rio.nodata is None and da.rio.encoded_nodata is None and da.dtype.kind == "f":
        da = da.rio.write_nodata(float("nan"), encoded=False)
    try:
        da.rio.to_raster(
            tmp,
            driver="COG",
            compress=compress,
            blocksize=blocksize,
            overview_resampling=overview_resampling,
            BIGTIFF="IF_SAFER",
            num_threads="ALL_CPUS",
            lock=False,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def is_cog(path: str | Path) -> bool:
    """True if GDAL reports the file's layout as COG (tiled, overviews, header first)."""
    with rasterio.open(path) as src:
        return src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
