"""``raster zonal-stats | mine-remediation``: raster jobs on Dask with a progress bar."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .common import clear_errors, console, data_option, err_console


@click.group()
def raster() -> None:
    """Raster jobs on Dask with a progress bar: zonal statistics, mine remediation."""


def _progress_bar():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(), console=err_console,
    )  # fmt: skip


@raster.command("zonal-stats")
@click.option("--raster", "raster_id", required=True, help="Raster collection, e.g. nrp-dem.")
@click.option("--zones", required=True, help="Polygon collection, e.g. nrp-mining_rights.")
@click.option("--band", default=1, show_default=True)
@click.option("--stats", default="count,mean,min,max", show_default=True)
@click.option("--percentiles", default="", help="e.g. 10,50,90")
@click.option("--out", type=click.Path(path_type=Path), help="CSV file (default: print).")
@data_option
@clear_errors
def raster_zonal_stats(
    raster_id: str,
    zones: str,
    band: int,
    stats: str,
    percentiles: str,
    out: Path | None,
    data_dir: Path,
) -> None:
    """Statistics of a raster layer inside each polygon of a vector layer."""
    from shikong.catalog import Catalog
    from shikong.catalog.extension import ShikongExtension
    from shikong.spatial.compute import get_client
    from shikong.spatial.rasterjobs import zonal_stats

    catalog = Catalog.open(data_dir)
    image = catalog.layer(raster_id).to_xarray()
    zones_layer = catalog.layer(zones)
    id_field = ShikongExtension.ext(zones_layer.current.item).id_field
    with _progress_bar() as bar:
        task = bar.add_task(f"zonal statistics {raster_id} × {zones}", total=1)
        table = zonal_stats(
            image.isel(band=[band - 1]),
            zones_layer.to_geodataframe(),
            stats=tuple(s for s in stats.split(",") if s),
            percentiles=tuple(float(p) for p in percentiles.split(",") if p),
            id_field=id_field,
            client=get_client(),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if out is not None:
        table.to_csv(out)
        console.print(f"{len(table)} zones → {out}")
    else:
        click.echo(table.to_csv())


@raster.command("mine-remediation")
@click.option("--imagery", default="nrp-rs_mining", show_default=True)
@click.option("--mines", default="nrp-mining_rights", show_default=True)
@click.option("--no-write", is_flag=True, help="Do not ingest the change raster.")
@data_option
@clear_errors
def raster_mine_remediation(imagery: str, mines: str, no_write: bool, data_dir: Path) -> None:
    """NDVI change per mining right between the first and last image dates."""
    from shikong.catalog import Catalog
    from shikong.catalog.remediation import mine_remediation_assessment
    from shikong.spatial.compute import get_client

    with _progress_bar() as bar:
        task = bar.add_task("mine remediation", total=100)

        def show(percent: float, message: str) -> None:
            bar.update(task, completed=percent, description=message)

        report = mine_remediation_assessment(
            Catalog.open(data_dir),
            imagery=imagery,
            mines=mines,
            write_derived=not no_write,
            progress=show,
            client=get_client(),
        )
        bar.update(task, completed=100, description="mine remediation")
    table = Table(
        "mine", "status", "NDVI before", "after", "change", "disturbed ha", "recovered ha"
    )
    for m in report["mines"]:
        table.add_row(
            str(m["name"]), str(m["status"]), f"{m['ndvi_before']:.3f}", f"{m['ndvi_after']:.3f}",
            f"{m['ndvi_change']:+.3f}", f"{m['disturbed_ha']:.2f}", f"{m['recovered_ha']:.2f}",
        )  # fmt: skip
    console.print(table)
    if report.get("derived"):
        console.print(f"change raster ingested as {report['derived']}")
