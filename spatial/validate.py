"""Geometry validation and repair, reported rather than silent."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

_DIMENSION_OF = {
    "Point": 0,
    "MultiPoint": 0,
    "LineString": 1,
    "MultiLineString": 1,
    "LinearRing": 1,
    "Polygon": 2,
    "MultiPolygon": 2,
}


def orient_rfc7946(geoms: gpd.GeoSeries) -> gpd.GeoSeries:
    """Exterior rings counter-clockwise, holes clockwise (RFC 7946 section 3.1.6).

    Sources come in either orientation (Shapefiles are clockwise by their own rule); we
    store the GeoJSON one, so every GeoJSON answer follows the RFC without work per request.
    """
    return gpd.GeoSeries(
        shapely.orient_polygons(geoms.values, exterior_cw=False), index=geoms.index, crs=geoms.crs
    )


def repair_geometries(geoms: gpd.GeoSeries) -> tuple[gpd.GeoSeries, list[tuple[object, str]]]:
    """Repair invalid geometries with make_valid, keeping each feature's dimension.

    make_valid can turn a bow-tie polygon into a GeometryCollection of polygons and
    lines; we keep only the parts of the original dimension so a polygon layer stays
    polygonal. Returns the repaired series and (index, reason) of each repaired feature.
    """
    values = geoms.values
    present = ~(shapely.is_missing(values) | shapely.is_empty(values))
    invalid = present & ~shapely.is_valid(values)
    if not invalid.any():
        return geoms, []
    reasons = shapely.is_valid_reason(values[invalid])
    fixed = shapely.make_valid(values[invalid])
    out = np.array(values, dtype=object)
    for pos, (orig, new) in zip(
        np.flatnonzero(invalid), zip(values[invalid], fixed, strict=True), strict=True
    ):
        dim = _DIMENSION_OF.get(orig.geom_type)
        if (dim is not None and shapely.get_dimensions(new) != dim) or (
            new.geom_type == "GeometryCollection"
        ):
            # keep parts of the original dimension; a collapsed polygon becomes empty
            parts = [g for g in shapely.get_parts(new) if shapely.get_dimensions(g) == dim]
            new = (
                shapely.union_all(parts)
                if parts
                else shapely.from_wkt(f"{orig.geom_type.upper()} EMPTY")
            )
        out[pos] = new
    repaired = gpd.GeoSeries(out, index=geoms.index, crs=geoms.crs)
    report = [(idx, str(reason)) for idx, reason in zip(geoms.index[invalid], reasons, strict=True)]
    return repaired, report


def geometry_type_counts(geoms: gpd.GeoSeries) -> dict[str, int]:
    """Counts of each geometry type; missing and empty geometries are counted as 'Empty'."""
    values = geoms.values
    empty = shapely.is_missing(values) | shapely.is_empty(values)
    counts: dict[str, int] = {}
    for name in geoms[~empty].geom_type:
        counts[name] = counts.get(name, 0) + 1
    if empty.any():
        counts["Empty"] = int(empty.sum())
    return counts
