"""The tile matrix sets the server tiles in: ``get(tms_id)`` and ``all()`` (stable names).

WebMercatorQuad and WorldCRS84Quad are morecantile's OGC definitions; CGCS2000Quad, the
grid of 天地图's ``c`` tiles (EPSG:4490, level 1 = two tiles of 180°), is data in
``config/tilematrixsets/CGCS2000Quad.json`` read by morecantile: a city adds a grid by
adding a JSON document there (OGC Two Dimensional Tile Matrix Set 2.0).

Used by the tiles API, the tile renderer and WMTS (server/ows).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import morecantile
import shikong.config
from morecantile import TileMatrixSet

from ..problems import Problem

TMS_DIR = Path(shikong.config.__file__).parent / "tilematrixsets"
BUILTIN = ("WebMercatorQuad", "WorldCRS84Quad")
GEOGRAPHIC = {"WorldCRS84Quad", "CGCS2000Quad"}  # x = longitude, y = latitude in degrees


@functools.cache
def _registry() -> dict[str, TileMatrixSet]:
    out = {name: morecantile.tms.get(name) for name in BUILTIN}
    for path in sorted(TMS_DIR.glob("*.json")):
        tms = TileMatrixSet.model_validate_json(path.read_text(encoding="utf-8"))
        out[tms.id] = tms
    return out


def all() -> dict[str, TileMatrixSet]:
    """Every tile matrix set served, by id."""
    return dict(_registry())


def get(tms_id: str) -> TileMatrixSet:
    """A tile matrix set by id; an unknown id is a 404 naming the ones there are."""
    found = _registry().get(tms_id)
    if found is None:
        raise Problem(
            404,
            f"no tile matrix set {tms_id!r}; tile matrix sets: {', '.join(_registry())}",
        )
    return found


def zoom_range(tms: TileMatrixSet) -> tuple[int, int]:
    """The first and last tile matrix (zoom) of a set."""
    return _zoom_range(tms.id)


@functools.cache
def _zoom_range(tms_id: str) -> tuple[int, int]:
    ids = [int(m.id) for m in get(tms_id).tileMatrices]
    return min(ids), max(ids)


@dataclass(frozen=True)
class TileBox:
    """Where a tile lies: bounds in the set's CRS (x = easting or longitude) and lon/lat."""

    xy: tuple[float, float, float, float]
    lonlat: tuple[float, float, float, float]


def tile_box(tms: TileMatrixSet, z: int, y: int, x: int) -> TileBox:
    """The bounds of tile z/y/x; out of the set's range is a 400 naming the limits."""
    first, last = zoom_range(tms)
    if not first <= z <= last:
        raise Problem(400, f"tile matrix {z} is not in {tms.id} (tile matrices {first} to {last})")
    matrix = tms.matrix(z)
    if not (0 <= x < matrix.matrixWidth and 0 <= y < matrix.matrixHeight):
        raise Problem(
            400,
            f"tile {z}/{y}/{x} is outside {tms.id} tile matrix {z}: rows 0 to "
            f"{matrix.matrixHeight - 1}, columns 0 to {matrix.matrixWidth - 1}",
        )
    tile = morecantile.Tile(x, y, z)
    xy = tuple(tms.xy_bounds(tile))
    if tms.id in GEOGRAPHIC:
        lonlat = xy
    elif tms.id == "WebMercatorQuad":  # the spherical inverse, without pyproj's ~3 ms a call
        lonlat = (*from_mercator(xy[0], xy[1]), *from_mercator(xy[2], xy[3]))
    else:
        lonlat = tuple(tms.bounds(tile))
    return TileBox(xy, lonlat)  # type: ignore[arg-type]


EARTH_RADIUS = 6378137.0


def to_mercator(lon: Any, lat: Any) -> tuple[Any, Any]:
    """Longitude/latitude in degrees to EPSG:3857 metres (the spherical formula PROJ uses)."""
    import numpy as np

    lat = np.clip(lat, -85.06, 85.06)
    x = np.radians(lon) * EARTH_RADIUS
    y = np.log(np.tan(math.pi / 4 + np.radians(lat) / 2)) * EARTH_RADIUS
    return x, y


def from_mercator(x: float, y: float) -> tuple[float, float]:
    """EPSG:3857 metres to longitude/latitude in degrees."""
    lon = math.degrees(x / EARTH_RADIUS)
    lat = math.degrees(2 * math.atan(math.exp(y / EARTH_RADIUS)) - math.pi / 2)
    return lon, lat
