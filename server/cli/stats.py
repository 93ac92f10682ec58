"""``shikong stats``: usage per layer, department and day, from the audit log.

The same figures as ``GET /stats`` answers an auditor (:mod:`shikong.server.stats`),
read from the data directory's audit log; ``--json`` prints that answer exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from .common import console, data_option, err_console


@click.command()
@click.option(
    "--since", help="RFC 3339 date-time or date, e.g. 2026-11-25 or 2026-11-25T08:00:00Z."
)
@click.option("--until", help="Likewise; a date includes its whole day (UTC).")
@click.option("--collection", help="Only this layer's rows.")
@click.option("--department", help="Only requests of this (caller's) department.")
@click.option("--json", "as_json", is_flag=True, help="The JSON answer of GET /stats.")
@data_option
def stats(
    since: str | None,
    until: str | None,
    collection: str | None,
    department: str | None,
    as_json: bool,
    data_dir: Path,
) -> None:
    """Requests, features, bytes and refusals per layer, department and UTC day.

    Counts what the audit log holds (requests touching shared or restricted layers, and
    refusals) and the reads of public layers the servers have counted (department "-").
    """
    from shikong.catalog.storage import DataDir

    from ..audit import BadTime
    from ..public_reads import stored_rows
    from ..stats import FIGURES, usage

    try:
        answer = usage(
            DataDir(data_dir).audit_log,
            since=since,
            until=until,
            collection=collection,
            department=department,
            public=stored_rows(data_dir),
        )
    except BadTime as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(answer, ensure_ascii=False))
        return
    table = Table("day", "layer", "department", *FIGURES)
    for row in answer["rows"]:
        table.add_row(
            row["day"],
            row["collection"] or "-",
            row["department"] or "anonymous",
            *(str(row[f]) for f in FIGURES),
        )
    table.add_row("total", "", "", *(str(answer["totals"][f]) for f in FIGURES))
    console.print(table)
    err_console.print(f"scope: {answer['scope']}", highlight=False, soft_wrap=True)
