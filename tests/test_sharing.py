"""Sharing between departments over HTTP (issue 22): request, refusal, narrowed approval,
effect on two servers of one data directory at once, expiry by the clock, the audit chain.

Three departments with keys: hud asks, rer owns ``rer-parcels`` (restricted; the policy
file grants it to nrp and psb only), nrp is a bystander with its own admin. What each
answer must be is written here from the rule (DOMAIN.md) and the demo's files, not taken
from the code under test: the masked ID numbers are computed from the parquet asset.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import orjson
import pytest
from shikong.catalog import Catalog, sharing
from shikong.server.app import create_app
from shikong.server.identity import KeyStore
from starlette.testclient import TestClient

LAYER = "rer-parcels"


def shikong(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("shikong")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def masked_id(value: str) -> str:
    """DOMAIN.md: first six and last four characters kept, four stars between."""
    return value[:6] + "****" + value[-4:] if len(value) > 10 else "****"


@pytest.fixture(scope="module")
def data(demo_data, tmp_path_factory) -> Path:
    """A copy of the demo city: grants made here must not reach other tests' servers."""
    target = tmp_path_factory.mktemp("sharing") / "data"
    shutil.copytree(demo_data, target, ignore=shutil.ignore_patterns("audit", "*.log"))
    return target


@pytest.fixture(scope="module")
def keys(data) -> dict[str, dict[str, str]]:
    store = KeyStore(data)
    made = {}
    for name, department, role in [
        ("hud", "hud", "user"),
        ("hud_admin", "hud", "admin"),
        ("rer_admin", "rer", "admin"),
        ("rer_clerk", "rer", "user"),
        ("nrp_admin", "nrp", "admin"),
    ]:
        key, _ = store.create(department, f"{name}-person", role)
        made[name] = {"X-API-Key": key}
    return made


@pytest.fixture(scope="module")
def servers(data, keys):
    """Two servers of one data directory (two processes' worth of state, no watcher)."""
    a = create_app(data, "http://testserver", watch=False)
    b = create_app(data, "http://testserver", watch=False)
    with (
        TestClient(a, raise_server_exceptions=False) as one,
        TestClient(b, raise_server_exceptions=False) as two,
    ):
        yield one, two


@pytest.fixture(scope="module")
def id_numbers(data) -> list[str]:
    frame = gpd.read_parquet(Catalog.open(data)[LAYER].current.asset_path)
    return sorted(str(v) for v in frame["id_number"].dropna())


def audit_entries(data: Path) -> list[dict]:
    lines = (data / "audit" / "audit.jsonl").read_bytes().splitlines()
    return [orjson.loads(line) for line in lines if line.strip()]


def read_ids(client: TestClient, headers: dict) -> tuple[int, list[str]]:
    r = client.get(f"/collections/{LAYER}/items?f=json&limit=1000", headers=headers)
    if r.status_code != 200:
        return r.status_code, []
    return 200, sorted(str(f["properties"]["id_number"]) for f in r.json()["features"])


def test_the_whole_workflow(servers, keys, data, id_numbers, monkeypatch):
    one, two = servers
    today = datetime.now(UTC).date()
    asked_until = today + timedelta(days=60)
    granted_until = today + timedelta(days=30)

    # restricted: hud cannot read it, on either server
    assert read_ids(one, keys["hud"])[0] == 404
    assert read_ids(two, keys["hud"])[0] == 404

    # a request, then a refusal
    body = {"collection": LAYER, "rights": ["read", "personal-data"], "purpose": "住房保障资格核查"}
    first = one.post(
        "/sharing/requests", json={**body, "until": str(asked_until)}, headers=keys["hud"]
    )
    assert first.status_code == 201, first.text
    req = first.json()
    assert (req["state"], req["owner"], req["department"]) == ("requested", "rer", "hud")
    assert req["rights"] == ["read", "personal-data"] and req["until"] == str(asked_until)
    decision = f"/sharing/requests/{req['id']}/decision"
    approve = {"decision": "approve"}
    # only the owner department's admin decides: not the requester (even its admin); the
    # owner's plain users and other departments' admins do not even see the request
    assert one.post(decision, json=approve, headers=keys["hud"]).status_code == 403
    assert one.post(decision, json=approve, headers=keys["hud_admin"]).status_code == 403
    assert one.post(decision, json=approve, headers=keys["rer_clerk"]).status_code == 404
    assert one.post(decision, json=approve, headers=keys["nrp_admin"]).status_code == 404
    assert one.post(decision, json=approve).status_code == 404  # anonymous
    no_reason = one.post(decision, json={"decision": "refuse"}, headers=keys["rer_admin"])
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["description"]
    refused = one.post(
        decision, json={"decision": "refuse", "reason": "用途不明确"}, headers=keys["rer_admin"]
    )
    assert refused.status_code == 200, refused.text
    assert refused.json()["state"] == "refused" and refused.json()["reason"] == "用途不明确"
    again = one.post(decision, json=approve, headers=keys["rer_admin"])
    assert again.status_code == 409
    assert read_ids(one, keys["hud"])[0] == 404

    # a new request, approved narrowed: read only, an earlier end date
    second = two.post(
        "/sharing/requests", json={**body, "until": str(asked_until)}, headers=keys["hud"]
    )
    assert second.status_code == 201
    rid = second.json()["id"]
    decision = f"/sharing/requests/{rid}/decision"
    later = {"decision": "approve", "until": str(asked_until + timedelta(days=1))}
    assert two.post(decision, json=later, headers=keys["rer_admin"]).status_code == 400
    wider = {"decision": "approve", "rights": ["read", "write"]}
    wrong = two.post(decision, json=wider, headers=keys["rer_admin"])
    assert wrong.status_code == 400 and "write" in wrong.json()["description"]
    narrowed = two.post(
        decision,
        json={"decision": "approve", "rights": ["read"], "until": str(granted_until)},
        headers=keys["rer_admin"],
    )
    assert narrowed.status_code == 200, narrowed.text
    got = narrowed.json()
    assert got["state"] == "approved" and got["granted_rights"] == ["read"]
    assert (
        got["granted_until"] == str(granted_until) and got["decided_by"] == "rer/rer_admin-person"
    )

    # at once, on both servers (decided on the second; neither restarted): read, masked
    expected = sorted(masked_id(v) for v in id_numbers)
    for client in (one, two):
        status, seen = read_ids(client, keys["hud"])
        assert status == 200 and seen == expected
    # the requester sees the state of each of its requests; the bystander sees none
    states = {
        r["id"]: r["state"]
        for r in one.get("/sharing/requests", headers=keys["hud"]).json()["requests"]
    }
    assert states == {req["id"]: "refused", rid: "approved"}
    assert one.get("/sharing/requests", headers=keys["nrp_admin"]).json()["requests"] == []
    owner_view = one.get("/sharing/requests", headers=keys["rer_admin"]).json()["requests"]
    assert {r["id"] for r in owner_view} == {req["id"], rid}
    assert one.get(f"/sharing/requests/{rid}", headers=keys["nrp_admin"]).status_code == 404

    # the last day of the grant still reads; the moment after its end, nothing on either
    last_moment = datetime(
        granted_until.year, granted_until.month, granted_until.day, 23, 59, tzinfo=UTC
    )
    monkeypatch.setattr(sharing, "now", lambda: last_moment)
    assert read_ids(one, keys["hud"])[0] == 200
    after = last_moment + timedelta(minutes=1)
    monkeypatch.setattr(sharing, "now", lambda: after)
    assert read_ids(one, keys["hud"])[0] == 404
    assert read_ids(two, keys["hud"])[0] == 404
    assert one.get(f"/sharing/requests/{rid}", headers=keys["hud"]).json()["state"] == "expired"

    # every step in the chain, the expiry once though two servers noticed it
    entries = audit_entries(data)
    events = [
        (e["event"], e.get("request")) for e in entries if e.get("event", "").startswith("sharing.")
    ]
    assert events == [
        ("sharing.requested", req["id"]),
        ("sharing.refused", req["id"]),
        ("sharing.requested", rid),
        ("sharing.approved", rid),
        ("sharing.expired", rid),
    ]
    approved = next(e for e in entries if e.get("event") == "sharing.approved")
    assert approved["granted_rights"] == ["read"] and approved["department"] == "rer"
    reads = [
        e
        for e in entries
        if e.get("path") == f"/collections/{LAYER}/items" and e.get("department") == "hud"
    ]
    assert [e.get("grants") for e in reads if e["status"] == 200] == [[rid]] * 3
    assert all("grants" not in e for e in reads if e["status"] != 200)
    verified = shikong("audit", "verify", "--data", str(data))
    assert verified.returncode == 0, verified.stderr


def test_bad_requests_name_the_problem(servers, keys):
    one, _ = servers
    good = {"collection": LAYER, "rights": ["read"], "purpose": "核查", "until": "2999-12-31"}
    cases = [
        ({"collection": "rer-nothing"}, "rer-nothing"),
        ({"until": str(date.today() - timedelta(days=1))}, "past"),
        ({"until": "next week"}, "next week"),
        ({"rights": ["read", "delete"]}, "delete"),
        ({"rights": []}, "rights"),
        ({"purpose": " "}, "purpose"),
        ({"colour": "red"}, "colour"),
        ({"collection": "hud-buildings"}, "own department"),
    ]
    for change, named in cases:
        r = one.post("/sharing/requests", json={**good, **change}, headers=keys["hud"])
        assert r.status_code == 400, (change, r.text)
        assert named in r.json()["description"], (change, r.json())
    r = one.post("/sharing/requests", content=b"{not json", headers=keys["hud"])
    assert r.status_code == 400 and "JSON" in r.json()["description"]
    anonymous = one.post("/sharing/requests", json=good)
    assert anonymous.status_code == 403
    assert one.get("/sharing/requests").status_code == 403
    assert one.get("/sharing/requests/1").status_code == 404
    assert one.get("/sharing/requests/abc", headers=keys["hud"]).status_code == 404
    assert (
        one.post(
            "/sharing/requests/999/decision",
            json={"decision": "approve"},
            headers=keys["rer_admin"],
        ).status_code
        == 404
    )


def test_cli_steps_and_who_could_read(servers, keys, data):
    """``shikong sharing`` takes the same steps as HTTP; ``audit query --could-read`` names
    every department that could read the layer on a day and why."""
    eco_key, _ = KeyStore(data).create("eco", "eco-analyst")
    rer_admin = keys["rer_admin"]["X-API-Key"]
    today = datetime.now(UTC).date()
    until = today + timedelta(days=10)
    asked = shikong(
        "sharing", "request", LAYER, "--rights", "read,personal-data",
        "--purpose", "生态红线内权属核查", "--until", str(until),
        "--key", eco_key, "--data", str(data),
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    rid = orjson.loads(asked.stdout)["id"]
    refused = shikong(
        "sharing", "decide", str(rid), "approve", "--key", eco_key, "--data", str(data)
    )
    assert refused.returncode == 2 and "admin of the owner department rer" in refused.stderr
    bad = shikong(
        "sharing", "request", LAYER, "--rights", "fly", "--purpose", "x", "--until", str(until),
        "--key", eco_key, "--data", str(data),
    )  # fmt: skip
    assert bad.returncode == 2 and "'fly'" in bad.stderr
    approved = shikong(
        "sharing", "decide", str(rid), "approve", "--rights", "read", "--key", rer_admin,
        "--data", str(data),
    )  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    listed = shikong("sharing", "list", "--json", "--key", eco_key, "--data", str(data))
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["id"], r["state"], r["granted_rights"]) for r in rows] == [
        (rid, "approved", ["read"])
    ]
    # the server sees the CLI's decision at once
    one, _ = servers
    assert read_ids(one, {"X-API-Key": eco_key})[0] == 200

    def could_read(day: date) -> set[tuple[str, str, str]]:
        done = shikong(
            "audit", "query", "--could-read", LAYER, "--on", str(day), "--json", "--data", str(data)
        )
        assert done.returncode == 0, done.stderr
        rows = [orjson.loads(line) for line in done.stdout.splitlines()]
        return {(r["department"], ",".join(r["rights"]), r["grounds"]) for r in rows}

    # truth: rer owns the layer; config/access_policy.yaml grants nrp read, psb read and
    # personal-data; the first test approved hud (read, to today + 30), this one eco
    base = {
        ("rer", "read,write,personal-data", "owner"),
        ("nrp", "read", "policy"),
        ("psb", "read,personal-data", "policy"),
    }
    hud = next(
        r["id"] for r in one.get("/sharing/requests", headers=keys["hud"]).json()["requests"]
        if r["granted_rights"]
    )  # fmt: skip
    assert could_read(today) == base | {
        ("hud", "read", f"request {hud}"),
        ("eco", "read", f"request {rid}"),
    }
    assert could_read(today + timedelta(days=20)) == base | {("hud", "read", f"request {hud}")}
    assert could_read(today + timedelta(days=31)) == base
    assert could_read(today - timedelta(days=1)) == base
    verified = shikong("audit", "verify", "--data", str(data))
    assert verified.returncode == 0, verified.stderr


DEPARTMENTS = [
    "nrp", "rer", "hud", "tra", "wat", "eco", "agr", "frs", "ema", "met", "urb", "sta", "psb",
]  # fmt: skip
DIRECTORY_PATHS = [
    "/directory?f=json",
    "/directory/conformance?f=json",
    "/directory/collections?f=json",
    "/directory/collections/directory?f=json",
    "/directory/collections/directory/queryables?f=json",
    "/directory/collections/directory/items?f=json&limit=1000",
    "/directory/collections/directory/items/rer-parcels?f=json",
]


def test_new_routes_in_the_access_matrix(servers, data):
    """Every department sees the whole directory (metadata of every layer, the library's
    records exactly) and only its own requests; the public sees neither."""
    from shikong.catalog.directory import records
    from shikong.catalog.policy import Policy

    one, _ = servers
    catalog = Catalog.open(data)
    layer_ids = {layer.id for layer in catalog.collections()}
    library = records(catalog, Policy.load(data).personal_data)
    store = KeyStore(data)
    for department in DEPARTMENTS:
        key, _ = store.create(department, f"{department}-matrix")
        headers = {"X-API-Key": key}
        for path in DIRECTORY_PATHS:
            assert one.get(path, headers=headers).status_code == 200, (department, path)
        items = one.get(DIRECTORY_PATHS[5], headers=headers).json()
        assert {f["id"] for f in items["features"]} == layer_ids
        served = [{k: v for k, v in f.items() if k != "links"} for f in items["features"]]
        assert orjson.loads(orjson.dumps(library)) == served  # pygeoapi adds links only
        mine = one.get("/sharing/requests", headers=headers).json()["requests"]
        assert all(r["department"] == department for r in mine), department
    for path in DIRECTORY_PATHS:
        assert one.get(path).status_code == 404, path
    assert one.get("/sharing/requests").status_code == 403


def test_one_request_reads_the_grants_once(servers, keys):
    """A request makes several access checks (the gate's, the handler's); they share one
    reading of the store's version: one round trip, one view. (The audit entry names its
    grants on the audit writer's thread, off the request's path.)"""
    one, _ = servers
    store = one.app.state.server.grants.workflow.store
    reads = []
    original = store.version
    store.version = lambda: (
        (threading.current_thread().name != "audit" and reads.append(1)) or original()
    )
    try:
        r = one.get(f"/collections/{LAYER}/items?f=json&limit=5", headers=keys["rer_clerk"])
        assert r.status_code == 200 and len(r.json()["features"]) == 5
        assert len(reads) == 1
    finally:
        del store.version
