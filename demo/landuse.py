"""Land use (地类图斑) of 2020 and 2023, and the construction approvals that changed it.

Patches are Voronoi cells of random seeds (denser in the city and the mining area) with
the river and reservoirs cut out, so they tile the extent. The 2023 survey differs from
2020 the way annual change surveys do: approved farmland near the city became built land
(the patch is split along the approval boundary), the closed mine's works became forest,
the active mines' works grew.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree
from shikong.config import load

from .geography import GRID, MIN_PART_M2, Geography, area_m2, frame, polygons_only, random_points
from .mines import Mine
from .model import Scale, rng_for

CULTIVATED = ("0101", "0102", "0103")
STATE, COLLECTIVE = "10", "30"  # QSXZ 权属性质: 国有 / 集体

# Class mixes (DLBM: weight) of each zone of the city. Patches are Voronoi cells of about
# 1-3 km², so narrow classes (ditches, rural roads) are left out; ponds are rare.
_HILLS = {"0301": 45, "0305": 15, "0307": 5, "0404": 12, "0103": 13, "0201": 5, "0702": 5}
_CORE = {
    "0701": 38, "0501": 6, "0505": 5, "0601": 10, "0604": 4, "0801": 4, "0803": 7,
    "0805": 3, "0810": 8, "1004": 6, "0808": 2, "1005": 3,
}  # fmt: skip
_FRINGE = {"0103": 58, "0102": 10, "0702": 15, "0601": 8, "0701": 7, "1202": 2}
_MINING = {"0103": 62, "0102": 12, "0702": 15, "1104": 3, "1202": 3, "0201": 5}
_PLAIN = {
    "0103": 55, "0102": 18, "0101": 5, "0702": 11, "0201": 4, "0301": 3, "1202": 2,
    "0404": 1, "1104": 1,
}  # fmt: skip
_NEW_USES = {"0701": 40, "0601": 30, "0803": 10, "0805": 5, "0810": 10, "1004": 5}


@dataclass(frozen=True)
class Patch:
    """One 地类图斑: geometry in GK metres and the survey's key fields."""

    bsm: int  # 标识码
    dlbm: str  # 地类编码 (GB/T 21010)
    qsxz: str  # 权属性质
    zldwmc: str  # 坐落单位名称
    geom: BaseGeometry

    @property
    def dlmc(self) -> str:
        return class_name(self.dlbm)


@dataclass(frozen=True)
class Approval:
    """An approval of construction land (建设用地批复) and the ground it covers."""

    number: str  # 批准文号, e.g. 豫政土〔2022〕123号
    approved: date
    project: str
    use: str  # DLBM of the approved use
    geom: Polygon
    converted: bool  # farmland turned construction between the two surveys


@dataclass(frozen=True)
class LandUse:
    v2020: list[Patch]
    v2023: list[Patch]
    approvals: list[Approval]


def class_name(dlbm: str) -> str:
    return load("land_classes")["classes"][dlbm]["name"]


def _pick(rng: np.random.Generator, mix: dict[str, int]) -> str:
    codes = sorted(mix)
    weights = np.array([mix[c] for c in codes], dtype=float)
    return codes[int(rng.choice(len(codes), p=weights / weights.sum()))]


def _classify(geo: Geography, cell: Polygon, rng: np.random.Generator) -> tuple[str, str]:
    """(DLBM, QSXZ) of a land cell by the zone its representative point falls in."""
    p = cell.representative_point()
    if geo.core.contains(p):
        return _pick(rng, _CORE), STATE
    if geo.hills.contains(p):
        code = _pick(rng, _HILLS)
        state_forest = code.startswith("03") and rng.random() < 0.3  # 国有林场
        return code, STATE if state_forest else COLLECTIVE
    if geo.urban_boundary.contains(p):
        code = _pick(rng, _FRINGE)
        return code, STATE if code in ("0601", "0701", "1004") else COLLECTIVE
    if geo.mining_area.contains(p):
        return _pick(rng, _MINING), COLLECTIVE
    return _pick(rng, _PLAIN), COLLECTIVE


def _cells(geo: Geography, scale: Scale, rng: np.random.Generator) -> list[Polygon]:
    n = scale.landuse_seeds
    seeds = [
        *random_points(geo.extent, int(n * 0.42), rng),
        *random_points(geo.urban_boundary.buffer(1500.0), int(n * 0.30), rng),
        *random_points(geo.mining_area, int(n * 0.15), rng),
    ]
    seeds += random_points(geo.hills, n - len(seeds), rng)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=geo.extent, ordered=True)
    return [c.intersection(geo.extent, grid_size=GRID) for c in cells.geoms]


def carve(
    patches: list[Patch],
    shape: BaseGeometry,
    make: Callable[[int, BaseGeometry, Patch], Patch],
    next_bsm: int,
) -> tuple[list[Patch], int]:
    """Cut ``shape`` out of the patches it touches and add it as new patch(es).

    ``make(bsm, geom, old)`` builds each new patch (``old`` is the patch the piece came
    from), so the tiling is kept: what one patch loses another gains.
    """
    tree = STRtree([p.geom for p in patches])
    hit = set(tree.query(shape, predicate="intersects").tolist())
    out: list[Patch] = []
    for i, patch in enumerate(patches):
        if i not in hit:
            out.append(patch)
            continue
        inside = parts(patch.geom.intersection(shape, grid_size=GRID))
        if not inside:  # touches the shape only along an edge: keep it as it was
            out.append(patch)
            continue
        rest = parts(patch.geom.difference(shape, grid_size=GRID))
        if rest:  # the largest remaining part keeps the patch's BSM
            out.append(replace(patch, geom=rest[0]))
            for extra in rest[1:]:
                out.append(replace(patch, bsm=next_bsm, geom=extra))
                next_bsm += 1
        for piece in inside:
            out.append(make(next_bsm, piece, patch))
            next_bsm += 1
    return out, next_bsm


def parts(geom: BaseGeometry | None) -> list[Polygon]:
    """Single polygons of a result, largest first: a 图斑 is never multi-part."""
    polygonal = polygons_only(geom)
    if polygonal is None:
        return []
    pieces = [g for g in shapely.get_parts(polygonal).tolist() if g.area >= MIN_PART_M2]
    return sorted(pieces, key=lambda g: -g.area)


def _rectangle(centre: Point, width: float, height: float, angle: float) -> Polygon:
    c, s = math.cos(angle), math.sin(angle)
    corners = [(-width / 2, -height / 2), (width / 2, -height / 2), (width / 2, height / 2)]
    corners.append((-width / 2, height / 2))
    return Polygon([(centre.x + x * c - y * s, centre.y + x * s + y * c) for x, y in corners])


def _approval_number(rng: np.random.Generator, year: int, taken: set[str]) -> str:
    """批准文号 of the provincial government, unique within the demo."""
    while True:
        number = f"豫政土〔{year}〕{int(rng.integers(20, 900))}号"
        if number not in taken:
            taken.add(number)
            return number


def _random_date(rng: np.random.Generator, start: date, end: date) -> date:
    return start + timedelta(days=int(rng.integers(0, (end - start).days + 1)))


def _as_class(code: str, owner: str) -> Callable[[int, BaseGeometry, Patch], Patch]:
    """A ``carve`` maker: new patches of one class, located where the old patch was."""
    return lambda n, g, old: Patch(n, code, owner, old.zldwmc, g)


def _survey_2020(
    geo: Geography, mines: list[Mine], scale: Scale, rng: np.random.Generator
) -> tuple[list[Patch], int]:
    """Land cells, river pieces and reservoirs, then the mines' works and ponds carved in."""
    patches: list[Patch] = []
    bsm = 1
    river = geo.river
    shapely.prepare(river)
    for cell in _cells(geo, scale, rng):
        for land in parts(cell.difference(geo.water, grid_size=GRID)):
            code, owner = _classify(geo, land, rng)
            where = geo.place_name(land.representative_point())
            patches.append(Patch(bsm, code, owner, where, land))
            bsm += 1
        if not shapely.intersects(cell, river):
            continue
        for piece in parts(cell.intersection(river, grid_size=GRID)):
            where = geo.place_name(piece.representative_point())
            patches.append(Patch(bsm, "1101", STATE, where, piece))
            bsm += 1
    for reservoir in geo.reservoirs:
        for lake in parts(reservoir.shape.intersection(geo.extent, grid_size=GRID)):
            patches.append(Patch(bsm, "1103", STATE, geo.place_name(lake.centroid), lake))
            bsm += 1
    for mine in mines:
        patches, bsm = carve(patches, mine.works, _as_class("0602", STATE), bsm)
        if mine.pond is not None:
            patches, bsm = carve(patches, mine.pond, _as_class("1104", COLLECTIVE), bsm)
    return sorted(patches, key=lambda p: p.bsm), bsm


def _mine_changes(patches: list[Patch], mines: list[Mine], bsm: int) -> tuple[list[Patch], int]:
    """The closed mine's works became forest; the active mines' works grew."""
    for mine in mines:
        if mine.remediated:
            patches = [
                replace(p, dlbm="0301")
                if p.dlbm == "0602" and mine.works.contains(p.geom.representative_point())
                else p
                for p in patches
            ]
        elif mine.expansion is not None:
            patches, bsm = carve(patches, mine.expansion, _as_class("0602", STATE), bsm)
    return patches, bsm


def _piece(
    patch: Patch, rng: np.random.Generator, share: tuple[float, float, float, float]
) -> Polygon | None:
    """A rotated rectangle around the patch's middle cut from it: the approved ground."""
    side = math.sqrt(patch.geom.area)
    rect = _rectangle(
        patch.geom.representative_point(),
        side * rng.uniform(share[0], share[1]),
        side * rng.uniform(share[2], share[3]),
        rng.uniform(0, math.pi),
    )
    piece = polygons_only(patch.geom.intersection(rect, grid_size=GRID))
    return piece if piece is not None and piece.geom_type == "Polygon" else None


def _conversions(
    geo: Geography,
    v2020: list[Patch],
    v2023: list[Patch],
    scale: Scale,
    rng: np.random.Generator,
    bsm: int,
    numbers: set[str],
) -> tuple[list[Approval], list[Patch], int]:
    """Approvals of 2021-2023 on farmland at the city's edge, carved into the 2023 survey."""
    fringe = geo.urban_boundary.difference(geo.core)
    candidates = [
        p
        for p in v2020
        if p.dlbm in CULTIVATED
        and p.geom.area > 50_000
        and fringe.contains(p.geom.representative_point())
    ]
    limit = {"small": 12, "medium": 40, "large": 120}[scale.name]
    chosen = sorted(rng.permutation(len(candidates))[: max(5, min(limit, len(candidates) // 3))])
    approvals: list[Approval] = []
    for k, i in enumerate(chosen):
        patch = candidates[int(i)]
        piece = _piece(patch, rng, (0.45, 0.8, 0.35, 0.6))
        if piece is None or piece.area < 10_000:
            continue
        use = _pick(rng, _NEW_USES)
        approved = _random_date(rng, date(2021, 1, 15), date(2023, 10, 31))
        approvals.append(
            Approval(
                _approval_number(rng, approved.year, numbers),
                approved,
                f"{patch.zldwmc}{approved.year}年度第{k % 9 + 1}批次城镇建设用地",
                use,
                piece,
                converted=True,
            )
        )
        v2023, bsm = carve(v2023, piece, _as_class(use, STATE), bsm)
    return approvals, v2023, bsm


def _earlier_approvals(
    geo: Geography, v2020: list[Patch], scale: Scale, rng: np.random.Generator, numbers: set[str]
) -> list[Approval]:
    """Approvals of 2006-2019 under land the city had built on before 2020."""
    built = [
        p
        for p in v2020
        if p.dlbm[:2] in ("05", "06", "07", "08")
        and p.dlbm != "0602"
        and p.geom.area > 20_000
        and geo.core.contains(p.geom.representative_point())
    ]
    limit = {"small": 18, "medium": 50, "large": 150}[scale.name]
    approvals: list[Approval] = []
    for i in sorted(rng.permutation(len(built))[: min(limit, len(built) // 3)]):
        patch = built[int(i)]
        piece = _piece(patch, rng, (0.7, 0.7, 0.6, 0.6))
        if piece is None:
            continue
        approved = _random_date(rng, date(2006, 3, 1), date(2019, 12, 31))
        approvals.append(
            Approval(
                _approval_number(rng, approved.year, numbers),
                approved,
                f"{patch.zldwmc}{class_name(patch.dlbm)}项目",
                patch.dlbm,
                piece,
                converted=False,
            )
        )
    return approvals


def build_landuse(geo: Geography, mines: list[Mine], scale: Scale, seed: int) -> LandUse:
    """Both surveys and the approvals between (and before) them."""
    rng = rng_for(seed, "landuse")
    v2020, bsm = _survey_2020(geo, mines, scale, rng)
    v2023, bsm = _mine_changes(list(v2020), mines, bsm)
    numbers: set[str] = set()
    approvals, v2023, bsm = _conversions(geo, v2020, v2023, scale, rng, bsm, numbers)
    approvals += _earlier_approvals(geo, v2020, scale, rng, numbers)
    approvals.sort(key=lambda a: (a.approved, a.number))
    return LandUse(v2020, sorted(v2023, key=lambda p: p.bsm), approvals)


def landuse_frame(patches: list[Patch]) -> gpd.GeoDataFrame:
    """地类图斑 with the third national land survey's field names."""
    rows = [
        {
            "BSM": p.bsm,
            "DLBM": p.dlbm,
            "DLMC": p.dlmc,
            "QSXZ": p.qsxz,
            "ZLDWMC": p.zldwmc,
            "TBMJ": round(area_m2(p.geom), 2),
        }
        for p in patches
    ]
    return frame(rows, [p.geom for p in patches])


def approvals_frame(approvals: list[Approval], v2020: list[Patch]) -> gpd.GeoDataFrame:
    """已批建设用地 with the farmland each approval took (from the 2020 survey)."""
    farmland = shapely.union_all([p.geom for p in v2020 if p.dlbm in CULTIVATED])
    rows = []
    for i, a in enumerate(approvals, start=1):
        taken = polygons_only(a.geom.intersection(farmland))
        rows.append(
            {
                "编号": f"PZ{a.approved.year}-{i:03d}",
                "批准文号": a.number,
                "批准日期": a.approved.isoformat(),
                "批准机关": "河南省人民政府",
                "项目名称": a.project,
                "规划用途": class_name(a.use),
                "用地面积": round(area_m2(a.geom), 2),
                "占用耕地面积": round(area_m2(taken), 2) if taken is not None else 0.0,
            }
        )
    return frame(rows, [a.geom for a in approvals])
