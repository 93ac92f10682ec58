"""Mine remediation: vegetation change inside mining rights between two image dates.

Reads two versions of a red/NIR layer lazily, computes NDVI per date and its change with
:mod:`shikong.spatial.rasterjobs`, summarises it per mine (zonal statistics) and writes
the change raster back to the catalog as a derived layer whose items link to the
inputs they came from (lineage).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from shikong.spatial.raster import write_cog
from shikong.spatial.rasterjobs import change, name_field_of, ndvi, zonal_stats

from .catalog import Catalog

DISTURBED, RECOVERED = -0.1, 0.1  # NDVI change that counts as loss / recovery


def _bands(stack: xr.DataArray) -> dict[str, xr.DataArray]:
    names = stack.attrs.get("long_name")
    if isinstance(names, (list, tuple)) and len(names) == stack.sizes["band"]:
        return {str(n): stack.isel(band=i) for i, n in enumerate(names)}
    return {"red": stack.isel(band=0), "nir": stack.isel(band=1)}


def mine_remediation_assessment(
    catalog: Catalog,
    imagery: str = "nrp-rs_mining",
    mines: str = "nrp-mining_rights",
    before: str | None = None,
    after: str | None = None,
    write_derived: bool = True,
    progress: Callable[[float, str], None] | None = None,
    client=None,
) -> dict[str, Any]:
    """NDVI before/after and change per mine; disturbed and recovered areas in 公顷.

    ``progress(percent, message)`` follows the five zonal passes and the write-back;
    whatever it raises (a cancelled job) stops the work before anything is written.
    """

    def stage(n: int, label: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, total: progress(
            100 * (n + done / total) / 6, f"{label}: {done}/{total} block tasks"
        )

    layer = catalog.layer(imagery)
    versions = layer.versions
    first = layer.version(before) if before else versions[0]
    last = layer.version(after) if after else versions[-1]
    # raw counts: ndvi tests their nodata itself, cheaper than a masked (float) read
    b1, b2 = _bands(first.to_xarray(masked=False)), _bands(last.to_xarray(masked=False))
    n1, n2 = ndvi(b1["red"], b1["nir"]), ndvi(b2["red"], b2["nir"])
    n2 = n2.rio.reproject_match(n1) if n2.shape != n1.shape else n2
    delta = change(n1, n2).rio.write_crs(n1.rio.crs).rio.write_transform(n1.rio.transform())
    polygons = catalog.layer(mines).to_geodataframe()
    id_field = catalog.layer(mines).current.id_field
    stats = ("count", "mean", "min", "max")
    run = {"id_field": id_field, "client": client}
    before_stats = zonal_stats(
        n1, polygons, stats=("mean",), progress=stage(0, "NDVI before"), **run
    )
    after_stats = zonal_stats(n2, polygons, stats=("mean",), progress=stage(1, "NDVI after"), **run)
    change_stats = zonal_stats(delta, polygons, stats=stats, progress=stage(2, "change"), **run)
    from shikong.spatial.rasterjobs import cell_areas

    areas = cell_areas(delta)
    lost = zonal_stats(
        areas.where(delta < DISTURBED)
        .rio.write_crs(n1.rio.crs)
        .rio.write_transform(n1.rio.transform()),
        polygons,
        stats=("sum",),
        progress=stage(3, "disturbed area"),
        **run,
    )
    gained = zonal_stats(
        areas.where(delta > RECOVERED)
        .rio.write_crs(n1.rio.crs)
        .rio.write_transform(n1.rio.transform()),
        polygons,
        stats=("sum",),
        progress=stage(4, "recovered area"),
        **run,
    )
    rows = []
    names = polygons.set_index(id_field)
    name_field = name_field_of(polygons, exclude=[id_field])  # the rule zonal_stats uses
    for fid in polygons[id_field]:
        rows.append(
            {
                "id": int(fid) if isinstance(fid, (int, np.integer)) else fid,
                "name": names.loc[fid].get(name_field) if name_field else None,
                "status": names.loc[fid].get("状态"),
                "ndvi_before": _f(before_stats.loc[fid, "mean"]),
                "ndvi_after": _f(after_stats.loc[fid, "mean"]),
                "ndvi_change": _f(change_stats.loc[fid, "mean"]),
                "pixels": int(change_stats.loc[fid, "count"]),
                "disturbed_ha": round(_f(lost.loc[fid, "sum"]) / 10_000, 4),
                "recovered_ha": round(_f(gained.loc[fid, "sum"]) / 10_000, 4),
            }
        )
    report = {
        "imagery": imagery,
        "before": first.id,
        "after": last.id,
        "id_field": id_field,
        "name_field": name_field,
        "mines": rows,
        "thresholds": {"disturbed": DISTURBED, "recovered": RECOVERED},
    }
    if write_derived:
        if progress is not None:
            progress(100 * 5 / 6, "writing the change raster (COG) to the catalog")
        report["derived"] = _write_change(
            catalog, delta, layer.department, [first.id, last.id], first.version, last.version
        )
    return report


def _f(value: Any) -> float:
    return 0.0 if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def _write_change(
    catalog: Catalog, delta: xr.DataArray, department: str, sources: list[str], v1: str, v2: str
) -> str:
    """The NDVI change as a COG, ingested as a new version with links to its inputs."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_cog(delta.astype("float32"), Path(tmp) / "ndvi_change.tif")
        result = catalog.ingest(
            path,
            department=department,
            layer="ndvi_change",
            version=f"{v1}-{v2}",
            valid_from=datetime.now(UTC),
            title="植被指数变化 NDVI change",
            derived_from=sources,
        )
    return result.item_id
