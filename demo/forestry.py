"""Forest stands (森林资源小班, frs): forest land patches of the west hills cut into stands.

Stands are the 2023 forest patches (03xx) in the hills split by a coarser grid of
compartments (林班), so they agree with the land-use survey.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from .geography import GRID, Geography, area_m2, frame, random_points
from .landuse import Patch, parts
from .model import Scale, rng_for

SPECIES = {"栓皮栎": 30, "侧柏": 20, "刺槐": 15, "油松": 15, "麻栎": 10, "杨树": 5, "荆条灌丛": 5}


def forest_stands(geo: Geography, v2023: list[Patch], scale: Scale, seed: int) -> gpd.GeoDataFrame:
    rng = rng_for(seed, "forest_stands")
    hills = geo.hills
    forest = shapely.union_all(
        [p.geom for p in v2023 if p.dlbm.startswith("03") and hills.contains(p.geom.centroid)]
    )
    seeds = random_points(hills, scale.forest_seeds, rng)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=geo.extent, ordered=True)
    compartments = random_points(hills, max(6, scale.forest_seeds // 12), rng)
    species = sorted(SPECIES)
    weights = np.array([SPECIES[s] for s in species], dtype=float)
    rows, geoms = [], []
    counters: dict[int, int] = {}
    for cell in cells.geoms:
        for stand in parts(cell.intersection(forest, grid_size=GRID)):
            if stand.area < 2_000:
                continue
            c = stand.representative_point()
            lb = 1 + min(range(len(compartments)), key=lambda i: compartments[i].distance(c))
            counters[lb] = counters.get(lb, 0) + 1
            kind = species[int(rng.choice(len(species), p=weights / weights.sum()))]
            natural = kind in ("栓皮栎", "麻栎", "荆条灌丛") and rng.random() < 0.7
            rows.append(
                {
                    "compartment": f"{lb:03d}",
                    "subcompartment": f"{lb:03d}-{counters[lb]:03d}",
                    "species": kind,
                    "origin": "天然" if natural else "人工",
                    "forest_category": "生态公益林" if rng.random() < 0.8 else "商品林",
                    "canopy_density": round(float(rng.uniform(0.2, 0.9)), 2),
                    "mean_age": int(rng.integers(8, 60)),
                    "mean_height_m": round(float(rng.uniform(3.0, 18.0)), 1),
                    "area_ha": round(area_m2(stand) / 10_000, 4),
                }
            )
            geoms.append(stand)
    gdf = frame(rows, geoms)
    return gdf.sort_values("subcompartment", kind="stable").reset_index(drop=True)
