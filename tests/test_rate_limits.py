"""Rate limits shared by the nodes of a deployment (issue 21): Redis where configured,
PostgreSQL beside a PostgreSQL catalog, memory in one process.

Two bucket sets on one shared store stand for two nodes: a caller's burst is spent once
across both, not once per node. Over HTTP, two servers on one database answer 429 on the
second node once the first has taken the burst. A store that cannot be reached lets
requests through.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
from pg_cluster import pg_cluster, pg_database  # noqa: F401  (fixtures)
from shikong.server.rate_limits import LocalBuckets, PostgresBuckets, RedisBuckets

RATE, BURST = 0.001, 5  # one token per 1,000 s: nothing refills during a test


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free loopback port, keeping nothing on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("SHIKONG_REQUIRE_SERVICES"):
            pytest.fail("redis-server not found (apt-get install redis-server)")
        pytest.skip("redis-server not found")
    port = _free_port()
    folder = tempfile.mkdtemp(prefix="shikong-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", folder],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _nodes(kind: str, request, tmp_path):
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        return RedisBuckets(url, RATE, BURST), RedisBuckets(url, RATE, BURST)
    from shikong.catalog.postgres_store import PostgresCatalogStore
    from shikong.catalog.storage import DataDir

    dsn = request.getfixturevalue("pg_database")
    stores = [PostgresCatalogStore(dsn, DataDir(tmp_path / f"n{i}")) for i in range(2)]
    request.addfinalizer(lambda: [s.close() for s in stores])
    return tuple(PostgresBuckets(s, RATE, BURST) for s in stores)


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_two_nodes_share_one_burst_per_caller(kind, request, tmp_path):
    one, two = _nodes(kind, request, tmp_path)
    caller = f"key:{kind}-{time.time_ns()}"
    answers = [node.wait_needed(caller) for node in (one, two, one, two, one, two, one)]
    assert answers[:BURST] == [0.0] * BURST  # the burst, wherever the requests land
    assert all(w > 0 for w in answers[BURST:])  # then refused on both nodes
    assert 0 < answers[-1] <= 1 / RATE  # with the time until a token comes back
    assert one.wait_needed("key:someone-else") == 0.0  # buckets are per caller


def test_one_process_keeps_its_buckets_in_memory():
    local = LocalBuckets(RATE, BURST)
    assert [local.wait_needed("a") for _ in range(BURST)] == [0.0] * BURST
    assert local.wait_needed("a") > 0 and local.wait_needed("b") == 0.0


def test_an_unreachable_store_lets_requests_through(caplog):
    down = RedisBuckets(f"redis://127.0.0.1:{_free_port()}/0", RATE, 1)
    assert [down.wait_needed("a") for _ in range(3)] == [0.0] * 3
    assert sum("rate limits not enforced" in r.message for r in caplog.records) == 1


def test_over_http_the_second_node_refuses_once_the_first_took_the_burst(request, tmp_path):
    import geopandas as gpd
    from shapely.geometry import box
    from shikong.catalog import Catalog
    from shikong.server.app import create_app
    from starlette.testclient import TestClient

    dsn = request.getfixturevalue("pg_database")
    a, b = tmp_path / "a", tmp_path / "b"
    source = tmp_path / "wells.geojson"
    gpd.GeoDataFrame({"name": ["井"]}, geometry=[box(113.2, 33.7, 113.21, 33.71)],
                     crs=4490).to_file(source)  # fmt: skip
    Catalog.open(a, database=dsn).ingest(
        source, department="wat", layer="wells", classification="public"
    )
    for data in (a, b):  # a policy with a small burst, as the operator would write it
        data.mkdir(exist_ok=True)
        (data / "access_policy.yaml").write_text(
            "limits: {rate_per_second: 0.001, rate_burst: 3}\n", encoding="utf-8"
        )
    apps = [create_app(d, "http://testserver", watch=False, database=dsn) for d in (a, b)]
    who = ("10.9.8.7", 50000)  # the same anonymous caller on both nodes
    with TestClient(apps[0], client=who) as one, TestClient(apps[1], client=who) as two:
        codes = [c.get("/collections/wat-wells?f=json").status_code for c in (one, two, one, two)]
    assert codes == [200, 200, 200, 429]
