"""generate(): the demo city's source files, as its 13 departments would deliver them.

The generator only writes source files and a manifest; ingesting them into the catalog
is another module's job. Same seed and scale give byte-identical files: every random
draw comes from a seeded per-layer RNG, iteration is in a fixed order, and no clock is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
from shikong.config import load

from . import (
    cadastre,
    farmland,
    forestry,
    landuse,
    networks,
    planning,
    rasters,
    sensors,
    society,
    writer,
)
from .geography import PREFIXED_EPSG, build_geography
from .meta import LAYERS
from .mines import REMEDIATION_END, build_mines
from .model import SCALES, SourceFile
from .weather import build_weather

MANIFEST = "manifest.json"
Progress = Callable[[str], None]


class _Delivery:
    """Collects SourceFile records (metadata from :data:`meta.LAYERS`) as files are written."""

    def __init__(self, out_dir: Path, progress: Progress | None, facts: dict[str, Any]) -> None:
        self.out_dir = out_dir
        self.files: list[SourceFile] = []
        self.facts = facts  # the city's facts descriptions may quote
        self._progress = progress

    def path(self, relative: str) -> Path:
        return self.out_dir / relative

    def add(
        self,
        path: str,
        department: str,
        layer: str,
        kind: str,
        version: str,
        valid_from: str,
        *,
        options: dict | None = None,
        sensor_layer: str | None = None,
        **facts: object,
    ) -> None:
        meta = LAYERS[(department, layer)]
        record = SourceFile(
            path=path,
            department=department,
            layer=layer,
            title=meta.title,
            title_en=meta.title_en,
            classification=meta.classification,
            kind=kind,
            version=version,
            valid_from=valid_from,
            options=options or {},
            keywords=list(meta.keywords),
            description=meta.description.format(**self.facts, **facts),
            sensor_layer=sensor_layer,
        )
        self.files.append(record)
        if self._progress is not None:
            self._progress(f"{record.collection} {version}: {path}")


def _landuse(d: _Delivery, ctx: dict) -> None:
    lu = ctx["lu"]
    shp = "nrp/landuse/2020/DLTB.shp"
    frame = landuse.landuse_frame(lu.v2020)
    writer.write_gbk_shapefile(frame, d.path(shp), PREFIXED_EPSG, date(2021, 3, 31))
    d.add(
        shp,
        "nrp",
        "landuse",
        "vector",
        "2020",
        "2020-12-31",
        year=2020,
        detail="GBK编码Shapefile，无.cpg，CGCS2000 3度带高斯-克吕格38带（横坐标含带号）。",
    )
    gpkg = "nrp/landuse/2023/landuse_2023.gpkg"
    writer.write_gpkg(landuse.landuse_frame(lu.v2023), d.path(gpkg), "地类图斑")
    d.add(
        gpkg,
        "nrp",
        "landuse",
        "vector",
        "2023",
        "2023-12-31",
        year=2023,
        options={"layer": "地类图斑"},
        detail="城市周边部分耕地经批准转为建设用地，闭坑煤矿工业场地修复为乔木林地，"
        "在采煤矿工业场地扩大。",
    )


def _control_lines(d: _Delivery, ctx: dict) -> None:
    geo, lu, seed = ctx["geo"], ctx["lu"], ctx["seed"]
    redline = planning.eco_redline(geo)
    protected = farmland.farmland_protection(geo, lu.v2023, redline.union_all(), seed)
    writer.write_geojson(protected, d.path("nrp/farmland_protection.geojson"))
    d.add(
        "nrp/farmland_protection.geojson",
        "nrp",
        "farmland_protection",
        "vector",
        "2022",
        "2022-10-31",
    )
    writer.write_geojson(redline, d.path("nrp/eco_redline.geojson"))
    d.add("nrp/eco_redline.geojson", "nrp", "eco_redline", "vector", "2022", "2022-09-30")
    writer.write_geojson(planning.urban_boundary(geo), d.path("nrp/urban_boundary.geojson"))
    d.add("nrp/urban_boundary.geojson", "nrp", "urban_boundary", "vector", "2022", "2022-09-30")
    writer.write_gpkg(
        planning.planning_zones(geo, seed), d.path("nrp/planning_zones.gpkg"), "规划分区"
    )
    d.add(
        "nrp/planning_zones.gpkg",
        "nrp",
        "planning_zones",
        "vector",
        "2023",
        "2023-06-30",
        options={"layer": "规划分区"},
    )


def _approvals(d: _Delivery, ctx: dict) -> None:
    lu = ctx["lu"]
    approvals = landuse.approvals_frame(lu.approvals, lu.v2020)
    writer.write_geojson(approvals, d.path("nrp/approved_land.geojson"))
    d.add("nrp/approved_land.geojson", "nrp", "approved_land", "vector", "2024", "2024-06-30")
    first = next(a for a in lu.approvals if a.converted)
    row = {
        "parcel_id": "D01",
        "name": first.project,
        "shape_type": "面",
        "sheet": "",
        "use": landuse.class_name(first.use),
        "class_code": first.use,
    }
    submission = gpd.GeoDataFrame([row], geometry=[first.geom], crs=approvals.crs)
    submitted = first.approved - timedelta(days=90)
    path = "nrp/approval_submission.txt"
    writer.write_submission(submission, d.path(path), submitted)
    d.add(
        path,
        "nrp",
        "approval_submission",
        "vector",
        "1",
        submitted.isoformat(),
        project=first.project,
        number=first.number,
    )


def _mines_and_rasters(d: _Delivery, ctx: dict) -> None:
    geo, lu, mines, scale, seed = ctx["geo"], ctx["lu"], ctx["mines"], ctx["scale"], ctx["seed"]
    writer.write_geojson(planning.mining_rights(mines), d.path("nrp/mining_rights.geojson"))
    d.add("nrp/mining_rights.geojson", "nrp", "mining_rights", "vector", "2024", "2024-01-01")
    writer.write_geojson(planning.mine_remediation(mines), d.path("nrp/mine_remediation.geojson"))
    d.add(
        "nrp/mine_remediation.geojson",
        "nrp",
        "mine_remediation",
        "vector",
        "2022",
        REMEDIATION_END.isoformat(),
    )
    writer.write_raster(rasters.dem(geo, scale, seed), d.path("nrp/dem.tif"), rasters.DEM_NODATA)
    d.add("nrp/dem.tif", "nrp", "dem", "raster", "2021", "2021-06-30")
    for year, patches in ((2019, lu.v2020), (2024, lu.v2023)):
        path = f"nrp/rs_mining/{year}/rs_mining_{year}.tif"
        image = rasters.mining_image(patches, scale, seed, year)
        writer.write_raster(image, d.path(path), rasters.RS_NODATA)
        d.add(path, "nrp", "rs_mining", "raster", str(year), f"{year}-09-15", year=year)


def _property(d: _Delivery, ctx: dict) -> None:
    cad = ctx["cadastre"]
    writer.write_gpkg(cadastre.parcels_frame(cad), d.path("rer/parcels.gpkg"), "宗地")
    d.add(
        "rer/parcels.gpkg",
        "rer",
        "parcels",
        "vector",
        "2024",
        "2024-12-31",
        options={"layer": "宗地"},
    )
    buildings = cadastre.buildings_frame(cad, ctx["seed"])
    writer.write_geojson(buildings, d.path("hud/buildings.geojson"))
    d.add("hud/buildings.geojson", "hud", "buildings", "vector", "2024", "2024-12-31")


def _sensor_pair(
    d: _Delivery, department: str, sites: str, readings: str, data: sensors.SensorSet
) -> None:
    start = d.facts["start"]
    writer.write_csv(data.sites, d.path(f"{department}/{sites}.csv"))
    d.add(f"{department}/{sites}.csv", department, sites, "sensors", "1", start)
    path = f"{department}/{readings}.csv"
    writer.write_readings(data.readings, d.path(path), data.decimals)
    d.add(path, department, readings, "readings", "1", start, sensor_layer=sites)


def _infrastructure(d: _Delivery, ctx: dict) -> None:
    geo, scale, seed, weather = ctx["geo"], ctx["scale"], ctx["seed"], ctx["weather"]
    writer.write_geojson(ctx["roads"], d.path("tra/roads.geojson"))
    d.add("tra/roads.geojson", "tra", "roads", "vector", "2024", "2024-06-30")
    writer.write_geojson(networks.rivers(geo), d.path("wat/rivers.geojson"))
    d.add("wat/rivers.geojson", "wat", "rivers", "vector", "2023", "2023-12-31")
    writer.write_geojson(networks.reservoirs(geo), d.path("wat/reservoirs.geojson"))
    d.add("wat/reservoirs.geojson", "wat", "reservoirs", "vector", "2023", "2023-12-31")
    levels = sensors.water_levels(geo, weather, scale, seed)
    _sensor_pair(d, "wat", "water_level_sensors", "water_level_readings", levels)


def _resources(d: _Delivery, ctx: dict) -> None:
    geo, lu, scale, seed, weather = ctx["geo"], ctx["lu"], ctx["scale"], ctx["seed"], ctx["weather"]
    air = sensors.air_quality(geo, weather, scale, seed)
    _sensor_pair(d, "eco", "air_quality_stations", "air_quality_readings", air)
    quality = farmland.farmland_quality(geo, lu.v2023, seed)
    writer.write_geojson(quality, d.path("agr/farmland_quality.geojson"))
    d.add("agr/farmland_quality.geojson", "agr", "farmland_quality", "vector", "2023", "2023-12-31")
    stands = forestry.forest_stands(geo, lu.v2023, scale, seed)
    writer.write_gpkg(stands, d.path("frs/forest_stands.gpkg"), "小班")
    d.add(
        "frs/forest_stands.gpkg",
        "frs",
        "forest_stands",
        "vector",
        "2023",
        "2023-12-31",
        options={"layer": "小班"},
    )
    sinking = sensors.subsidence(geo, ctx["mines"], weather, scale, seed)
    _sensor_pair(d, "ema", "subsidence_points", "subsidence_readings", sinking)


def _city_life(d: _Delivery, ctx: dict) -> None:
    geo, scale, seed, weather = ctx["geo"], ctx["scale"], ctx["seed"], ctx["weather"]
    gauges = sensors.weather_stations(geo, weather, scale, seed)
    _sensor_pair(d, "met", "weather_stations", "rainfall_readings", gauges)
    writer.write_netcdf(rasters.rainfall_grid(weather), d.path("met/rainfall_grid.nc"))
    d.add("met/rainfall_grid.nc", "met", "rainfall_grid", "datacube", "1", d.facts["start"])
    covers = sensors.manholes(geo, ctx["roads"], weather, scale, seed)
    _sensor_pair(d, "urb", "manhole_sensors", "manhole_readings", covers)
    grid = society.population_grid(geo, scale, seed)
    writer.write_geojson(grid, d.path("sta/population_grid.geojson"))
    d.add(
        "sta/population_grid.geojson",
        "sta",
        "population_grid",
        "vector",
        "2024",
        "2024-12-31",
        cell=int(scale.population_cell_m),
    )
    cameras = society.camera_sites(geo, ctx["roads"], seed)
    writer.write_csv(cameras, d.path("psb/camera_sites.csv"))
    d.add(
        "psb/camera_sites.csv",
        "psb",
        "camera_sites",
        "vector",
        "2024",
        "2024-12-31",
        options={"crs": "EPSG:4547"},
    )


def _ordered(files: list[SourceFile]) -> list[SourceFile]:
    """Departments in config order; within one, as written (versions by valid_from and
    readings right after their sensors)."""
    codes = [d["code"] for d in load("departments")["departments"]]
    return sorted(files, key=lambda f: codes.index(f.department))


def generate(
    out_dir: Path,
    scale: str = "small",
    seed: int = 20261125,
    progress: Progress | None = None,
) -> list[SourceFile]:
    """Write the demo city's source files under ``out_dir`` and a ``manifest.json``.

    ``scale`` ("small", "medium", "large") sets feature counts, raster sizes and the
    length of the IoT history (3, 30 or 180 days). Returns the manifest's records.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, not {scale!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = SCALES[scale]
    geo = build_geography(seed)
    mines = build_mines(geo, sizes, seed)
    weather = build_weather(sizes, seed)
    ctx = {
        "geo": geo,
        "scale": sizes,
        "seed": seed,
        "mines": mines,
        "lu": landuse.build_landuse(geo, mines, sizes, seed),
        "cadastre": cadastre.build_cadastre(geo, sizes, seed),
        "weather": weather,
        "roads": networks.roads(geo, sizes, seed),
    }
    facts = {"river": geo.river_name, "start": weather.start.date().isoformat()}
    delivery = _Delivery(out_dir, progress, facts)
    for step in (
        _landuse,
        _control_lines,
        _approvals,
        _mines_and_rasters,
        _property,
        _infrastructure,
        _resources,
        _city_life,
    ):
        step(delivery, ctx)
    files = _ordered(delivery.files)
    text = json.dumps([asdict(f) for f in files], ensure_ascii=False, indent=2) + "\n"
    (out_dir / MANIFEST).write_text(text, encoding="utf-8")
    return files
