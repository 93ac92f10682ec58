"""The catalog on PostgreSQL by configuration alone (issue 21): ``shikong migrate`` copies
the demo city's embedded catalog item for item (checked against the STAC JSON files the
SQLite store wrote, read here from disk), the server over the PostgreSQL store answers
as over SQLite with the SQLite index gone, two ``shikong serve`` nodes on one database
see each other's ingests through LISTEN/NOTIFY, and a bad DSN is one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import httpx
import orjson
import psycopg
import pytest
from conftest import RunningServer, free_port
from pg_cluster import pg_cluster, pg_database  # noqa: F401
from shapely.geometry import box
from starlette.testclient import TestClient

SHIKONG = Path(sys.executable).with_name("shikong")
BBOX = "113.25,33.74,113.35,33.82"


@pytest.fixture
def dsn(request) -> str:
    """A fresh database with PostGIS (``pg_cluster.pg_database``)."""
    return request.getfixturevalue("pg_database")


def shikong(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [str(SHIKONG), *args], capture_output=True, text=True, env=env, timeout=300
    )


def copy_city(demo_data: Path, to: Path) -> Path:
    """A private copy of the demo city's data directory (its keys, the tester's among
    them, included); the source files are left behind."""
    shutil.copytree(demo_data, to, ignore=shutil.ignore_patterns("sources", "cache", "jobs"))
    return to


def mirror_items(data: Path) -> dict[str, dict]:
    """Every item of the STAC JSON mirror the SQLite store wrote, read from its files."""
    return {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in (data / "stac").glob("*/*/items/*.json")
    }


def rows(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn) as db:
        return db.execute(sql).fetchall()


def test_migrate_copies_every_item_as_it_is_and_twice_is_a_no_op(
    demo_data, tester_key, dsn, tmp_path
):
    from shikong.server.audit import AuditLog

    city = copy_city(demo_data, tmp_path / "city")
    truth = mirror_items(city)
    log = AuditLog(city)
    for n in range(3):  # a log to carry over (the demo city has served nobody yet)
        log.append({"event": "test", "n": n, "input_digest": f"sha256:{n}"})
    first = shikong("migrate", "--data", str(city), "--to", dsn)
    assert first.returncode == 0, first.stderr
    layers = len(list((city / "stac").glob("*/*/collection.json")))
    assert f"migrated {layers} layers, {len(truth)} items" in first.stdout
    assert "still local: assets and the STAC mirror" in first.stdout
    copied = dict(rows(dsn, "SELECT id, json FROM shikong.item_json"))
    assert copied.keys() == truth.keys()
    assert all(copied[i] == truth[i] for i in truth)  # identical JSON, links and all
    differ = "SELECT count(*) FROM shikong.items i JOIN shikong.item_json j USING (id) WHERE "
    assert rows(dsn, differ + "i.props IS DISTINCT FROM (j.json->'properties')::jsonb") == [(0,)]
    clustered = "SELECT indisclustered FROM pg_index WHERE indexrelid = 'shikong.items_bbox'"
    assert rows(dsn, clustered + "::regclass") == [(True,)]  # rows in bbox order (CLUSTER)
    optimized = shikong("catalog", "optimize", "--data", str(city), env={"SHIKONG_DATABASE": dsn})
    assert optimized.returncode == 0 and "optimized" in optimized.stdout, optimized.stderr
    version = json.loads((city / "stac" / "catalog.json").read_text())
    meta = dict(rows(dsn, "SELECT key, value FROM shikong.meta"))
    assert meta["version"] == str(version["shikong:catalog_version"])
    second = shikong("migrate", "--data", str(city), "--to", dsn)
    assert second.returncode == 0, second.stderr
    assert f"already migrated: {len(truth)} items" in second.stdout
    assert dict(rows(dsn, "SELECT key, value FROM shikong.meta")) == meta
    # the API keys follow (digests and revocations as they were), once
    import sqlite3

    local = sqlite3.connect(city / "access" / "keys.sqlite")
    keys = sorted(local.execute("SELECT key_id, digest, revoked FROM keys").fetchall())
    local.close()
    assert f"API keys: {len(keys)} copied, 0 already there" in first.stdout
    assert f"API keys: 0 copied, {len(keys)} already there" in second.stdout
    assert sorted(rows(dsn, "SELECT key_id, digest, revoked FROM shikong.api_keys")) == keys
    # so does the audit chain: the file's lines, byte for byte, and it verifies there
    lines = [x for x in (city / "audit" / "audit.jsonl").read_bytes().splitlines() if x.strip()]
    copied = rows(dsn, "SELECT line FROM shikong.audit_log ORDER BY seq")
    assert [bytes(r[0]) for r in copied] == lines
    assert f"audit log: {len(lines)} entries copied" in first.stdout
    verified = shikong("audit", "verify", "--data", str(city), env={"SHIKONG_DATABASE": dsn})
    assert verified.returncode == 0 and f"{len(lines)} entries" in verified.stdout, verified.stdout


def test_migrate_refuses_an_asset_that_does_not_match_its_checksum(demo_data, dsn, tmp_path):
    city = copy_city(demo_data, tmp_path / "city")
    item = mirror_items(city)["nrp-landuse-v2023"]
    asset = (city / "stac/nrp/landuse/items" / item["assets"]["data"]["href"]).resolve()
    good = asset.read_bytes()
    asset.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit, same size
    bad = shikong("migrate", "--data", str(city), "--to", dsn)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "item nrp-landuse-v2023 asset data" in bad.stderr
    assert "does not match its checksum" in bad.stderr
    assert rows(dsn, "SELECT value FROM shikong.meta WHERE key='copied_from'") == []
    asset.write_bytes(good)  # mended: the interrupted copy is finished, not refused
    again = shikong("migrate", "--data", str(city), "--to", dsn)
    assert again.returncode == 0, again.stderr
    assert "migrated" in again.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("catalog", "list", "--database", "mysql://root:s3cret@db/x"), "not a PostgreSQL DSN"),
        (("migrate", "--to", "postgresql://shikong:s3cret@127.0.0.1:{port}/x"), "cannot connect"),
        (("serve", "--database", "postgresql://shikong:s3cret@127.0.0.1:{port}/x"), "connect"),
        (("ingest", "x.geojson", "-d", "nrp", "-l", "x", "--database", "host=nowhere.invalid"),
         "cannot connect"),
    ],
)  # fmt: skip
def test_a_bad_database_is_one_line_without_its_password(args, says, tmp_path):
    args = tuple(a.replace("{port}", str(free_port())) for a in args)
    (tmp_path / "data").mkdir()
    proc = shikong(*args, "--data", str(tmp_path / "data"))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and says in lines[0], proc.stderr
    assert "s3cret" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


def answers(client: TestClient, key: str) -> dict[str, object]:
    """What a department user is told: collections, a bbox page of Features, STAC item
    search by bbox and by text, a layer's versions, one item, and a process's report
    (its processor opens the catalog from its definition's data directory)."""
    headers = {"X-API-Key": key}

    def get(path: str) -> dict:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    features = get(f"/collections/nrp-landuse/items?bbox={BBOX}&limit=1000&f=json")
    search = get(f"/stac/search?bbox={BBOX}&limit=200")
    text = get("/stac/search?q=土地利用&limit=200")
    versions = get("/stac/collections/nrp-landuse/items?limit=100")
    region = box(*map(float, BBOX.split(","))).__geo_interface__
    executed = client.post(
        "/processes/area-by-class/execution",
        json={"inputs": {"region": region, "level": "group"}},
        headers=headers,
    )
    assert executed.status_code == 200, executed.text
    process = {k: v for k, v in executed.json().items() if k != "as_of"}
    return {
        "collections": sorted(c["id"] for c in get("/collections?f=json")["collections"]),
        "features": (features["numberMatched"], sorted(f["id"] for f in features["features"])),
        "search": (search.get("numberMatched"), sorted(i["id"] for i in search["features"])),
        "text": sorted(i["id"] for i in text["features"]),
        "versions": [i["id"] for i in versions["features"]],
        "item": get("/stac/collections/nrp-landuse/items/nrp-landuse-v2020")["properties"],
        "process": process,
        "anonymous": sorted(
            c["id"] for c in client.get("/collections?f=json").json()["collections"]
        ),
    }


def test_the_server_over_postgresql_answers_as_over_sqlite(demo_data, tester_key, dsn, tmp_path):
    city = copy_city(demo_data, tmp_path / "city")
    assert shikong("migrate", "--data", str(city), "--to", dsn).returncode == 0
    (city / "index.sqlite").unlink()  # nothing can be read from SQLite any more
    from shikong.server.app import create_app

    with TestClient(create_app(demo_data, "http://testserver", watch=False)) as client:
        expected = answers(client, tester_key)
    app = create_app(city, "http://testserver", watch=False, database=dsn)
    with TestClient(app) as client:
        got = answers(client, tester_key)
    assert not (city / "index.sqlite").exists()
    assert got == expected
    # and the truth, from the asset itself: land-use parcels whose shapes meet the bbox
    landuse = gpd.read_parquet(
        demo_data / "assets/nrp/landuse" / str(expected["versions"][-1]).rsplit("-v", 1)[1]
    )
    hits = landuse[landuse.intersects(box(*map(float, BBOX.split(","))))]
    assert got["features"][0] == len(hits)
    assert "nrp-landuse-v2020" in got["text"] and "nrp-landuse-v2023" in got["text"]
    assert got["versions"] == ["nrp-landuse-v2020", "nrp-landuse-v2023"]


def test_a_commit_wakes_a_watcher_through_notify(dsn, tmp_path):
    """A watcher whose fallback read is an hour away still sees a commit made by another
    store object (its own connections): only the NOTIFY can have told it."""
    from shikong.catalog import Catalog
    from shikong.catalog.postgres_store import PostgresCatalogStore
    from shikong.catalog.storage import DataDir

    watching = PostgresCatalogStore(dsn, DataDir(tmp_path / "b"))
    writer = Catalog(PostgresCatalogStore(dsn, DataDir(tmp_path / "a")))
    stop, seen, ready = threading.Event(), [], threading.Event()

    def watch() -> None:
        for version in watching.watch_versions(stop, fallback=3600):
            seen.append(version)
            ready.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert ready.wait(10) and seen == [0]  # the version when it started listening
    source = tmp_path / "r.geojson"
    gpd.GeoDataFrame({"n": [1]}, geometry=[box(113, 33, 114, 34)], crs=4490).to_file(source)
    writer.ingest(source, department="wat", layer="rivers")
    deadline = time.monotonic() + 10
    while seen[-1] != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    assert seen[-1] == 1
    watching.close()
    writer.store.close()


def node(data: Path, shared_assets: Path) -> Path:
    """A node's own data directory whose assets folder is the shared one (until S3)."""
    data.mkdir()
    (data / "assets").symlink_to(shared_assets, target_is_directory=True)
    return data


def test_two_nodes_on_one_database_serve_what_either_ingests(dsn, tmp_path, monkeypatch):
    shared = tmp_path / "shared-assets"
    shared.mkdir()
    a, b = node(tmp_path / "node-a", shared), node(tmp_path / "node-b", shared)
    monkeypatch.setenv("SHIKONG_DATABASE", dsn)  # both nodes, and the CLI below
    node_a, node_b = RunningServer(a, free_port()), RunningServer(b, free_port())
    try:
        assert httpx.get(f"{node_b.url}/collections/wat-wells?f=json").status_code == 404
        source = tmp_path / "wells.geojson"
        frame = gpd.GeoDataFrame(
            {"name": ["东井", "西井"]},
            geometry=[box(113.20, 33.70, 113.21, 33.71), box(113.30, 33.70, 113.31, 33.71)],
            crs=4490,
        )
        frame.to_file(source)
        ingest = shikong(
            "ingest", str(source), "-d", "wat", "-l", "wells", "--classification", "public",
            "--data", str(a),
        )  # fmt: skip
        assert ingest.returncode == 0, ingest.stderr
        done = time.monotonic()
        url = f"{node_b.url}/collections/wat-wells/items?f=json"
        answer = httpx.get(url)
        while answer.status_code != 200 and time.monotonic() < done + 10:
            time.sleep(0.02)
            answer = httpx.get(url)
        delay = time.monotonic() - done
        print(f"\nnode B served the layer ingested through node A {delay:.3f} s later")
        assert answer.status_code == 200, answer.text
        names = sorted(f["properties"]["name"] for f in answer.json()["features"])
        assert names == ["东井", "西井"]
        stac = httpx.get(f"{node_b.url}/stac/collections/wat-wells/items").json()
        assert [i["id"] for i in stac["features"]] == ["wat-wells-v1"]
        assert httpx.get(f"{node_a.url}/collections/wat-wells?f=json").status_code == 200
        assert not (a / "index.sqlite").exists() and not (b / "index.sqlite").exists()
    finally:
        node_a.stop()
        node_b.stop()


def test_edits_through_a_server_over_postgresql_become_versions_there(dsn, demo_data, tmp_path):
    """The features provider's editor builds its catalog from the provider definition's
    data directory: it gets the app's PostgreSQL store (no SQLite index appears)."""
    from conftest import share_keys
    from shikong.catalog import Catalog
    from shikong.catalog.postgres_store import PostgresCatalogStore
    from shikong.catalog.storage import DataDir
    from shikong.server.app import create_app
    from shikong.server.identity import KeyStore

    data = tmp_path / "data"
    source = tmp_path / "facilities.geojson"
    frame = gpd.GeoDataFrame(
        {"pid": [1, 2], "name": ["一号", "二号"]},
        geometry=[box(113.1, 33.7, 113.2, 33.8), box(113.2, 33.7, 113.3, 33.8)],
        crs=4490,
    )
    frame.to_file(source)
    Catalog.open(data, database=dsn).ingest(
        source, department="urb", layer="facilities", id_field="pid", editable=True
    )
    share_keys(demo_data, data)
    key, _ = KeyStore(data).create("urb", "editor")
    feature = {
        "type": "Feature",
        "properties": {"name": "三号"},
        "geometry": box(113.3, 33.7, 113.4, 33.8).__geo_interface__,
    }
    with TestClient(create_app(data, "http://testserver", watch=False, database=dsn)) as client:
        created = client.post(
            "/collections/urb-facilities/items",
            json=feature,
            headers={"Content-Type": "application/geo+json", "X-API-Key": key},
        )
        assert created.status_code == 201, created.text
    assert not (data / "index.sqlite").exists()
    fresh = PostgresCatalogStore(dsn, DataDir(tmp_path / "elsewhere"))
    versions = fresh.items_of("urb-facilities")
    fresh.close()
    assert len(versions) == 2  # the ingested one and the edit's
    latest = Catalog.open(data, database=dsn)["urb-facilities"].to_geodataframe()
    assert sorted(latest["name"]) == ["一号", "三号", "二号"]


def test_a_grant_decided_on_one_node_is_in_force_on_another(dsn, tmp_path):
    """On a PostgreSQL catalog the access requests live in that database: a request made
    through node A and approved through node B lets the requester read on node A at once,
    and neither node keeps a grants file of its own."""
    from datetime import UTC, datetime, timedelta

    from conftest import share_keys
    from shikong.catalog import Catalog
    from shikong.server.app import create_app
    from shikong.server.identity import KeyStore

    a, b = tmp_path / "node-a", tmp_path / "node-b"
    source = tmp_path / "parcels.geojson"
    gpd.GeoDataFrame(
        {"pid": [1, 2], "name": ["甲", "乙"]},
        geometry=[box(113.1, 33.7, 113.2, 33.8), box(113.2, 33.7, 113.3, 33.8)],
        crs=4490,
    ).to_file(source)
    Catalog.open(a, database=dsn).ingest(
        source, department="rer", layer="plots", id_field="pid", classification="restricted"
    )
    keys = KeyStore(a)
    hud = {"X-API-Key": keys.create("hud", "clerk")[0]}
    admin = {"X-API-Key": keys.create("rer", "chief", role="admin")[0]}
    share_keys(a, b)
    until = str(datetime.now(UTC).date() + timedelta(days=30))
    node_a = create_app(a, "http://testserver", watch=False, database=dsn)
    node_b = create_app(b, "http://testserver", watch=False, database=dsn)
    with TestClient(node_a) as one, TestClient(node_b) as two:
        items = "/collections/rer-plots/items?f=json"
        assert one.get(items, headers=hud).status_code == 404
        asked = one.post(
            "/sharing/requests",
            json={"collection": "rer-plots", "rights": ["read"], "purpose": "核查", "until": until},
            headers=hud,
        )
        assert asked.status_code == 201, asked.text
        rid = asked.json()["id"]
        seen = two.get(f"/sharing/requests/{rid}", headers=admin)
        assert seen.status_code == 200 and seen.json()["state"] == "requested"
        approved = two.post(
            f"/sharing/requests/{rid}/decision", json={"decision": "approve"}, headers=admin
        )
        assert approved.status_code == 200, approved.text
        read = one.get(items, headers=hud)
        assert read.status_code == 200, read.text
        assert sorted(f["properties"]["name"] for f in read.json()["features"]) == ["乙", "甲"]
    assert not (a / "access" / "grants.sqlite").exists()
    assert not (b / "access" / "grants.sqlite").exists()
    assert rows(dsn, "SELECT state FROM shikong.access_requests") == [("approved",)]


def test_a_key_made_on_one_node_works_on_another_until_revoked_there(dsn, tmp_path):
    """On a PostgreSQL catalog the API keys are in the database: a key made with the CLI
    beside node A is accepted by node B; revoked beside node B, node A refuses it on the
    next request."""
    from shikong.catalog import Catalog
    from shikong.server.app import create_app

    shared = tmp_path / "shared-assets"
    shared.mkdir()
    a, b = node(tmp_path / "node-a", shared), node(tmp_path / "node-b", shared)
    source = tmp_path / "wells.geojson"
    gpd.GeoDataFrame({"name": ["井"]}, geometry=[box(113.2, 33.7, 113.21, 33.71)],
                     crs=4490).to_file(source)  # fmt: skip
    Catalog.open(a, database=dsn).ingest(
        source, department="wat", layer="wells", classification="shared"
    )
    env = {"SHIKONG_DATABASE": dsn}
    made = shikong(
        "keys", "create", "--department", "wat", "--user", "gauge", "--data", str(a), env=env
    )
    assert made.returncode == 0, made.stderr
    key = next(w for w in made.stdout.split() if w.startswith("sk_"))
    key_id = key.split("_")[1]
    assert not (a / "access" / "keys.sqlite").exists()
    items = "/collections/wat-wells/items?f=json"
    apps = [create_app(n, "http://testserver", watch=False, database=dsn) for n in (a, b)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        assert two.get(items, headers={"X-API-Key": key}).status_code == 200
        assert one.get(items, headers={"X-API-Key": key}).status_code == 200
        gone = shikong("keys", "revoke", key_id, "--data", str(b), env=env)
        assert gone.returncode == 0, gone.stderr
        refused = one.get(items, headers={"X-API-Key": key})
        assert refused.status_code == 401 and "revoked" in refused.json()["description"]
    listed = shikong("keys", "list", "--data", str(b), env=env)
    assert key_id in listed.stdout


def test_the_audit_chain_of_two_nodes_is_one_and_verifies(dsn, tmp_path):
    """Audited requests through two nodes on one database make one chain: verify passes
    from either node's data directory and counts both nodes' entries, a query from node B
    finds node A's; an edited row and a cut tail are both reported."""
    import psycopg
    from shikong.catalog import Catalog
    from shikong.server.app import create_app
    from shikong.server.identity import KeyStore

    shared = tmp_path / "shared-assets"
    shared.mkdir()
    a, b = node(tmp_path / "node-a", shared), node(tmp_path / "node-b", shared)
    source = tmp_path / "plots.geojson"
    gpd.GeoDataFrame({"name": ["甲"]}, geometry=[box(113.2, 33.7, 113.21, 33.71)],
                     crs=4490).to_file(source)  # fmt: skip
    Catalog.open(a, database=dsn).ingest(
        source, department="rer", layer="plots", classification="restricted"
    )
    rer = {"X-API-Key": KeyStore(a).create("rer", "clerk")[0]}
    items = "/collections/rer-plots/items?f=json"
    apps = [create_app(n, "http://testserver", watch=False, database=dsn) for n in (a, b)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        for client in (one, two, one, two, two):
            assert client.get(items, headers=rer).status_code == 200
        assert one.get(items, headers={"X-API-Key": "sk_bad"}).status_code == 401
    env = {"SHIKONG_DATABASE": dsn}
    ours = rows(dsn, "SELECT line FROM shikong.audit_log ORDER BY seq")
    reads = [orjson.loads(bytes(r[0])) for r in ours]
    served = [e for e in reads if e.get("path") == "/collections/rer-plots/items"]
    assert [e["status"] for e in served].count(200) == 5 and len(served) == 6
    assert not (a / "audit" / "audit.jsonl").exists() and not (b / "audit" / "audit.jsonl").exists()
    for data in (a, b):
        verified = shikong("audit", "verify", "--data", str(data), env=env)
        assert verified.returncode == 0 and f"{len(ours)} entries" in verified.stdout
    found = shikong("audit", "query", "--data", str(b), "--status", "401", env=env)
    assert found.returncode == 0 and "sk_bad" not in found.stdout and "401" in found.stdout
    with psycopg.connect(dsn, autocommit=True) as db:  # tampering, as a database user could
        edited = orjson.loads(bytes(ours[1][0]))
        edited["status"] = 404
        db.execute("UPDATE shikong.audit_log SET line=%s WHERE seq=2", (orjson.dumps(edited),))
        broken = shikong("audit", "verify", "--data", str(a), env=env)
        assert broken.returncode == 1 and "line 2" in broken.stdout + broken.stderr
        db.execute("UPDATE shikong.audit_log SET line=%s WHERE seq=2", (bytes(ours[1][0]),))
        db.execute("DELETE FROM shikong.audit_log WHERE seq=(SELECT max(seq) FROM {s}.audit_log)"
                   .format(s="shikong"))  # fmt: skip
        cut = shikong("audit", "verify", "--data", str(a), env=env)
        assert cut.returncode == 1 and "removed" in cut.stdout + cut.stderr


def test_a_browser_signed_in_on_one_node_is_signed_in_on_another(dsn, tmp_path):
    """Sessions live in the database beside the catalog: a session cookie from node A
    opens node B; signing out on B ends it on A too (no sticky sessions needed)."""
    from shikong.catalog import Catalog
    from shikong.server.app import create_app
    from shikong.server.identity import KeyStore

    a, b = tmp_path / "node-a", tmp_path / "node-b"
    source = tmp_path / "wells.geojson"
    gpd.GeoDataFrame({"name": ["井"]}, geometry=[box(113.2, 33.7, 113.21, 33.71)],
                     crs=4490).to_file(source)  # fmt: skip
    Catalog.open(a, database=dsn).ingest(source, department="wat", layer="wells")
    key = KeyStore(a).create("psb", "officer")[0]
    apps = [create_app(n, "http://testserver", watch=False, database=dsn) for n in (a, b)]
    with (
        TestClient(apps[0], follow_redirects=False) as one,
        TestClient(apps[1], follow_redirects=False) as two,
    ):
        signed = one.post("/signin", data={"key": key, "next": "/workbench"})
        assert signed.status_code == 303, signed.text
        jar = dict(one.cookies)
        one.cookies.clear()
        sid, csrf = jar["shikong_session"], jar["shikong_csrf"]
        sent = {"cookie": f"shikong_session={sid}; shikong_csrf={csrf}"}
        who = two.get("/signin/whoami", headers=sent).json()
        assert who["user"] == "officer" and who["department"] == "psb"
        out = two.post("/signout", headers={**sent, "x-csrf-token": csrf})
        assert out.status_code in (200, 303), out.text
        two.cookies.clear()
        assert one.get("/signin/whoami", headers=sent).json().get("user") is None
    assert not (a / "access" / "sessions.sqlite").exists()
    assert rows(dsn, "SELECT count(*) FROM shikong.sessions") == [(0,)]


def test_public_reads_of_two_nodes_add_up_in_the_database(dsn, tmp_path):
    """Each node counts its public reads and adds them to one table: /stats on either
    node shows the reads of both."""
    from shikong.catalog import Catalog
    from shikong.server.app import create_app
    from shikong.server.identity import KeyStore

    shared = tmp_path / "shared-assets"
    shared.mkdir()
    a, b = node(tmp_path / "node-a", shared), node(tmp_path / "node-b", shared)
    source = tmp_path / "wells.geojson"
    wells = [box(113.2, 33.7, 113.21, 33.71), box(113.3, 33.7, 113.31, 33.71)]
    gpd.GeoDataFrame({"name": ["井", "泉"]}, crs=4490, geometry=wells).to_file(source)
    Catalog.open(a, database=dsn).ingest(
        source, department="wat", layer="wells", classification="public"
    )
    auditor = {"X-API-Key": KeyStore(a).create("ema", "inspector", role="auditor")[0]}
    apps = [create_app(n, "http://testserver", watch=False, database=dsn) for n in (a, b)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        for client in (one, two, two):
            assert client.get("/collections/wat-wells/items?f=json").status_code == 200
        one.app.state.server.public_reads.flush()  # what /stats does on its own node
        rows = two.get("/stats", params={"collection": "wat-wells"}, headers=auditor).json()
    public = [r for r in rows["rows"] if r["department"] is None]
    assert sum(r["requests"] for r in public) == 3 and sum(r["features"] for r in public) == 6
