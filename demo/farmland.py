"""Farmland layers derived from the 2023 land use: 永久基本农田 (nrp) and 耕地质量等别 (agr).

Both lie inside cultivated patches, as the real ones do: protection areas are whole
cultivated patches shrunk by 15 m (so they stay inside after reprojection), never in the
development boundary, the mining area or the ecological red line.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from .geography import GRID, Geography, area_m2, frame
from .landuse import CULTIVATED, Patch, parts
from .model import rng_for

M2_PER_MU = 10_000 / 15


def farmland_protection(
    geo: Geography, v2023: list[Patch], redline: shapely.Geometry, seed: int
) -> gpd.GeoDataFrame:
    rng = rng_for(seed, "farmland_protection")
    excluded = shapely.union_all([geo.urban_boundary, geo.mining_area, redline])
    shapely.prepare(excluded)
    rows, geoms = [], []
    for patch in v2023:
        if patch.dlbm not in CULTIVATED or rng.random() > 0.75:
            continue
        if shapely.intersects(excluded, patch.geom.representative_point()):
            continue
        for piece in parts(patch.geom.buffer(-15.0).difference(excluded, grid_size=GRID)):
            if piece.area < 5_000:
                continue
            rows.append(
                {
                    "BHTBBH": f"410400{len(rows) + 1:06d}",
                    "DLBM": patch.dlbm,
                    "DLMC": patch.dlmc,
                    "ZLDWMC": patch.zldwmc,
                    "MJ": round(area_m2(piece), 2),
                    "HDND": "2022",
                }
            )
            geoms.append(piece)
    return frame(rows, geoms)


def farmland_quality(geo: Geography, v2023: list[Patch], seed: int) -> gpd.GeoDataFrame:
    """Quality grade 1 (best) .. 10 of each cultivated patch: worse far from water, in the
    hills and over the mines (subsidence), with local noise."""
    rng = rng_for(seed, "farmland_quality")
    water = shapely.union_all([geo.river_line, *(line for _, line in geo.tributaries)])
    rows, geoms = [], []
    for patch in v2023:
        if patch.dlbm not in CULTIVATED:
            continue
        p = patch.geom.representative_point()
        dist = water.distance(p)
        score = 2.5 + 3.5 * min(dist / 8000.0, 1.0) + rng.normal(0.0, 0.8)
        score += 2.0 * geo.hills.contains(p) + 1.5 * geo.mining_area.contains(p)
        score -= {"0101": 1.0, "0102": 0.5, "0103": 0.0}[patch.dlbm]
        grade = int(np.clip(round(score), 1, 10))
        irrigation = "充分满足" if dist < 2000 else "满足" if dist < 5000 else "基本满足"
        if patch.dlbm == "0103" and dist > 6000:
            irrigation = "不满足"
        area = area_m2(patch.geom)
        rows.append(
            {
                "patch_bsm": patch.bsm,
                "dlbm": patch.dlbm,
                "quality_grade": grade,
                "irrigation": irrigation,
                "organic_matter_gkg": round(
                    float(np.clip(24 - 1.2 * grade + rng.normal(0, 1.5), 6, 30)), 1
                ),
                "area_mu": round(area / M2_PER_MU, 2),
                "location": patch.zldwmc,
                "survey_year": 2023,
            }
        )
        geoms.append(patch.geom)
    return frame(rows, geoms)
