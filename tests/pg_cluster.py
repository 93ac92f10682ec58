"""A throwaway PostgreSQL cluster with PostGIS for tests (import the fixtures you need).

``pg_cluster`` (session) runs ``initdb`` in a temporary folder and starts the server on a
free loopback port, as the ``postgres`` user when the tests run as root (PostgreSQL
refuses to run as root); ``pg_database`` (per test) is a fresh database copied from a
template that already has PostGIS and an ICU ``en-US`` collation, dropped afterwards.
Without the PostgreSQL 15 binaries the fixtures skip, unless ``SHIKONG_REQUIRE_SERVICES``
is set (then they fail), as ``mosquitto`` does in conftest.py.

Use: ``from pg_cluster import pg_cluster, pg_database  # noqa: F401`` in a test module.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("SHIKONG_PG_BIN", "/usr/lib/postgresql/15/bin"))
TEMPLATE = "shikong_template"  # has the extensions; each test's database is a copy
EXTENSIONS = ("postgis",)


@dataclass(frozen=True)
class Cluster:
    """A running server: where to reach it."""

    host: str
    port: int

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user=postgres dbname={dbname}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL will not run as root: drop to the ``postgres`` user when we are root."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _missing(reason: str) -> None:
    if os.environ.get("SHIKONG_REQUIRE_SERVICES"):
        pytest.fail(f"{reason} and SHIKONG_REQUIRE_SERVICES is set")
    pytest.skip(reason)


def _sql(dsn: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        for statement in statements:
            db.execute(statement)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A PostgreSQL 15 server with PostGIS for the test session, stopped at its end."""
    if not (PG_BIN / "initdb").exists():
        _missing(f"PostgreSQL binaries not found in {PG_BIN} (apt-get install postgresql-15)")
    if not Path("/usr/share/postgresql/15/extension/postgis.control").exists():
        _missing("PostGIS is not installed (apt-get install postgresql-15-postgis-3)")
    pytest.importorskip("psycopg")
    # not under pytest's tmp_path: that is private to root, and the server runs as postgres
    folder = Path(tempfile.mkdtemp(prefix="shikong-pg-"))
    data, sockets, log = folder / "data", folder / "sockets", folder / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
    initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    subprocess.run(
        _as_postgres([*initdb, "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
        # a test cluster: durability is not what is tested, speed of CREATE DATABASE is
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log)]
    started = subprocess.run(
        _as_postgres([*ctl, "-o", options, "-w", "-t", "60", "start"]), capture_output=True
    )
    if started.returncode != 0:
        text = log.read_text() if log.exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {started.stderr.decode()} {text}")
    cluster = Cluster("127.0.0.1", port)
    try:
        # a language collation, as production databases have: text does not sort by code
        # point unless the code asks for it (COLLATE "C"), and tests notice when it does not
        _sql(
            cluster.dsn(),
            f"CREATE DATABASE {TEMPLATE} TEMPLATE template0 ENCODING 'UTF8' "
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
        )
        _sql(cluster.dsn(TEMPLATE), *(f"CREATE EXTENSION {e}" for e in EXTENSIONS))
        yield cluster
    finally:
        subprocess.run(_as_postgres([*ctl, "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_database(pg_cluster: Cluster) -> Iterator[str]:
    """The DSN of a fresh database with PostGIS, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    _sql(pg_cluster.dsn(), f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    try:
        yield pg_cluster.dsn(name)
    finally:
        with contextlib.suppress(Exception):  # a stuck connection must not fail the test
            _sql(pg_cluster.dsn(), f"DROP DATABASE {name} WITH (FORCE)")
