"""Read department sources into GeoDataFrames in EPSG:4490, with a report of what was done.

``read(path)`` picks the reader by file type; each reader can also be called directly.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FormatError
from .coordinate_file import parse_coordinate_text, read_coordinate_file
from .delivery import opened_delivery
from .integrity import regular_file
from .report import ReadReport, ReadResult
from .tabular import read_csv
from .vector import read_geoparquet, read_ogr, read_shapefile

__all__ = [
    "ReadReport",
    "ReadResult",
    "parse_coordinate_text",
    "read",
    "read_coordinate_file",
    "read_csv",
    "read_geoparquet",
    "read_ogr",
    "read_shapefile",
]

_OGR_FORMATS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".fgb": "FlatGeobuf",
    ".kml": "KML",
    ".gml": "GML",
}


def read(
    source: str | Path,
    *,
    layer: str | int | None = None,
    crs: object | None = None,
    encoding: str | None = None,
    **options,
) -> ReadResult:
    """Read any supported vector source by its file type.

    Shapefile (.shp), GeoJSON, GeoPackage (choose ``layer``), GeoParquet, CSV (coordinate
    columns; ``xy_order="survey"`` when X is the northing) and 坐标报盘 text (.txt); or a
    folder or .zip holding one of them (``layer`` or ``x.zip/path/in/it.shp`` chooses
    among several; the report's first action names the dataset taken).
    """
    path = Path(source)
    if path.exists() and not path.is_dir():
        regular_file(path)  # before anything opens it: a FIFO would block forever
    with opened_delivery(path, layer) as chosen:
        if chosen is None:
            return _read_file(path, layer=layer, crs=crs, encoding=encoding, **options)
        frame, report = _read_file(
            chosen.path, layer=chosen.layer, crs=crs, encoding=encoding, **options
        )
        report.source, report.delivery = chosen.display, str(chosen.container)
        report.actions.insert(0, chosen.note)
        return ReadResult(frame, report)


def _read_file(
    path: Path, *, layer: str | int | None, crs: object | None, encoding: str | None, **options
) -> ReadResult:
    regular_file(path)
    suffix = path.suffix.lower()
    if suffix == ".shp":
        return read_shapefile(path, crs=crs, encoding=encoding)
    if suffix in _OGR_FORMATS:
        return read_ogr(path, layer=layer, crs=crs, fmt=_OGR_FORMATS[suffix])
    if suffix in (".parquet", ".geoparquet"):
        return read_geoparquet(path, crs=crs)
    if suffix in (".csv", ".tsv"):
        return read_csv(path, crs=crs, encoding=encoding, **options)
    if suffix == ".txt":
        return read_coordinate_file(path, encoding=encoding)
    if suffix in (".shx", ".dbf", ".prj", ".cpg"):
        raise FormatError(path, "is a shapefile sidecar: pass the .shp file")
    raise FormatError(path, f"unsupported file type {suffix or '(none)'!r}")
