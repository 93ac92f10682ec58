"""``audit verify | query``: the hash-chained audit log of a data directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from .common import console, data_option, err_console


@click.group()
def audit() -> None:
    """The audit log: verify its hash chain, query its entries."""


@audit.command("verify")
@data_option
def audit_verify(data_dir: Path) -> None:
    """Check the hash chain and the head; exit 1 naming what was edited, moved or cut."""
    from ..audit import AUDIT_FILE, verify

    verdict = verify(data_dir / AUDIT_FILE)
    for warning in verdict.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if verdict.ok:
        console.print(f"[green]audit log intact[/]: {verdict.entries} entries")
        return
    where = f" at line {verdict.line}" if verdict.line else ""
    err_console.print(
        f"[bold red]audit log broken{where}[/]: {verdict.reason} "
        f"({verdict.entries} entries before it verify)",
        highlight=False,
        soft_wrap=True,
    )
    sys.exit(1)


@audit.command("query")
@click.option("--user")
@click.option("--department")
@click.option("--collection")
@click.option(
    "--since", help="RFC 3339 date-time or date, e.g. 2026-11-25 or 2026-11-25T08:00:00Z."
)
@click.option("--until", help="Likewise; a date includes its whole day (UTC).")
@click.option("--status", type=int)
@click.option("--denied", is_flag=True, default=None, help="Only refusals.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Newest N."
)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@click.option(
    "--could-read",
    metavar="COLLECTION",
    help="Instead: who could read this layer on --on, and on what grounds.",
)
@click.option("--on", "on_day", help="The date (or date-time) for --could-read; default today.")
@data_option
def audit_query(
    user: str | None,
    department: str | None,
    collection: str | None,
    since: str | None,
    until: str | None,
    status: int | None,
    denied: bool | None,
    limit: int,
    as_json: bool,
    could_read: str | None,
    on_day: str | None,
    data_dir: Path,
) -> None:
    """Entries matching every filter given (personal values masked, as in the log)."""
    from shikong.catalog.policy import Policy

    from ..audit import AUDIT_FILE, BadTime, query
    from ..audit_mask import Redactor

    if could_read is not None:
        _could_read(could_read, on_day, as_json, data_dir)
        return
    try:
        rows = query(
            data_dir / AUDIT_FILE,
            user=user,
            department=department,
            collection=collection,
            since=since,
            until=until,
            status=status,
            denied=denied,
            limit=limit,
            redactor=Redactor(Policy.load(data_dir).personal_data),
        )
    except BadTime as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table("time", "who", "method", "path", "collections", "status", "denied")
    for e in rows:
        who = f"{e.get('department') or '-'}/{e.get('user') or 'anonymous'}"
        table.add_row(
            str(e.get("time", "")),
            who,
            str(e.get("method") or e.get("event") or ""),
            str(e.get("path") or e.get("note") or ""),
            ",".join(e.get("collections") or []),
            str(e.get("status", "")),
            "yes" if e.get("denied") else "",
        )
    console.print(table)


def _could_read(collection: str, on_day: str | None, as_json: bool, data_dir: Path) -> None:
    """Who could read a layer on a day: its owner, its classification, the policy file's
    grants and the approved access requests in force then (from the chain)."""
    from datetime import UTC, datetime

    from shikong.catalog import Catalog
    from shikong.catalog.departments import departments
    from shikong.catalog.policy import CollectionMeta, Policy
    from shikong.spatial.errors import ShikongError

    from ..audit import AUDIT_FILE, BadTime, could_read

    day = on_day or datetime.now(UTC).date().isoformat()
    try:
        layer = Catalog.open(data_dir)[collection]
    except (ShikongError, KeyError):
        err_console.print(f"[bold red]error:[/] no layer {collection!r}", highlight=False)
        sys.exit(2)
    meta = CollectionMeta(layer.id, layer.department, layer.classification)
    try:
        rows = could_read(
            data_dir / AUDIT_FILE, meta, day, Policy.load(data_dir), list(departments())
        )
    except BadTime as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table(
        "department",
        "rights",
        "grounds",
        "decided by",
        "until",
        title=(f"who could read {collection} ({meta.classification}) on {day}"),
    )
    for r in rows:
        table.add_row(
            r["department"],
            ",".join(r["rights"]),
            r["grounds"],
            r.get("decided_by", ""),
            r.get("until", ""),
        )
    console.print(table)
