"""Lines and water bodies: roads (tra), rivers and reservoirs (wat).

Main city roads run along the cadastre's block grid, so streets and parcels agree; the
national and provincial roads cross the whole extent.
"""

from __future__ import annotations

import geopandas as gpd
import shapely
from shapely.geometry import LineString
from shapely.ops import nearest_points

from . import names
from .cadastre import BLOCK_H, BLOCK_W, STREET
from .geography import Geography, area_m2, frame, gk_point, wiggle
from .model import Scale, rng_for

# (code, name, grade, lanes, control points lon/lat)
_HIGHWAYS = (
    (
        "G311",
        "国道311线",
        "国道",
        4,
        ((113.0, 33.815), (113.15, 33.81), (113.3, 33.805), (113.6, 33.83)),
    ),
    (
        "G207",
        "国道207线",
        "国道",
        4,
        ((113.22, 34.0), (113.26, 33.88), (113.33, 33.7), (113.36, 33.6)),
    ),
    (
        "S231",
        "省道231线",
        "省道",
        2,
        ((113.0, 33.65), (113.2, 33.69), (113.4, 33.69), (113.6, 33.64)),
    ),
    (
        "S329",
        "省道329线",
        "省道",
        2,
        ((113.45, 34.0), (113.47, 33.85), (113.45, 33.72), (113.5, 33.6)),
    ),
)


def roads(geo: Geography, scale: Scale, seed: int) -> gpd.GeoDataFrame:
    rng = rng_for(seed, "roads")
    rows, geoms = [], []
    for code, name, grade, lanes, course in _HIGHWAYS:
        pts = [gk_point(lon, lat) for lon, lat in course]
        line = wiggle([(p.x, p.y) for p in pts], rng, step=300.0, amplitude=250.0)
        rows.append({"code": code, "name": name, "grade": grade, "lanes": lanes, "surface": "沥青"})
        geoms.append(line.intersection(geo.extent))
    # county roads: from each town to the nearest point of a highway
    highways = shapely.union_all(geoms)
    towns = [p for p in geo.places if p.kind == "town"]
    for i, town in enumerate(towns, start=1):
        target = nearest_points(highways, town.point)[0]
        line = wiggle([(town.point.x, town.point.y), (target.x, target.y)], rng, 200.0, 150.0)
        rows.append(
            {
                "code": f"X{i:03d}",
                "name": f"{town.name}连接线",
                "grade": "县道",
                "lanes": 2,
                "surface": "沥青",
            }
        )
        geoms.append(line.intersection(geo.extent))
    # city streets on the block grid: every second grid line is a main road
    nx, ny = scale.block_grid
    x0 = geo.centre.x - nx * (BLOCK_W + STREET) / 2 - STREET / 2
    y0 = geo.centre.y + 300.0 - STREET / 2
    half = 4200.0
    for k in range(nx + 1):
        x = x0 + k * (BLOCK_W + STREET)
        main = k % 2 == 0
        line = LineString([(x, geo.centre.y - half), (x, geo.centre.y + half)])
        rows.append(
            {
                "code": "",
                "name": names.STREETS_NS[k % len(names.STREETS_NS)] + ("" if main else "支路"),
                "grade": "城市主干道" if main else "城市次干道",
                "lanes": 6 if main else 4,
                "surface": "沥青",
            }
        )
        geoms.append(line.intersection(geo.core))
    for k in range(ny + 1):
        y = y0 + k * (BLOCK_H + STREET)
        main = k % 2 == 0
        line = LineString([(geo.centre.x - half, y), (geo.centre.x + half, y)])
        rows.append(
            {
                "code": "",
                "name": names.STREETS_EW[k % len(names.STREETS_EW)] + ("" if main else "支路"),
                "grade": "城市主干道" if main else "城市次干道",
                "lanes": 6 if main else 4,
                "surface": "沥青",
            }
        )
        geoms.append(line.intersection(geo.core))
    kept = [(r, g) for r, g in zip(rows, geoms, strict=True) if not g.is_empty]
    gdf = frame([r for r, _ in kept], [g for _, g in kept])
    gdf.insert(0, "road_id", [f"R{i:04d}" for i in range(1, len(gdf) + 1)])
    gdf["length_km"] = [round(g.length / 1000, 3) for g in gdf.geometry]
    return gdf


def rivers(geo: Geography) -> gpd.GeoDataFrame:
    rows = [{"name": geo.river_name, "code": "HN4104001", "grade": "干流", "width_m": 120.0}]
    geoms = [geo.river_line]
    for i, (name, line) in enumerate(geo.tributaries, start=2):
        rows.append({"name": name, "code": f"HN4104{i:03d}", "grade": "支流", "width_m": 15.0})
        geoms.append(line)
    gdf = frame(rows, geoms)
    gdf["length_km"] = [round(g.length / 1000, 3) for g in gdf.geometry]
    return gdf


def reservoirs(geo: Geography) -> gpd.GeoDataFrame:
    rows = [
        {
            "name": r.name,
            "code": f"SK4104{i:03d}",
            "scale": "大（2）型" if r.capacity_mcm >= 100 else "小（1）型",
            "normal_level_m": r.normal_level_m,
            "flood_limit_level_m": r.flood_limit_m,
            "capacity_mcm": r.capacity_mcm,
            "surface_km2": round(area_m2(r.shape) / 1e6, 3),
            "river": geo.river_name if i == 1 else geo.tributaries[0][0],
        }
        for i, r in enumerate(geo.reservoirs, start=1)
    ]
    return frame(rows, [r.shape for r in geo.reservoirs])
