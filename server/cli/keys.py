"""``keys create | list | revoke``: the API keys a data directory accepts."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from .common import console, data_option, err_console


@click.group()
def keys() -> None:
    """API keys: create (shown once, stored hashed), list, revoke."""


@keys.command("create")
@click.option("--department", required=True, help="Department code, e.g. rer.")
@click.option("--user", required=True, help="Who holds the key.")
@click.option(
    "--role",
    default="user",
    show_default=True,
    # checked by KeyStore.create: naming policy.ROLES here would load the stack
    help="user, auditor (may also read the audit log), gateway (may post any sensor's "
    "readings) or admin (decides its department's access requests).",
)
@data_option
def keys_create(department: str, user: str, role: str, data_dir: Path) -> None:
    """Create a key; it is printed once and only its hash is kept."""
    from ..identity import KeyStore

    try:
        key, record = KeyStore(data_dir).create(department, user, role)
    except ValueError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    err_console.print(
        f"key {record.key_id} for {department}/{user} ({role}); send it as X-API-Key. "
        "It is not stored and cannot be shown again:"
    )
    click.echo(key)


@keys.command("list")
@data_option
def keys_list(data_dir: Path) -> None:
    """Keys with their department, user, role and revocation (never the key itself)."""
    from ..identity import KeyStore

    table = Table("key id", "department", "user", "role", "created", "revoked")
    for r in KeyStore(data_dir).list():
        table.add_row(r.key_id, r.department, r.user, r.role, r.created, r.revoked or "")
    console.print(table)


@keys.command("revoke")
@click.argument("key_id")
@data_option
def keys_revoke(key_id: str, data_dir: Path) -> None:
    """Revoke a key by its id; a running server refuses it from its next request."""
    from ..identity import KeyStore

    if not KeyStore(data_dir).revoke(key_id):
        err_console.print(f"[bold red]error:[/] no active key {key_id!r}", highlight=False)
        sys.exit(2)
    console.print(f"revoked {key_id}")
