"""The cadastre of the city centre (rer 宗地) and its buildings (hud 房屋).

Parcels are cut from a grid of city blocks north of the river, so they never overlap.
Every parcel has a valid 不动产单元代码. The history is kept the way registries keep it:
a split, a merge or a boundary change closes the old records (state 2, valid_to) and
opens new ones (valid_from = the change date, parent_codes = where they came from).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Polygon
from shikong.spatial.unit_code import make_unit_code

from . import names
from .geography import Geography, area_m2, frame
from .model import Scale, rng_for

BLOCK_W, BLOCK_H, STREET = 230.0, 170.0, 30.0
CURRENT, HISTORICAL = 1, 2
# land use of the parcel: (name, DLBM, term in years, share)
_USES = (
    ("城镇住宅用地", "0701", 70, 50),
    ("商务金融用地", "0505", 40, 10),
    ("零售商业用地", "0501", 40, 10),
    ("工业用地", "0601", 50, 10),
    ("教育用地", "0803", 50, 6),
    ("医疗卫生用地", "0805", 50, 4),
    ("机关团体用地", "0801", 50, 5),
    ("公园与绿地", "0810", 50, 5),
)
_BUILDING_USE = {
    "0701": ("住宅", (6, 33)),
    "0505": ("办公", (8, 28)),
    "0501": ("商业", (2, 8)),
    "0601": ("工业", (1, 4)),
    "0803": ("教育", (3, 6)),
    "0805": ("医疗", (4, 16)),
    "0801": ("办公", (4, 12)),
}
_STRUCTURES = {"工业": "钢结构", "商业": "钢混"}


@dataclass
class Parcel:
    """One registration record of a parcel (宗地)."""

    record_id: str
    unit_code: str
    county: str
    geom: Polygon
    use: str
    use_code: str
    term_years: int
    owner_name: str
    id_number: str
    registered: date
    valid_from: date
    right_letters: str = "GB"
    state: int = CURRENT
    valid_to: date | None = None
    parent_codes: str | None = None
    change_type: str | None = None
    mortgaged: bool = False
    seized: bool = False
    location: str = ""
    block: tuple[int, int] = (0, 0)
    cell: tuple[int, int] = (0, 0)  # column, row inside the block


@dataclass(frozen=True)
class Cadastre:
    parcels: list[Parcel]  # all records, historical ones included


class _Codes:
    """Hands out unit codes: sequences count up per cadastral sub-district."""

    def __init__(self) -> None:
        self.next: dict[tuple[str, int, int], int] = {}

    def new(self, county: str, district: int, sub: int, letters: str) -> str:
        key = (county, district, sub)
        seq = self.next.get(key, 1)
        self.next[key] = seq + 1
        return make_unit_code(county, district, sub, letters[0], letters[1], seq)


def _date(rng: np.random.Generator, start: date, end: date) -> date:
    return start + timedelta(days=int(rng.integers(0, (end - start).days + 1)))


def _cuts(rng: np.random.Generator, start: float, length: float, n: int) -> list[float]:
    """n pieces of a length, jittered but never thinner than 60% of the mean."""
    weights = rng.uniform(0.6, 1.4, n)
    edges = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]) * length + start
    return edges.tolist()


def _blocks(geo: Geography, scale: Scale) -> list[tuple[int, int, Polygon]]:
    """(column, row, block) of the grid, kept where inside the core and off the river."""
    nx, ny = scale.block_grid
    x0 = geo.centre.x - nx * (BLOCK_W + STREET) / 2
    y0 = geo.centre.y + 300.0
    keep_out = geo.water.buffer(120.0)
    blocks = []
    for row in range(ny):
        for col in range(nx):
            bx = x0 + col * (BLOCK_W + STREET)
            by = y0 + row * (BLOCK_H + STREET)
            block = shapely.box(bx, by, bx + BLOCK_W, by + BLOCK_H)
            if geo.core.contains(block) and not keep_out.intersects(block):
                blocks.append((col, row, block))
    return blocks


def _person(rng: np.random.Generator, county: str) -> tuple[str, str]:
    return names.person_name(rng), names.id_number(rng, county)


def _original_parcels(
    geo: Geography, scale: Scale, rng: np.random.Generator, codes: _Codes
) -> list[Parcel]:
    uses = np.array([u[3] for u in _USES], dtype=float)
    parcels: list[Parcel] = []
    nx = scale.block_grid[0]
    for col, row, block in _blocks(geo, scale):
        county = "410402" if col < nx / 2 else "410403"  # 新华区 west, 卫东区 east
        district = 1 + row // 3
        sub = 1 + col
        # blocks at the grid's edge are 城中村: collective homesteads
        village = row == 0 and col % 3 == 1
        x0, y0, x1, y1 = block.bounds
        ncol = 1 if village else int(rng.integers(2, 5))
        nrow = 2 if village or rng.random() < 0.6 else 1
        if village:
            ncol = 4
        xs = _cuts(rng, x0, x1 - x0, ncol)
        ys = _cuts(rng, y0, y1 - y0, nrow)
        use = _USES[int(rng.choice(len(_USES), p=uses / uses.sum()))]
        street = names.STREETS_EW[row % len(names.STREETS_EW)]
        for r in range(nrow):
            for c in range(ncol):
                geom = shapely.box(xs[c], ys[r], xs[c + 1], ys[r + 1])
                if village:
                    name, code, term, letters = "农村宅基地", "0702", 0, "JC"
                else:
                    name, code, term, _ = use if rng.random() < 0.8 else _USES[0]
                    letters = "GB"
                owner, idn = _person(rng, county)
                registered = _date(rng, date(2008, 1, 1), date(2019, 12, 31))
                number = 1 + (2 * len(parcels)) % 400
                parcels.append(
                    Parcel(
                        record_id="",
                        unit_code=codes.new(county, district, sub, letters),
                        county=county,
                        geom=geom,
                        use=name,
                        use_code=code,
                        term_years=term,
                        owner_name=owner,
                        id_number=idn,
                        registered=registered,
                        valid_from=registered,
                        right_letters=letters,
                        mortgaged=bool(rng.random() < 0.2),
                        seized=bool(rng.random() < 0.03),
                        location=f"{street}{number}号",
                        block=(col, row),
                        cell=(c, r),
                    )
                )
    return parcels


def _close(parcel: Parcel, when: date) -> None:
    parcel.state, parcel.valid_to = HISTORICAL, when


def _child(
    parent: Parcel,
    geom: Polygon,
    code: str,
    when: date,
    parents: str,
    kind: str,
    rng: np.random.Generator,
) -> Parcel:
    """A new current record from a change; a split-off part is usually sold to someone."""
    if kind == "split":
        owner, idn = _person(rng, parent.county)
    else:
        owner, idn = parent.owner_name, parent.id_number
    return replace(
        parent,
        record_id="",
        unit_code=code,
        geom=geom,
        owner_name=owner,
        id_number=idn,
        registered=when,
        valid_from=when,
        state=CURRENT,
        valid_to=None,
        parent_codes=parents,
        change_type=kind,
        mortgaged=False,
        seized=False,
    )


def _sub(parcel: Parcel) -> tuple[str, int, int]:
    code = parcel.unit_code
    return code[:6], int(code[6:9]), int(code[9:12])


def _history(
    parcels: list[Parcel], scale: Scale, rng: np.random.Generator, codes: _Codes
) -> list[Parcel]:
    """Apply splits, merges and boundary changes; returns the new records."""
    new: list[Parcel] = []
    used: set[int] = set()
    by_cell = {(p.block, p.cell): i for i, p in enumerate(parcels)}
    order = [int(i) for i in rng.permutation(len(parcels))]
    wanted = scale.history_changes

    def change_date() -> date:
        return _date(rng, date(2021, 3, 1), date(2024, 10, 31))

    splits = merges = rebounds = 0
    for i in order:
        p = parcels[i]
        if i in used or p.right_letters != "GB":
            continue
        x0, y0, x1, y1 = p.geom.bounds
        right = by_cell.get((p.block, (p.cell[0] + 1, p.cell[1])))
        if merges < wanted and right is not None and right not in used:
            q = parcels[right]
            if q.right_letters == p.right_letters:
                when = change_date()
                merged = shapely.union(p.geom, q.geom).normalize()
                merged = Polygon(merged.exterior) if merged.geom_type == "Polygon" else merged
                code = codes.new(*_sub(p), p.right_letters)
                _close(p, when)
                _close(q, when)
                new.append(
                    _child(p, merged, code, when, f"{p.unit_code},{q.unit_code}", "merge", rng)
                )
                used.update((i, right))
                merges += 1
                continue
        if splits < wanted and (x1 - x0) > 80:
            when = change_date()
            cut = x0 + (x1 - x0) * rng.uniform(0.4, 0.6)
            for part in (shapely.box(x0, y0, cut, y1), shapely.box(cut, y0, x1, y1)):
                code = codes.new(*_sub(p), p.right_letters)
                new.append(_child(p, part, code, when, p.unit_code, "split", rng))
            _close(p, when)
            used.add(i)
            splits += 1
            continue
        if rebounds < wanted and p.cell[1] == 0:  # on the block's south street: widened
            when = change_date()
            shrunk = shapely.box(x0, y0 + rng.uniform(4.0, 8.0), x1, y1)
            code = codes.new(*_sub(p), p.right_letters)
            new.append(_child(p, shrunk, code, when, p.unit_code, "rebound", rng))
            _close(p, when)
            used.add(i)
            rebounds += 1
        if splits >= wanted and merges >= wanted and rebounds >= wanted:
            break
    return new


def build_cadastre(geo: Geography, scale: Scale, seed: int) -> Cadastre:
    rng = rng_for(seed, "cadastre")
    codes = _Codes()
    parcels = _original_parcels(geo, scale, rng, codes)
    parcels += _history(parcels, scale, rng, codes)
    for i, p in enumerate(parcels, start=1):
        p.record_id = f"ZD{i:06d}"
    return Cadastre(parcels)


def parcels_frame(cadastre: Cadastre) -> gpd.GeoDataFrame:
    rows = []
    for p in cadastre.parcels:
        term_end = (
            (
                date(p.registered.year + p.term_years, p.registered.month, 1)
                + timedelta(days=min(p.registered.day, 28) - 2)
            ).isoformat()
            if p.term_years
            else None
        )
        rows.append(
            {
                "record_id": p.record_id,
                "unit_code": p.unit_code,
                "parcel_code": p.unit_code[:19],
                "location": f"{'新华区' if p.county == '410402' else '卫东区'}{p.location}",
                "owner_name": p.owner_name,
                "id_number": p.id_number,
                "right_type": "宅基地使用权" if p.right_letters == "JC" else "国有建设用地使用权",
                "right_nature": "批准拨用" if p.right_letters == "JC" else "出让",
                "land_use": p.use,
                "land_use_code": p.use_code,
                "area_m2": round(area_m2(p.geom), 2),
                "term_start": p.registered.isoformat() if p.term_years else None,
                "term_end": term_end,
                "registration_date": p.registered.isoformat(),
                "state": p.state,
                "valid_from": p.valid_from.isoformat(),
                "valid_to": p.valid_to.isoformat() if p.valid_to else None,
                "mortgaged": p.mortgaged,
                "seized": p.seized,
                "change_type": p.change_type,
                "parent_codes": p.parent_codes,
            }
        )
    return frame(rows, [p.geom for p in cadastre.parcels])


def buildings_frame(cadastre: Cadastre, seed: int) -> gpd.GeoDataFrame:
    """One or two buildings inside each current built-up parcel."""
    rng = rng_for(seed, "buildings")
    rows, geoms = [], []
    for p in cadastre.parcels:
        if p.state != CURRENT or p.use_code == "0810":
            continue
        use, (lo, hi) = _BUILDING_USE.get(p.use_code, ("住宅", (1, 3)))
        if p.use_code == "0702":
            lo, hi = 1, 3
        x0, y0, x1, y1 = p.geom.bounds
        inset = float(rng.uniform(6.0, 12.0))
        if min(x1 - x0, y1 - y0) < 2 * inset + 10:
            continue
        inner = shapely.box(x0 + inset, y0 + inset, x1 - inset, y1 - inset)
        inner = inner.intersection(p.geom)
        bx0, by0, bx1, by1 = inner.bounds
        footprints = [inner]
        if bx1 - bx0 > 60 and rng.random() < 0.5:
            mid = (bx0 + bx1) / 2
            footprints = [
                shapely.box(bx0, by0, mid - 6, by1),
                shapely.box(mid + 6, by0, bx1, by1),
            ]
        for n, footprint in enumerate(footprints, start=1):
            floors = int(rng.integers(lo, hi + 1))
            built = min(p.registered.year, int(rng.integers(1985, 2024)))
            rows.append(
                {
                    "building_id": f"FW{len(rows) + 1:06d}",
                    "building_code": f"{p.unit_code[:19]}F{n:04d}0000",
                    "parcel_unit_code": p.unit_code,
                    "use": use,
                    "floors": floors,
                    "height_m": round(floors * 3.0 + float(rng.uniform(0.5, 2.0)), 1),
                    "structure": _STRUCTURES.get(use, "砖混" if floors <= 6 else "钢混"),
                    "year_built": built,
                    "footprint_m2": round(area_m2(footprint), 2),
                }
            )
            geoms.append(footprint)
    return frame(rows, geoms)
