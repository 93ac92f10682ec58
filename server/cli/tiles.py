"""`shikong tiles seed`: fill the tile cache ahead of map clients (and time the rendering)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import click

from .common import clear_errors, console, data_option


@click.group()
def tiles() -> None:
    """Vector tiles (OGC API Tiles): seed the cache."""


def _zooms(text: str) -> list[int]:
    first, _, last = text.partition("-")
    try:
        lo, hi = int(first), int(last or first)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a zoom or a range like 0-14") from None
    if lo > hi:
        raise click.BadParameter(f"{text!r}: the first zoom is above the last")
    return list(range(lo, hi + 1))


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not minx,miny,maxx,maxy") from None
    if len(values) != 4 or values[0] > values[2] or values[1] > values[3]:
        raise click.BadParameter(f"{text!r} is not minx,miny,maxx,maxy (lon/lat)")
    return values  # type: ignore[return-value]


@tiles.command("seed")
@click.option("--layer", "layers", required=True, multiple=True, help="Collection id (repeat).")
@click.option("--zoom", default="0-14", show_default=True, help="Zoom or range, e.g. 0-14.")
@click.option("--bbox", default=None, help="lon/lat minx,miny,maxx,maxy (default: the layer's).")
@click.option("--tms", "tms_id", default="WebMercatorQuad", show_default=True)
@click.option(
    "--unmasked", is_flag=True, help="Seed the personal-data view (default: fields masked)."
)
@click.option("--no-cache", is_flag=True, help="Render without storing (time the renderer).")
@data_option
@clear_errors
def seed(
    layers: tuple[str, ...],
    zoom: str,
    bbox: str | None,
    tms_id: str,
    unmasked: bool,
    no_cache: bool,
    data_dir: Path,
) -> None:
    """Render a layer's tiles into the cache, with a progress bar and render times.

    Tiles are stored as the masked view (what a caller without the personal-data grant
    gets) unless --unmasked; other callers' views are rendered on first request.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from shikong.catalog import Catalog
    from shikong.catalog.policy import Access
    from shikong.spatial.errors import InputError

    from ..app import Server
    from ..problems import Problem
    from ..tiles import matrix_sets
    from ..tiles.render import _cache, vector_tile

    zooms, box = _zooms(zoom), _bbox(bbox)
    server = Server(Catalog.open(data_dir), "http://localhost")
    if no_cache:
        _cache(server).max_bytes = 0
    try:
        tms = matrix_sets.get(tms_id)
    except Problem as exc:
        raise InputError(tms_id, exc.description) from None
    snapshot = server.publisher.snapshot
    for cid in layers:
        resource = snapshot.resources.get(cid)
        if resource is None:
            raise InputError(cid, "no such collection")
        fields = server.policy.personal_data.get(cid, {})
        masks = () if unmasked or not fields else ((cid, tuple(sorted(fields.items()))),)
        access = Access(frozenset([cid]), frozenset(), masks)
        west, south, east, north = box or resource["extents"]["spatial"]["bbox"]
        first, last = matrix_sets.zoom_range(tms)
        wanted = [z for z in zooms if first <= z <= last]
        todo = list(tms.tiles(west, south, east, north, wanted))
        times: dict[int, list[float]] = {z: [] for z in wanted}
        sizes: dict[int, int] = dict.fromkeys(wanted, 0)
        progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        with progress:
            task = progress.add_task(f"{cid} {tms.id} z{zoom}", total=len(todo))
            for tile in todo:
                t0 = time.perf_counter()
                try:
                    result = vector_tile(server, access, cid, tms.id, tile.z, tile.y, tile.x)
                except Problem as exc:
                    raise InputError(cid, exc.description) from None
                times[tile.z].append((time.perf_counter() - t0) * 1000)
                sizes[tile.z] += len(result.content)
                progress.advance(task)
        for z in wanted:
            if times[z]:
                console.print(
                    f"{cid} z{z}: {len(times[z])} tiles, {sizes[z] / 1024:.0f} KiB, "
                    f"p50 {statistics.median(times[z]):.1f} ms, max {max(times[z]):.1f} ms"
                )
