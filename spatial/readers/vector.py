"""Readers for vector files departments deliver: GeoJSON, Shapefile, GeoPackage, GeoParquet.

pyogrio (GDAL) does the decoding; we decide the encoding and the CRS ourselves and check
them, because GDAL's silent fall-backs (ISO-8859-1 text, no CRS) are where Chinese data
goes wrong.
"""

from __future__ import annotations

import codecs
import glob
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from ..crs import as_crs
from ..errors import CRSError, EncodingError, FormatError, InputError
from .encoding import find_sidecar, shapefile_encoding
from .finish import to_storage
from .integrity import check_shapefile, regular_file
from .report import ReadReport, ReadResult


def _gdal_error(path: Path, exc: Exception) -> FormatError:
    text = " ".join(str(exc).replace(str(path), path.name).split())  # one line
    return FormatError(path, f"not a readable {path.suffix or 'vector'} file: {text}")


def _declare_crs(gdf: gpd.GeoDataFrame, crs: object | None, report: ReadReport, what: str):
    """Apply a caller's CRS, or check the file had one."""
    if crs is not None:
        declared = as_crs(crs)
        if gdf.crs is not None and not gdf.crs.equals(declared):
            report.warnings.append(
                f"declared CRS {declared.name!r} overrides the file's {gdf.crs.name!r}"
            )
        report.crs_origin = "declared"
        return gdf.set_crs(declared, allow_override=True)
    if gdf.crs is None:
        raise CRSError(
            report.source, f"{what} has no coordinate reference system: declare one (crs=...)"
        )
    return gdf


def _read_ogr(path: Path, report: ReadReport, **kwargs) -> gpd.GeoDataFrame:
    """GDAL's read. Its warnings go into the report, not to stderr: a source it could
    not read whole is refused by the checks that follow (NaN coordinates by to_storage),
    in one line, by name."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gdf = pyogrio.read_dataframe(path, **kwargs)
        for w in caught:
            if "invalid value encountered" not in str(w.message):  # numpy on NaN: see above
                text = " ".join(str(w.message).replace(str(path), path.name).split())
                report.warnings.append(f"GDAL: {text}")
        return gdf
    except (DataSourceError, DataLayerError) as exc:
        raise _gdal_error(path, exc) from exc
    except UnicodeDecodeError as exc:
        raise EncodingError(path, f"text is not {kwargs.get('encoding')}: {exc.reason}") from exc
    except shapely.errors.GEOSException as exc:  # e.g. a ring that does not close
        problem = " ".join(str(exc).split())
        raise FormatError(path, f"holds a geometry no GIS can build: {problem}") from exc


NULL_GEOMETRY = re.compile(rb'"geometry"\s*:\s*null')


def _check_geojson_nulls(path: Path, gdf: gpd.GeoDataFrame) -> None:
    """GDAL reads a GeoJSON geometry it cannot parse ({"type": "Point"} without
    coordinates, an unknown type) as null, silently. Only "geometry": null in the file is
    a feature without geometry; any other null is a malformed geometry, refused."""
    missing = int(gdf.geometry.isna().sum())
    if not missing:
        return
    declared = len(NULL_GEOMETRY.findall(path.read_bytes()))
    if missing > declared:
        raise FormatError(
            path,
            f"{missing - declared} feature(s) hold a geometry that is not valid GeoJSON "
            '(only "geometry": null may lack one)',
        )


def _read_truncated_names(path: Path, codec: str, report: ReadReport) -> gpd.GeoDataFrame:
    """Read a shapefile whose DBF field names were cut mid-character.

    A DBF field name holds 10 bytes, so a 4-character Chinese name in UTF-8 (12 bytes)
    arrives cut and GDAL's text then fails to decode. We read a copy whose header names
    drop the cut tail, and warn.
    """
    cut: list[str] = []
    with tempfile.TemporaryDirectory(prefix="shikong-dbf-") as tmp:
        for sidecar in path.parent.glob(f"{glob.escape(path.stem)}.*"):
            shutil.copy(sidecar, Path(tmp) / sidecar.name.replace(path.stem, "layer"))
        dbf = next(Path(tmp).glob("layer.[dD][bB][fF]"))
        data = bytearray(dbf.read_bytes())
        pos = 32
        while pos + 32 <= len(data) and data[pos] != 0x0D:
            raw = bytes(data[pos : pos + 11]).split(b"\x00")[0]
            name = codecs.getincrementaldecoder(codec)().decode(raw, final=False)
            fixed = name.encode(codec)
            if fixed != raw:
                cut.append(name)
                data[pos : pos + 11] = fixed.ljust(11, b"\x00")
            pos += 32
        dbf.write_bytes(bytes(data))
        gdf = _read_ogr(Path(tmp) / f"layer{path.suffix}", report, encoding=codec)
    if not cut:
        raise EncodingError(path, f"attribute text is not valid {codec}")
    report.warnings.append(f"field names cut by the 10-byte DBF limit: {', '.join(cut)}")
    return gdf


def read_shapefile(
    path: Path, *, crs: object | None = None, encoding: str | None = None
) -> ReadResult:
    """A shapefile with its .dbf/.shx/.prj/.cpg sidecars."""
    report = ReadReport(source=str(path), format="ESRI Shapefile")
    regular_file(path)
    null_shapes = check_shapefile(path, find_sidecar(path, ".shx"), find_sidecar(path, ".dbf"))
    codec, origin = shapefile_encoding(path, encoding)
    report.encoding = f"{codec} ({origin})"
    prj = find_sidecar(path, ".prj")
    try:
        gdf = _read_ogr(path, report, encoding=codec)
    except EncodingError:
        gdf = _read_truncated_names(path, codec, report)
    undecoded = int(gdf.geometry.isna().sum()) - null_shapes
    if undecoded > 0:
        raise FormatError(
            path,
            f"corrupt .shp: {undecoded} shape(s) could not be decoded (only records declared "
            "null may lack a geometry)",
        )
    if prj is not None and gdf.crs is None and crs is None:
        raise CRSError(prj, "the .prj holds a coordinate system GDAL cannot interpret")
    if prj is not None:
        report.crs_origin = ".prj"
    gdf = _declare_crs(gdf, crs, report, "the shapefile (no .prj)")
    return to_storage(gdf, report)


def read_ogr(
    path: Path,
    *,
    layer: str | int | None = None,
    crs: object | None = None,
    fmt: str = "GeoJSON",
) -> ReadResult:
    """GeoJSON, GeoPackage and any other single-file format GDAL reads."""
    report = ReadReport(source=str(path), format=fmt)
    regular_file(path)
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except (DataSourceError, DataLayerError) as exc:
        raise _gdal_error(path, exc) from exc
    report.layers = layers
    if not layers:
        raise FormatError(path, "holds no vector layer")
    if layer is None:
        if len(layers) > 1:
            raise InputError(
                path, f"holds {len(layers)} layers, choose one (layer=...): {', '.join(layers)}"
            )
        layer = layers[0]
    elif str(layer) not in layers and not isinstance(layer, int):
        raise InputError(path, f"has no layer {layer!r}; layers: {', '.join(layers)}")
    report.layer = layers[layer] if isinstance(layer, int) else str(layer)
    report.encoding = "utf-8"
    gdf = _read_ogr(path, report, layer=layer)
    if fmt == "GeoJSON":
        _check_geojson_nulls(path, gdf)
    if gdf.crs is not None and crs is None:
        report.crs_origin = "file"
    gdf = _declare_crs(gdf, crs, report, "the layer")
    return to_storage(gdf, report)


def read_geoparquet(path: Path, *, crs: object | None = None) -> ReadResult:
    """GeoParquet (any version geopandas reads); the CRS comes from its 'geo' metadata."""
    report = ReadReport(source=str(path), format="GeoParquet", encoding="utf-8")
    regular_file(path)
    try:
        gdf = gpd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise FormatError(path, f"not a readable GeoParquet file: {exc}") from exc
    if gdf.crs is not None and crs is None:
        report.crs_origin = "geo metadata"
    gdf = _declare_crs(gdf, crs, report, "the GeoParquet file")
    return to_storage(gdf, report)
