"""People and public safety: the population grid (sta) and video camera sites (psb).

Population follows the settlement pattern (city centre, towns, villages, little on
water); cameras sit at city crossroads and on the highways. The camera list arrives as
a CSV in Gauss-Krüger metres, as police survey data often does.
"""

from __future__ import annotations

from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .geography import WORK_EPSG, Geography, frame
from .model import Scale, rng_for

CAMERA_TYPES = {"枪机": 50, "球机": 30, "人脸识别卡口": 12, "车辆卡口": 8}


def _density(geo: Geography, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """People per km² at GK points."""
    d = np.hypot(x - geo.centre.x, y - geo.centre.y)
    density = 300.0 + 14_000.0 * np.exp(-((d / 3000.0) ** 2))
    for place in geo.places:
        d = np.hypot(x - place.point.x, y - place.point.y)
        peak, radius = {"town": (2500.0, 1200.0), "village": (900.0, 600.0)}.get(
            place.kind, (0.0, 1.0)
        )
        density += peak * np.exp(-((d / radius) ** 2))
    return density


def population_grid(geo: Geography, scale: Scale, seed: int) -> gpd.GeoDataFrame:
    rng = rng_for(seed, "population_grid")
    size = scale.population_cell_m
    x0, y0, x1, y1 = geo.extent.bounds
    xs = np.arange(np.floor(x0 / size) * size, x1, size)
    ys = np.arange(np.floor(y0 / size) * size, y1, size)
    gx, gy = np.meshgrid(xs, ys[::-1])
    boxes = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + size, gy.ravel() + size)
    cells = shapely.intersection(boxes, geo.extent)
    keep = shapely.area(cells) > 1.0
    cells, boxes = cells[keep], boxes[keep]
    water = geo.water
    shapely.prepare(water)
    wet = np.zeros(len(cells))
    touching = shapely.intersects(water, cells)
    wet[touching] = shapely.area(shapely.intersection(cells[touching], water))
    land_km2 = (shapely.area(cells) - wet) / 1e6
    centres = shapely.centroid(boxes)
    density = _density(geo, shapely.get_x(centres), shapely.get_y(centres))
    people = rng.poisson(density * land_km2)
    rows = [
        {
            "grid_id": f"{int(b[0] // size):04d}{int(b[1] // size):05d}",
            "population": int(n),
            "cell_size_m": int(size),
            "land_km2": round(float(a), 4),
            "year": 2024,
        }
        for b, n, a in zip(shapely.bounds(boxes), people, land_km2, strict=True)
    ]
    return frame(rows, cells.tolist())


def camera_sites(geo: Geography, roads: gpd.GeoDataFrame, seed: int) -> pd.DataFrame:
    """Camera points as a table with x/y in EPSG:4547 (no zone prefix)."""
    rng = rng_for(seed, "camera_sites")
    city = roads[roads["grade"].isin(["城市主干道", "城市次干道"])].geometry.values
    pairs = [(a, b) for i, a in enumerate(city) for b in city[i + 1 :]]
    crossings = shapely.get_parts(shapely.union_all([shapely.intersection(a, b) for a, b in pairs]))
    points = [p for p in crossings if p.geom_type == "Point"]
    highways = roads[roads["grade"].isin(["国道", "省道"])].geometry.values
    for line in highways:
        for frac in np.linspace(0.05, 0.95, 8):
            points.append(line.interpolate(frac, normalized=True))
    points.sort(key=lambda p: (round(p.y, 1), round(p.x, 1)))
    types = sorted(CAMERA_TYPES)
    weights = np.array([CAMERA_TYPES[t] for t in types], dtype=float)
    rows = []
    for i, p in enumerate(points, start=1):
        installed = date(2015, 1, 1) + timedelta(days=int(rng.integers(0, 3000)))
        x = p.x + rng.normal(0.0, 5.0)
        y = p.y + rng.normal(0.0, 5.0)
        rows.append(
            {
                "camera_id": f"PSB-CAM-{i:05d}",
                "name": f"{geo.place_name(p, ('community', 'village'))}监控点{i}",
                "type": types[int(rng.choice(len(types), p=weights / weights.sum()))],
                "x": round(x, 3),
                "y": round(y, 3),
                "direction_deg": int(rng.integers(0, 360)),
                "install_date": installed.isoformat(),
                "status": "在线" if rng.random() < 0.95 else "离线",
            }
        )
    df = pd.DataFrame(rows)
    df.attrs["crs"] = f"EPSG:{WORK_EPSG}"
    return df
