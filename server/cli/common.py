"""What every command group shares: the consoles, the one-line error exit, ``--data``."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click
from rich.console import Console
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


def data_option(func):
    """``--data``, ``--database`` and ``--assets``: where the catalog lives."""
    func = click.option(
        "--assets",
        envvar="SHIKONG_ASSETS",
        expose_value=False,
        callback=_use_assets,
        help="Where new assets are stored: s3://bucket/prefix (endpoint and keys from "
        "AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; or $SHIKONG_ASSETS; "
        "unset: the data directory's assets/).",
    )(func)
    func = click.option(
        "--database",
        envvar="SHIKONG_DATABASE",
        expose_value=False,
        callback=_use_database,
        help="PostgreSQL DSN of the catalog store, postgresql://user@host/db (or "
        "$SHIKONG_DATABASE; unset: SQLite in the data directory).",
    )(func)
    return click.option(
        "--data",
        "data_dir",
        type=click.Path(path_type=Path),
        envvar="SHIKONG_DATA",
        default="./data",
        show_default=True,
        help="Data directory (or $SHIKONG_DATA).",
    )(func)


def _use_database(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Check the DSN once (a bad one is one line, exit 2), then leave it in the
    environment, where every catalog this command opens (and the server's workers) find
    it (shikong.catalog.stores)."""
    import os

    if not value:
        return
    from shikong.catalog.stores import DATABASE_ENV, check_database, configured_database

    try:
        dsn = configured_database(value)
        if dsn is not None:
            check_database(dsn)
    except ShikongError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    os.environ[DATABASE_ENV] = value


def _use_assets(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Check the object storage once (a bad one is one line, exit 2), then leave it in
    the environment for every ingest of this command and the server's workers
    (shikong.catalog.asset_store)."""
    import os

    if not value:
        return
    from shikong.catalog.asset_store import ASSETS_ENV, check_bucket, configured_url

    try:
        url = configured_url(value)
        if url != "local":
            check_bucket(url)
    except ShikongError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    os.environ[ASSETS_ENV] = url
