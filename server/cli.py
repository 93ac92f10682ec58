"""The `shikong` command line.

Errors of ours (bad input) print as one clear line and exit 2; anything else is a bug
and keeps its traceback. The data stack (pandas, GDAL, dask, pygeoapi) is imported inside
the commands that need it, so `shikong --help` answers at once (tests/test_cli_startup.py).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shikong")
def main() -> None:
    """shikong 时空: a spatio-temporal information cloud for city governments."""


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--layer",
    help="Layer of a GeoPackage, or which dataset of a folder or .zip (name or path in it).",
)
@click.option("--crs", help="Declared CRS when the file has none, e.g. EPSG:4526.")
@click.option("--encoding", help="Declared text encoding, e.g. gbk (default: .cpg or detect).")
@click.option("--survey-order", is_flag=True, help="CSV: X is the northing, Y the easting.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@clear_errors
def check(
    source: Path,
    layer: str | None,
    crs: str | None,
    encoding: str | None,
    survey_order: bool,
    as_json: bool,
) -> None:
    """Read SOURCE (a file, or a folder or .zip holding one) and report what was found and
    what was repaired."""
    from shikong.spatial.area import Area, ellipsoidal_area_m2
    from shikong.spatial.readers import read

    options = {"xy_order": "survey"} if survey_order else {}
    with console.status(f"reading {source.name}…"):
        frame, report = read(source, layer=layer, crs=crs, encoding=encoding, **options)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    table = Table(title=str(source), show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    bbox = ", ".join(f"{v:.6f}" for v in report.bbox) if report.bbox else "—"
    rows = [
        *([("dataset", report.source)] if report.delivery else []),
        ("format", report.format),
        ("layer", report.layer or "—"),
        ("encoding", report.encoding or "—"),
        ("CRS", f"{report.crs} ({report.crs_origin or 'file'})"),
        ("features", str(report.feature_count)),
        ("geometry", ", ".join(f"{k} {v}" for k, v in report.geometry_types.items()) or "—"),
        ("bbox EPSG:4490", bbox),
        ("fields", ", ".join(str(c) for c in frame.columns if c != frame.geometry.name)),
        ("repaired", str(len(report.repaired))),
    ]
    polygons = frame.geometry[frame.geom_type.isin(["Polygon", "MultiPolygon"])]
    if len(polygons):
        total = Area(sum(ellipsoidal_area_m2(g) for g in polygons))
        rows.append(
            (
                "area (ellipsoidal)",
                f"{total.m2:,.2f} m² = {total.hectares:,.4f} 公顷 = {total.mu:,.2f} 亩",
            )
        )
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    for idx, reason in report.repaired[:20]:
        console.print(f"  repaired feature {idx}: {reason}")
    for action in report.actions:
        console.print(f"[green]•[/] {action}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def _data_option(func):
    return click.option(
        "--data",
        "data_dir",
        type=click.Path(path_type=Path),
        envvar="SHIKONG_DATA",
        default="./data",
        show_default=True,
        help="Data directory (or $SHIKONG_DATA).",
    )(func)


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--department", "-d", required=True, help="Owner department code, e.g. nrp.")
@click.option("--layer", "-l", required=True, help="Layer name (lower-case, digits, _).")
@click.option(
    "--classification",
    type=click.Choice(["public", "shared", "restricted"]),
    help="Who may see it (default: the layer's, or shared for a new layer).",
)
@click.option("--version", "version", help="Version label (default: next number).")
@click.option("--valid-from", help="Date this version is valid from (default: now).")
@click.option(
    "--kind",
    type=click.Choice(["vector", "raster", "sensors", "readings", "datacube"]),
    help="Default: from the file.",
)
@click.option("--title", help="Title of the layer, e.g. 土地利用现状.")
@click.option("--title-en", help="English title.")
@click.option("--description", default="", help="What the layer holds.")
@click.option("--keyword", "keywords", multiple=True, help="Keyword (repeatable).")
@click.option(
    "--source-layer",
    help="Layer inside a GeoPackage, or which dataset of a folder or .zip (name or path in it).",
)
@click.option("--crs", help="Declared CRS when the file has none.")
@click.option("--encoding", help="Declared text encoding.")
@click.option("--survey-order", is_flag=True, help="CSV: X is the northing.")
@click.option("--id-field", help="Column that identifies features (default: generated fid).")
@click.option("--sensor-layer", help="Readings: the sensors layer they belong to.")
@click.option(
    "--editable/--read-only",
    default=None,
    help="Accept OGC API transactions on this layer (default: keep the layer's).",
)
@_data_option
@clear_errors
def ingest(
    source: Path,
    department: str,
    layer: str,
    data_dir: Path,
    source_layer: str | None,
    crs: str | None,
    encoding: str | None,
    survey_order: bool,
    **kwargs,
) -> None:
    """Ingest SOURCE (a file, or a folder or .zip holding one) as a new version of a
    department's layer."""
    from shikong.catalog import Catalog

    options = {
        k: v for k, v in (("layer", source_layer), ("crs", crs), ("encoding", encoding)) if v
    }
    if survey_order:
        options["xy_order"] = "survey"
    kwargs["keywords"] = list(kwargs["keywords"])
    with console.status(f"ingesting {source.name} into {department}-{layer}…"):
        result = Catalog.open(data_dir).ingest(
            source, department=department, layer=layer, options=options, **kwargs
        )
    if result.status == "unchanged":
        console.print(f"[yellow]unchanged:[/] {source} is already {result.item_id}")
    elif result.readings is not None:
        r = result.readings
        console.print(
            f"[green]appended[/] {r.accepted} readings to {result.collection_id} "
            f"({r.duplicates} duplicates, {r.rejected_total} rejected)"
        )
        for reason, count in r.rejected.items():
            console.print(f"  rejected {count}: {reason}")
    else:
        console.print(
            f"[green]created[/] {result.item_id} (catalog version {result.catalog_version})"
        )
    if result.report:
        for action in result.report.actions:
            console.print(f"[green]•[/] {action}")
        for warning in result.report.warnings:
            console.print(f"[yellow]warning:[/] {warning}")


@main.group()
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
@_data_option
@clear_errors
def demo_build(scale: str, seed: int, sources: Path | None, data_dir: Path) -> None:
    """Generate the demo city's source files and ingest them all."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from shikong.catalog import Catalog
    from shikong.catalog.bulk import ingest_entries, read_manifest
    from shikong.catalog.demo import MANIFEST, generate

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


def _refuse_unbindable(host: str, port: int) -> None:
    """Exit 2 with one line if uvicorn could not listen on host:port.

    Bound as uvicorn binds (same family, SO_REUSEADDR), so a port it would take passes
    and one it would refuse is refused here, before anything is announced.
    """
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return
        except OSError as exc:
            reason = exc.strerror or str(exc)
            code = exc.errno
    if code == errno.EADDRINUSE:
        problem = f"port {port} is in use on {host}: {reason}; choose another --port"
    elif code == errno.EACCES:
        problem = f"port {port} needs privileges here ({reason}); choose --port above 1023"
    else:
        problem = f"cannot listen on {host}:{port}: {reason}; check --host and --port"
    err_console.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
    sys.exit(2)


@main.command()
@_data_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--url",
    envvar="SHIKONG_URL",
    help="Public base URL written in every link (default: each request's own scheme and "
    "host; behind a proxy see SHIKONG_TRUSTED_PROXIES).",
)
@click.option(
    "--mqtt",
    envvar="SHIKONG_MQTT",
    help="MQTT broker whose sensor topics to ingest, e.g. mqtt://127.0.0.1:1883.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=int,
    help="uvicorn worker processes (each keeps its own layer cache).",
)
@clear_errors
def serve(
    data_dir: Path, host: str, port: int, url: str | None, mqtt: str | None, workers: int
) -> None:
    """Serve the catalog as OGC APIs (Features, Coverages, EDR, Processes) and STAC."""
    import os

    _refuse_unbindable(host, port)
    import uvicorn

    local = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"
    os.environ["SHIKONG_DATA"] = str(data_dir)
    os.environ["SHIKONG_LOCAL_URL"] = local
    if url:
        os.environ["SHIKONG_URL"] = url  # every link names it
    else:
        os.environ.pop("SHIKONG_URL", None)  # links follow each request's host
    if mqtt:
        os.environ["SHIKONG_MQTT"] = mqtt
    console.print(f"serving {data_dir} on [bold]{url or local}[/] (Ctrl-C stops)")
    uvicorn.run(
        "shikong.server.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        http="shikong.server.http_protocol:NoDelayH11Protocol",
        proxy_headers=False,  # forwarded headers are ours to trust or not (public_url)
    )


@main.command()
@_data_option
@click.option(
    "--url",
    default="http://localhost:5000",
    show_default=True,
    help="The server to send HTTP batches to.",
)
@click.option(
    "--mqtt",
    envvar="SHIKONG_MQTT",
    default="mqtt://127.0.0.1:1883",
    show_default=True,
    help="Broker to publish to when reachable.",
)
@click.option("--interval", default=5.0, show_default=True, help="Seconds between rounds.")
@click.option("--rounds", type=int, help="Stop after N rounds (default: run until Ctrl-C).")
@click.option(
    "--api-key",
    envvar="SHIKONG_API_KEY",
    help="Key for HTTP batches (a gateway key: shikong keys create --role gateway).",
)
@clear_errors
def simulate(
    data_dir: Path, url: str, mqtt: str, interval: float, rounds: int | None, api_key: str | None
) -> None:
    """Feed every sensor of the catalog with live readings (MQTT if reachable, else HTTP)."""
    from shikong.catalog import Catalog

    from .simulator import Simulator

    sim = Simulator(Catalog.open(data_dir), url, mqtt, interval, api_key=api_key)
    channel = sim.mqtt_url or f"{url}/readings"
    console.print(f"simulating every sensor every {interval:g} s over {channel}")
    with contextlib.suppress(KeyboardInterrupt):
        sim.run(rounds)
    console.print(f"sent {sim.sent} readings")


@demo.command("run")
@_data_option
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

    from .simulator import Simulator, broker_reachable, wait_for

    _refuse_unbindable("127.0.0.1", port)  # else wait_for could find another server there
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
            from .identity import KeyStore

            key, record = KeyStore(data_dir).create("urb", "demo-simulator", role="gateway")
            made.append(record.key_id)
        sim = Simulator(Catalog.open(data_dir), url, use_mqtt, interval=5.0, api_key=key)
        sim.start()
        from .identity import KeyStore

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
        from .identity import KeyStore

        for key_id in made:  # this run's keys end with it
            KeyStore(data_dir).revoke(key_id)
        server.terminate()
        server.wait(10)


@main.group()
def catalog() -> None:
    """Look into the catalog: layers, search, validation."""


@catalog.command("list")
@click.option("--department", "-d", help="Only this department's layers.")
@_data_option
@clear_errors
def catalog_list(department: str | None, data_dir: Path) -> None:
    """List layers with their kind, classification and versions."""
    from shikong.catalog import Catalog

    cat = Catalog.open(data_dir)
    table = Table(title=f"{data_dir} · catalog version {cat.version}")
    for column in ("layer", "title", "kind", "classification", "versions"):
        table.add_column(column, overflow="fold")
    for layer in cat.collections(department):
        table.add_row(
            layer.id,
            layer.title or "",
            layer.kind,
            layer.classification,
            ", ".join(v.version for v in layer.versions),
        )
    console.print(table)


@catalog.command("search")
@click.option("--bbox", help="minlon,minlat,maxlon,maxlat (EPSG:4490).")
@click.option("--datetime", "when", help="Instant or interval a/b.")
@click.option("--department", "-d", "departments", multiple=True)
@click.option("--collection", "collections", multiple=True)
@click.option("--text", help="Free text, Chinese or English.")
@click.option("--limit", default=50, show_default=True)
@_data_option
@clear_errors
def catalog_search(
    bbox: str | None,
    when: str | None,
    departments: tuple,
    collections: tuple,
    text: str | None,
    limit: int,
    data_dir: Path,
) -> None:
    """Search layer versions by place, time, department and text."""
    from shikong.catalog import Catalog
    from shikong.spatial.errors import InputError

    box = None
    if bbox:
        try:
            box = [float(v) for v in bbox.split(",")]
        except ValueError:
            box = []
        if len(box) != 4:
            raise InputError("--bbox", f"{bbox!r} is not four numbers minx,miny,maxx,maxy")
    result = Catalog.open(data_dir).search(
        bbox=box,
        datetime=when,
        departments=list(departments) or None,
        collections=list(collections) or None,
        text=text,
        limit=limit,
    )
    for item in result:
        p = item["properties"]
        console.print(
            f"{item['id']}  {p.get('title')}  {p['shikong:valid_from'][:10]} → "
            f"{(p['shikong:valid_to'] or 'now')[:10]}"
        )
    console.print(f"{len(result)} of {result.matched} items")


@catalog.command("validate")
@_data_option
@clear_errors
def catalog_validate(data_dir: Path) -> None:
    """Validate every STAC JSON file against STAC 1.1 and the shikong extension."""
    from shikong.catalog.extension import validation_errors

    files = sorted((data_dir / "stac").rglob("*.json"))
    bad = 0
    for path in files:
        errors = validation_errors(json.loads(path.read_text(encoding="utf-8")))
        for error in errors:
            bad += 1
            console.print(f"[red]{path}[/]: {error}")
    console.print(f"{len(files)} STAC files, {bad} errors")
    if bad:
        sys.exit(1)


@main.group()
def keys() -> None:
    """API keys: create (shown once, stored hashed), list, revoke."""


@keys.command("create")
@click.option("--department", required=True, help="Department code, e.g. rer.")
@click.option("--user", required=True, help="Who holds the key.")
@click.option(
    "--role",
    default="user",
    show_default=True,
    help="user, auditor (may also read the audit log) or gateway (may post any sensor's "
    "readings).",  # checked by KeyStore.create: naming policy.ROLES here would load the stack
)
@_data_option
def keys_create(department: str, user: str, role: str, data_dir: Path) -> None:
    """Create a key; it is printed once and only its hash is kept."""
    from .identity import KeyStore

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
@_data_option
def keys_list(data_dir: Path) -> None:
    """Keys with their department, user, role and revocation (never the key itself)."""
    from .identity import KeyStore

    table = Table("key id", "department", "user", "role", "created", "revoked")
    for r in KeyStore(data_dir).list():
        table.add_row(r.key_id, r.department, r.user, r.role, r.created, r.revoked or "")
    console.print(table)


@keys.command("revoke")
@click.argument("key_id")
@_data_option
def keys_revoke(key_id: str, data_dir: Path) -> None:
    """Revoke a key by its id; a running server refuses it from its next request."""
    from .identity import KeyStore

    if not KeyStore(data_dir).revoke(key_id):
        err_console.print(f"[bold red]error:[/] no active key {key_id!r}", highlight=False)
        sys.exit(2)
    console.print(f"revoked {key_id}")


@main.group()
def audit() -> None:
    """The audit log: verify its hash chain, query its entries."""


@audit.command("verify")
@_data_option
def audit_verify(data_dir: Path) -> None:
    """Check the hash chain and the head; exit 1 naming what was edited, moved or cut."""
    from .audit import AUDIT_FILE, verify

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
@_data_option
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
    data_dir: Path,
) -> None:
    """Entries matching every filter given (personal values masked, as in the log)."""
    from shikong.catalog.policy import Policy

    from .audit import AUDIT_FILE, BadTime, query
    from .audit_mask import Redactor

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


@main.group()
def raster() -> None:
    """Raster jobs on Dask with a progress bar: zonal statistics, mine remediation."""


def _progress_bar():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(), console=err_console,
    )  # fmt: skip


@raster.command("zonal-stats")
@click.option("--raster", "raster_id", required=True, help="Raster collection, e.g. nrp-dem.")
@click.option("--zones", required=True, help="Polygon collection, e.g. nrp-mining_rights.")
@click.option("--band", default=1, show_default=True)
@click.option("--stats", default="count,mean,min,max", show_default=True)
@click.option("--percentiles", default="", help="e.g. 10,50,90")
@click.option("--out", type=click.Path(path_type=Path), help="CSV file (default: print).")
@_data_option
@clear_errors
def raster_zonal_stats(
    raster_id: str,
    zones: str,
    band: int,
    stats: str,
    percentiles: str,
    out: Path | None,
    data_dir: Path,
) -> None:
    """Statistics of a raster layer inside each polygon of a vector layer."""
    from shikong.catalog import Catalog
    from shikong.spatial.compute import get_client
    from shikong.spatial.rasterjobs import zonal_stats

    catalog = Catalog.open(data_dir)
    image = catalog.layer(raster_id).to_xarray()
    zones_layer = catalog.layer(zones)
    id_field = zones_layer.current.item["properties"].get("shikong:id_field", "fid")
    with _progress_bar() as bar:
        task = bar.add_task(f"zonal statistics {raster_id} × {zones}", total=1)
        table = zonal_stats(
            image.isel(band=[band - 1]),
            zones_layer.to_geodataframe(),
            stats=tuple(s for s in stats.split(",") if s),
            percentiles=tuple(float(p) for p in percentiles.split(",") if p),
            id_field=id_field,
            client=get_client(),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if out is not None:
        table.to_csv(out)
        console.print(f"{len(table)} zones → {out}")
    else:
        click.echo(table.to_csv())


@raster.command("mine-remediation")
@click.option("--imagery", default="nrp-rs_mining", show_default=True)
@click.option("--mines", default="nrp-mining_rights", show_default=True)
@click.option("--no-write", is_flag=True, help="Do not ingest the change raster.")
@_data_option
@clear_errors
def raster_mine_remediation(imagery: str, mines: str, no_write: bool, data_dir: Path) -> None:
    """NDVI change per mining right between the first and last image dates."""
    from shikong.catalog import Catalog
    from shikong.catalog.remediation import mine_remediation_assessment
    from shikong.spatial.compute import get_client

    with _progress_bar() as bar:
        task = bar.add_task("mine remediation", total=100)

        def show(percent: float, message: str) -> None:
            bar.update(task, completed=percent, description=message)

        report = mine_remediation_assessment(
            Catalog.open(data_dir),
            imagery=imagery,
            mines=mines,
            write_derived=not no_write,
            progress=show,
            client=get_client(),
        )
        bar.update(task, completed=100, description="mine remediation")
    table = Table(
        "mine", "status", "NDVI before", "after", "change", "disturbed ha", "recovered ha"
    )
    for m in report["mines"]:
        table.add_row(
            str(m["name"]), str(m["status"]), f"{m['ndvi_before']:.3f}", f"{m['ndvi_after']:.3f}",
            f"{m['ndvi_change']:+.3f}", f"{m['disturbed_ha']:.2f}", f"{m['recovered_ha']:.2f}",
        )  # fmt: skip
    console.print(table)
    if report.get("derived"):
        console.print(f"change raster ingested as {report['derived']}")


if __name__ == "__main__":
    main()
