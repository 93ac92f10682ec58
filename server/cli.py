"""The `shikong` command line.

Errors of ours (bad input) print as one clear line and exit 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from shikong.spatial.errors import ShikongError

console = Console()
err_console = Console(stderr=True)


def clear_errors(func):
    """Turn a ShikongError into a message on stderr and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ShikongError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shikong")
def main() -> None:
    """shikong 时空: a spatio-temporal information cloud for city governments."""


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--layer", help="Layer of a GeoPackage (or other multi-layer file).")
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
    """Read SOURCE and report what was found and what was repaired."""
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


if __name__ == "__main__":
    main()
