"""Usage statistics (/stats, `shikong stats`) and Prometheus metrics (/metrics).

The truth is what the test itself did: which key read which layer with which ``limit``,
the features each answer held and the bytes the client received; the server's figures
must equal those counts. /metrics is read by prometheus-client's own parser.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from shikong.server.app import create_app
from shikong.server.identity import KeyStore
from starlette.testclient import TestClient

SHARED, RESTRICTED = "nrp-landuse", "rer-parcels"
ITEMS_ROUTE = "/collections/{collection_id}/items"
FIGURES = ("requests", "features", "bytes", "refusals")


@pytest.fixture(scope="module")
def data(demo_data, tmp_path_factory):
    target = tmp_path_factory.mktemp("stats") / "data"
    # not the public reads other tests' servers counted in the shared demo city: this
    # module's truth is the requests it makes itself
    shutil.copytree(demo_data, target, ignore=shutil.ignore_patterns("public_reads.sqlite"))
    return target


@pytest.fixture(scope="module")
def keys(data) -> dict[str, str]:
    store = KeyStore(data)
    made = {
        "nrp": store.create("nrp", "liu"),
        "rer": store.create("rer", "wang"),
        "wat": store.create("wat", "zhao"),
        "psb": store.create("psb", "chen"),  # a plain user: no /stats, no /metrics
        "auditor": store.create("ema", "inspector", role="auditor"),
        "admin": store.create("rer", "head", role="admin"),
    }
    return {name: key for name, (key, _) in made.items()}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _stats_cli(data: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("shikong")
    return subprocess.run(
        [exe, "stats", "--data", str(data), *args], capture_output=True, text=True, timeout=120
    )


def _by_layer_and_department(rows: list[dict]) -> dict[tuple, dict[str, int]]:
    """Rows summed over days (a run across midnight UTC splits them)."""
    out: dict[tuple, Counter] = {}
    for row in rows:
        key = (row["collection"], row["department"])
        out.setdefault(key, Counter()).update({f: row[f] for f in FIGURES})
    return {k: dict(v) for k, v in out.items()}


def test_stats_equal_the_requests_made_and_metrics_count_them(data, keys):
    since = _now()
    day_before = since[:10]
    expected: dict[tuple, Counter] = {}
    items_requests = Counter()  # status class → requests the test made to the items route

    def note(collection, department, reply, refused=False):
        row = expected.setdefault((collection, department), Counter(dict.fromkeys(FIGURES, 0)))
        row["requests"] += 1
        row["bytes"] += reply.num_bytes_downloaded
        row["refusals"] += int(refused)
        if reply.status_code == 200 and collection is not None:
            row["features"] += len(reply.json()["features"])

    with TestClient(create_app(data, "http://testserver", watch=False)) as client:

        def read(who: str, collection: str, limit: int):
            reply = client.get(
                f"/collections/{collection}/items",
                params={"f": "json", "limit": limit},
                headers={"X-API-Key": keys[who]},
            )
            items_requests[f"{reply.status_code // 100}xx"] += 1
            return reply

        plan = [  # (key, layer, limit, refused)
            ("nrp", SHARED, 3, False),
            ("nrp", SHARED, 3, False),
            ("rer", SHARED, 5, False),
            ("rer", RESTRICTED, 4, False),
            ("rer", RESTRICTED, 4, False),
            ("wat", SHARED, 7, False),
            ("wat", RESTRICTED, 2, True),  # not granted to wat: 404 as if absent
        ]
        for who, layer, limit, refused in plan:
            reply = read(who, layer, limit)
            assert reply.status_code == (404 if refused else 200), reply.text
            if not refused:
                assert len(reply.json()["features"]) == limit
            note(layer, who, reply, refused)

        # a plain user and a department user do not learn /stats or /metrics exist
        for who, path in (("psb", "/stats"), ("wat", "/metrics")):
            reply = client.get(path, headers={"X-API-Key": keys[who]})
            assert reply.status_code == 404, reply.text
            assert reply.json()["description"] == f"no resource at {path}"
            note(None, who, reply, refused=True)
        anonymous = client.get("/stats")
        assert anonymous.status_code == 404  # the public: 404 too (with the sign-in hint)
        note(None, None, anonymous, refused=True)

        cli = _stats_cli(data, "--since", since, "--json")
        assert cli.returncode == 0, cli.stderr
        reply = client.get(
            "/stats", params={"since": since}, headers={"X-API-Key": keys["auditor"]}
        )
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        assert json.loads(cli.stdout) == answer  # `shikong stats --json` is /stats

        got = _by_layer_and_department(answer["rows"])
        want = {k: dict(v) for k, v in expected.items()}
        assert got == want
        assert {row["day"] for row in answer["rows"]} <= {day_before, _now()[:10]}
        assert answer["totals"] == {f: sum(v[f] for v in want.values()) for f in FIGURES}
        assert "reads of public layers" in answer["scope"].lower()

        # filters: one layer, one department
        only = client.get(
            "/stats",
            params={"since": since, "collection": SHARED, "department": "rer"},
            headers={"X-API-Key": keys["auditor"]},
        ).json()
        assert _by_layer_and_department(only["rows"]) == {(SHARED, "rer"): want[(SHARED, "rer")]}

        # an admin sees its own department's layers only; another's answers as a missing one
        admin = client.get("/stats", params={"since": since}, headers={"X-API-Key": keys["admin"]})
        assert admin.status_code == 200
        assert {r["collection"] for r in admin.json()["rows"]} == {RESTRICTED}
        assert _by_layer_and_department(admin.json()["rows"]) == {
            k: v for k, v in want.items() if k[0] == RESTRICTED
        }
        for layer in (SHARED, "nrp-no_such_layer"):
            other = client.get(
                "/stats",
                params={"since": since, "collection": layer},
                headers={"X-API-Key": keys["admin"]},
            )
            assert other.status_code == 200 and other.json()["rows"] == []

        # bad input names the problem
        for params, words in (
            ({"since": "yesterday"}, "since"),
            ({"until": "2026-01-01/2026-02-01"}, "interval"),
            ({"layer": SHARED}, "'layer'"),
        ):
            bad = client.get("/stats", params=params, headers={"X-API-Key": keys["auditor"]})
            assert bad.status_code == 400 and words in bad.json()["description"], bad.text

        # /metrics: the Prometheus text parser reads it; the items route counts our requests
        metrics = client.get("/metrics", headers={"X-API-Key": keys["auditor"]})
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
        counted = Counter()
        for sample in families["shikong_http_requests"].samples:
            if sample.name.endswith("_total") and sample.labels["route"] == ITEMS_ROUTE:
                assert sample.labels["method"] == "GET"
                counted[sample.labels["status"]] += int(sample.value)
        assert counted == items_requests == Counter({"2xx": 6, "4xx": 1})
        latency = families["shikong_http_request_duration_seconds"].samples
        runs = [
            s for s in latency if s.name.endswith("_count") and s.labels["route"] == ITEMS_ROUTE
        ]
        assert sum(s.value for s in runs) == 7
        routes = {s.labels.get("route") for f in families.values() for s in f.samples}
        assert not any(r and (SHARED in r or RESTRICTED in r) for r in routes)  # templates only
        version = families["shikong_catalog_version"].samples[0].value
        assert version == client.app.state.server.publisher.snapshot.version
        assert "shikong_tile_cache_lookups" in families
        assert "shikong_readings_ingested" in families


def test_metrics_for_loopback_without_a_key_and_not_for_others(data, keys):
    app = create_app(data, "http://testserver", watch=False)
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        assert local.get("/metrics").status_code == 200
        assert local.get("/metrics", headers={"X-API-Key": keys["nrp"]}).status_code == 404
    with TestClient(app, client=("10.1.2.3", 40000)) as remote:
        assert remote.get("/metrics").status_code == 404
        assert remote.get("/metrics", headers={"X-API-Key": keys["admin"]}).status_code == 200


def test_tile_cache_hits_and_misses_are_counted(tmp_path):
    from shikong.server.tiles.cache import TileCache

    cache = TileCache(tmp_path / "tiles", max_bytes=1 << 20)
    assert cache.get("a" * 64) is None
    cache.put("a" * 64, b"tile")
    assert cache.get("a" * 64) == b"tile"
    assert cache.get("a" * 64) == b"tile"
    assert (cache.hits, cache.misses) == (2, 1)


def test_cli_refuses_a_bad_date(data):
    bad = _stats_cli(data, "--since", "last week")
    assert bad.returncode == 2 and "since" in bad.stderr


def test_metrics_count_the_gates_refusals_and_posted_readings(data, keys):
    """The gate's own refusals (a bad key 401 twice, a body over the limit 413) and the
    outcomes of HTTP readings (accepted, duplicate, refused by reason) are in /metrics,
    equal to what this test did."""
    app = create_app(data, "http://testserver", watch=False)
    limit = app.state.server.policy.limits.max_body_bytes
    wat = {"X-API-Key": keys["wat"]}  # the water sensors' department posts its readings
    start = datetime.now(UTC).timestamp()
    rows = [
        {"sensor_id": "WAT-WL-001", "time": datetime.fromtimestamp(start + i, UTC).isoformat(),
         "value": 150 + i / 10}
        for i in range(3)
    ]  # fmt: skip
    with TestClient(app) as client:
        for _ in range(2):
            assert client.get("/collections", headers={"X-API-Key": "not-a-key"}).status_code == 401
        big = client.post("/processes/x/execution", content=b"x" * (limit + 1), headers=wat)
        assert big.status_code == 413
        first = client.post("/readings", json=[*rows, {"sensor_id": "NOPE", "time": rows[0]["time"],
                                                       "value": 1}], headers=wat)  # fmt: skip
        assert first.json()["accepted"] == 3 and first.json()["rejected"] == {"unknown sensor": 1}
        again = client.post("/readings", json=rows, headers=wat)
        assert again.json()["duplicates"] == 3
        text = client.get("/metrics", headers={"X-API-Key": keys["auditor"]}).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    refused = {
        s.labels["status"]: s.value
        for s in families["shikong_gate_refusals"].samples
        if s.name.endswith("_total")
    }
    assert refused == {"401": 2, "413": 1}
    posted = {
        s.labels["outcome"]: s.value
        for s in families["shikong_readings_posted"].samples
        if s.name.endswith("_total")
    }
    assert posted == {"accepted": 3, "duplicate": 3, "unknown sensor": 1}


def test_public_reads_are_counted_per_layer_and_day_without_a_department(data, keys):
    """Public layers are not audited, yet their reads are in /stats: requests, features
    and bytes per layer and day, department null, equal to what this test read (alone
    in the data directory's table at the start, so the test computes them itself)."""
    public = "tra-roads"
    app = create_app(data, "http://testserver", watch=False)
    with TestClient(app) as client:
        before = _public_rows(client, keys, public)
        want = Counter(dict.fromkeys(("requests", "features", "bytes"), 0))
        for who, limit in ((None, 2), (None, 5), ("nrp", 3)):  # anyone: the public, a user
            headers = {"X-API-Key": keys[who]} if who else {}
            reply = client.get(f"/collections/{public}/items",
                               params={"f": "json", "limit": limit}, headers=headers)  # fmt: skip
            assert reply.status_code == 200 and len(reply.json()["features"]) == limit
            want.update(requests=1, features=limit, bytes=reply.num_bytes_downloaded)
        tile = client.get(f"/collections/{public}/tiles/WebMercatorQuad/10/415/843",
                          headers={"Accept-Encoding": "identity"})  # fmt: skip
        assert tile.status_code in (200, 204)
        want.update(requests=1, bytes=tile.num_bytes_downloaded)
        after = _public_rows(client, keys, public)
    got = {f: after[f] - before.get(f, 0) for f in want}
    assert got == dict(want)
    cli = _stats_cli(data, "--collection", public, "--json")  # flushed: the CLI sees them
    rows = [r for r in json.loads(cli.stdout)["rows"] if r["department"] is None]
    assert sum(r["requests"] for r in rows) == after["requests"]


def _public_rows(client, keys, layer: str) -> dict[str, int]:
    answer = client.get(
        "/stats", params={"collection": layer}, headers={"X-API-Key": keys["auditor"]}
    ).json()
    rows = [r for r in answer["rows"] if r["department"] is None]
    return {f: sum(r[f] for r in rows) for f in ("requests", "features", "bytes")}
