"""Identity (API keys, HS256/RS256 JWTs), the audit log and its chain, and service limits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from shikong.catalog.policy import Limits, Policy
from shikong.server.app import create_app
from shikong.server.identity import JwtSettings, KeyStore
from starlette.testclient import TestClient

ISSUER = "https://id.city.example"
SECRET = "a-test-secret-of-enough-length-for-hs256!"


@pytest.fixture(scope="module")
def data(demo_data, tmp_path_factory):
    target = tmp_path_factory.mktemp("identity") / "data"
    shutil.copytree(demo_data, target)
    return target


def client_for(data, **kwargs) -> TestClient:
    return TestClient(create_app(data, "http://testserver", watch=False, **kwargs))


def token(key, algorithm="HS256", **claims) -> str:
    body = {"iss": ISSUER, "sub": "zhang", "department": "nrp", "exp": time.time() + 600}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


def shikong(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("shikong")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


def test_keys_cli_create_list_revoke(data):
    made = shikong("keys", "create", "--department", "wat", "--user", "li", "--data", str(data))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("sk_")
    stored = (data / "access" / "keys.sqlite").read_bytes()
    secret = key.split("_", 2)[2]  # the whole secret: it may hold "_" itself
    assert key.encode() not in stored and secret.encode() not in stored  # hashed
    with client_for(data) as client:
        assert client.get("/collections/wat-water_level_sensors?f=json").status_code == 404
        ok = client.get("/collections/wat-water_level_sensors?f=json", headers={"X-API-Key": key})
        assert ok.status_code == 200
        listed = shikong("keys", "list", "--data", str(data))
        key_id = key.split("_")[1]
        assert key_id in listed.stdout and "wat" in listed.stdout
        assert shikong("keys", "revoke", key_id, "--data", str(data)).returncode == 0
        refused = client.get("/collections?f=json", headers={"X-API-Key": key})
        assert refused.status_code == 401 and "revoked" in refused.json()["description"]
        unknown = client.get("/collections?f=json", headers={"X-API-Key": "sk_nope_nope"})
        assert unknown.status_code == 401 and "unknown API key" in unknown.json()["description"]
    bad = shikong("keys", "create", "--department", "xyz", "--user", "li", "--data", str(data))
    assert bad.returncode == 2 and "unknown department" in bad.stderr


def test_hs256_tokens_with_grants(data):
    settings = JwtSettings(ISSUER, "HS256", SECRET)
    with client_for(data, jwt=settings) as client:

        def get(path, tok):
            return client.get(path, headers={"Authorization": f"Bearer {tok}"})

        wat = token(SECRET, department="wat")
        assert get("/collections/rer-parcels?f=json", wat).status_code == 404
        granted = token(SECRET, department="wat", grants=["rer-parcels:read"])
        items = get("/collections/rer-parcels/items?f=json&limit=5", granted)
        assert items.status_code == 200
        assert "****" in items.json()["features"][0]["properties"]["id_number"]
        full = token(SECRET, department="wat", grants=["rer-parcels:personal-data"])
        items = get("/collections/rer-parcels/items?f=json&limit=5", full)
        assert "****" not in items.json()["features"][0]["properties"]["id_number"]
        for bad, words in (
            (token(SECRET, exp=time.time() - 10), "expired"),
            (token(SECRET, iss="https://evil.example"), "issuer"),
            (token("another-secret-of-enough-length-for-hs256"), "Signature"),
            (token(SECRET, department="moon"), "unknown department"),
            (token(SECRET, grants=["rer-parcels"]), "grant"),
            (
                jwt.encode(
                    {"iss": ISSUER, "sub": "x", "department": "psb", "exp": time.time() + 60},
                    None,
                    algorithm="none",
                ),
                "rejected",
            ),
        ):
            reply = get("/collections?f=json", bad)
            assert reply.status_code == 401, words
            assert words in reply.json()["description"], reply.json()
        assert client.get("/", headers={"Authorization": "Basic abc"}).status_code == 401


def test_rs256_tokens(data, tmp_path):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = JwtSettings(ISSUER, "RS256", public_pem, audience="shikong")
    with client_for(data, jwt=settings) as client:
        good = token(private, "RS256", department="psb", aud="shikong")
        reply = client.get(
            "/collections/psb-camera_sites?f=json", headers={"Authorization": f"Bearer {good}"}
        )
        assert reply.status_code == 200
        wrong_aud = token(private, "RS256", department="psb", aud="other")
        assert client.get("/", headers={"Authorization": f"Bearer {wrong_aud}"}).status_code == 401
        # an HS256 token signed with the public key text must not pass (algorithm confusion)
        confused = jwt.encode(
            {
                "iss": ISSUER,
                "sub": "x",
                "department": "psb",
                "exp": time.time() + 60,
                "aud": "shikong",
            },
            "k" * 64,
            algorithm="HS256",
        )
        assert client.get("/", headers={"Authorization": f"Bearer {confused}"}).status_code == 401


def test_restricted_reads_and_denials_are_audited_with_the_user(data):
    keys = KeyStore(data)
    rer, _ = keys.create("rer", "wang")
    tra, _ = keys.create("tra", "zhao")
    auditor, _ = keys.create("ema", "inspector", role="auditor")
    log_path = data / "audit" / "audit.jsonl"
    before = len(log_path.read_text().splitlines()) if log_path.exists() else 0
    with client_for(data) as client:
        client.get("/collections/rer-parcels/items?f=json&limit=3", headers={"X-API-Key": rer})
        fid = client.get(
            "/collections/rer-parcels/items?f=json&limit=1", headers={"X-API-Key": rer}
        ).json()["features"][0]["id"]
        client.get(f"/collections/rer-parcels/items/{fid}?f=json", headers={"X-API-Key": rer})
        denied = client.get("/collections/rer-parcels/items?f=json", headers={"X-API-Key": tra})
        assert denied.status_code == 404
        client.get("/collections/tra-roads/items?f=json")  # public: not audited
        client.get("/collections?f=json", headers={"X-API-Key": "sk_bad_key"})
        # the auditor reads the log over HTTP; others do not see it exists
        assert client.get("/audit", headers={"X-API-Key": rer}).status_code == 404
        entries = client.get(
            "/audit?collection=rer-parcels", headers={"X-API-Key": auditor}
        ).json()["entries"]
    reads = [e for e in entries if e["user"] == "wang" and e["status"] == 200]
    assert [e.get("count") for e in reads[:2]] == [3, 1]
    assert reads[2]["items"] == [str(fid)]
    refusal = [e for e in entries if e["user"] == "zhao"]
    assert refusal and refusal[0]["denied"] and refusal[0]["status"] == 404
    assert refusal[0]["department"] == "tra"
    log = log_path.read_text().splitlines()[before:]  # this test's entries
    assert not any("tra-roads" in line for line in log)
    assert any('"unknown API key"' in line and '"status":401' in line for line in log)
    cli = shikong("audit", "query", "--user", "zhao", "--json", "--data", str(data))
    assert json.loads(cli.stdout.splitlines()[0])["collections"] == ["rer-parcels"]


def test_editing_one_line_breaks_the_chain_at_that_line(data):
    with client_for(data) as client:
        key, _ = KeyStore(data).create("rer", "li")
        for _ in range(3):
            client.get("/collections/rer-parcels/items?f=json&limit=1", headers={"X-API-Key": key})
    assert shikong("audit", "verify", "--data", str(data)).returncode == 0
    path = data / "audit" / "audit.jsonl"
    lines = path.read_text().splitlines()
    n = len(lines) - 2
    entry = json.loads(lines[n - 1])
    entry["user"] = "nobody"
    lines[n - 1] = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    result = shikong("audit", "verify", "--data", str(data))
    assert result.returncode == 1
    assert f"line {n}" in result.stderr and "edited" in result.stderr
    del lines[n - 1]  # removing the line instead also shows, at the line after it
    path.write_text("\n".join(lines) + "\n")
    result = shikong("audit", "verify", "--data", str(data))
    assert result.returncode == 1 and f"line {n}" in result.stderr


def test_limits_answer_clear_4xx(data):
    policy = Policy(
        limits=Limits(
            max_page_size=50,
            max_body_bytes=2000,
            max_process_input_bytes=1000,
            rate_per_second=1,
            rate_burst=5,
        )
    )
    key, _ = KeyStore(data).create("nrp", "busy")
    with client_for(data, policy=policy) as client:
        h = {"X-API-Key": key}
        page = client.get("/collections/sta-population_grid/items?f=json&limit=51")
        assert page.status_code == 200 and len(page.json()["features"]) == 50  # server-limited
        stac = client.get("/stac/search?limit=51")
        assert stac.status_code == 200 and len(stac.json()["features"]) <= 50  # server-limited
        big = {"inputs": {"region": "x" * 1500}}
        reply = client.post("/processes/area-by-class/execution", json=big, headers=h)
        assert reply.status_code == 413 and "1000 bytes" in reply.json()["description"]
        huge = client.post("/stac/search", content=b"{" + b" " * 3000 + b"}", headers=h)
        assert huge.status_code == 413
        codes = [client.get("/conformance?f=json", headers=h).status_code for _ in range(8)]
        assert codes[:3] == [200, 200, 200] and codes[-1] == 429
        limited = client.get("/conformance?f=json", headers=h)
        assert "rate limit" in limited.json()["description"] and limited.headers["retry-after"]
        # another caller is not slowed by this one
        assert client.get("/conformance?f=json").status_code == 200
