"""The CRSs WMS serves, and the axis order each WMS version writes them in.

WMS 1.3.0 gives BBOX and BoundingBox in the CRS's own axis order (EPSG's definition):
latitude first for EPSG:4326 and EPSG:4490, northing first for the CGCS2000 Gauss-Krüger
zones (EPSG:4513-4554, DOMAIN.md), x/y for EPSG:3857 and CRS:84. WMS 1.1.1 writes x/y
(longitude/easting first) for every SRS. Internally everything is x = east, y = north.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pyproj import CRS, Transformer
from shikong.spatial.crs import STORAGE_EPSG, GKZone, gk_epsg

from .errors import OwsError

# 3° GK zones of CGCS2000: prefixed (EPSG:4513-4533) and plain (EPSG:4534-4554)
GK_CODES = [gk_epsg(GKZone(3, n), prefixed=p) for p in (True, False) for n in range(25, 46)]
CODES = ["EPSG:4490", "EPSG:4326", "EPSG:3857", "CRS:84"] + [f"EPSG:{c}" for c in GK_CODES]


@dataclass(frozen=True)
class ServedCrs:
    """A WMS CRS: its name as requested, the pyproj CRS, whether 1.3.0 flips its axes."""

    name: str
    crs: CRS
    north_first: bool

    def axis_flip(self, version: str) -> bool:
        """Whether BBOX/BoundingBox of this version list y (north) before x (east)."""
        return self.north_first and not version.startswith("1.1")

    def to_xy(self, bbox: tuple[float, float, float, float], version: str):
        """A bbox as written in a request, as (minx, miny, maxx, maxy) with x = east."""
        if self.axis_flip(version):
            return (bbox[1], bbox[0], bbox[3], bbox[2])
        return bbox

    def from_xy(self, bbox: tuple[float, float, float, float], version: str):
        """A (minx, miny, maxx, maxy) bbox in this version's axis order."""
        return self.to_xy(bbox, version)  # the flip is its own inverse


@lru_cache(maxsize=64)
def served(name: str) -> ServedCrs:
    """The CRS a request names (case-insensitive); InvalidCRS if it is not served."""
    key = name.strip().upper()
    if key not in CODES:
        raise OwsError("InvalidCRS", f"CRS {name!r} is not served; served: {', '.join(CODES)}")
    crs = CRS.from_user_input("OGC:CRS84" if key == "CRS:84" else key)
    return ServedCrs(key, crs, crs.axis_info[0].direction == "north")


@lru_cache(maxsize=64)
def from_storage(name: str) -> Transformer:
    """CGCS2000 lon/lat → the served CRS, x = east (pyproj caches nothing itself)."""
    return Transformer.from_crs(STORAGE_EPSG, served(name).crs, always_xy=True)


@lru_cache(maxsize=64)
def to_storage(name: str) -> Transformer:
    """The served CRS (x = east) → CGCS2000 lon/lat."""
    return Transformer.from_crs(served(name).crs, STORAGE_EPSG, always_xy=True)


def is_storage_like(name: str) -> bool:
    """EPSG:4490, EPSG:4326 and CRS:84 carry the stored numbers (PROJ shifts nothing)."""
    return name in ("EPSG:4490", "EPSG:4326", "CRS:84")
