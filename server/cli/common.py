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
    return click.option(
        "--data",
        "data_dir",
        type=click.Path(path_type=Path),
        envvar="SHIKONG_DATA",
        default="./data",
        show_default=True,
        help="Data directory (or $SHIKONG_DATA).",
    )(func)
