"""The API key through HTTP Basic auth (issue 16, item 20), with httpx and GDAL 3.6's ogrinfo.

Clients that cannot add an ``X-API-Key`` header (QGIS 3.22, GDAL 3.6 without header
settings) speak Basic. The truth is the restricted layer's GeoParquet read directly.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import httpx
import pytest
from conftest import RunningServer, free_port
from shikong.server.identity import KeyStore

RESTRICTED = "rer-parcels"  # restricted: rer and the departments it grants (nrp, psb)
PUBLIC = "tra-roads"
CHALLENGES = ['Basic realm="shikong", charset="UTF-8"', 'Bearer realm="shikong"']


def truth_of(data: Path, department: str, layer: str) -> gpd.GeoDataFrame:
    """The layer's one stored version, read from its GeoParquet without shikong."""
    versions = sorted((data / "assets" / department / layer).glob("*/data.parquet"))
    assert len(versions) == 1, f"the demo's {department}-{layer} has one version: {versions}"
    return gpd.read_parquet(versions[0])


@pytest.fixture(scope="module")
def env(demo_data, tmp_path_factory):
    """A copy of the demo city with its own keys, served by `shikong serve`."""
    data = tmp_path_factory.mktemp("basic") / "data"
    shutil.copytree(demo_data, data)
    keys = KeyStore(data)
    alice, _ = keys.create("rer", "alice")
    li, _ = keys.create("wat", "li")  # a department that may not read rer-parcels
    gone, record = keys.create("rer", "bob")
    keys.revoke(record.key_id)
    server = RunningServer(data, free_port())
    yield {"data": data, "url": server.url, "alice": alice, "li": li, "revoked": gone}
    server.stop()


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_basic_auth_reads_a_restricted_collection(env):
    truth = truth_of(env["data"], "rer", "parcels")
    url = f"{env['url']}/collections/{RESTRICTED}/items"
    params = {"f": "json", "limit": 1000, "skipGeometry": "true"}
    for user in ("alice", ""):  # the key's user, or no user name at all
        reply = httpx.get(url, params=params, auth=(user, env["alice"]), timeout=30)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["numberMatched"] == len(truth)
        assert sorted(f["id"] for f in body["features"]) == sorted(truth["fid"].tolist())
        # rer owns the layer: personal data unmasked, exactly as stored
        by_id = truth.set_index("fid")["id_number"]
        assert all(f["properties"]["id_number"] == by_id[f["id"]] for f in body["features"])
    # who the audit log names is the key's user
    log = (env["data"] / "audit" / "audit.jsonl").read_text().splitlines()
    assert any('"user":"alice"' in line and RESTRICTED in line for line in log)


def test_anonymous_public_access_is_never_challenged(env):
    public = httpx.get(f"{env['url']}/collections/{PUBLIC}/items?f=json&limit=1")
    assert public.status_code == 200
    assert "www-authenticate" not in public.headers
    hidden = httpx.get(f"{env['url']}/collections/{RESTRICTED}?f=json")
    assert hidden.status_code == 404  # as if absent: its existence is not revealed
    assert "www-authenticate" not in hidden.headers


def test_basic_auth_carries_the_keys_department_only(env):
    reply = httpx.get(f"{env['url']}/collections/{RESTRICTED}?f=json", auth=("li", env["li"]))
    assert reply.status_code == 404  # wat may not see rer's parcels
    sensors = httpx.get(
        f"{env['url']}/collections/wat-water_level_sensors?f=json", auth=("li", env["li"])
    )
    assert sensors.status_code == 200


@pytest.mark.parametrize(
    ("make_headers", "words"),
    [
        (lambda e: basic("alice", "sk_00000000_not-a-key"), "unknown API key"),
        (lambda e: basic("bob", e["revoked"]), "revoked"),
        (lambda e: basic("mallory", e["alice"]), "does not match the key's user"),
        (lambda e: basic("alice", "hunter2"), "takes an API key"),
        (lambda e: {"Authorization": "Basic !!!not-base64"}, "not base64"),
        (lambda e: {"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()}, "':'"),
        (lambda e: {"Authorization": "Digest username=alice"}, "Basic <user:key>"),
        (lambda e: {"X-API-Key": "sk_00000000_not-a-key"}, "unknown API key"),
    ],
    ids=[
        "wrong-key",
        "revoked",
        "other-user",
        "not-a-key",
        "bad-base64",
        "no-colon",
        "digest",
        "x-api-key",
    ],
)
def test_bad_credentials_are_401_with_the_challenges(env, make_headers, words):
    reply = httpx.get(f"{env['url']}/collections/{PUBLIC}?f=json", headers=make_headers(env))
    assert reply.status_code == 401
    assert words in reply.json()["description"], reply.json()
    assert reply.headers.get_list("www-authenticate") == CHALLENGES


def ogrinfo(url: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    binary = shutil.which("ogrinfo")
    if binary is None:
        if os.environ.get("SHIKONG_REQUIRE_SERVICES"):
            pytest.fail("ogrinfo is not installed and SHIKONG_REQUIRE_SERVICES is set")
        pytest.skip("ogrinfo is not installed (apt-get install gdal-bin)")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GDAL_HTTP")}
    environ.update(NO_PROXY="127.0.0.1", no_proxy="127.0.0.1", **extra_env)
    return subprocess.run(
        [binary, "-ro", "-al", "-geom=NO", f"OAPIF:{url}/collections/{RESTRICTED}"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


@pytest.mark.parametrize(
    "recipe",
    [
        {"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": "alice:{key}"},
        {"GDAL_HTTP_USERPWD": "alice:{key}"},  # curl's default scheme is Basic
        {"GDAL_HTTP_HEADERS": "X-API-Key: {key}"},
    ],
    ids=["userpwd-basic", "userpwd", "headers"],
)
def test_ogrinfo_reads_a_restricted_layer_with_gdal36_recipes(env, recipe):
    truth = truth_of(env["data"], "rer", "parcels")
    done = ogrinfo(env["url"], {k: v.format(key=env["alice"]) for k, v in recipe.items()})
    assert done.returncode == 0, done.stderr
    count = re.search(r"^Feature Count: (\d+)$", done.stdout, re.M)
    assert count and int(count.group(1)) == len(truth)
    fids = [int(f) for f in re.findall(r"^\s*fid \(Integer\) = (\d+)$", done.stdout, re.M)]
    assert sorted(fids) == sorted(truth["fid"].tolist())  # every page came with the key


def test_ogrinfo_without_a_preemptive_credential_sees_only_the_public(env):
    """GDAL_HTTP_AUTH=ANY waits for a challenge, and a hidden layer is a 404, not a 401."""
    any_auth = ogrinfo(
        env["url"], {"GDAL_HTTP_AUTH": "ANY", "GDAL_HTTP_USERPWD": f"alice:{env['alice']}"}
    )
    assert any_auth.returncode != 0 and "404" in any_auth.stderr
    wrong = ogrinfo(
        env["url"], {"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": "alice:sk_0_wrong"}
    )
    assert wrong.returncode != 0 and "401" in wrong.stderr and "unknown API key" in wrong.stderr


def test_an_anonymous_post_of_readings_is_challenged_and_basic_posts_them(env):
    batch = [{"sensor_id": "WAT-WL-001", "time": "2026-11-25T08:00:00+08:00", "value": 150.2}]
    anonymous = httpx.post(f"{env['url']}/readings", json=batch)
    assert anonymous.status_code == 401
    assert anonymous.headers.get_list("www-authenticate") == [
        'Basic realm="shikong", charset="UTF-8"',
        'Bearer realm="shikong"',
    ]
    posted = httpx.post(f"{env['url']}/readings", json=batch, auth=("li", env["li"]))
    assert posted.status_code == 200, posted.text  # li is wat: its own sensors
