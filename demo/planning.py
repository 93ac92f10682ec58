"""Planning control layers of nrp: 生态保护红线, 城镇开发边界, 国土空间规划分区, 采矿权, 矿山修复.

They follow the city's shapes: the red line covers the west hills and the reservoirs'
water-source areas, the development boundary rings the centre, and the planning zones
partition the whole extent (every point is in exactly one zone).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from .geography import GRID, Geography, area_m2, frame, polygons_only, random_points
from .landuse import parts
from .mines import REMEDIATION_END, REMEDIATION_START, Mine
from .model import rng_for

# 国土空间规划分区 (市级国土空间总体规划): code -> name
ZONES = {
    "01": "生态保护区",
    "02": "生态控制区",
    "03": "农田保护区",
    "04": "城镇发展区",
    "05": "乡村发展区",
    "07": "矿产能源发展区",
}


def redline_shapes(geo: Geography) -> list[tuple[str, str, BaseGeometry]]:
    """(name, type, shape) of the ecological red-line areas; they do not overlap."""
    main, small = geo.reservoirs
    source_main = main.shape.buffer(600.0).intersection(geo.extent, grid_size=GRID)
    source_small = (
        small.shape.buffer(300.0).intersection(geo.extent).difference(source_main, grid_size=GRID)
    )
    hills = (
        geo.hills.buffer(-800.0)
        .difference(geo.urban_boundary, grid_size=GRID)
        .difference(source_main, grid_size=GRID)
        .difference(source_small, grid_size=GRID)
    )
    return [
        ("西部山区水源涵养生态保护红线", "水源涵养", polygons_only(hills)),
        (f"{main.name}饮用水水源地生态保护红线", "饮用水水源保护", source_main),
        (f"{small.name}水源涵养生态保护红线", "水源涵养", polygons_only(source_small)),
    ]


def eco_redline(geo: Geography) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    for i, (name, kind, shape) in enumerate(redline_shapes(geo), start=1):
        rows.append(
            {
                "红线编号": f"HX4104{i:04d}",
                "名称": name,
                "类型": kind,
                "面积公顷": round(area_m2(shape) / 10_000, 4),
                "批准日期": "2022-09-30",
            }
        )
        geoms.append(shape)
    return frame(rows, geoms)


def urban_boundary(geo: Geography) -> gpd.GeoDataFrame:
    shape = geo.urban_boundary
    row = {
        "名称": "中心城区城镇开发边界",
        "类型": "城镇集中建设区",
        "面积公顷": round(area_m2(shape) / 10_000, 4),
        "批准日期": "2022-09-30",
    }
    return frame([row], [shape])


def planning_zones(geo: Geography, seed: int) -> gpd.GeoDataFrame:
    """A partition of the extent into planning zones, each zone one or more features."""
    rng = rng_for(seed, "planning_zones")
    redline = shapely.union_all([s for _, _, s in redline_shapes(geo)])
    urban = geo.urban_boundary.difference(redline, grid_size=GRID)
    mining = geo.mining_area.difference(redline).difference(urban, grid_size=GRID)
    control = geo.hills.union(shapely.union_all([r.shape for r in geo.reservoirs]))
    control = control.difference(redline).difference(urban).difference(mining, grid_size=GRID)
    taken = shapely.union_all([redline, urban, mining, control])
    rest = geo.extent.difference(taken, grid_size=GRID)
    zones: list[tuple[str, BaseGeometry]] = [
        ("01", redline),
        ("02", control),
        ("04", urban),
        ("07", mining),
    ]
    seeds = random_points(rest, 14, rng)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=geo.extent, ordered=True)
    for cell in cells.geoms:
        code = "05" if rng.random() < 0.3 else "03"
        zones.append((code, cell.intersection(rest, grid_size=GRID)))
    rows, geoms = [], []
    for code, shape in zones:
        for part in parts(shape):
            if part.area < 1.0:
                continue
            rows.append(
                {
                    "GHFQDM": code,
                    "GHFQMC": ZONES[code],
                    "MJ": round(area_m2(part), 2),
                    "GHQJ": "2021-2035",
                }
            )
            geoms.append(part)
    order = np.lexsort(([g.representative_point().x for g in geoms], [r["GHFQDM"] for r in rows]))
    gdf = frame([rows[i] for i in order], [geoms[i] for i in order])
    gdf.insert(0, "BSM", np.arange(1, len(gdf) + 1))
    return gdf


def mining_rights(mines: list[Mine]) -> gpd.GeoDataFrame:
    rows = [
        {
            "许可证号": m.licence,
            "矿山名称": m.name,
            "采矿权人": m.holder,
            "矿种": "煤",
            "开采方式": "地下开采",
            "生产规模万吨每年": m.capacity,
            "矿区面积公顷": round(area_m2(m.right) / 10_000, 4),
            "有效期起": m.valid_from.isoformat(),
            "有效期止": m.valid_to.isoformat(),
            "状态": m.status,
        }
        for m in mines
    ]
    return frame(rows, [m.right for m in mines])


def mine_remediation(mines: list[Mine]) -> gpd.GeoDataFrame:
    """The remediation project area of each closed mine: its former surface works."""
    rows, geoms = [], []
    for i, m in enumerate(m for m in mines if m.remediated):
        rows.append(
            {
                "项目编号": f"KSXF-2020-{i + 1:03d}",
                "项目名称": f"{m.name}闭坑矿山生态修复工程",
                "所属矿山": m.name,
                "许可证号": m.licence,
                "修复方式": "土地复垦+植树造林",
                "修复面积公顷": round(area_m2(m.works) / 10_000, 4),
                "开工日期": REMEDIATION_START.isoformat(),
                "竣工日期": REMEDIATION_END.isoformat(),
            }
        )
        geoms.append(m.works)
    return frame(rows, geoms)
