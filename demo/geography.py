"""The demo city's geography: extent, river, reservoirs, hills, city, mining area, places.

Everything else is generated inside these shapes, so layers of different departments
agree with each other (farmland outside the river, parcels in the city, mines in the SE).
Shapes are built in zone-38 Gauss-Krüger metres (EPSG:4547), where buffers and areas are
honest, and turned into EPSG:4490 only when written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shikong.spatial.area import ellipsoidal_area_m2
from shikong.spatial.crs import transformer

from . import names
from .model import rng_for

STORAGE_EPSG = 4490
WORK_EPSG = 4547  # CGCS2000 3° GK zone 38 (CM 114°E), eastings without the zone prefix
PREFIXED_EPSG = 4526  # the same zone with the prefix, as survey shapefiles arrive
EXTENT_LONLAT = (113.0, 33.6, 113.6, 34.0)
CENTRE_LONLAT = (113.30, 33.78)
RESERVOIR_LONLAT = (113.05, 33.70)
MINING_LONLAT = (113.45, 33.66)
# Overlays snap to a 1 mm grid: floating-point noise otherwise leaves slivers of 1e-10 m²
# and near-touching rings that turn invalid once reprojected to lon/lat.
GRID = 0.001
MIN_PART_M2 = 1.0

# Main river course west -> east (lon, lat); it runs through the main reservoir.
_RIVER_COURSE = (
    (113.0, 33.718),
    (113.03, 33.706),
    (113.05, 33.700),
    (113.075, 33.711),
    (113.12, 33.728),
    (113.18, 33.745),
    (113.24, 33.757),
    (113.30, 33.765),
    (113.36, 33.758),
    (113.42, 33.746),
    (113.48, 33.737),
    (113.54, 33.730),
    (113.6, 33.727),
)
# Bed elevation of the main river (1985 datum) at a few longitudes, metres.
_RIVER_BED = ((113.0, 190.0), (113.04, 168.0), (113.08, 140.0), (113.3, 96.0), (113.6, 72.0))


def to_gk(lon: np.ndarray | float, lat: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """EPSG:4490 lon/lat to working GK metres."""
    return transformer(STORAGE_EPSG, WORK_EPSG).transform(lon, lat)


def to_lonlat(x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Working GK metres to EPSG:4490 lon/lat."""
    return transformer(WORK_EPSG, STORAGE_EPSG).transform(x, y)


def gk_geom(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda x, y: to_gk(x, y), interleaved=False)


def lonlat_geom(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda x, y: to_lonlat(x, y), interleaved=False)


def gk_point(lon: float, lat: float) -> Point:
    x, y = to_gk(lon, lat)
    return Point(float(x), float(y))


def blob(
    centre: Point, radius: float, rng: np.random.Generator, amplitude: float = 0.2, n: int = 96
) -> Polygon:
    """A smooth irregular closed shape: a circle whose radius wobbles with a few harmonics."""
    theta = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 6):
        r += rng.uniform(0.3, 1.0) * amplitude / (k - 1) * np.cos(k * theta + rng.uniform(0, 6.3))
    r = radius * np.clip(r, 0.4, None)
    return Polygon(np.column_stack([centre.x + r * np.cos(theta), centre.y + r * np.sin(theta)]))


def wiggle(
    points: list[tuple[float, float]], rng: np.random.Generator, step: float, amplitude: float
) -> LineString:
    """A line through GK control points with a smooth random meander, ends kept in place."""
    line = shapely.segmentize(LineString(points), step)
    xy = shapely.get_coordinates(line)
    n = len(xy)
    walk = np.cumsum(rng.normal(0.0, 1.0, n))
    walk -= np.linspace(walk[0], walk[-1], n)  # pin both ends
    kernel = np.hanning(9) / np.hanning(9).sum()
    walk = np.convolve(walk, kernel, mode="same")
    walk *= amplitude / max(np.abs(walk).max(), 1e-9)
    walk[0] = walk[-1] = 0.0
    tangent = np.gradient(xy, axis=0)
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    return LineString(xy + normal * walk[:, None])


def _course(points: tuple[tuple[float, float], ...]) -> list[tuple[float, float]]:
    x, y = to_gk(np.array([p[0] for p in points]), np.array([p[1] for p in points]))
    return list(zip(x.tolist(), y.tolist(), strict=True))


@dataclass(frozen=True)
class Reservoir:
    name: str
    shape: Polygon
    normal_level_m: float  # 正常蓄水位
    flood_limit_m: float  # 汛限水位: the warning level of its gauges
    capacity_mcm: float  # 总库容, million m³


@dataclass(frozen=True)
class Place:
    """A named town, village or urban community; land-use patches take the nearest name."""

    name: str
    point: Point
    kind: str  # "town" | "village" | "community"


@dataclass(frozen=True)
class Geography:
    """The fixed shapes of the demo city in GK metres (EPSG:4547)."""

    extent: Polygon
    centre: Point
    river_name: str
    river_line: LineString
    river: BaseGeometry
    reservoirs: tuple[Reservoir, ...]
    tributaries: tuple[tuple[str, LineString], ...]
    hills: BaseGeometry
    core: Polygon
    urban_boundary: Polygon
    mining_area: BaseGeometry
    places: tuple[Place, ...]
    hill_phases: tuple[float, float] = (0.0, 0.0)

    @cached_property
    def water(self) -> BaseGeometry:
        """River and reservoirs: what land patches leave out."""
        return shapely.union_all([self.river, *(r.shape for r in self.reservoirs)])

    def hill_edge_lon(self, lat: np.ndarray | float) -> np.ndarray | float:
        """Longitude where the western hills give way to the plain, at a latitude."""
        return hill_edge_lon(lat, self.hill_phases)

    def place_name(self, point: Point, kinds: tuple[str, ...] = ("village", "community")) -> str:
        """坐落: '<town><village>' of the nearest place of the given kinds."""
        candidates = [p for p in self.places if p.kind in kinds]
        near = min(candidates, key=lambda p: p.point.distance(point))
        town = min(
            (p for p in self.places if p.kind == "town"), key=lambda p: p.point.distance(point)
        )
        return near.name if near.kind == "community" else f"{town.name}{near.name}"


def hill_edge_lon(lat: np.ndarray | float, phases: tuple[float, float]) -> np.ndarray | float:
    """The hills' eastern edge: a wavy meridian near 113.165°E (the DEM rises west of it)."""
    t = (np.asarray(lat) - EXTENT_LONLAT[1]) / (EXTENT_LONLAT[3] - EXTENT_LONLAT[1])
    return (
        113.165
        + 0.018 * np.sin(2 * math.pi * 1.3 * t + phases[0])
        + 0.008 * np.sin(2 * math.pi * 3.7 * t + phases[1])
    )


def river_bed_m(lon: np.ndarray | float) -> np.ndarray | float:
    """Bed elevation of the main river at a longitude (1985 datum), metres."""
    xs, zs = zip(*_RIVER_BED, strict=True)
    return np.interp(lon, xs, zs)


def extent_polygon() -> Polygon:
    """The lon/lat rectangle of the city in GK metres (densified: its edges curve in GK)."""
    x0, y0, x1, y1 = EXTENT_LONLAT
    box = shapely.segmentize(shapely.box(x0, y0, x1, y1), 0.005)
    return gk_geom(box)


def _hills(extent: Polygon, phases: tuple[float, float]) -> BaseGeometry:
    lat = np.linspace(EXTENT_LONLAT[1] - 0.01, EXTENT_LONLAT[3] + 0.01, 200)
    lon = hill_edge_lon(lat, phases)
    ring = [(EXTENT_LONLAT[0] - 0.01, lat[0]), *zip(lon, lat, strict=True)]
    ring.append((EXTENT_LONLAT[0] - 0.01, lat[-1]))
    return gk_geom(Polygon(ring)).intersection(extent)


def _places(
    rng: np.random.Generator, extent: Polygon, core: Polygon, water: BaseGeometry
) -> tuple[Place, ...]:
    """Towns spread over the countryside, villages around them, communities in the city."""
    places: list[Place] = []
    x0, y0, x1, y1 = extent.bounds
    inner = extent.buffer(-1500)
    town_names = names.TOWNS
    villages = names.village_names(rng, 48)
    communities = names.COMMUNITIES
    town_free = core.buffer(2000.0)
    while len(places) < len(town_names):
        p = Point(rng.uniform(x0, x1), rng.uniform(y0, y1))
        apart = all(q.point.distance(p) > 9000 for q in places)
        if apart and inner.contains(p) and not town_free.contains(p) and water.distance(p) > 500:
            places.append(Place(town_names[len(places)], p, "town"))
    count = 0
    while count < len(villages):
        p = Point(rng.uniform(x0, x1), rng.uniform(y0, y1))
        if extent.contains(p) and not core.contains(p) and water.distance(p) > 200:
            places.append(Place(villages[count], p, "village"))
            count += 1
    cx, cy = core.centroid.x, core.centroid.y
    for i, name in enumerate(communities):
        angle = 2 * math.pi * i / len(communities)
        dist = 900 + 1800 * (i % 3) / 2
        places.append(
            Place(
                name, Point(cx + dist * math.cos(angle), cy + dist * math.sin(angle)), "community"
            )
        )
    return tuple(places)


def build_geography(seed: int) -> Geography:
    """The city's shapes for a seed; the same seed always gives the same city."""
    rng = rng_for(seed, "geography")
    extent = extent_polygon()
    phases = (float(rng.uniform(0, 6.3)), float(rng.uniform(0, 6.3)))
    hills = _hills(extent, phases)

    main = Reservoir(
        names.RESERVOIRS[0],
        blob(gk_point(*RESERVOIR_LONLAT), 1900.0, rng, amplitude=0.3),
        normal_level_m=163.0,
        flood_limit_m=164.5,
        capacity_mcm=128.0,
    )
    small = Reservoir(
        names.RESERVOIRS[1],
        blob(gk_point(113.09, 33.905), 650.0, rng, amplitude=0.25),
        normal_level_m=238.0,
        flood_limit_m=239.0,
        capacity_mcm=6.5,
    )
    river_line = wiggle(_course(_RIVER_COURSE), rng, step=250.0, amplitude=220.0)
    river_line = river_line.intersection(extent)
    reservoirs = (main, small)
    lakes = shapely.union_all([r.shape for r in reservoirs])
    river = river_line.buffer(60.0, quad_segs=4).difference(lakes).intersection(extent)

    tributaries = []
    for name, course in zip(names.TRIBUTARIES, _tributary_courses(), strict=True):
        line = wiggle(_course(course), rng, step=200.0, amplitude=150.0)
        end = river_line.interpolate(river_line.project(Point(line.coords[-1])))
        coords = [*line.coords[:-1], (end.x, end.y)]
        start = Point(coords[0])
        if small.shape.contains(start):  # the tributary leaves the small reservoir's dam
            coords[0] = small.shape.exterior.interpolate(
                small.shape.exterior.project(start)
            ).coords[0]
        tributaries.append((name, LineString(coords).intersection(extent)))

    centre = gk_point(*CENTRE_LONLAT)
    core = blob(centre, 3800.0, rng, amplitude=0.12)
    urban = shapely.union_all([blob(centre, 6200.0, rng, amplitude=0.15), core.buffer(500.0)])
    urban = Polygon(urban.exterior)  # no holes in the development boundary
    mining = blob(gk_point(*MINING_LONLAT), 5500.0, rng, amplitude=0.12).intersection(extent)
    water = shapely.union_all([river, lakes])
    places = _places(rng, extent, core, water)
    return Geography(
        extent=extent,
        centre=centre,
        river_name=names.RIVER,
        river_line=river_line,
        river=river,
        reservoirs=reservoirs,
        tributaries=tuple(tributaries),
        hills=hills.difference(lakes),
        core=core,
        urban_boundary=urban,
        mining_area=mining,
        places=places,
        hill_phases=phases,
    )


def _tributary_courses() -> tuple[tuple[tuple[float, float], ...], ...]:
    """Control points (lon, lat) of the tributaries, source first, ending at the main river."""
    return (
        ((113.09, 33.897), (113.12, 33.86), (113.16, 33.81), (113.20, 33.75)),
        ((113.38, 34.0), (113.39, 33.92), (113.405, 33.83), (113.40, 33.75)),
        ((113.24, 33.6), (113.255, 33.66), (113.27, 33.72), (113.275, 33.76)),
    )


def random_points(
    area: BaseGeometry, n: int, rng: np.random.Generator, avoid: BaseGeometry | None = None
) -> list[Point]:
    """n uniform random points inside an area (and outside ``avoid``), by rejection."""
    x0, y0, x1, y1 = area.bounds
    shapely.prepare(area)
    out: list[Point] = []
    while len(out) < n:
        xs = rng.uniform(x0, x1, 4 * (n - len(out)) + 8)
        ys = rng.uniform(y0, y1, xs.size)
        pts = shapely.points(xs, ys)
        keep = shapely.contains(area, pts)
        if avoid is not None:
            keep &= ~shapely.intersects(avoid, pts)
        out.extend(pts[keep][: n - len(out)].tolist())
    return out


def polygons_only(geom: BaseGeometry | None) -> BaseGeometry | None:
    """The polygonal part of a set-operation result (drops stray lines and points)."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else None


def area_m2(geom: BaseGeometry) -> float:
    """Ellipsoidal (CGCS2000) area of a GK geometry, m², as land surveys state areas."""
    return ellipsoidal_area_m2(lonlat_geom(geom))


def frame(rows: list[dict], geoms: list[BaseGeometry]) -> gpd.GeoDataFrame:
    """A GeoDataFrame in the working GK CRS; columns in the order of the first row."""
    return gpd.GeoDataFrame(rows, geometry=list(geoms), crs=f"EPSG:{WORK_EPSG}")
