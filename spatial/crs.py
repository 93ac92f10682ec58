"""Coordinate reference systems of Chinese survey data.

Storage and exchange CRS is CGCS2000 geographic (EPSG:4490). Survey data arrives in
Gauss-Krüger (GK) zones of CGCS2000, with or without the zone number prefixed to the
easting. Survey convention names the NORTHING X and the EASTING Y; shikong always keeps
(x=easting, y=northing) internally and converts at the edges with :func:`survey_to_xy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from pyproj import CRS, Transformer

from .errors import CRSError

STORAGE_EPSG = 4490
STORAGE_CRS = CRS.from_epsg(STORAGE_EPSG)
CRS84 = CRS.from_user_input("OGC:CRS84")

ZoneWidth = Literal[3, 6]

# EPSG blocks for CGCS2000 Gauss-Krüger (see DOMAIN.md):
#   3°: zones 25..45 prefixed = EPSG:4513..4533; CM 75..135°E unprefixed = EPSG:4534..4554
#   6°: zones 13..23 prefixed = EPSG:4491..4501; CM 75..135°E unprefixed = EPSG:4502..4512
_BLOCKS = {
    3: {"zones": range(25, 46), "prefixed": 4513, "plain": 4534},
    6: {"zones": range(13, 24), "prefixed": 4491, "plain": 4502},
}
FALSE_EASTING = 500_000.0

# Rough envelope of China incl. islands: coordinates outside it after transform almost
# always mean a wrong CRS (axis swap, missing prefix, GK read as degrees).
CHINA_BOUNDS = (73.0, 3.0, 136.0, 54.0)


@dataclass(frozen=True)
class GKZone:
    """A Gauss-Krüger zone: width in degrees and zone number."""

    width: ZoneWidth
    number: int

    @property
    def central_meridian(self) -> float:
        return 3.0 * self.number if self.width == 3 else 6.0 * self.number - 3.0

    def epsg(self, prefixed: bool = False) -> int:
        return gk_epsg(self, prefixed=prefixed)


def gk_zone(lon: float, width: ZoneWidth = 3) -> GKZone:
    """The GK zone holding a longitude: 3° zone n = round(lon/3), 6° zone n = floor(lon/6)+1.

    A longitude exactly on a 3° zone edge (e.g. 112.5) goes to the eastern zone, as
    ``floor(x + 0.5)`` rounds, not Python's banker's rounding.
    """
    if not -180.0 <= lon <= 180.0 or math.isnan(lon):
        raise CRSError("longitude", f"{lon} is not a longitude in degrees")
    if width == 3:
        number = math.floor(lon / 3.0 + 0.5)
    elif width == 6:
        number = math.floor(lon / 6.0) + 1
    else:
        raise CRSError("zone width", f"{width} is not 3 or 6")
    zone = GKZone(width, number)
    if number not in _BLOCKS[width]["zones"]:
        raise CRSError(
            "longitude", f"{lon}°E lies in {width}° zone {number}, outside China's CGCS2000 zones"
        )
    return zone


def gk_epsg(zone: GKZone, prefixed: bool = False) -> int:
    """EPSG code of a CGCS2000 GK zone, with or without the zone prefix on the easting."""
    block = _BLOCKS[zone.width]
    zones = block["zones"]
    if zone.number not in zones:
        raise CRSError("zone", f"{zone.width}° zone {zone.number} has no CGCS2000 EPSG code")
    return block["prefixed" if prefixed else "plain"] + zone.number - zones.start


def zone_of_epsg(epsg: int) -> tuple[GKZone, bool] | None:
    """Inverse of :func:`gk_epsg`: (zone, prefixed) for a CGCS2000 GK code, else None."""
    for width, block in _BLOCKS.items():
        n = len(block["zones"])
        for key, prefixed in (("prefixed", True), ("plain", False)):
            if block[key] <= epsg < block[key] + n:
                return GKZone(width, block["zones"].start + epsg - block[key]), prefixed
    return None


def zone_from_prefixed_easting(easting: float) -> GKZone | None:
    """The zone encoded in an 8-digit easting (zone*1e6 + 500000 false easting), else None.

    Zone numbers of 3° zones (25..45) and 6° zones (13..23) in China do not overlap, so
    the prefix alone tells the width.
    """
    if not math.isfinite(easting) or easting < 1_000_000:
        return None
    number = int(easting // 1_000_000)
    for width, block in _BLOCKS.items():
        if number in block["zones"]:
            return GKZone(width, number)  # type: ignore[arg-type]
    raise CRSError(
        "easting",
        f"{easting:.3f} has {len(str(int(easting)))} digits but {number} is not a CGCS2000 "
        "Gauss-Krüger zone (3°: 25-45, 6°: 13-23)",
    )


def strip_prefix(easting: np.ndarray | float, zone: GKZone) -> np.ndarray | float:
    """Remove the zone prefix from eastings so they fit the unprefixed CRS of the zone."""
    return easting - zone.number * 1_000_000


def survey_to_xy(
    x_north: np.ndarray | float, y_east: np.ndarray | float
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Survey (X=northing, Y=easting) to GIS (x=easting, y=northing) order."""
    return y_east, x_north


def detect_prefixed_zone(eastings: np.ndarray) -> GKZone | None:
    """The zone when ALL eastings carry one prefix; CRSError when they disagree."""
    eastings = np.asarray(eastings, dtype=float)
    eastings = eastings[np.isfinite(eastings)]
    if eastings.size == 0:
        return None
    zones = {zone_from_prefixed_easting(float(e)) for e in np.unique(eastings // 1_000_000 * 1e6)}
    if zones == {None}:
        return None
    if len(zones) > 1:
        names = sorted(f"{z.number}" if z else "none" for z in zones)
        raise CRSError("eastings", f"eastings carry different zone prefixes: {', '.join(names)}")
    return zones.pop()


def as_crs(value: object) -> CRS:
    """A pyproj CRS from an EPSG int, 'EPSG:xxxx', a CRS URI, WKT or CRS; CRSError if unknown."""
    if isinstance(value, CRS):
        return value
    if isinstance(value, int):
        value = f"EPSG:{value}"
    text = str(value).strip()
    for prefix in ("http://www.opengis.net/def/crs/", "https://www.opengis.net/def/crs/"):
        if text.startswith(prefix):
            authority, _version, code = text[len(prefix) :].split("/")[:3]
            text = f"{authority}:{code}"
    try:
        return CRS.from_user_input(text)
    except Exception as exc:  # pyproj raises CRSError of its own, with a long text
        raise CRSError("crs", f"unknown coordinate reference system {text[:80]!r}") from exc


@lru_cache(maxsize=256)
def _transformer(src_wkt: str, dst_wkt: str) -> Transformer:
    return Transformer.from_crs(CRS(src_wkt), CRS(dst_wkt), always_xy=True)


def transformer(src: object, dst: object = STORAGE_EPSG) -> Transformer:
    """A cached (x=east/lon, y=north/lat) transformer; transformers are costly to build."""
    return _transformer(as_crs(src).to_wkt(), as_crs(dst).to_wkt())


def gk_crs_for(lon: float, width: ZoneWidth = 3, prefixed: bool = False) -> CRS:
    """The CGCS2000 GK CRS of the zone holding a longitude."""
    return CRS.from_epsg(gk_epsg(gk_zone(lon, width), prefixed=prefixed))


def outside_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Boolean mask of lon/lat pairs outside China's envelope."""
    x0, y0, x1, y1 = CHINA_BOUNDS
    lon, lat = np.asarray(lon), np.asarray(lat)
    return ~((lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1))
