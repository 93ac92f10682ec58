"""``sharing request | decide | list``: access requests between departments (issue 22).

The command acts as the holder of an API key (``--key`` or ``$SHIKONG_KEY``), under the
same rules as ``/sharing/requests``: any department may ask, only an ``admin`` of the
owner department decides, each sees its own. Every step is written to the audit chain.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.table import Table

from .common import console, data_option, err_console

key_option = click.option(
    "--key",
    envvar="SHIKONG_KEY",
    required=True,
    help="Your API key (or $SHIKONG_KEY): the command acts as its holder.",
)


@click.group()
def sharing() -> None:
    """Access requests between departments: ask, decide, list."""


def _open(data_dir: Path, key: str) -> tuple[Any, Any, Any]:
    """(workflow, the key's caller, audit log) of a data directory; a bad key exits 2."""
    from shikong.catalog import Catalog
    from shikong.catalog.policy import CollectionMeta
    from shikong.catalog.stores import open_sharing

    from ..audit import AuditLog
    from ..identity import AuthError, KeyStore

    try:
        caller = KeyStore(data_dir).lookup(key.strip())
    except AuthError as exc:
        _fail(str(exc))

    def metas() -> dict[str, CollectionMeta]:
        layers = Catalog.open(data_dir).collections()
        return {c.id: CollectionMeta(c.id, c.department, c.classification) for c in layers}

    return open_sharing(data_dir, metas), caller, AuditLog(data_dir)


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(2)


def _show(found: Any) -> None:
    click.echo(json.dumps(found.as_dict(), ensure_ascii=False, indent=2))


@sharing.command("request")
@click.argument("collection")
@click.option("--rights", required=True, help="read, write, personal-data (comma-separated).")
@click.option("--purpose", required=True, help="What the data is needed for.")
@click.option(
    "--until", required=True, help="End date, YYYY-MM-DD: the grant holds through that UTC day."
)
@key_option
@data_option
def sharing_request(
    collection: str, rights: str, purpose: str, until: str, key: str, data_dir: Path
) -> None:
    """Ask COLLECTION's owner department for rights until a date."""
    from shikong.spatial.errors import ShikongError

    from ..sharing import record

    workflow, caller, audit = _open(data_dir, key)
    try:
        found = workflow.request(caller, collection, rights, purpose, until)
    except ShikongError as exc:
        _fail(str(exc))
    record(audit, "requested", found, caller)
    _show(found)


@sharing.command("decide")
@click.argument("request_id", type=int)
@click.argument("decision", type=click.Choice(["approve", "refuse"]))
@click.option("--rights", help="Approve fewer rights than asked (comma-separated).")
@click.option("--until", help="Approve to an earlier end date (YYYY-MM-DD).")
@click.option("--reason", help="Why (a refusal needs one).")
@key_option
@data_option
def sharing_decide(
    request_id: int,
    decision: str,
    rights: str | None,
    until: str | None,
    reason: str | None,
    key: str,
    data_dir: Path,
) -> None:
    """Approve (perhaps narrowed) or refuse a request: an owner department's admin only."""
    from shikong.spatial.errors import ShikongError

    from ..sharing import decision_event, record

    workflow, caller, audit = _open(data_dir, key)
    try:
        found = workflow.decide(caller, request_id, decision, rights, until, reason)
    except ShikongError as exc:
        _fail(str(exc))
    record(audit, decision_event(found), found, caller)
    _show(found)


@sharing.command("list")
@click.option("--collection", help="Only requests for this layer.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@key_option
@data_option
def sharing_list(collection: str | None, as_json: bool, key: str, data_dir: Path) -> None:
    """Your department's requests and (for an admin) those for its layers, with states."""
    from ..sharing import GrantsInForce

    workflow, caller, audit = _open(data_dir, key)
    GrantsInForce(workflow, audit).expire()  # records expiries that are due
    rows = [r.as_dict() for r in workflow.list(caller, collection)]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table("id", "from", "layer", "asked", "until", "state", "granted", "decided by")
    for r in rows:
        granted = ""
        if r["granted_rights"]:
            granted = f"{','.join(r['granted_rights'])} to {r['granted_until']}"
        table.add_row(
            str(r["id"]),
            f"{r['department']}/{r['user'] or '-'}",
            r["collection"],
            ",".join(r["rights"]),
            r["until"],
            r["state"],
            granted or (r["reason"] or ""),
            r["decided_by"] or "",
        )
    console.print(table)
