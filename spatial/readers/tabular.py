"""CSV with coordinate columns: lon/lat, x/y (GIS order) or X/Y (survey order), or WKT."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..crs import STORAGE_EPSG, as_crs
from ..errors import CRSError, FormatError, InputError
from .encoding import decode_text
from .finish import to_storage
from .integrity import regular_file
from .report import ReadReport, ReadResult
from .types import type_columns

LON_NAMES = ("lon", "lng", "long", "longitude", "经度")
LAT_NAMES = ("lat", "latitude", "纬度")
X_NAMES = ("x", "easting", "东坐标")
Y_NAMES = ("y", "northing", "北坐标")
WKT_NAMES = ("wkt", "geometry", "geom", "几何")


def _column(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lowered = {str(c).strip().lower(): c for c in df.columns}
    return next((lowered[n] for n in names if n in lowered), None)


def _numeric(df: pd.DataFrame, col: str, source: str) -> pd.Series:
    values = pd.to_numeric(df[col], errors="coerce")
    bad = (values.isna() & df[col].notna()) | np.isinf(values)
    if bad.any():
        row = int(bad.idxmax())
        what = "a finite number" if np.isinf(values[row]) else "a number"
        raise FormatError(
            source,
            f"column {col!r} holds {df[col][row]!r}, not {what}",
            where=f"row {row + 2}",
        )
    return values


def _coordinate_columns(
    df: pd.DataFrame, x: str | None, y: str | None
) -> tuple[str | None, tuple[str | None, str | None]]:
    """Which columns hold the geometry: ('lonlat'|'xy'|'wkt'|None, (col, col))."""
    if x is not None and y is not None:
        missing = [c for c in (x, y) if c not in df.columns]
        if missing:
            raise InputError("csv", f"no column {missing[0]!r}; columns: {list(df.columns)}")
        return "xy", (x, y)
    for mode, names in (("lonlat", (LON_NAMES, LAT_NAMES)), ("xy", (X_NAMES, Y_NAMES))):
        cols = _column(df, names[0]), _column(df, names[1])
        if None not in cols:
            return mode, cols
    wkt = _column(df, WKT_NAMES)
    return ("wkt", (wkt, None)) if wkt else (None, (None, None))


def read_csv(
    path: Path | str,
    *,
    crs: object | None = None,
    encoding: str | None = None,
    xy_order: Literal["gis", "survey"] = "gis",
    x: str | None = None,
    y: str | None = None,
) -> ReadResult:
    """Points from coordinate columns (or geometries from a WKT column).

    lon/lat columns default to EPSG:4490. x/y columns need a declared CRS, and survey files
    where X is the northing need ``xy_order="survey"``; guessing either is how parcels end
    up in the sea.
    """
    path = Path(path)
    report = ReadReport(source=str(path), format="CSV")
    regular_file(path)
    for sidecar in (path.with_suffix(".csvt"), path.with_suffix(".CSVT")):
        if sidecar.exists():
            regular_file(sidecar)  # read by type_columns: a FIFO there would block
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror}") from exc
    text, codec = decode_text(raw, str(path), encoding)
    report.encoding = codec
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise FormatError(path, "empty CSV: no header line") from None
    except pd.errors.ParserError as exc:
        raise FormatError(path, f"not a well-formed CSV: {' '.join(str(exc).split())}") from exc
    if df.empty and len(df.columns) == 0:
        raise FormatError(path, "empty CSV")
    mode, (xcol, ycol) = _coordinate_columns(df, x, y)
    if mode is None:
        raise FormatError(
            path, f"no coordinate columns: expected lon/lat, x/y or wkt; found {list(df.columns)}"
        )
    if mode == "wkt":
        try:
            geoms = shapely.from_wkt(df[xcol].to_numpy(), on_invalid="raise")
        except shapely.errors.GEOSException as exc:
            raise FormatError(path, f"column {xcol!r} holds invalid WKT: {exc}") from exc
        frame = df.drop(columns=[xcol])
    else:
        xs, ys = _numeric(df, xcol, str(path)), _numeric(df, ycol, str(path))
        if xy_order == "survey":
            xs, ys = ys, xs  # survey X is the northing
            report.actions.append(f"survey order: {ycol!r} read as easting, {xcol!r} as northing")
        geoms = gpd.points_from_xy(xs, ys)
        frame = df
    frame, kinds, origin = type_columns(frame, path)
    if kinds:
        typed = ", ".join(f"{name} {kind}" for name, kind in kinds.items())
        report.actions.append(f"column types ({origin}): {typed}")
    if crs is not None:
        target, report.crs_origin = as_crs(crs), "declared"
    elif mode in ("lonlat", "wkt"):
        target, report.crs_origin = as_crs(STORAGE_EPSG), f"assumed for {mode} columns"
        report.actions.append(f"no CRS declared: {mode} read as CGCS2000 (EPSG:4490)")
    else:
        raise CRSError(path, "x/y columns need a declared coordinate reference system (crs=...)")
    gdf = gpd.GeoDataFrame(frame, geometry=geoms, crs=target)
    return to_storage(gdf, report)
