"""Running the platform: ``serve`` the OGC APIs and STAC, ``simulate`` live sensors."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from .common import clear_errors, console, data_option, err_console


def refuse_unbindable(host: str, port: int) -> None:
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


@click.command()
@data_option
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

    refuse_unbindable(host, port)
    import uvicorn
    from shikong.server.http_protocol import PROTOCOL

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
        http=PROTOCOL,
        loop="auto",  # uvloop where installed
        proxy_headers=False,  # forwarded headers are ours to trust or not (public_url)
    )


@click.command()
@data_option
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

    from ..simulator import Simulator

    sim = Simulator(Catalog.open(data_dir), url, mqtt, interval, api_key=api_key)
    channel = sim.mqtt_url or f"{url}/readings"
    console.print(f"simulating every sensor every {interval:g} s over {channel}")
    with contextlib.suppress(KeyboardInterrupt):
        sim.run(rounds)
    console.print(f"sent {sim.sent} readings")
