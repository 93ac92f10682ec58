"""The common end of every reader: settle the CRS, reproject to EPSG:4490, repair, check."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from ..crs import STORAGE_CRS, detect_prefixed_zone, outside_china, zone_of_epsg
from ..errors import CRSError, FormatError
from ..validate import geometry_type_counts, orient_rfc7946, repair_geometries
from .report import ReadReport, ReadResult


def _epsg(crs: CRS) -> int | None:
    try:
        return crs.to_epsg(min_confidence=70)
    except Exception:  # pyproj can fail to match exotic WKT: treat as not identified
        return None


def settle_gk_prefix(gdf: gpd.GeoDataFrame, report: ReadReport) -> gpd.GeoDataFrame:
    """Make the CRS agree with the eastings: 8-digit eastings mean a zone-prefixed CRS.

    Departments often label prefixed coordinates with the unprefixed code (or the
    reverse). We switch to the CRS the numbers prove, and say so in the report.
    """
    epsg = _epsg(gdf.crs)
    known = zone_of_epsg(epsg) if epsg else None
    if known is None:  # not a CGCS2000 GK zone: eastings of other CRSs may be any size
        return gdf
    coords = shapely.get_coordinates(gdf.geometry.values)
    if coords.size == 0:
        return gdf
    try:
        found = detect_prefixed_zone(coords[:, 0])
    except CRSError as exc:
        raise CRSError(report.source, exc.problem, where="coordinates") from exc
    zone, prefixed = known
    if found is None and prefixed:
        plain = zone.epsg(prefixed=False)
        report.actions.append(
            f"eastings have no zone prefix although EPSG:{epsg} expects one: read as EPSG:{plain}"
        )
        return gdf.set_crs(plain, allow_override=True)
    if found is not None:
        if found != zone:
            raise CRSError(
                report.source,
                f"eastings carry the prefix of {found.width}° zone {found.number} but the CRS "
                f"EPSG:{epsg} is {zone.width}° zone {zone.number}",
                where="coordinates",
            )
        if not prefixed:
            target = zone.epsg(prefixed=True)
            report.actions.append(
                f"eastings carry the zone-{zone.number} prefix although EPSG:{epsg} has none: "
                f"read as EPSG:{target}"
            )
            return gdf.set_crs(target, allow_override=True)
    return gdf


def _check_units(gdf: gpd.GeoDataFrame, report: ReadReport) -> None:
    if not gdf.crs.is_geographic:
        return
    coords = shapely.get_coordinates(gdf.geometry.values)
    if coords.size and (np.abs(coords[:, 0]).max() > 360 or np.abs(coords[:, 1]).max() > 90):
        raise CRSError(
            report.source,
            f"coordinates such as ({coords[0, 0]:.1f}, {coords[0, 1]:.1f}) are not degrees but "
            f"the CRS {gdf.crs.name!r} is geographic: the CRS is wrong or the axes are swapped",
            where="coordinates",
        )


def check_finite(gdf: gpd.GeoDataFrame, report: ReadReport, stage: str) -> None:
    """Refuse NaN or infinite coordinates: no geometry operation is defined on them (GEOS
    raises mid-repair), so they are corrupt input, named by feature, not a crash."""
    coords, index = shapely.get_coordinates(gdf.geometry.values, return_index=True)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        at = int(np.argmax(bad))
        count = np.unique(index[bad]).size
        raise FormatError(
            report.source,
            f"NaN or infinite coordinates {stage}: {count} feature(s), the first is feature "
            f"{gdf.index[int(index[at])]!r} at ({coords[at, 0]}, {coords[at, 1]})",
            where="coordinates",
        )


def to_storage(
    gdf: gpd.GeoDataFrame, report: ReadReport, *, allow_outside_china: bool = False
) -> ReadResult:
    """Reproject a frame with a known CRS to EPSG:4490, repair it and fill the report."""
    if gdf.crs is None:
        raise CRSError(report.source, "no coordinate reference system: declare one (crs=...)")
    check_finite(gdf, report, "in the source")
    gdf = settle_gk_prefix(gdf, report)
    _check_units(gdf, report)
    epsg = _epsg(gdf.crs)
    report.crs = f"EPSG:{epsg}" if epsg else gdf.crs.name
    if not gdf.crs.equals(STORAGE_CRS):
        gdf = gdf.to_crs(STORAGE_CRS)
        check_finite(gdf, report, f"after transform from {report.crs} (outside its area)")
        report.actions.append(f"reprojected from {report.crs} to EPSG:4490")
    geoms, repaired = repair_geometries(gdf.geometry)
    if repaired:
        gdf = gdf.set_geometry(geoms)
        report.repaired = [(str(idx), reason) for idx, reason in repaired]
        report.actions.append(f"repaired {len(repaired)} invalid geometries with make_valid")
    gdf = gdf.set_geometry(orient_rfc7946(gdf.geometry))
    values = gdf.geometry.values
    present = ~(shapely.is_missing(values) | shapely.is_empty(values))
    if (~present).any():
        report.warnings.append(f"{int((~present).sum())} features have no geometry (kept)")
    if present.any():
        bounds = shapely.bounds(values[present])
        outside = outside_china(
            (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2
        )
        if outside.all() and not allow_outside_china:
            x, y = bounds[0, 0], bounds[0, 1]
            raise CRSError(
                report.source,
                f"all features fall outside China after transform from {report.crs} "
                f"(first at {x:.4f}, {y:.4f}): likely a wrong CRS or swapped axes",
                where="coordinates",
            )
        if outside.any():
            report.warnings.append(
                f"{int(outside.sum())} features lie outside China: check their CRS"
            )
        report.bbox = tuple(float(v) for v in gdf[present].total_bounds)
    report.feature_count = len(gdf)
    report.geometry_types = geometry_type_counts(gdf.geometry)
    return ReadResult(gdf, report)
