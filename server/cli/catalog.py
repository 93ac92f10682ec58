"""``catalog list | search | load | optimize | validate``: the catalog from a shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from .common import clear_errors, console, data_option


@click.group()
def catalog() -> None:
    """Look into the catalog: layers, search, validation."""


@catalog.command("list")
@click.option("--department", "-d", help="Only this department's layers.")
@data_option
@clear_errors
def catalog_list(department: str | None, data_dir: Path) -> None:
    """List layers with their kind, classification and versions."""
    from shikong.catalog import Catalog

    cat = Catalog.open(data_dir)
    table = Table(title=f"{data_dir} · catalog version {cat.version}")
    for column in ("layer", "title", "kind", "classification", "versions"):
        table.add_column(column, overflow="fold")
    for layer in cat.collections(department):
        table.add_row(
            layer.id,
            layer.title or "",
            layer.kind,
            layer.classification,
            ", ".join(v.version for v in layer.versions),
        )
    console.print(table)


@catalog.command("search")
@click.option("--bbox", help="minlon,minlat,maxlon,maxlat (EPSG:4490).")
@click.option("--datetime", "when", help="Instant or interval a/b.")
@click.option("--department", "-d", "departments", multiple=True)
@click.option("--collection", "collections", multiple=True)
@click.option("--text", help="Free text, Chinese or English.")
@click.option("--filter", "cql", help='CQL2 text on the items\' properties, e.g. "area_m2 < 500".')
@click.option("--limit", default=50, show_default=True)
@data_option
@clear_errors
def catalog_search(
    bbox: str | None,
    when: str | None,
    departments: tuple,
    collections: tuple,
    text: str | None,
    cql: str | None,
    limit: int,
    data_dir: Path,
) -> None:
    """Search layer versions by place, time, department, text and a CQL2 filter."""
    from shikong.catalog import Catalog
    from shikong.catalog.extension import ShikongExtension
    from shikong.spatial.errors import InputError

    from .. import cql_text

    node = None
    if cql:
        try:
            node = cql_text.parse(cql)
        except Exception as exc:  # lark's errors: the filter as typed cannot be read
            raise InputError("--filter", f"{cql!r} is not CQL2 text: {exc}") from None

    box = None
    if bbox:
        try:
            box = [float(v) for v in bbox.split(",")]
        except ValueError:
            box = []
        if len(box) != 4:
            raise InputError("--bbox", f"{bbox!r} is not four numbers minx,miny,maxx,maxy")
    result = Catalog.open(data_dir).search(
        bbox=box,
        datetime=when,
        departments=list(departments) or None,
        collections=list(collections) or None,
        text=text,
        filter=node,
        limit=limit,
    )
    for item in result:
        ext = ShikongExtension.ext(item)
        console.print(
            f"{item['id']}  {item['properties'].get('title')}  {ext.valid_from_iso[:10]} → "
            f"{(ext.valid_to_iso or 'now')[:10]}"
        )
    console.print(f"{len(result)} of {result.matched} items")


@catalog.command("optimize")
@data_option
@clear_errors
def catalog_optimize(data_dir: Path) -> None:
    """Order a PostgreSQL catalog's items by place (CLUSTER, then ANALYZE), so a bbox
    search reads a few pages of neighbours. Blocks the catalog's searches while it runs
    (about a minute a million items): for a maintenance window. SQLite: nothing to do."""
    import time

    from shikong.catalog import Catalog

    store = Catalog.open(data_dir).store
    if not hasattr(store, "optimize"):
        console.print("the catalog is in SQLite: nothing to optimize")
        return
    started = time.perf_counter()
    with console.status(f"ordering the items of {store} by place"):
        store.optimize()
    console.print(f"[green]optimized[/] {store} in {time.perf_counter() - started:.1f} s")


@catalog.command("load")
@click.argument("items", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--collections",
    "collections_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="NDJSON of the items' collections (STAC collections with the shikong extension).",
)
@click.option("--workers", type=int, help="Worker processes (default: one per core).")
@data_option
@clear_errors
def catalog_load(items: Path, collections_file: Path, workers: int | None, data_dir: Path) -> None:
    """Load STAC items from NDJSON (one item a line, as pypgstac loads them) into an
    empty PostgreSQL catalog, every core parsing and copying its part of the file; the
    search indexes are built at the end. A bad line stops the load with its number and
    leaves the catalog empty. Items keep their JSON as given (assets are not copied: name
    them as s3:// objects or files the nodes can read); the static STAC mirror is not
    written for them."""
    import time

    import orjson
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from shikong.catalog import Catalog
    from shikong.catalog.pg_ndjson_load import load_items
    from shikong.catalog.postgres_store import PostgresCatalogStore
    from shikong.spatial.errors import InputError

    store = Catalog.open(data_dir).store
    if not isinstance(store, PostgresCatalogStore):
        raise InputError(
            str(items), "loading NDJSON needs a PostgreSQL catalog (--database, $SHIKONG_DATABASE)"
        )
    docs = []
    for n, line in enumerate(collections_file.read_bytes().splitlines(), 1):
        if line.strip():
            try:
                docs.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise InputError(collections_file, f"not JSON: {exc}", f"line {n}") from None
    with items.open("rb") as f:  # lines, for the bar (blank ones, if any, never advance it)
        total = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
    started = time.perf_counter()
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"loading {items.name}", total=total)
        count = load_items(store, items, docs, 1, workers, lambda n: progress.advance(task, n))
    took = time.perf_counter() - started
    console.print(
        f"[green]loaded[/] {count:,} items of {len(docs)} layers into {store} in {took:.1f} s "
        f"({count / max(took, 1e-9):,.0f} items/s)"
    )


@catalog.command("validate")
@data_option
@clear_errors
def catalog_validate(data_dir: Path) -> None:
    """Validate every STAC JSON file against STAC 1.1 and the shikong extension."""
    from shikong.catalog.extension import validation_errors

    files = sorted((data_dir / "stac").rglob("*.json"))
    bad = 0
    for path in files:
        errors = validation_errors(json.loads(path.read_text(encoding="utf-8")))
        for error in errors:
            bad += 1
            console.print(f"[red]{path}[/]: {error}")
    console.print(f"{len(files)} STAC files, {bad} errors")
    if bad:
        sys.exit(1)


@catalog.command("directory")
@click.option("--text", "-q", help="Words to find in titles, descriptions, keywords (Chinese too).")
@click.option("--department", "-d", help="Only this department's layers.")
@click.option("--kind", help="vector, raster, sensors, readings, datacube.")
@click.option("--classification", help="public, shared or restricted.")
@click.option("--bbox", help="minlon,minlat,maxlon,maxlat: layers whose extent meets it.")
@click.option("--json", "as_json", is_flag=True, help="The records as JSON (as /directory).")
@data_option
@clear_errors
def catalog_directory(
    text: str | None,
    department: str | None,
    kind: str | None,
    classification: str | None,
    bbox: str | None,
    as_json: bool,
    data_dir: Path,
) -> None:
    """The resource directory (数据资源目录): every layer's metadata, as /directory serves it
    to any signed-in department (never data, never personal field names)."""
    from shikong.catalog import Catalog
    from shikong.catalog.directory import records, search
    from shikong.catalog.policy import Policy

    box = None
    if bbox:
        try:
            box = [float(v) for v in bbox.split(",")]
        except ValueError:
            raise click.BadParameter(f"{bbox!r} is not four numbers", param_hint="--bbox") from None
        if len(box) != 4:
            raise click.BadParameter(f"{bbox!r} is not four numbers", param_hint="--bbox")
    cat = Catalog.open(data_dir)
    found = search(
        records(cat, Policy.load(data_dir).personal_data),
        q=text,
        department=department,
        kind=kind,
        classification=classification,
        bbox=box,
    )
    if as_json:
        sys.stdout.write(json.dumps(found, ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(title=f"{len(found)} layers in the directory")
    for column in ("layer", "title", "department", "kind", "classification", "versions"):
        table.add_column(column, overflow="fold")
    for rec in found:
        p = rec["properties"]
        table.add_row(
            rec["id"],
            p["title"],
            p.get("department_name") or p["department"],
            p["kind"],
            p["classification"],
            ", ".join(p.get("versions") or []),
        )
    console.print(table)
