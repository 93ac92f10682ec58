"""``shikong migrate --to postgresql://…``: an embedded catalog moved into PostgreSQL.

The embedded data directory's catalog (collections and items, layer by layer, each
layer's versions oldest first) is read through the store contract from its SQLite store
and written into the PostgreSQL store as it is (``put_verbatim``: no relinking, so every
item keeps its JSON), in batches; then checked: counts, every item equal to its source,
every asset's ``file:checksum`` and ``file:size`` against the file it names, and the
source checksum index. Only a whole, checked copy is marked finished; running it again is
a no-op ("already migrated"), and a copy that stopped half-way resumes.

With ``--assets s3://bucket/prefix`` the layers' assets move to object storage as well:
each is uploaded (its size checked) before the catalog that names it is written, its
item then names the object (``asset_store.rehomed``: the same department/layer/version
layout), and the check reads every object back against its ``file:checksum``. The data
directory's own catalog and files are left as they were.

The API keys (``server/keys_pg.py``) and the audit log (``server/audit_pg.py``: every
line and the head as they are, so the chain goes on in the database) follow too, once.
The readings (``observations*.sqlite``) follow, into the same database and schema
(``catalog/observation_migrate.py``: counts checked, a no-op when run again). Still
local after a migration: the STAC mirror (the data directory), and the assets unless
``--assets`` moved them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .common import clear_errors, console

if TYPE_CHECKING:
    from shikong.catalog.postgres_store import PostgresCatalogStore
    from shikong.catalog.store import CatalogStore

BATCH_ITEMS = 5000  # items per transaction of the copy (each costs ~7 round trips, and
# one takes a millisecond when the caller's thread holds Python's lock meanwhile)
SHOWN_PROBLEMS = 10


@dataclass
class Checked:
    """What the check of a copy found."""

    layers: int = 0
    items: int = 0
    assets: int = 0
    asset_bytes: int = 0
    problems: list[str] = field(default_factory=list)


def plan(source: CatalogStore) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Every layer's collection and its versions, oldest validity first."""
    return [(c, source.items_of(c["id"])) for c in source.collections()]


def copy_catalog(
    layers: list[tuple[dict[str, Any], list[dict[str, Any]]]],
    target: PostgresCatalogStore,
    version: int,
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    """Each layer's collection and items into the target, BATCH_ITEMS per transaction
    (``put_verbatim_later``: written on a thread of the store's, each row made as it is
    streamed, so the server stores the first rows while Python makes the next). Returns
    when the last batch is queued, so a caller reading layers one at a time reads the
    next while the last ones are written; ``target.wait_copies()`` (or ``finish_copy``)
    waits for them. ``advance(n)`` as each batch of n items is written."""
    for collection, items in layers:
        for start in range(0, max(len(items), 1), BATCH_ITEMS):
            chunk = items[start : start + BATCH_ITEMS]
            target.put_verbatim_later(
                collection, chunk, version, functools.partial(advance, len(chunk))
            )


def asset_paths(
    paths: Any, item: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any], Path | str]]:
    """(key, asset, where) of each asset an item names, located as the catalog locates
    them (``asset_store.locate``: a file, or an object's s3:// URL)."""
    from shikong.catalog.asset_store import locate

    for key, asset in item.get("assets", {}).items():
        yield key, asset, locate(paths, item, key)


def upload_assets(
    moves: list[tuple[Path, str]], to: Any, advance: Callable[[int], None] = lambda n: None
) -> None:
    """Each (local file or folder, key) into object storage (``S3Assets.copy_in``: an
    object already there with the same bytes is kept, one with others refused)."""
    for local, key in moves:
        to.copy_in(local, key)
        advance(1)


def check_copy(
    layers: list[tuple[dict[str, Any], list[dict[str, Any]]]],
    target: PostgresCatalogStore,
    advance: Callable[[int], None] = lambda n: None,
) -> Checked:
    """Counts, each item equal to its source, each asset's checksum and size, and the
    source checksums findable, as the problems found (empty: the copy is whole)."""
    from shikong.catalog.asset_store import exists, size_and_checksum
    from shikong.catalog.extension import Field

    checked = Checked()
    problems = checked.problems
    n_layers, n_items = target.counts()
    want_items = sum(len(items) for _, items in layers)
    if (n_layers, n_items) != (len(layers), want_items):
        problems.append(
            f"counts: {n_layers} layers and {n_items} items in the database, "
            f"{len(layers)} and {want_items} in the data directory"
        )
    for collection, items in layers:
        checked.layers += 1
        if target.collection(collection["id"]) != collection:
            problems.append(f"collection {collection['id']} differs from its source")
        copied = {i["id"]: i for i in target.items_of(collection["id"])}
        for item in items:
            checked.items += 1
            if copied.get(item["id"]) != item:
                problems.append(f"item {item['id']} differs from its source")
            source_sum = (item["properties"].get(Field.SOURCE) or {}).get("checksum")
            if source_sum:
                found = target.find_checksum(collection["id"], source_sum)
                if found is None:
                    problems.append(f"item {item['id']}: its source checksum is not found")
            for key, asset, path in asset_paths(target.paths, item):
                if "file:checksum" not in asset:
                    continue
                if not exists(path):
                    problems.append(f"item {item['id']} asset {key}: {path} is missing")
                    continue
                size, checksum = size_and_checksum(path)
                if checksum != asset["file:checksum"] or size != asset.get("file:size", size):
                    problems.append(
                        f"item {item['id']} asset {key}: {path} does not match its checksum"
                    )
                checked.assets += 1
                checked.asset_bytes += size
            advance(1)
    return checked


def rehome_layers(
    layers: list[tuple[dict[str, Any], list[dict[str, Any]]]], to: Any
) -> tuple[list[tuple[dict[str, Any], list[dict[str, Any]]]], list[tuple[Path, str]]]:
    """The plan with every item naming its assets' objects in ``to``, and what to upload."""
    from shikong.catalog.asset_store import rehomed

    out, moves = [], []
    for collection, items in layers:
        moved = []
        for item in items:
            item, more = rehomed(to.paths, item, to)
            moved.append(item)
            moves += more
        out.append((collection, moved))
    return out, moves


def check_assets_named(
    target: PostgresCatalogStore,
    layers: list[tuple[dict[str, Any], list[dict[str, Any]]]],
    to: Any,
) -> None:
    """A finished copy asked to move assets: it must have moved them to ``to`` already."""
    from shikong.catalog.stores import DatabaseError

    for collection, items in layers:
        copied = {i["id"]: i for i in target.items_of(collection["id"])}
        for item in items:
            if copied.get(item["id"], {}).get("assets") != item.get("assets"):
                raise DatabaseError(
                    f"the catalog was migrated before with its assets elsewhere (item "
                    f"{item['id']} does not name {to.url}): migrate into another --schema"
                )


@click.command()
@click.option(
    "--to",
    "target_dsn",
    required=True,
    help="PostgreSQL DSN to move the catalog into, postgresql://user@host:port/dbname.",
)
@click.option(
    "--schema",
    help="Schema in that database (default $SHIKONG_DATABASE_SCHEMA or shikong).",
)
@click.option(
    "--assets",
    help="Object storage to move the assets into, s3://bucket/prefix (endpoint and keys "
    "from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); left out, they stay "
    "in the data directory.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    envvar="SHIKONG_DATA",
    default="./data",
    show_default=True,
    help="The embedded data directory to migrate (or $SHIKONG_DATA).",
)  # not common.data_option: its --database would name the target a second way
@clear_errors
def migrate(target_dsn: str, schema: str | None, assets: str | None, data_dir: Path) -> None:
    """Move the embedded catalog of a data directory into PostgreSQL, and check it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from shikong.catalog.catalog import open_store
    from shikong.catalog.observation_migrate import migrate_readings
    from shikong.catalog.storage import DataDir
    from shikong.catalog.stores import (
        DatabaseError,
        check_database,
        configured_database,
        configured_schema,
        mask_dsn,
    )
    from shikong.server.audit_pg import migrate_audit
    from shikong.server.keys_pg import migrate_keys

    to = None
    if assets:
        from shikong.catalog.asset_store import S3Assets, check_bucket, configured_url

        url = configured_url(assets)
        if url == "local":
            raise DatabaseError("--assets: give s3://bucket/prefix (or leave it out)")
        check_bucket(url)
        to = S3Assets(DataDir(data_dir), url)
    dsn = configured_database(target_dsn)
    if dsn is None:
        raise DatabaseError("--to: give the PostgreSQL database to migrate into")
    check_database(dsn)
    if not DataDir(data_dir).index.exists():
        raise DatabaseError(f"{data_dir}: no embedded catalog here (no index.sqlite)")
    schema = configured_schema(schema)
    source = open_store(data_dir, database="sqlite")
    target = open_store(data_dir, database=dsn, schema=schema)
    where = f"{mask_dsn(dsn)} (schema {schema})"
    origin = str(Path(data_dir).resolve())
    version = source.version()
    layers = plan(source)
    total = sum(len(items) for _, items in layers)
    moves: list[tuple[Path, str]] = []
    if to is not None:
        layers, moves = rehome_layers(layers, to)
    copied_from = target.copied_from()  # type: ignore[attr-defined]
    if copied_from is not None:
        if to is not None:
            check_assets_named(target, layers, to)
        if copied_from == origin and target.version() == version:
            console.print(f"already migrated: {total} items of {origin} in {where}")
            console.print(migrate_readings(target, console))
            console.print(migrate_keys(data_dir, target))
            console.print(migrate_audit(data_dir, target))
            return
        raise DatabaseError(
            f"{where} already holds a catalog copied from {copied_from} at version "
            f"{target.version()} (this one is at {version}): use another --schema"
        )
    if target.version() > 0:
        raise DatabaseError(
            f"{where} already holds a catalog (version {target.version()}): "
            "migrate into an empty schema (--schema)"
        )
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        if moves:
            task = progress.add_task(f"uploading assets to {to.url}", total=len(moves))  # type: ignore[union-attr]
            upload_assets(moves, to, lambda n: progress.advance(task, n))  # type: ignore[arg-type]
        task = progress.add_task(f"copying {len(layers)} layers", total=total)
        copy_catalog(layers, target, version, lambda n: progress.advance(task, n))  # type: ignore[arg-type]
        target.wait_copies()  # type: ignore[attr-defined]
        task = progress.add_task("checking items and assets", total=total)
        checked = check_copy(layers, target, lambda n: progress.advance(task, n))  # type: ignore[arg-type]
    if checked.problems:
        shown = "; ".join(checked.problems[:SHOWN_PROBLEMS])
        more = len(checked.problems) - SHOWN_PROBLEMS
        raise DatabaseError(
            f"the copy in {where} does not match the data directory "
            f"({len(checked.problems)} problems): {shown}{f' and {more} more' if more > 0 else ''}"
        )
    target.finish_copy(version, source.exported_version(), origin)  # type: ignore[attr-defined]
    with console.status("ordering the items by place (CLUSTER) for bbox searches"):
        target.optimize()  # type: ignore[attr-defined]
    console.print(
        f"[green]migrated[/] {checked.layers} layers, {checked.items} items (catalog "
        f"version {version}) into {where}; {checked.assets} assets "
        f"({checked.asset_bytes / 1e6:,.1f} MB) checked against their checksums"
    )
    console.print(migrate_readings(target, console))
    console.print(migrate_keys(data_dir, target))
    console.print(migrate_audit(data_dir, target))
    if to is None:
        console.print("still local: assets and the STAC mirror in the data directory")
    else:
        console.print(f"assets now in {to.url}; still local: the STAC mirror")
