"""Coal mines in the SE mining area: mining rights, surface works, subsidence ponds.

One mine is closed and remediated (its works become forest by 2023, NDVI rises); the
active mines' works grow by 2023 (NDVI falls). Land use, remote sensing, subsidence points
and the remediation project layer all take their shapes from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import polylabel

from . import names
from .geography import Geography, blob, polygons_only, random_points
from .model import Scale, rng_for

_NUMERALS = "一二三四五六七八九十"
REMEDIATION_START = date(2020, 10, 1)
REMEDIATION_END = date(2022, 11, 30)


@dataclass(frozen=True)
class Mine:
    licence: str  # 采矿许可证号
    name: str
    holder: str
    right: Polygon  # 矿区范围
    pithead: Point
    works: Polygon  # surface works (工业场地) as of 2020
    pond: BaseGeometry | None  # subsidence pond (塌陷坑塘) as of 2020
    expansion: BaseGeometry | None  # works added by 2023 (active mines only)
    capacity: float  # 生产规模, 万吨/年
    valid_from: date
    valid_to: date
    remediated: bool

    @property
    def status(self) -> str:
        return "注销" if self.remediated else "有效"


def _largest(geom: BaseGeometry) -> Polygon:
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon"]
    return max(parts, key=lambda g: g.area)


def _licence(rng: np.random.Generator, issued: date) -> str:
    """采矿许可证号: 'C' + 22 digits (region, date issued, serial)."""
    return f"C410000{issued:%Y%m}11{int(rng.integers(0, 10**8)):08d}"


def build_mines(geo: Geography, scale: Scale, seed: int) -> list[Mine]:
    """Mining rights tiling most of the mining area, each with works and (if active) a pond."""
    rng = rng_for(seed, "mines")
    area = geo.mining_area
    seeds = random_points(area.buffer(-1200), scale.mining_rights * 8, rng)
    gap = 2600.0
    chosen: list[Point] = []
    while len(chosen) < scale.mining_rights:  # keep seeds apart: rights of similar size
        chosen = []
        for p in seeds:
            if all(p.distance(q) > gap for q in chosen):
                chosen.append(p)
            if len(chosen) == scale.mining_rights:
                break
        gap *= 0.9
    cells = shapely.voronoi_polygons(shapely.MultiPoint(chosen), extend_to=area, ordered=True).geoms
    remediated_index = int(rng.integers(len(chosen)))
    mines: list[Mine] = []
    for i, cell in enumerate(cells):
        right = _largest(cell.intersection(area).buffer(-150.0))
        right = shapely.simplify(right, 120.0, preserve_topology=True)
        pithead = polylabel(right, tolerance=10.0)
        room = right.exterior.distance(pithead)
        works_r = min(700.0, 0.45 * room)
        works = _largest(blob(pithead, works_r, rng, amplitude=0.25).intersection(right))
        remediated = i == remediated_index
        pond = expansion = None
        if not remediated:
            angle = rng.uniform(0, 2 * math.pi)
            dist = works_r + 420.0
            centre = Point(pithead.x + dist * math.cos(angle), pithead.y + dist * math.sin(angle))
            pond = polygons_only(
                blob(centre, 330.0, rng, amplitude=0.3)
                .intersection(right.buffer(-60.0))
                .difference(works.buffer(40.0))
            )
            grown = works.buffer(380.0).intersection(right.buffer(-60.0)).difference(works)
            if pond is not None:
                grown = grown.difference(pond)
            expansion = polygons_only(grown)
        issued = date(int(rng.integers(2003, 2013)), int(rng.integers(1, 13)), 1)
        valid_to = date(2019, 12, 31) if remediated else date(int(rng.integers(2028, 2041)), 12, 31)
        company = names.COMPANIES[i % len(names.COMPANIES)]
        mines.append(
            Mine(
                licence=_licence(rng, issued),
                name=f"{company}{_NUMERALS[i // len(names.COMPANIES)]}号井",
                holder=f"河南{company}有限责任公司",
                right=right,
                pithead=pithead,
                works=works,
                pond=pond,
                expansion=expansion,
                capacity=float(rng.choice([45, 60, 90, 120, 150, 180, 240])),
                valid_from=issued,
                valid_to=valid_to,
                remediated=remediated,
            )
        )
    return mines
