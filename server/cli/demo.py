"""The demo city: ``demo build`` generates and ingests it, ``demo run`` serves it live."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import clear_errors, console, data_option
from .serve import refuse_unbindable


@click.group()
def demo() -> None:
    """The demo city: 13 departments' data, generated and ingested."""


@demo.command("build")
@click.option(
    "--scale",
    type=click.Choice(["small", "medium", "large"]),
    default="small",
    show_default=True,
    help="Feature counts, raster sizes and IoT history length.",
)
@click.option("--seed", default=20261125, show_default=True, help="Same seed, same city.")
@click.option(
    "--sources",
    type=click.Path(path_type=Path),
    help="Where the departments' files go (default: DATA/sources).",
)
@data_option
@clear_errors
def demo_build(scale: str, seed: int, sources: Path | None, data_dir: Path) -> None:
    """Generate the demo city's source files and ingest them all."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from shikong.catalog import Catalog
    from shikong.catalog.bulk import ingest_entries, read_manifest
    from shikong.demo import MANIFEST, generate

    sources = sources or data_dir / "sources"
    started = time.perf_counter()
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("generating the demo city", total=None)
        generate(
            sources,
            scale=scale,
            seed=seed,
            progress=lambda what: progress.update(task, description=f"generating {what}"),
        )
        entries = read_manifest(sources / MANIFEST)
        progress.update(task, description="ingesting", total=len(entries), completed=0)
        catalog = Catalog.open(data_dir)

        def advance(entry, result) -> None:
            progress.update(task, advance=1, description=f"ingested {result.collection_id}")

        ingest_entries(catalog, sources, entries, advance)
    layers = catalog.collections()
    console.print(
        f"[green]demo city built[/] in {time.perf_counter() - started:.1f} s: "
        f"{len(catalog.departments)} departments, {len(layers)} layers, catalog "
        f"version {catalog.version} in {data_dir}"
    )


@demo.command("run")
@data_option
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--mqtt",
    envvar="SHIKONG_MQTT",
    default="mqtt://127.0.0.1:1883",
    show_default=True,
    help="Broker for live sensor data, used when reachable.",
)
@clear_errors
def demo_run(data_dir: Path, port: int, mqtt: str) -> None:
    """Serve the demo city and keep its sensors live (what `make demo` runs)."""
    import subprocess

    from shikong.catalog import Catalog

    from ..simulator import Simulator, broker_reachable, wait_for

    refuse_unbindable("127.0.0.1", port)  # else wait_for could find another server there
    url = f"http://localhost:{port}"
    use_mqtt = mqtt if broker_reachable(mqtt) else None
    args = [
        sys.executable,
        "-m",
        "shikong.server.cli",
        "serve",
        "--data",
        str(data_dir),
        "--port",
        str(port),
        *(["--mqtt", use_mqtt] if use_mqtt else []),
    ]
    server = subprocess.Popen(args)
    made: list[str] = []
    try:
        if not wait_for(url):
            raise click.ClickException("the server did not start")
        key = None
        if not use_mqtt:  # HTTP batches need an identity: a gateway key for this run
            from ..identity import KeyStore

            key, record = KeyStore(data_dir).create("urb", "demo-simulator", role="gateway")
            made.append(record.key_id)
        sim = Simulator(Catalog.open(data_dir), url, use_mqtt, interval=5.0, api_key=key)
        sim.start()
        from ..identity import KeyStore

        analyst, record = KeyStore(data_dir).create("nrp", "demo-analyst")
        made.append(record.key_id)
        console.print(
            f"[green]demo city live[/] on {url} (sensors over {use_mqtt or 'HTTP'}); Ctrl-C stops\n"
            "anonymous callers see the public layers; as a department (nrp) send\n"
            f"  X-API-Key: {analyst}   (revoked when this demo stops)\n"
            "e.g. curl -H 'X-API-Key: …' "
            f"{url}/collections/nrp-landuse/items  (more: shikong keys create --help)"
        )
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        from ..identity import KeyStore

        for key_id in made:  # this run's keys end with it
            KeyStore(data_dir).revoke(key_id)
        server.terminate()
        server.wait(10)
