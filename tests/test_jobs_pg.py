"""Jobs on PostgreSQL (issue 21): with the catalog in a database, process jobs are kept
there too (server/jobs.py ``ShikongPostgresJobManager``), so a job started on one server
is followed, read and dismissed on another server on the same database (each with its
own data directory), and still only by its owner."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import shikong.catalog.layer as layer
import shikong.spatial.compute as compute
import shikong.spatial.raster as raster
import shikong.spatial.rasterjobs as rasterjobs
from pg_cluster import pg_cluster, pg_database  # noqa: F401
from shikong.server.identity import KeyStore
from starlette.testclient import TestClient

SHIKONG = Path(sys.executable).with_name("shikong")
ZONAL = {"inputs": {"raster": "nrp-dem", "zones": "nrp-landuse", "stats": ["count", "mean"]}}


@pytest.fixture
def nodes(demo_data, tmp_path, request) -> tuple[Path, Path, str, str]:
    """Two data directories (two nodes) on one migrated database; an nrp analyst's key,
    valid on both, and the DSN."""
    dsn = request.getfixturevalue("pg_database")
    key, _ = KeyStore(demo_data).create("nrp", "job-runner")
    roots = []
    for name in ("a", "b"):
        root = tmp_path / name
        shutil.copytree(demo_data, root, ignore=shutil.ignore_patterns("sources", "cache", "jobs"))
        roots.append(root)
    migrated = subprocess.run(
        [str(SHIKONG), "migrate", "--data", str(roots[0]), "--to", dsn],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrated.returncode == 0, migrated.stderr
    return roots[0], roots[1], key, dsn


def client(root: Path, dsn: str, key: str) -> TestClient:
    from shikong.server.app import create_app

    test = TestClient(create_app(root, "http://testserver", watch=False, database=dsn))
    test.headers["X-API-Key"] = key
    return test


def wait(client: TestClient, job: str, until=("successful", "failed", "dismissed")) -> dict:
    for _ in range(1200):
        status = client.get(f"/jobs/{job}?f=json").json()
        if status.get("status") in until:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job} did not reach {until}: {status}")


def test_a_job_started_on_one_node_is_read_on_another(nodes, monkeypatch):
    monkeypatch.setattr(compute, "get_client", lambda: None)  # the local scheduler
    a_root, b_root, key, dsn = nodes
    with client(a_root, dsn, key) as a, client(b_root, dsn, key) as b:
        reply = a.post("/processes/zonal-statistics/execution", json=ZONAL)
        assert reply.status_code == 201, reply.text
        job = reply.headers["location"].rsplit("/", 1)[-1]
        status = wait(b, job)  # followed on the other node
        assert status["status"] == "successful", status
        assert status["processID"] == "zonal-statistics"
        on_a = a.get(f"/jobs/{job}/results?f=json")
        on_b = b.get(f"/jobs/{job}/results?f=json")  # its file is on node a only
        assert on_a.status_code == on_b.status_code == 200, on_b.text
        assert on_b.json() == on_a.json() and on_b.json()
        assert job in {j["jobID"] for j in b.get("/jobs?f=json").json()["jobs"]}
        other = {"X-API-Key": KeyStore(b_root).create("nrp", "someone-else")[0]}
        assert b.get(f"/jobs/{job}?f=json", headers=other).status_code == 404
        assert job not in {j["jobID"] for j in b.get("/jobs?f=json", headers=other).json()["jobs"]}
        assert b.delete(f"/jobs/{job}").status_code == 200  # removed from the other node
        assert a.get(f"/jobs/{job}?f=json").status_code == 404
    assert not list((b_root / "jobs").glob("*zonal*"))  # node b ran nothing


def test_a_job_dismissed_on_another_node_stops(nodes, monkeypatch):
    calls = []
    real = rasterjobs._block_stats

    def slow(*args, **kwargs):
        calls.append(time.monotonic())
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(rasterjobs, "_block_stats", slow)
    monkeypatch.setattr(layer, "open_raster", functools.partial(raster.open_raster, chunks=128))
    monkeypatch.setattr(compute, "get_client", lambda: None)
    a_root, b_root, key, dsn = nodes
    with client(a_root, dsn, key) as a, client(b_root, dsn, key) as b:
        job = a.post("/processes/zonal-statistics/execution", json=ZONAL).headers["location"]
        job = job.rsplit("/", 1)[-1]
        for _ in range(600):
            status = b.get(f"/jobs/{job}?f=json").json()
            if status["status"] == "running" and status["progress"] > 5:
                break
            time.sleep(0.05)
        assert status["status"] == "running", status
        dismissed = b.delete(f"/jobs/{job}")
        assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
        time.sleep(2.0)  # node a's job notices at its next progress report
        after = len(calls)
        time.sleep(2.0)
        assert len(calls) == after  # no block task started after it stopped
        final = a.get(f"/jobs/{job}?f=json").json()
        assert final["status"] == "dismissed" and final["progress"] < 100


def test_a_job_of_a_stopped_node_is_failed(nodes, monkeypatch):
    """A job whose server process died (its heartbeat gone for the timeout) reads as
    failed on every node, saying why; a job of a live node stays running."""
    import psycopg
    from shikong.catalog.stores import configured_store

    monkeypatch.setenv("SHIKONG_JOB_NODE_TIMEOUT", "30")
    _, b_root, key, dsn = nodes
    with client(b_root, dsn, key) as b:
        jobs = b.get("/jobs?f=json")
        assert jobs.status_code == 200  # the manager made its tables and its heartbeat
        schema = configured_store(b_root).schema
        owner = b.get("/jobs?f=json").json()  # nothing yet
        assert owner["jobs"] == []
        with psycopg.connect(dsn, autocommit=True) as db:
            for job, node, seen in (
                ("dead-1", "gone:1:aaaa", "now() - interval '5 minutes'"),
                ("dead-2", "never-beat:2:bbbb", None),
                ("alive-1", "alive:3:cccc", "now()"),
            ):
                db.execute(
                    f"INSERT INTO {schema}.jobs (identifier, process_id, created, started, "
                    "updated, status, progress, owner, node) VALUES (%s, 'zonal-statistics', "
                    "'2026-12-06T08:00:00.000000Z', '2026-12-06T08:00:00.000000Z', "
                    "'2026-12-06T08:00:01.000000Z', 'running', 40, %s, %s)",
                    (job, "nrp/job-runner", node),
                )
                if seen:
                    db.execute(f"INSERT INTO {schema}.job_nodes VALUES (%s, {seen})", (node,))
        listed = {j["jobID"]: j for j in b.get("/jobs?f=json").json()["jobs"]}
        assert set(listed) == {"dead-1", "dead-2", "alive-1"}, listed
        for job in ("dead-1", "dead-2"):
            assert listed[job]["status"] == "failed"
            assert "stopped" in listed[job]["message"] and "30 s" in listed[job]["message"]
        assert listed["alive-1"]["status"] == "running"
        assert b.get("/jobs/dead-1?f=json").json()["status"] == "failed"
