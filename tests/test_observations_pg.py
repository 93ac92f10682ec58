"""Readings in PostgreSQL (issue 21), beyond the contract every backend passes
(tests/test_observation_contract.py): a process killed with SIGKILL during a COPY batch
or just before its commit leaves nothing of that batch; readings land in the monthly
partition of their time; ``shikong migrate`` moves the demo city's readings (equal to
the SQLite store's, alerts included; a second run does nothing); a server on the
database takes readings over HTTP and another server on it serves them through EDR."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from pg_cluster import pg_cluster, pg_database  # noqa: F401
from shikong.catalog.observations import ObservationStore, SensorSpec
from shikong.catalog.observations_pg import PostgresObservationStore
from starlette.testclient import TestClient


@pytest.fixture
def dsn(request) -> str:
    """A fresh database (``pg_cluster.pg_database``)."""
    return request.getfixturevalue("pg_database")


SHIKONG = Path(sys.executable).with_name("shikong")
LAYER = "wat-gauges"
SENSORS = {f"G{i}": SensorSpec(f"G{i}", -1e6, 1e6) for i in range(50)}
NOW = pd.Timestamp("2026-07-01T00:00:00Z")
WATER = "wat-water_level_sensors"
SENSOR = "WAT-WL-001"  # of the demo city: valid 146.57..159.57 m, warning level 152.07 m


def batch(first_minute: int, n: int) -> pd.DataFrame:
    """``n`` readings, one a minute per sensor from ``first_minute`` on, every sensor."""
    minutes = np.arange(first_minute, first_minute + n // len(SENSORS))
    t = pd.Timestamp("2026-06-01", tz="UTC") + pd.to_timedelta(np.repeat(minutes, 50), "min")
    return pd.DataFrame(
        {
            "sensor_id": np.tile(list(SENSORS), len(minutes)),
            "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "value": np.arange(len(t), dtype=float),
        }
    )


def _append_then_die(dsn: str, point: str) -> None:
    """Commit one batch, then die (SIGKILL, ``SHIKONG_FAULT``) inside the next one."""
    store = PostgresObservationStore(dsn)
    store.append(LAYER, batch(0, 5000), SENSORS, now=NOW)
    os.environ["SHIKONG_FAULT"] = point
    store.append(LAYER, batch(100, 100_000), SENSORS, now=NOW)  # 3.4 MB of COPY data


@pytest.mark.parametrize("point", ["readings-mid-copy", "readings-before-commit"])
def test_a_process_killed_in_a_batch_leaves_nothing_of_it(dsn, point):
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_append_then_die, args=(dsn, point))
    child.start()
    child.join(120)
    assert child.exitcode == -9  # killed, not finished
    store = PostgresObservationStore(dsn)
    first = batch(0, 5000)
    stored = store.window(LAYER)
    assert len(stored) == len(first) and store.extent(LAYER)[2] == len(first)
    newest = pd.Timestamp("2026-06-01", tz="UTC") + pd.Timedelta(minutes=99)
    assert (store.latest(LAYER).time == newest).all() and len(store.latest(LAYER)) == 50
    # the killed batch's rows and locks are gone: it can be sent again, whole
    result = store.append(LAYER, batch(100, 100_000), SENSORS, now=NOW)
    assert (result.accepted, result.duplicates) == (100_000, 0)
    with psycopg.connect(dsn) as db:
        left = db.execute("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in%'")
        assert left.fetchone()[0] == 0
    store.close()


def test_readings_land_in_the_partition_of_their_month(dsn):
    store = PostgresObservationStore(dsn)
    times = ["1987-05-04T01:00:00Z", "2026-01-31T23:59:59.999Z", "2026-02-01T00:00:00Z"]
    times += ["2026-03-15T08:00:00Z", "1999-12-31T23:59:59Z", "2000-01-01T00:00:00Z"]
    frame = pd.DataFrame({"sensor_id": "G1", "time": times, "value": 1.0})
    assert store.append(LAYER, frame, SENSORS, now=NOW).accepted == len(times)
    with psycopg.connect(dsn) as db:
        placed = db.execute(
            "SELECT tableoid::regclass::text, count(*) FROM shikong.obs_points GROUP BY 1"
        ).fetchall()
        bounds = db.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'shikong.obs_points'::regclass"
        ).fetchall()
    assert dict(placed) == {
        "shikong.obs_points_before": 2,
        "shikong.obs_points_y2000m01": 1,
        "shikong.obs_points_y2026m01": 1,
        "shikong.obs_points_y2026m02": 1,
        "shikong.obs_points_y2026m03": 1,
    }
    bound = dict(bounds)["obs_points_y2026m02"]
    assert "2026-02-01" in bound and "2026-03-01" in bound
    # another store (another process) finds the partitions there and reuses them
    again = PostgresObservationStore(dsn)
    more = frame.assign(time=["2026-02-11T00:00:00Z"] * len(times), sensor_id=list(SENSORS)[:6])
    assert again.append(LAYER, more, SENSORS, now=NOW).accepted == len(times)
    store.close()
    again.close()


def shikong(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(SHIKONG), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_migrate_moves_the_readings_and_twice_is_a_no_op(demo_data, dsn, tmp_path):
    city = tmp_path / "city"
    shutil.copytree(demo_data, city, ignore=shutil.ignore_patterns("sources", "cache", "jobs"))
    source = ObservationStore(city / "observations.sqlite")
    layers = source.layers()
    truth = {layer: source.window(layer) for layer in layers}
    alerts = source.alerts(limit=100_000)
    source.close()
    total = sum(len(t) for t in truth.values())
    assert total > 0
    first = shikong("migrate", "--data", str(city), "--to", dsn)
    assert first.returncode == 0, first.stderr
    assert f"migrated {total:,} readings of {len(layers)} sensor layers" in first.stdout
    target = PostgresObservationStore(dsn)
    assert target.layers() == layers
    for layer in layers:
        pd.testing.assert_frame_equal(target.window(layer), truth[layer])
    moved = target.alerts(limit=100_000)
    columns = ["rule", "layer", "sensor_id", "parameter", "time", "value", "threshold"]
    pd.testing.assert_frame_equal(moved[columns], alerts[columns])
    second = shikong("migrate", "--data", str(city), "--to", dsn)
    assert second.returncode == 0, second.stderr
    assert f"readings already migrated: {total:,} readings" in second.stdout
    assert sum(len(target.window(layer)) for layer in layers) == total
    assert len(target.alerts(limit=100_000)) == len(alerts)
    target.close()


def test_a_reading_posted_to_one_server_is_served_by_another(demo_data, tester_key, dsn, tmp_path):
    from shikong.server.app import create_app

    nodes = []
    for name in ("a", "b"):
        city = tmp_path / name
        shutil.copytree(demo_data, city, ignore=shutil.ignore_patterns("sources", "cache"))
        if name == "a":
            assert shikong("migrate", "--data", str(city), "--to", dsn).returncode == 0
        for local in city.glob("observations*.sqlite"):
            local.unlink()  # nothing can be read or written there any more
        nodes.append(city)
    headers = {"X-API-Key": tester_key}
    at = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=1)).floor("s")
    rows = [
        {
            "sensor_id": SENSOR,
            "time": (at + pd.Timedelta(seconds=i)).isoformat(),
            "value": 150.0 + i,
        }
        for i in range(5)
    ]
    app_a = create_app(nodes[0], "http://testserver", watch=False, database=dsn)
    with TestClient(app_a) as client:
        posted = client.post("/readings", json=rows, headers=headers)
        assert posted.status_code == 200, posted.text
        assert posted.json()["accepted"] == 5
        again = client.post("/readings", json=rows, headers=headers)
        assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 5)
    app_b = create_app(nodes[1], "http://testserver", watch=False, database=dsn)
    with TestClient(app_b) as client:
        twice = client.post("/readings", json=rows, headers=headers)  # the other node
        assert (twice.json()["accepted"], twice.json()["duplicates"]) == (0, 5)
        edr = client.get(
            f"/collections/{WATER}/locations/{SENSOR}",
            params={"datetime": f"{at.isoformat()}/..", "f": "json"},
            headers=headers,
        )
        assert edr.status_code == 200, edr.text
        assert edr.json()["ranges"]["value"]["values"] == [150.0 + i for i in range(5)]
        latest = client.get(
            "/readings/latest", params={"layer": WATER, "sensors": SENSOR}, headers=headers
        ).json()
        assert latest["readings"][0]["value"] == 154.0
    for city in nodes:
        assert not list(city.glob("observations*.sqlite"))


def test_edr_and_readings_answer_over_postgresql_as_over_sqlite(
    demo_data, tester_key, dsn, tmp_path
):
    """The same requests to a server over the embedded readings and to one over their
    migrated copy in PostgreSQL (its SQLite files gone) get the same answers."""
    from shikong.server.app import create_app

    city = tmp_path / "city"
    shutil.copytree(demo_data, city, ignore=shutil.ignore_patterns("sources", "cache", "jobs"))
    assert shikong("migrate", "--data", str(city), "--to", dsn).returncode == 0
    for local in city.glob("observations*.sqlite*"):
        local.unlink()
    store = ObservationStore(demo_data / "observations.sqlite")
    first, last, _ = store.extent(WATER)
    store.close()
    z = "%Y-%m-%dT%H:%M:%SZ"  # (a "+" in a query string is a space)
    day = f"{(last - pd.Timedelta('1D')).strftime(z)}/{last.strftime(z)}"
    base = f"/collections/{WATER}"
    paths = [
        f"{base}/cube?bbox=113.0,33.6,113.6,34.0&datetime={first.strftime(z)}/..&f=json",
        f"{base}/area?coords=POLYGON((113 33.6,113.2 33.6,113.2 34,113 34,113 33.6))&f=json",
        f"{base}/radius?coords=POINT(113.3 33.7)&within=20&within-units=km&datetime={day}",
        f"{base}/locations/{SENSOR}?datetime={day}&f=json",
        f"{base}/locations/{SENSOR}?f=GeoJSON",
        f"/readings/latest?layer={WATER}",
        f"/readings/resample?layer={WATER}&freq=1D&how=max",
        f"/readings/resample?layer={WATER}&sensors={SENSOR}&freq=1h",
        "/readings/alerts",
    ]
    headers = {"X-API-Key": tester_key}

    def answers(app) -> list:
        with TestClient(app) as client:
            out = []
            for path in paths:
                response = client.get(path, headers=headers)
                assert response.status_code == 200, (path, response.text)
                out.append(response.json())
            return out

    embedded = answers(create_app(demo_data, "http://testserver", watch=False))
    cloud = answers(create_app(city, "http://testserver", watch=False, database=dsn))
    for path, ours, theirs in zip(paths, cloud, embedded, strict=True):
        assert ours == theirs, path
    assert any(embedded[0]["coverages"]) and embedded[5]["readings"]
    assert not list(city.glob("observations*.sqlite"))


def test_a_readings_file_ingested_into_a_postgresql_catalog_goes_to_its_readings(
    demo_data, dsn, tmp_path
):
    from shikong.catalog import Catalog

    city = tmp_path / "city"
    shutil.copytree(demo_data, city, ignore=shutil.ignore_patterns("sources", "cache", "jobs"))
    assert shikong("migrate", "--data", str(city), "--to", dsn).returncode == 0
    for local in city.glob("observations*.sqlite*"):
        local.unlink()
    times = pd.date_range("2026-12-01T00:00Z", periods=6, freq="10min")
    source = tmp_path / "levels.csv"
    rows = pd.DataFrame(
        {"sensor_id": SENSOR, "time": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": 150.5}
    )
    rows.to_csv(source, index=False)
    catalog = Catalog.open(city, database=dsn)
    before = catalog.observations.extent(WATER)[2]
    result = catalog.ingest(
        source,
        department="wat",
        layer="water_level_readings",
        kind="readings",
        sensor_layer="water_level_sensors",
    )
    assert result.readings.accepted == len(rows)
    item = catalog.store.item("wat-water_level_readings-live")
    assert item["properties"]["shikong:reading_count"] == before + len(rows)
    assert not any(".sqlite" in a["href"] for a in item["assets"].values())
    stored = PostgresObservationStore(dsn).window(WATER, [SENSOR], times[0], times[-1])
    assert stored.time.tolist() == list(times) and (stored.value == 150.5).all()
    assert not list(city.glob("observations*.sqlite"))


def test_two_nodes_take_readings_and_one_killed_loses_nothing_acknowledged(
    demo_data, tester_key, dsn, tmp_path, monkeypatch
):
    """Two ``shikong serve`` nodes on one database take HTTP batches (some sent to both);
    node A is killed with SIGKILL while batches are in flight: node B keeps taking and
    serving them, every acknowledged reading is stored once, nothing else is."""
    import signal
    import threading

    import httpx
    from conftest import RunningServer, free_port

    roots = []
    for name in ("a", "b"):
        root = tmp_path / name
        shutil.copytree(demo_data, root, ignore=shutil.ignore_patterns("sources", "cache", "jobs"))
        roots.append(root)
    assert shikong("migrate", "--data", str(roots[0]), "--to", dsn).returncode == 0
    for root in roots:
        for local in root.glob("observations*.sqlite*"):
            local.unlink()
    monkeypatch.setenv("SHIKONG_DATABASE", dsn)
    start = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=2)).floor("s")

    def times_of(k: int) -> pd.DatetimeIndex:
        """The times of batch k: 100 readings 10 ms apart, after those of batch k - 1."""
        return start + pd.to_timedelta(np.arange(k * 100, k * 100 + 100) * 10, "ms")

    def readings(k: int) -> list[dict]:
        return [
            {"sensor_id": SENSOR, "time": t.isoformat(), "value": 150.0 + (i % 10) / 10}
            for i, t in enumerate(times_of(k))
        ]

    headers = {"X-API-Key": tester_key}
    acknowledged: dict[str, list[tuple[int, dict]]] = {"a": [], "b": []}
    sent: set[int] = set()
    node_a, node_b = RunningServer(roots[0], free_port()), RunningServer(roots[1], free_port())
    stop = threading.Event()

    def post(name: str, url: str, batches) -> None:
        with httpx.Client(headers=headers, timeout=30) as client:
            for k in batches:
                if stop.is_set():
                    return
                sent.add(k)
                try:
                    reply = client.post(f"{url}/readings", json=readings(k))
                except httpx.HTTPError:  # the node died under it
                    return
                if reply.status_code == 200:
                    acknowledged[name].append((k, reply.json()))

    try:
        # A sends the even batches, B the odd ones and every fourth one of A's as well
        a = threading.Thread(target=post, args=("a", node_a.url, range(0, 400, 2)))
        b_batches = [k for k in range(400) if k % 2 or k % 4 == 0]
        b = threading.Thread(target=post, args=("b", node_b.url, b_batches))
        a.start()
        b.start()
        deadline = time.monotonic() + 60
        while len(acknowledged["a"]) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(acknowledged["a"]) >= 20
        os.kill(node_a.proc.pid, signal.SIGKILL)  # batches in flight
        node_a.proc.wait(10)
        a.join(30)
        time.sleep(1.0)  # B goes on meanwhile
        stop.set()
        b.join(60)
        assert acknowledged["b"] and len(acknowledged["b"]) > len(acknowledged["a"])
        latest = httpx.get(
            f"{node_b.url}/readings/latest",
            params={"layer": WATER, "sensors": SENSOR},
            headers=headers,
        )
        assert latest.status_code == 200  # node B still serves
    finally:
        stop.set()
        for server in (node_a, node_b):
            if server.proc.poll() is None:
                server.stop()
            server.log.close()
    store = PostgresObservationStore(dsn)
    stored = store.window(WATER, [SENSOR], start, start + pd.Timedelta(hours=1))
    store.close()
    got = set(stored.time)
    assert len(got) == len(stored)  # once each
    done = {k for name in acknowledged for k, _ in acknowledged[name]}
    want = {t for k in done for t in times_of(k)}
    assert want <= got  # nothing acknowledged is lost
    could = {t for k in sent for t in times_of(k)}
    assert got <= could  # and nothing else is there
    per_batch = len(times_of(0))
    assert len(got) % per_batch == 0  # whole batches only
    accepted = sum(r["accepted"] for name in acknowledged for _, r in acknowledged[name])
    assert accepted <= len(got)
    for name in acknowledged:
        for _, reply in acknowledged[name]:
            assert reply["accepted"] + reply["duplicates"] == per_batch


def test_a_month_taken_out_comes_back_when_its_readings_are_sent_again(dsn):
    store = PostgresObservationStore(dsn)
    march = pd.DataFrame(
        {"sensor_id": ["G1", "G2"], "time": ["2026-03-05T00:00:00Z"] * 2, "value": 1.0}
    )
    assert store.append(LAYER, march, SENSORS, now=NOW).accepted == 2
    with psycopg.connect(dsn, autocommit=True) as db:  # an operator archives March
        db.execute("ALTER TABLE shikong.obs_points DETACH PARTITION shikong.obs_points_y2026m03")
    assert store.window(LAYER).empty and len(store.latest(LAYER)) == 2
    again = store.append(LAYER, march, SENSORS, now=NOW)  # this process knew the partition
    assert (again.accepted, again.duplicates) == (2, 0)
    assert len(store.window(LAYER)) == 2
    store.close()
