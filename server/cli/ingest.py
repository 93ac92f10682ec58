"""Reading sources: ``check`` reports what a file holds, ``ingest`` adds it to the catalog."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from .common import clear_errors, console, data_option


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--layer",
    help="Layer of a GeoPackage, or which dataset of a folder or .zip (name or path in it).",
)
@click.option("--crs", help="Declared CRS when the file has none, e.g. EPSG:4526.")
@click.option("--encoding", help="Declared text encoding, e.g. gbk (default: .cpg or detect).")
@click.option("--survey-order", is_flag=True, help="CSV: X is the northing, Y the easting.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@clear_errors
def check(
    source: Path,
    layer: str | None,
    crs: str | None,
    encoding: str | None,
    survey_order: bool,
    as_json: bool,
) -> None:
    """Read SOURCE (a file, or a folder or .zip holding one) and report what was found and
    what was repaired."""
    from shikong.spatial.area import Area, ellipsoidal_area_m2
    from shikong.spatial.readers import read

    options = {"xy_order": "survey"} if survey_order else {}
    with console.status(f"reading {source.name}…"):
        frame, report = read(source, layer=layer, crs=crs, encoding=encoding, **options)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    table = Table(title=str(source), show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    bbox = ", ".join(f"{v:.6f}" for v in report.bbox) if report.bbox else "—"
    rows = [
        *([("dataset", report.source)] if report.delivery else []),
        ("format", report.format),
        ("layer", report.layer or "—"),
        ("encoding", report.encoding or "—"),
        ("CRS", f"{report.crs} ({report.crs_origin or 'file'})"),
        ("features", str(report.feature_count)),
        ("geometry", ", ".join(f"{k} {v}" for k, v in report.geometry_types.items()) or "—"),
        ("bbox EPSG:4490", bbox),
        ("fields", ", ".join(str(c) for c in frame.columns if c != frame.geometry.name)),
        ("repaired", str(len(report.repaired))),
    ]
    polygons = frame.geometry[frame.geom_type.isin(["Polygon", "MultiPolygon"])]
    if len(polygons):
        total = Area(sum(ellipsoidal_area_m2(g) for g in polygons))
        rows.append(
            (
                "area (ellipsoidal)",
                f"{total.m2:,.2f} m² = {total.hectares:,.4f} 公顷 = {total.mu:,.2f} 亩",
            )
        )
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    for idx, reason in report.repaired[:20]:
        console.print(f"  repaired feature {idx}: {reason}")
    for action in report.actions:
        console.print(f"[green]•[/] {action}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--department", "-d", required=True, help="Owner department code, e.g. nrp.")
@click.option("--layer", "-l", required=True, help="Layer name (lower-case, digits, _).")
@click.option(
    "--classification",
    type=click.Choice(["public", "shared", "restricted"]),
    help="Who may see it (default: the layer's, or shared for a new layer).",
)
@click.option("--version", "version", help="Version label (default: next number).")
@click.option("--valid-from", help="Date this version is valid from (default: now).")
@click.option(
    "--kind",
    type=click.Choice(["vector", "raster", "sensors", "readings", "datacube"]),
    help="Default: from the file.",
)
@click.option("--title", help="Title of the layer, e.g. 土地利用现状.")
@click.option("--title-en", help="English title.")
@click.option("--description", default="", help="What the layer holds.")
@click.option("--keyword", "keywords", multiple=True, help="Keyword (repeatable).")
@click.option(
    "--source-layer",
    help="Layer inside a GeoPackage, or which dataset of a folder or .zip (name or path in it).",
)
@click.option("--crs", help="Declared CRS when the file has none.")
@click.option("--encoding", help="Declared text encoding.")
@click.option("--survey-order", is_flag=True, help="CSV: X is the northing.")
@click.option("--id-field", help="Column that identifies features (default: generated fid).")
@click.option("--sensor-layer", help="Readings: the sensors layer they belong to.")
@click.option(
    "--editable/--read-only",
    default=None,
    help="Accept OGC API transactions on this layer (default: keep the layer's).",
)
@data_option
@clear_errors
def ingest(
    source: Path,
    department: str,
    layer: str,
    data_dir: Path,
    source_layer: str | None,
    crs: str | None,
    encoding: str | None,
    survey_order: bool,
    **kwargs,
) -> None:
    """Ingest SOURCE (a file, or a folder or .zip holding one) as a new version of a
    department's layer."""
    from shikong.catalog import Catalog

    options = {
        k: v for k, v in (("layer", source_layer), ("crs", crs), ("encoding", encoding)) if v
    }
    if survey_order:
        options["xy_order"] = "survey"
    kwargs["keywords"] = list(kwargs["keywords"])
    with console.status(f"ingesting {source.name} into {department}-{layer}…"):
        result = Catalog.open(data_dir).ingest(
            source, department=department, layer=layer, options=options, **kwargs
        )
    if result.status == "unchanged":
        console.print(f"[yellow]unchanged:[/] {source} is already {result.item_id}")
    elif result.readings is not None:
        r = result.readings
        console.print(
            f"[green]appended[/] {r.accepted} readings to {result.collection_id} "
            f"({r.duplicates} duplicates, {r.rejected_total} rejected)"
        )
        for reason, count in r.rejected.items():
            console.print(f"  rejected {count}: {reason}")
    else:
        console.print(
            f"[green]created[/] {result.item_id} (catalog version {result.catalog_version})"
        )
    if result.report:
        for action in result.report.actions:
            console.print(f"[green]•[/] {action}")
        for warning in result.report.warnings:
            console.print(f"[yellow]warning:[/] {warning}")
