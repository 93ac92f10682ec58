"""Two `shikong serve` nodes of one cloud deployment (issue 21, point 3 and its acceptance).

Real services: a PostgreSQL cluster (tests/pg_cluster.py), SeaweedFS for S3
(tests/s3_server.py), Mosquitto; two server processes, each on its own empty local folder,
no file shared. The demo city is migrated into the database and the bucket first. Then:
a layer ingested beside node A is served by node B within 2 s; a job started on A is read
on B; a key made beside A works on B and, revoked beside B, is refused by A at once;
readings posted to both nodes (overlapping) are stored once; both nodes' requests make
one audit chain that verifies. Last, node A is killed with SIGKILL in the middle of HTTP
readings batches and an ingest is killed half-way: node B keeps serving, every batch A
acknowledged is stored, and the catalog stays whole.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import RunningServer, free_port
from pg_cluster import pg_cluster, pg_database  # noqa: F401  (fixtures)
from s3_server import s3_assets, s3_bucket, s3_server  # noqa: F401  (fixtures)
from shapely.geometry import box

SHIKONG = Path(sys.executable).with_name("shikong")
WATER, SENSOR = "wat-water_level_sensors", "WAT-WL-001"  # valid 146.57..159.57 m
JOB = {"inputs": {"raster": "nrp-dem", "zones": "nrp-landuse", "stats": ["count", "mean"]}}


def shikong(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(SHIKONG), *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def wait_for(check, seconds: float = 10.0, step: float = 0.02):
    """The first truthy answer of ``check()`` within ``seconds`` (else the last one)."""
    deadline = time.monotonic() + seconds
    found = check()
    while not found and time.monotonic() < deadline:
        time.sleep(step)
        found = check()
    return found


def stored(dsn: str, times: list[pd.Timestamp]) -> int:
    """How many of these readings of the test sensor the database holds."""
    with psycopg.connect(dsn) as db:
        return db.execute(
            "SELECT count(*) FROM shikong.obs_points p JOIN shikong.obs_series s "
            "ON s.id = p.series WHERE s.layer=%s AND s.sensor=%s AND p.time = ANY(%s)",
            (WATER, SENSOR, [t.to_pydatetime() for t in times]),
        ).fetchone()[0]


def readings(first: pd.Timestamp, n: int, step_ms: int = 10) -> list[dict]:
    return [
        {
            "sensor_id": SENSOR,
            "time": (first + pd.Timedelta(milliseconds=step_ms * i)).isoformat(),
            "value": 150.0 + (i % 50) / 10,
        }
        for i in range(n)
    ]


@pytest.fixture
def cloud(demo_data, pg_database, s3_assets, mosquitto, tmp_path, monkeypatch):  # noqa: F811
    """The demo city migrated into PostgreSQL and S3, and two nodes serving it."""
    city = tmp_path / "city"
    shutil.copytree(demo_data, city, ignore=shutil.ignore_patterns("sources", "cache", "jobs"))
    moved = shikong("migrate", "--data", str(city), "--to", pg_database, "--assets", s3_assets)
    assert moved.returncode == 0, moved.stderr
    monkeypatch.setenv("SHIKONG_DATABASE", pg_database)
    monkeypatch.setenv("SHIKONG_ASSETS", s3_assets)
    broker = mosquitto
    nodes = []
    for name in ("node-a", "node-b"):
        (tmp_path / name).mkdir()
        nodes.append(RunningServer(tmp_path / name / "data", free_port(), mqtt=broker))
    yield {"dsn": pg_database, "nodes": nodes, "tmp": tmp_path}
    for node in nodes:
        if node.proc.poll() is None:
            node.stop()


def test_two_nodes_serve_one_deployment_and_outlive_a_killed_one(cloud, tester_key):
    dsn, (a, b), tmp = cloud["dsn"], cloud["nodes"], cloud["tmp"]
    tester = {"X-API-Key": tester_key}
    for node in (a, b):  # neither node keeps a catalog, readings, keys or audit of its own
        got = httpx.get(f"{node.url}/collections/nrp-landuse/items?limit=1&f=json", headers=tester)
        assert got.status_code == 200, got.text

    # 1. a layer ingested beside node A is served by node B within 2 s
    source = tmp / "wells.geojson"
    wells = [box(113.20, 33.70, 113.21, 33.71), box(113.30, 33.70, 113.31, 33.71)]
    gpd.GeoDataFrame({"name": ["东井", "西井"]}, crs=4490, geometry=wells).to_file(source)
    ingest = shikong("ingest", str(source), "-d", "wat", "-l", "wells", "--classification",
                     "public", "--data", str(a.data))  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    done = time.monotonic()
    url = f"{b.url}/collections/wat-wells/items?f=json"
    answer = wait_for(lambda: (r := httpx.get(url)).status_code == 200 and r, seconds=10)
    assert answer and time.monotonic() - done <= 2.0 + 0.5  # one poll step of slack
    assert sorted(f["properties"]["name"] for f in answer.json()["features"]) == ["东井", "西井"]

    # 2. a job started on node A is read on node B
    started = httpx.post(f"{a.url}/processes/zonal-statistics/execution", json=JOB,
                         headers={**tester, "Prefer": "respond-async"}, timeout=60)  # fmt: skip
    assert started.status_code == 201, started.text
    job = started.headers["location"].rstrip("/").rsplit("/", 1)[1]
    status = wait_for(
        lambda: (s := httpx.get(f"{b.url}/jobs/{job}?f=json", headers=tester).json())
        and s.get("status") in ("successful", "failed") and s,
        seconds=120, step=0.5,
    )  # fmt: skip
    assert status and status["status"] == "successful", status

    # 3. a key made beside A works on B; revoked beside B, A refuses it at once
    made = shikong("keys", "create", "--department", "wat", "--user", "gauge", "--data",
                   str(a.data))  # fmt: skip
    key = next(w for w in made.stdout.split() if w.startswith("sk_"))
    items = "/collections/wat-water_level_sensors/items?limit=1&f=json"
    assert httpx.get(b.url + items, headers={"X-API-Key": key}).status_code == 200
    assert shikong("keys", "revoke", key.split("_")[1], "--data", str(b.data)).returncode == 0
    assert httpx.get(a.url + items, headers={"X-API-Key": key}).status_code == 401

    # 4. readings posted to both nodes, overlapping, are stored once
    first = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)).floor("s")
    rows = readings(first, 100)
    one = httpx.post(f"{a.url}/readings", json=rows[:60], headers=tester).json()
    two = httpx.post(f"{b.url}/readings", json=rows[40:], headers=tester).json()
    assert (one["accepted"], two["accepted"], two["duplicates"]) == (60, 40, 20)
    assert stored(dsn, [pd.Timestamp(r["time"]) for r in rows]) == 100

    # 5. node A is killed in the middle of readings batches: what it acknowledged stays
    acknowledged: list[pd.Timestamp] = []
    batches = [readings(first + pd.Timedelta(minutes=10 + k), 200, step_ms=100) for k in range(400)]

    def post_batches() -> None:
        with httpx.Client(timeout=30) as client:
            for batch in batches:
                try:
                    reply = client.post(f"{a.url}/readings", json=batch, headers=tester)
                except httpx.HTTPError:
                    return  # the node is gone
                if reply.status_code == 200 and reply.json()["accepted"] == len(batch):
                    acknowledged.extend(pd.Timestamp(r["time"]) for r in batch)

    poster = threading.Thread(target=post_batches)
    poster.start()
    assert wait_for(lambda: len(acknowledged) >= 1000, seconds=60)
    os.kill(a.proc.pid, signal.SIGKILL)
    poster.join(60)
    assert a.proc.wait(10) == -signal.SIGKILL
    assert 1000 <= len(acknowledged) < 200 * len(batches)
    assert stored(dsn, acknowledged) == len(acknowledged)  # nothing acknowledged was lost
    assert httpx.get(f"{b.url}/collections/wat-wells/items?f=json").status_code == 200

    # 6. an ingest killed half-way leaves the catalog whole: B serves, the layer is absent
    big = tmp / "parcels.parquet"
    rng = np.random.default_rng(1)
    x, y = rng.uniform(113.1, 113.5, 200_000), rng.uniform(33.6, 33.9, 200_000)
    gpd.GeoDataFrame({"n": np.arange(x.size)}, crs=4490,
                     geometry=gpd.points_from_xy(x, y)).to_parquet(big)  # fmt: skip
    killed = subprocess.Popen(
        [str(SHIKONG), "ingest", str(big), "-d", "urb", "-l", "points", "--data", str(b.data)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.5)
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)
    after = httpx.get(f"{b.url}/collections?f=json", headers=tester)
    assert after.status_code == 200
    ids = {c["id"] for c in after.json()["collections"]}
    if "urb-points" in ids:  # the commit made it before the kill: then it is whole
        got = httpx.get(f"{b.url}/collections/urb-points/items?limit=1&f=json", headers=tester)
        assert got.json()["numberMatched"] == 200_000
    valid = shikong("catalog", "validate", "--data", str(b.data))
    assert valid.returncode == 0, valid.stdout + valid.stderr

    # the audit chain of both nodes is one, and verifies
    verified = shikong("audit", "verify", "--data", str(b.data))
    assert verified.returncode == 0, verified.stdout + verified.stderr
