"""Cloud-native assets: GeoParquet for vectors, COG for rasters, Zarr for data cubes.

Each writer puts the asset into its version folder through a temporary name and returns
what the STAC item needs to describe it (media type, checksum, size, columns or bands,
projection, footprint).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import rasterio
import shapely
import xarray as xr
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from shikong.spatial.errors import FormatError
from shikong.spatial.raster import is_cog, open_raster, write_cog

from .asset_store import is_remote, join, locate, served_path
from .extension import DEFAULT_ID_FIELD, Field, ShikongExtension
from .storage import copy_atomic, tree_size_and_checksum

if TYPE_CHECKING:
    from .store import CatalogStore

GEOPARQUET = "application/vnd.apache.parquet"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
ZARR = "application/vnd.zarr"
ROW_GROUP_SIZE = 16_384  # small enough that a bbox query reads few rows, big enough to compress


@dataclass
class AssetInfo:
    """A written asset and how the STAC item describes it."""

    path: Path
    media_type: str
    title: str
    asset_fields: dict[str, Any] = field(default_factory=dict)
    item_properties: dict[str, Any] = field(default_factory=dict)
    footprint: BaseGeometry | None = None


def committed_asset(store: CatalogStore, relative: str) -> Path | str | None:
    """Where the asset served at ``/assets/<relative>`` is, if a committed version names
    it: the asset file itself, or a file inside the Zarr folder it names; a local path or
    an ``s3://`` URL (``asset_store``). Anything else (what a killed or refused ingest
    left, temporary names) is None: it is not served.

    ``relative`` is ``{department}/{layer}/{version}/{file...}``, as ingest lays it out.
    """
    parts = relative.split("/")
    if len(parts) < 4 or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        return None
    department, layer, version = parts[:3]
    item = store.item(f"{department}-{layer}-v{version}")
    if item is None or item.get("collection") != f"{department}-{layer}":
        return None
    for name in item.get("assets", {}):
        served = served_path(store.paths, item, name)
        if served is None or not (relative == served or relative.startswith(served + "/")):
            continue
        named = locate(store.paths, item, name)
        wanted = join(named, relative[len(served) :].lstrip("/"))
        if is_remote(wanted):  # whether the object is there: its download asks
            return wanted
        wanted = Path(wanted).resolve()
        if wanted.is_relative_to(Path(named)) and wanted.is_file():
            return wanted
    return None


def _finish(info: AssetInfo) -> AssetInfo:
    size, checksum = tree_size_and_checksum(info.path)
    info.asset_fields = {"file:size": size, "file:checksum": checksum, **info.asset_fields}
    return info


def footprint_of(frame: gpd.GeoDataFrame) -> BaseGeometry | None:
    """Convex hull of the features' bounding boxes: cheap, and tighter than one bbox."""
    bounds = frame.geometry.bounds.dropna().to_numpy()
    if bounds.size == 0:
        return None
    corners = np.concatenate(
        [bounds[:, [0, 1]], bounds[:, [2, 1]], bounds[:, [2, 3]], bounds[:, [0, 3]]]
    )
    hull = shapely.convex_hull(shapely.multipoints(corners))
    if hull.geom_type != "Polygon":  # a single point or a line: widen to a tiny box
        hull = hull.buffer(1e-6, cap_style="square")
    return hull


def write_vector(frame: gpd.GeoDataFrame, folder: Path, id_field: str | None = None) -> AssetInfo:
    """GeoParquet 1.1 with a bbox covering column, rows in Hilbert order.

    Hilbert order keeps nearby features in the same row groups, so a reader filtering on
    the bbox column skips most of the file.
    """
    frame = frame.copy()
    if id_field is None:
        id_field = DEFAULT_ID_FIELD
        if id_field not in frame.columns:
            frame.insert(0, id_field, np.arange(len(frame), dtype="int64"))
    elif id_field not in frame.columns:
        raise FormatError("id field", f"the layer has no column {id_field!r} to use as id")
    if frame[id_field].duplicated().any():
        dup = frame[id_field][frame[id_field].duplicated()].iloc[0]
        raise FormatError("id field", f"{id_field!r} is not unique: {dup!r} repeats")
    present = ~(frame.geometry.is_empty | frame.geometry.isna())
    if present.any():
        order = np.argsort(frame.geometry[present].hilbert_distance(), kind="stable")
        frame = frame.loc[np.concatenate([frame.index[present][order], frame.index[~present]])]
    path = folder / "data.parquet"
    tmp = folder / f".data.parquet.{os.getpid()}.tmp"
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(
        tmp,
        index=False,
        write_covering_bbox=True,
        schema_version="1.1.0",
        row_group_size=ROW_GROUP_SIZE,
        compression="zstd",
    )
    os.replace(tmp, path)
    schema = pq.read_schema(path)
    columns = [{"name": f.name, "type": str(f.type)} for f in schema if f.name not in ("bbox",)]
    info = AssetInfo(
        path=path,
        media_type=GEOPARQUET,
        title="GeoParquet",
        item_properties={
            "table:columns": columns,
            "table:row_count": len(frame),
            "table:primary_geometry": frame.geometry.name,
            Field.ID_FIELD: id_field,
            "proj:code": "EPSG:4490",
        },
        footprint=footprint_of(frame),
    )
    return _finish(info)


def write_raster(source: Path, folder: Path) -> AssetInfo:
    """A COG of the source raster: copied if it already is one, else rewritten lazily."""
    path = folder / "data.tif"
    da = open_raster(source, masked=False)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if is_cog(source):
            check_tiles(source)
            copy_atomic(source, path)
        else:
            write_cog(da, path)  # reads every block: a cut or corrupt one raises here
    except (RasterioError, CPLE_BaseError) as exc:
        text = " ".join(str(exc).replace(str(source), source.name).split())
        raise FormatError(source, f"not a readable raster (truncated or corrupt): {text}") from exc
    with rasterio.open(path) as src:
        epsg = src.crs.to_epsg()
        west, south, east, north = transform_bounds(src.crs, "EPSG:4490", *src.bounds)
        bands = [
            {
                "name": src.descriptions[i] or f"b{i + 1}",
                "data_type": src.dtypes[i],
                **({"nodata": _nodata(src.nodatavals[i])} if src.nodatavals[i] is not None else {}),
                **({"unit": src.units[i]} if src.units and src.units[i] else {}),
            }
            for i in range(src.count)
        ]
        props = {
            "proj:code": f"EPSG:{epsg}" if epsg else None,
            "proj:shape": [src.height, src.width],
            "proj:transform": list(src.transform)[:6],
            "proj:bbox": list(src.bounds),
        }
        if epsg is None:
            props["proj:wkt2"] = src.crs.to_wkt()
    info = AssetInfo(
        path=path,
        media_type=COG,
        title="Cloud-Optimized GeoTIFF",
        asset_fields={"bands": bands},
        item_properties=props,
        footprint=box(west, south, east, north),
    )
    return _finish(info)


def check_tiles(path: Path) -> None:
    """Refuse a GeoTIFF whose tiles lie past its end (cut short in transfer). A COG is
    stored as it came, without reading its pixels, and GDAL notices a missing tile only
    when a client asks for it."""
    size = path.stat().st_size
    with rasterio.open(path) as src:
        for bidx in src.indexes:
            for (row, col), _ in src.block_windows(bidx):
                offset = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=bidx)
                length = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=bidx)
                if offset and length and int(offset) + int(length) > size:
                    raise FormatError(
                        path,
                        f"truncated GeoTIFF: tile ({col}, {row}) of band {bidx} ends at byte "
                        f"{int(offset) + int(length):,}, the file has {size:,}",
                    )


def _nodata(value: float) -> float | str:
    if np.isnan(value):
        return "nan"
    return float(value)


def _cube_error(source: Path, exc: Exception) -> FormatError:
    text = " ".join(str(exc).replace(str(source), source.name).split())
    return FormatError(source, f"not a readable NetCDF/Zarr data cube: {text}")


def write_datacube(source: Path, folder: Path) -> AssetInfo:
    """A NetCDF (or Zarr) grid time series rewritten as Zarr, chunked for time slices."""
    try:
        ds = xr.open_zarr(source) if source.suffix == ".zarr" else xr.open_dataset(source)
    except Exception as exc:  # each backend raises its own types for a corrupt file
        raise _cube_error(source, exc) from exc
    lon = next((n for n in ("lon", "longitude", "x") if n in ds.coords), None)
    lat = next((n for n in ("lat", "latitude", "y") if n in ds.coords), None)
    if lon is None or lat is None:
        raise FormatError(source, "data cube has no lon/lat (or x/y) coordinates")
    path = folder / "data.zarr"
    tmp = folder / f".data.zarr.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        ds.to_zarr(tmp, mode="w", consolidated=False)
    except (OSError, RuntimeError, ValueError) as exc:  # a variable cut short in the file
        raise _cube_error(source, exc) from exc
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    west, east = float(ds[lon].min()), float(ds[lon].max())
    south, north = float(ds[lat].min()), float(ds[lat].max())
    variables = {
        name: {
            "dimensions": list(var.dims),
            "type": "data",
            **({"unit": var.attrs["units"]} if "units" in var.attrs else {}),
        }
        for name, var in ds.data_vars.items()
    }
    props: dict[str, Any] = {"proj:code": "EPSG:4490"}
    shikong = ShikongExtension.ext(props)
    shikong.variables = variables
    if "time" in ds.coords:
        shikong.time_range = [
            str(ds.time.values.min())[:19] + "Z",
            str(ds.time.values.max())[:19] + "Z",
        ]
    info = AssetInfo(
        path=path,
        media_type=ZARR,
        title="Zarr",
        item_properties=props,
        footprint=box(west, south, east, north),
    )
    ds.close()
    return _finish(info)
