"""Areas and lengths the way Chinese land surveys state them.

Official areas are ellipsoidal (椭球面积) on the CGCS2000 ellipsoid (GRS80 figures), and
reports put the planar area in the right Gauss-Krüger zone beside it. An area is never
taken in degrees or Web Mercator. Geometries come in EPSG:4490 (x=lon, y=lat).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

from .crs import STORAGE_CRS, GKZone, ZoneWidth, as_crs, gk_zone, transformer
from .units import m2_to_hectares, m2_to_mu

# CGCS2000 uses a = 6378137, 1/f = 298.257222101: exactly GRS80.
CGCS2000_GEOD = Geod(a=6378137.0, rf=298.257222101)


@dataclass(frozen=True)
class Area:
    """An area in square metres with the units reports use."""

    m2: float

    @property
    def hectares(self) -> float:
        return m2_to_hectares(self.m2)

    @property
    def mu(self) -> float:
        return m2_to_mu(self.m2)

    def as_dict(self, ha_decimals: int = 4, mu_decimals: int = 2) -> dict[str, float]:
        return {
            "m2": round(self.m2, 2),
            "ha": round(self.hectares, ha_decimals),
            "mu": round(self.mu, mu_decimals),
        }


def _ring_area(ring: shapely.LinearRing) -> float:
    xy = np.asarray(ring.coords)
    area, _ = CGCS2000_GEOD.polygon_area_perimeter(xy[:, 0], xy[:, 1])
    return abs(area)


def ellipsoidal_area_m2(geom: BaseGeometry) -> float:
    """Geodesic area on the CGCS2000 ellipsoid of a (multi)polygon in EPSG:4490, in m².

    Rings are measured one by one and holes subtracted, so ring orientation in the
    source does not matter.
    """
    total = 0.0
    for part in shapely.get_parts(shapely.get_parts(geom)):
        if part.geom_type != "Polygon" or part.is_empty:
            continue
        total += _ring_area(part.exterior) - sum(_ring_area(r) for r in part.interiors)
    return total


def zone_for(geom: BaseGeometry, width: ZoneWidth = 3) -> GKZone:
    """The GK zone of a geometry: the zone of its centroid's longitude."""
    return gk_zone(geom.centroid.x, width)


def to_gk(geom: BaseGeometry, zone: GKZone | None = None, src: object = STORAGE_CRS):
    """A geometry in the unprefixed GK CRS of a zone (default: its own zone)."""
    if zone is None:
        lonlat = shapely.transform(geom, _to_lonlat(src), interleaved=False)
        zone = zone_for(lonlat)
    t = transformer(src, zone.epsg(prefixed=False))
    return shapely.transform(geom, t.transform, interleaved=False)


def _to_lonlat(src: object):
    if as_crs(src).equals(STORAGE_CRS):
        return lambda x, y: (x, y)
    t = transformer(src, STORAGE_CRS)
    return t.transform


def planar_area_m2(geom: BaseGeometry, zone: GKZone | None = None) -> float:
    """Planar area in the Gauss-Krüger zone of the geometry (or a given zone), in m²."""
    return float(shapely.area(to_gk(geom, zone)))


def geodesic_length_m(geom: BaseGeometry) -> float:
    """Geodesic length of lines (or polygon perimeters) on the CGCS2000 ellipsoid, in m."""
    return float(CGCS2000_GEOD.geometry_length(geom))


def planar_length_m(geom: BaseGeometry, zone: GKZone | None = None) -> float:
    """Planar length in the Gauss-Krüger zone of the geometry, in m."""
    return float(shapely.length(to_gk(geom, zone)))


@dataclass(frozen=True)
class AreaReport:
    """Both areas of one geometry, as approval reports print them."""

    ellipsoidal: Area
    planar: Area
    zone: GKZone

    def as_dict(self) -> dict:
        return {
            "ellipsoidal": self.ellipsoidal.as_dict(),
            "planar": self.planar.as_dict(),
            "gk_zone": self.zone.number,
            "gk_epsg": self.zone.epsg(),
        }


def measure(geom: BaseGeometry, zone: GKZone | None = None) -> AreaReport:
    """Ellipsoidal and planar GK area of a geometry in EPSG:4490."""
    zone = zone or zone_for(geom)
    return AreaReport(Area(ellipsoidal_area_m2(geom)), Area(planar_area_m2(geom, zone)), zone)
