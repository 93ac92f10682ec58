"""The `shikong` command line: one module per command group, gathered under :func:`main`.

Errors of ours (bad input) print as one clear line and exit 2; anything else is a bug
and keeps its traceback. The data stack (pandas, GDAL, dask, pygeoapi) is imported inside
the commands that need it, so `shikong --help` answers at once (tests/test_cli_startup.py):
the modules below import only click and rich at the top.

``shikong.server.cli:main`` is the console script; ``python -m shikong.server.cli`` runs
the same (``__main__.py``).
"""

from __future__ import annotations

import click

from . import audit, catalog, demo, ingest, keys, migrate, raster, serve, sharing, stats, tiles


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shikong")
def main() -> None:
    """shikong 时空: a spatio-temporal information cloud for city governments."""


for command in (
    ingest.check,
    ingest.ingest,
    demo.demo,
    serve.serve,
    serve.simulate,
    catalog.catalog,
    keys.keys,
    audit.audit,
    raster.raster,
    tiles.tiles,
    sharing.sharing,
    migrate.migrate,
    stats.stats,
):
    main.add_command(command)
del command

__all__ = ["main"]
