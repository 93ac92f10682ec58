"""Long jobs: progress in the job status, and cancellation by DELETE /jobs/{id}.

The zonal-statistics job runs in process on the local dask scheduler, with each block
task slowed down, so the test can watch it run and stop it part-way.
"""

from __future__ import annotations

import functools
import shutil
import time

import pytest
import shikong.catalog.layer as layer
import shikong.spatial.compute as compute
import shikong.spatial.raster as raster
import shikong.spatial.rasterjobs as rasterjobs
from shikong.server.app import create_app
from shikong.server.identity import KeyStore
from starlette.testclient import TestClient

JOB = {"inputs": {"raster": "nrp-dem", "zones": "nrp-landuse", "stats": ["count", "mean"]}}


@pytest.fixture
def slow_blocks(monkeypatch):
    calls = []
    real = rasterjobs._block_stats

    def slow(*args, **kwargs):
        calls.append(time.monotonic())
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(rasterjobs, "_block_stats", slow)
    small = functools.partial(raster.open_raster, chunks=128)  # many block tasks
    monkeypatch.setattr(layer, "open_raster", small)
    monkeypatch.setattr(compute, "get_client", lambda: None)  # the local scheduler
    return calls


@pytest.fixture
def client(demo_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    key, _ = KeyStore(data).create("nrp", "analyst")
    with TestClient(create_app(data, "http://testserver", watch=False)) as c:
        c.headers["X-API-Key"] = key
        yield c


def start(client) -> str:
    reply = client.post("/processes/zonal-statistics/execution", json=JOB)
    assert reply.status_code == 201, reply.text
    return reply.headers["location"].rsplit("/", 1)[-1]


def test_progress_percent_grows_in_the_job_status(client, slow_blocks):
    job = start(client)
    seen, messages = [], set()
    for _ in range(1200):
        status = client.get(f"/jobs/{job}?f=json").json()
        seen.append(status["progress"])
        messages.add(status.get("message", ""))
        if status["status"] in ("successful", "failed"):
            break
        time.sleep(0.05)
    assert status["status"] == "successful", status
    middle = [p for p in seen if 5 < p < 100]
    assert len(set(middle)) >= 2, seen  # distinct percentages while running
    assert middle == sorted(middle)
    assert any("block tasks" in m for m in messages), messages


def test_a_running_job_is_cancelled_by_its_owner(client, slow_blocks):
    job = start(client)
    for _ in range(600):
        status = client.get(f"/jobs/{job}?f=json").json()
        if status["status"] == "running" and status["progress"] > 5:
            break
        time.sleep(0.05)
    assert status["status"] == "running", status
    dismissed = client.delete(f"/jobs/{job}")
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    time.sleep(2.0)  # the job notices at its next progress report
    calls_after = len(slow_blocks)
    time.sleep(2.0)
    assert len(slow_blocks) == calls_after  # no block task started after it stopped
    final = client.get(f"/jobs/{job}?f=json").json()
    assert final["status"] == "dismissed" and final["progress"] < 100
    results = client.get(f"/jobs/{job}/results?f=json")
    assert results.status_code != 200 or "rows" not in results.text, results.text


def wait(client, job: str, headers=None) -> dict:
    for _ in range(1200):
        status = client.get(f"/jobs/{job}?f=json", headers=headers).json()
        if status["status"] in ("successful", "failed", "dismissed"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job} did not finish: {status}")


def test_mine_remediation_writes_back_only_for_a_caller_who_may_write(
    client, demo_data, monkeypatch
):
    from shikong.catalog import Catalog

    monkeypatch.setattr(compute, "get_client", lambda: None)
    data = client.app.state.server.catalog.paths.root
    wat = {"X-API-Key": KeyStore(data).create("wat", "hydrologist")[0]}
    before = {layer.id for layer in Catalog.open(data).collections()}
    reply = client.post(
        "/processes/mine-remediation-assessment/execution", json={"inputs": {}}, headers=wat
    )
    job = reply.headers["location"].rsplit("/", 1)[-1]
    assert wait(client, job, wat)["status"] == "successful"
    report = client.get(f"/jobs/{job}/results?f=json", headers=wat).json()
    assert report["derived"] is None and "write grant" in report["derived_note"]
    assert {layer.id for layer in Catalog.open(data).collections()} == before
    reply = client.post("/processes/mine-remediation-assessment/execution", json={"inputs": {}})
    job = reply.headers["location"].rsplit("/", 1)[-1]
    assert wait(client, job)["status"] == "successful"
    report = client.get(f"/jobs/{job}/results?f=json").json()
    assert report["derived"]
    assert {layer.id for layer in Catalog.open(data).collections()} - before
