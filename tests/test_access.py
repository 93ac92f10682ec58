"""Access control in every path: a matrix of callers × endpoint kinds over the demo city.

The expected answers are computed here from the catalog's collection JSON and the policy
YAML read directly (the rule of DOMAIN.md written again, independently of
``shikong.catalog.policy``); the server must agree on every endpoint kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import geopandas as gpd
import pytest
import yaml
from shikong.catalog import Catalog
from shikong.server.app import create_app
from shikong.server.identity import KeyStore
from starlette.testclient import TestClient

DEPARTMENTS = [
    "nrp", "rer", "hud", "tra", "wat", "eco", "agr", "frs", "ema", "met", "urb", "sta", "psb",
]  # fmt: skip


@dataclass(frozen=True)
class Who:
    name: str
    department: str | None
    headers: dict


@cache
def policy_yaml() -> dict:
    from importlib import resources

    text = resources.files("shikong.config").joinpath("access_policy.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def granted_rights(department: str | None, collection: dict) -> set[str]:
    """Rights the policy file grants a department on a collection (besides ownership)."""
    rights: set[str] = set()
    owner = collection["shikong:department"]
    layer = collection["id"].removeprefix(f"{owner}-")
    for g in policy_yaml()["grants"]:
        if g["owner"] == owner and department in g["to"] and layer in g["layers"]:
            rights |= set(g["rights"])
    return rights


def may_read(department: str | None, collection: dict) -> bool:
    cls = collection["shikong:classification"]
    if cls == "public":
        return True
    if department is None:
        return False
    if cls == "shared" or collection["shikong:department"] == department:
        return True
    return bool(granted_rights(department, collection))


def sees_personal_data(department: str | None, collection: dict) -> bool:
    return collection["shikong:department"] == department or (
        "personal-data" in granted_rights(department, collection)
    )


@pytest.fixture(scope="module")
def access_env(demo_data):
    keys = KeyStore(demo_data)
    callers = [Who("anonymous", None, {})]
    for d in DEPARTMENTS:
        key, _ = keys.create(d, f"{d}-clerk")
        callers.append(Who(d, d, {"X-API-Key": key}))
    app = create_app(demo_data, "http://testserver", watch=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, callers


@pytest.fixture(scope="module")
def collections(demo_data) -> dict[str, dict]:
    return {layer.id: layer.collection for layer in Catalog.open(demo_data).collections()}


@pytest.fixture(scope="module")
def real_id_numbers(demo_data) -> set[str]:
    """Every ID number the registry holds, read from the asset file directly."""
    layer = Catalog.open(demo_data)["rer-parcels"]
    frame = gpd.read_parquet(layer.current.asset_path)
    return {str(v) for v in frame["id_number"].dropna()}


def test_listings_and_collection_pages_match_the_policy(access_env, collections):
    client, callers = access_env
    for who in callers:
        expect = {cid for cid, c in collections.items() if may_read(who.department, c)}
        got = client.get("/collections?f=json", headers=who.headers).json()["collections"]
        got_ids = {c["id"] for c in got} - {"alerts"}
        assert ("alerts" in {c["id"] for c in got}) == (who.department is not None)  # shared
        assert got_ids == expect, who.name  # datacubes too: EDR and Coverages over the grid
        stac = client.get("/stac/collections", headers=who.headers).json()["collections"]
        assert {c["id"] for c in stac} == expect, who.name
        landing = client.get("/stac", headers=who.headers).json()["links"]
        assert {link["href"].rsplit("/", 1)[-1] for link in landing if link["rel"] == "child"} == (
            expect
        )
        html = client.get("/collections?f=html", headers=who.headers).text
        for cid in set(collections) - expect:
            assert cid not in html, (who.name, cid)
        for cid in collections:
            status = 200 if cid in expect else 404
            paths = [f"/stac/collections/{cid}", f"/collections/{cid}?f=json"]
            for path in paths:
                assert client.get(path, headers=who.headers).status_code == status, (who, path)


def test_every_endpoint_kind_answers_as_the_policy_allows(access_env, collections, demo_data):
    client, callers = access_env
    catalog = Catalog.open(demo_data)
    for cid, c in collections.items():
        layer = catalog[cid]
        kind = c["shikong:kind"]
        item_id = layer.current.id
        paths = [f"/stac/collections/{cid}/items", f"/stac/collections/{cid}/items/{item_id}"]
        if kind in ("vector", "sensors"):
            fid = layer.to_geodataframe().iloc[0]
            id_field = layer.current.item["properties"].get("shikong:id_field", "fid")
            paths += [
                f"/collections/{cid}/items?f=json&limit=2",
                f"/collections/{cid}/items/{fid[id_field]}?f=json",
                f"/collections/{cid}/queryables?f=json",
                f"/collections/{cid}/schema?f=json",
            ]
        if kind == "sensors":
            paths += [f"/collections/{cid}/locations?f=json", f"/readings/latest?layer={cid}"]
        if kind == "raster":
            paths += [
                f"/collections/{cid}/coverage?f=json&scale-size=x(4),y(4)",
                f"/collections/{cid}/map?f=png&width=16&height=16",
            ]
        if kind == "datacube":
            paths += [
                f"/collections/{cid}/position?coords=POINT(113.3%2033.8)&f=json",
                f"/collections/{cid}/cube?bbox=113.2,33.7,113.3,33.8&f=json",
            ]
        for who in callers:
            allowed = may_read(who.department, c)
            for path in paths:
                response = client.get(path, headers=who.headers)
                if allowed:
                    assert response.status_code == 200, (who.name, path, response.text[:300])
                else:
                    assert response.status_code == 404, (who.name, path, response.status_code)
                    assert response.headers["content-type"].startswith("application/json")
            hits = client.get(f"/stac/search?collections={cid}", headers=who.headers).json()
            assert (hits["numberMatched"] > 0) == allowed, (who.name, cid)


def test_search_never_returns_hidden_items(access_env, collections):
    client, callers = access_env
    for who in callers:
        body = client.post("/stac/search", json={"limit": 1000}, headers=who.headers).json()
        seen = {f["collection"] for f in body["features"]}
        allowed = {cid for cid, c in collections.items() if may_read(who.department, c)}
        assert seen == allowed, who.name


def test_personal_data_is_masked_everywhere_without_the_grant(
    access_env, collections, real_id_numbers
):
    client, callers = access_env
    parcels = collections["rer-parcels"]
    asset = client.get(
        "/stac/collections/rer-parcels/items", headers=callers[DEPARTMENTS.index("rer") + 1].headers
    ).json()["features"][-1]["assets"]
    data_href = next(a["href"] for a in asset.values() if a["href"].endswith(".parquet"))
    data_path = data_href.split("testserver", 1)[1]
    masked_pattern = re.compile(r"^\d{6}\*{4}\d{3}[\dX]$")
    for who in callers:
        if not may_read(who.department, parcels):
            continue
        full = sees_personal_data(who.department, parcels)
        bodies = []
        page = client.get("/collections/rer-parcels/items?f=json&limit=1000", headers=who.headers)
        bodies.append(page.text)
        for f in page.json()["features"]:
            value = f["properties"]["id_number"]
            assert (value in real_id_numbers) if full else masked_pattern.match(value), (who, value)
        fid = page.json()["features"][0]["id"]
        bodies.append(
            client.get(f"/collections/rer-parcels/items/{fid}?f=json", headers=who.headers).text
        )
        bodies.append(
            client.get("/collections/rer-parcels/items?f=html&limit=50", headers=who.headers).text
        )
        bodies.append(
            client.get(f"/collections/rer-parcels/items/{fid}?f=html", headers=who.headers).text
        )
        bodies.append(
            client.get("/collections/rer-parcels/items?f=csv&limit=50", headers=who.headers).text
        )
        bodies.append(
            client.post(
                "/stac/search", json={"collections": ["rer-parcels"]}, headers=who.headers
            ).text
        )
        code = page.json()["features"][0]["properties"]["unit_code"]
        reply = client.post(
            "/processes/parcel-by-code/execution",
            json={"inputs": {"code": code}},
            headers=who.headers,
        )
        assert reply.status_code == 200, reply.text
        bodies.append(reply.text)
        download = client.get(data_path, headers=who.headers)
        assert download.status_code == (200 if full else 403), who.name
        if not full:
            bodies.append(download.text)
            for probe in (
                f"filter=id_number LIKE '{next(iter(real_id_numbers))[:8]}%'",
                "sortby=id_number",
                "id_number=x",
                f"q={next(iter(real_id_numbers))}",
            ):
                response = client.get(
                    f"/collections/rer-parcels/items?f=json&{probe}", headers=who.headers
                )
                if "q=" in probe:  # text search skips masked fields: nothing found
                    assert response.json()["numberMatched"] == 0, who.name
                else:
                    assert response.status_code == 400, (who.name, probe)
                    assert "personal data" in response.json()["description"]
            text = "\n".join(bodies)
            leaked = [n for n in real_id_numbers if n in text]
            assert not leaked, (who.name, leaked[:3])


def test_property_by_owner_needs_the_personal_data_grant(access_env, collections):
    client, callers = access_env
    listed = {
        who.name: "property-by-owner"
        in {
            p["id"]
            for p in client.get("/processes?f=json", headers=who.headers).json()["processes"]
        }
        for who in callers
    }
    parcels = collections["rer-parcels"]
    assert listed == {who.name: sees_personal_data(who.department, parcels) for who in callers}


def test_processes_cannot_read_hidden_layers(access_env):
    client, callers = access_env
    wat = callers[DEPARTMENTS.index("wat") + 1]
    region = {
        "type": "Polygon",
        "coordinates": [[[113.3, 33.7], [113.31, 33.7], [113.31, 33.71], [113.3, 33.7]]],
    }
    for who, status in ((wat, 400), (callers[DEPARTMENTS.index("rer") + 1], 200)):
        reply = client.post(
            "/processes/area-by-class/execution",
            json={
                "inputs": {"region": region, "collection": "rer-parcels", "class_field": "land_use"}
            },
            headers=who.headers,
        )
        assert reply.status_code == status, (who.name, reply.text[:300])
        if status == 400:
            assert "rer-parcels" in reply.json()["description"]  # named as absent, not forbidden
            assert "permission" not in reply.text.lower()
    nrp = callers[DEPARTMENTS.index("nrp") + 1]
    reply = client.post(
        "/processes/area-by-class/execution",
        json={
            "inputs": {"region": region, "collection": "rer-parcels", "class_field": "owner_name"}
        },
        headers=nrp.headers,
    )
    assert reply.status_code == 400 and "personal data" in reply.text


def test_transactions_need_the_owner_or_a_write_grant(access_env, demo_data):
    client, callers = access_env
    feature = {
        "type": "Feature",
        "properties": {"DLBM": "0101"},
        "geometry": {"type": "Point", "coordinates": [113.3, 33.8]},
    }
    geo = {"Content-Type": "application/geo+json"}
    expect = {"anonymous": 404}
    for who in callers[1:]:
        expect[who.name] = 403  # every department sees nrp-landuse (shared) but may not edit
    for who in callers:
        reply = client.post(
            "/collections/nrp-landuse/items", json=feature, headers={**who.headers, **geo}
        )
        if who.name in ("nrp", "agr"):  # owner and grantee: allowed by policy, but the layer is
            assert reply.status_code in (400, 405), reply.text  # not marked editable
        else:
            assert reply.status_code == expect[who.name], (who.name, reply.status_code)


def test_openapi_document_lists_only_visible_collections(access_env, collections):
    client, callers = access_env
    for who in (callers[0], callers[DEPARTMENTS.index("wat") + 1]):
        document = client.get("/openapi?f=json", headers=who.headers).text
        for cid, c in collections.items():
            if not may_read(who.department, c):
                assert f"/collections/{cid}" not in document, (who.name, cid)


def test_jobs_are_seen_by_their_owner_only(access_env):
    client, callers = access_env
    nrp, wat = callers[DEPARTMENTS.index("nrp") + 1], callers[DEPARTMENTS.index("wat") + 1]
    region = {
        "type": "Polygon",
        "coordinates": [[[113.3, 33.7], [113.31, 33.7], [113.31, 33.71], [113.3, 33.7]]],
    }
    started = client.post(
        "/processes/area-by-class/execution",
        json={"inputs": {"region": region}},
        headers={**nrp.headers, "Prefer": "respond-async"},
    )
    assert started.status_code == 201, started.text
    job = started.headers["location"].rsplit("/", 1)[-1]
    import time

    for _ in range(100):
        status = client.get(f"/jobs/{job}?f=json", headers=nrp.headers).json()["status"]
        if status in ("successful", "failed"):
            break
        time.sleep(0.1)
    assert status == "successful"
    assert client.get(f"/jobs/{job}/results?f=json", headers=nrp.headers).status_code == 200
    for other in (wat, callers[0]):
        assert client.get(f"/jobs/{job}?f=json", headers=other.headers).status_code == 404
        assert client.get(f"/jobs/{job}/results?f=json", headers=other.headers).status_code == 404
        assert client.delete(f"/jobs/{job}", headers=other.headers).status_code == 404
        listed = client.get("/jobs?f=json", headers=other.headers).json()["jobs"]
        assert job not in {j["jobID"] for j in listed}
    assert job in {
        j["jobID"] for j in client.get("/jobs?f=json", headers=nrp.headers).json()["jobs"]
    }
    anonymous_async = client.post(
        "/processes/area-by-class/execution",
        json={"inputs": {"region": region}},
        headers={"Prefer": "respond-async"},
    )
    assert anonymous_async.status_code == 403


def test_a_search_naming_a_hidden_collection_is_empty_and_audited_as_refused(access_env, demo_data):
    import json

    client, callers = access_env
    tra = callers[DEPARTMENTS.index("tra") + 1]
    log = demo_data / "audit" / "audit.jsonl"
    before = len(log.read_text().splitlines()) if log.exists() else 0
    for answer in (
        client.get("/stac/search?collections=rer-parcels", headers=tra.headers),
        client.post("/stac/search", json={"collections": ["rer-parcels"]}, headers=tra.headers),
    ):
        assert answer.status_code == 200 and answer.json()["features"] == []
    added = [json.loads(line) for line in log.read_text().splitlines()[before:]]
    refused = [e for e in added if e.get("denied") and "rer-parcels" in e.get("collections", [])]
    assert len(refused) == 2, added
