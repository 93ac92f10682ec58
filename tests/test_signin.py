"""Browser sign-in: the session cookie's flags, expiry, sign-out, CSRF, no secret in a page.

Expectations come from the HTTP rules, not from the code: RFC 6265 cookie attributes
(HttpOnly, SameSite, Path, Max-Age = SHIKONG_SESSION_HOURS), a restricted collection
answering 404 to the public and 200 to its grantee (config/access_policy.yaml gives psb
rer-parcels), a cross-site POST refused. The OIDC flow runs against a provider the test
starts on a loopback port (tests/signin_oidc_provider.py).
"""

from __future__ import annotations

import re
import time
import types

import pytest
from conftest import free_port
from shikong.server.app import create_app
from shikong.server.identity import KeyStore
from shikong.server.workbench import session as session_module
from signin_oidc_provider import RunningProvider
from starlette.testclient import TestClient

RESTRICTED = "/collections/rer-parcels?f=json"


@pytest.fixture(scope="module")
def keys(demo_data):
    store = KeyStore(demo_data)
    return {
        "psb": store.create("psb", "signin-psb")[0],
        "nrp": store.create("nrp", "signin-nrp")[0],
        "revoked": store.create("psb", "signin-revoked"),
    }


@pytest.fixture(scope="module")
def app(demo_data, keys):
    return create_app(demo_data, url=None, watch=False)


def client(app, base="http://testserver") -> TestClient:
    return TestClient(app, base_url=base, follow_redirects=False)


def cookies_of(response) -> dict[str, str]:
    """Set-Cookie lines by cookie name."""
    lines = response.headers.get_list("set-cookie")
    return {line.split("=", 1)[0]: line for line in lines}


def attributes(line: str) -> dict[str, str | bool]:
    parts = [p.strip() for p in line.split(";")]
    out: dict[str, str | bool] = {"value": parts[0].split("=", 1)[1]}
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        out[k.lower()] = v if eq else True
    return out


def sign_in(c: TestClient, key: str, **headers) -> tuple[str, str, object]:
    r = c.post("/signin", data={"key": key, "next": "/workbench"}, headers=headers)
    assert r.status_code == 303, r.text
    cookies = cookies_of(r)
    c.cookies.clear()  # the tests send cookies by hand
    sid = attributes(cookies["shikong_session"])["value"]
    csrf = attributes(cookies["shikong_csrf"])["value"]
    return sid, csrf, r


def cookie(sid: str, csrf: str | None = None) -> dict[str, str]:
    value = f"shikong_session={sid}" + (f"; shikong_csrf={csrf}" if csrf else "")
    return {"cookie": value}


def test_session_cookie_flags(app, keys):
    c = client(app)
    _, _, r = sign_in(c, keys["psb"])
    assert r.headers["location"] == "/workbench"
    flags = attributes(cookies_of(r)["shikong_session"])
    assert flags["httponly"] is True
    assert flags["samesite"].lower() in ("lax", "strict")
    assert flags["path"] == "/"
    assert abs(int(flags["max-age"]) - 8 * 3600) <= 5  # SHIKONG_SESSION_HOURS default 8
    assert "secure" not in flags  # plain http here: a Secure cookie would never come back
    assert len(flags["value"]) >= 40  # 32 random bytes, URL-safe base64
    csrf = attributes(cookies_of(r)["shikong_csrf"])
    assert "httponly" not in csrf and csrf["samesite"].lower() == "strict"


def test_secure_flag_on_https(demo_data, keys):
    app = create_app(demo_data, url="https://gis.example.gov.cn", watch=False)
    c = client(app, "https://gis.example.gov.cn")
    r = c.post("/signin", data={"key": keys["psb"]})
    assert r.status_code == 303
    for line in cookies_of(r).values():
        assert attributes(line).get("secure") is True


def test_cookie_is_a_credential_and_signout_ends_it(app, keys):
    c = client(app)
    assert c.get(RESTRICTED).status_code == 404  # the public: as if absent
    sid, csrf, _ = sign_in(c, keys["psb"])
    assert c.get(RESTRICTED, headers=cookie(sid)).status_code == 200
    who = c.get("/signin/whoami", headers=cookie(sid)).json()
    assert who == {
        "signedIn": True,
        "user": "signin-psb",
        "department": "psb",
        "departmentName": "公安局",
        "role": "user",
    }
    r = c.post("/signout", headers={**cookie(sid, csrf), "x-csrf-token": csrf})
    assert r.status_code == 303
    cleared = attributes(cookies_of(r)["shikong_session"])
    assert cleared["value"] == "" and cleared["max-age"] == "0"
    # the old id opens nothing any more, even if a browser kept it
    assert c.get(RESTRICTED, headers=cookie(sid)).status_code == 404
    assert c.get("/signin/whoami", headers=cookie(sid)).json() == {"signedIn": False}


def test_session_expires(app, keys, monkeypatch):
    c = client(app)
    sid, _, _ = sign_in(c, keys["psb"])
    assert c.get(RESTRICTED, headers=cookie(sid)).status_code == 200
    later = time.time() + 8 * 3600 + 60  # just past SHIKONG_SESSION_HOURS=8
    monkeypatch.setattr(session_module, "time", types.SimpleNamespace(time=lambda: later))
    assert c.get(RESTRICTED, headers=cookie(sid)).status_code == 404
    assert c.get("/signin/whoami", headers=cookie(sid)).json() == {"signedIn": False}


def test_session_hours_from_environment(demo_data, keys, monkeypatch):
    monkeypatch.setenv("SHIKONG_SESSION_HOURS", "0.5")
    app = create_app(demo_data, url=None, watch=False)
    r = client(app).post("/signin", data={"key": keys["psb"]})
    assert abs(int(attributes(cookies_of(r)["shikong_session"])["max-age"]) - 1800) <= 5


def test_wrong_key_is_refused_without_a_cookie(app, keys):
    c = client(app)
    r = c.post("/signin", data={"key": "sk_deadbeef_notakey"})
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert r.json()["code"] == "Unauthorized"
    html = c.post("/signin", data={"key": "nonsense"}, headers={"accept": "text/html"})
    assert html.status_code == 401 and "登录失败" in html.text


def test_csrf_refuses_cookie_writes_without_the_token(app, keys):
    c = client(app)
    sid, csrf, _ = sign_in(c, keys["psb"])
    body = {"inputs": {"lon": 113.3, "lat": 33.785}}
    url = "/processes/parcel-at-point/execution"
    # a forged cross-site POST: the browser sends the cookie (were it not SameSite) but the
    # attacker's page cannot read the token
    forged = c.post(
        url,
        json=body,
        headers={**cookie(sid), "origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert forged.status_code == 403
    assert "CSRF" in forged.json()["description"]
    wrong = c.post(url, json=body, headers={**cookie(sid), "x-csrf-token": csrf[:-2] + "xx"})
    assert wrong.status_code == 403
    assert c.post("/signout", headers=cookie(sid)).status_code == 403  # still signed in
    assert c.get(RESTRICTED, headers=cookie(sid)).status_code == 200
    ok = c.post(url, json=body, headers={**cookie(sid), "x-csrf-token": csrf})
    assert ok.status_code == 200, ok.text
    # a plain form carries it as a field
    form = c.post("/signout", data={"csrf_token": csrf}, headers=cookie(sid))
    assert form.status_code == 303


def test_key_callers_need_no_csrf_token(app, keys):
    r = client(app).post(
        "/processes/parcel-at-point/execution",
        json={"inputs": {"lon": 113.3, "lat": 33.785}},
        headers={"x-api-key": keys["psb"]},
    )
    assert r.status_code == 200


def test_cross_site_signin_is_refused(app, keys):
    """Login CSRF: another site cannot sign a victim's browser in as the attacker."""
    r = client(app).post(
        "/signin",
        data={"key": keys["nrp"]},
        headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert r.status_code == 403 and "set-cookie" not in r.headers


def test_no_open_redirect(app, keys):
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = client(app).post("/signin", data={"key": keys["nrp"], "next": target})
        assert r.headers["location"] == "/workbench"


def test_no_secret_in_pages_or_urls(app, keys):
    c = client(app)
    sid, csrf, r = sign_in(c, keys["psb"])
    secrets = (keys["psb"], sid, csrf)
    assert not any(s in r.headers["location"] for s in secrets)
    for path in ("/workbench", "/signin", "/signin/whoami", "/workbench?next=/x"):
        page = c.get(path, headers=cookie(sid, csrf))
        assert page.status_code == 200
        assert not any(s in page.text for s in secrets), path
        assert not re.search(r"sk_[0-9a-f]{8}_", page.text)
    assert "signin-psb" in c.get("/workbench", headers=cookie(sid)).text  # who is signed in


def test_revoked_key_ends_its_sessions(app, demo_data, keys):
    key, record = keys["revoked"]
    c = client(app)
    sid, _, _ = sign_in(c, key)
    assert c.get(RESTRICTED, headers=cookie(sid)).status_code == 200
    KeyStore(demo_data).revoke(record.key_id)
    assert c.get(RESTRICTED, headers=cookie(sid)).status_code == 404


def test_pages_say_who_is_signed_in(app, keys):
    c = client(app)
    anonymous = c.get("/workbench").text
    assert "未登录" in anonymous and 'href="/signin' in anonymous
    sid, _, _ = sign_in(c, keys["nrp"])
    page = c.get("/signin", headers=cookie(sid)).text
    assert "signin-nrp" in page and "自然资源和规划局" in page and "退出登录" in page


# -- OpenID Connect --------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider():
    running = RunningProvider(free_port())
    yield running.provider
    running.stop()


@pytest.mark.parametrize("keys_from", ["jwks", "jwt-settings"])
def test_oidc_code_flow_with_pkce(demo_data, provider, monkeypatch, tmp_path, keys_from):
    monkeypatch.setenv("SHIKONG_OIDC_ISSUER", provider.issuer)
    monkeypatch.setenv("SHIKONG_OIDC_CLIENT_ID", provider.client_id)
    if keys_from == "jwt-settings":
        pem = tmp_path / "idp.pem"
        pem.write_bytes(provider.public_pem)
        monkeypatch.setenv("SHIKONG_JWT_ISSUER", provider.issuer)
        monkeypatch.setenv("SHIKONG_JWT_PUBLIC_KEY", str(pem))
    app = create_app(demo_data, url=None, watch=False)
    c = client(app)
    start = c.get("/signin/oidc?next=/workbench")
    assert start.status_code == 303
    location = start.headers["location"]
    assert location.startswith(f"{provider.issuer}/authorize?")
    assert "code_challenge=" in location and "code_challenge_method=S256" in location
    state_cookie = attributes(cookies_of(start)["shikong_oidc_state"])
    assert state_cookie["httponly"] is True
    import httpx

    back = httpx.get(location, follow_redirects=False).headers["location"]  # the provider
    callback = back.replace("http://testserver", "")
    # without the browser's state cookie the callback is refused (another browser)
    c.cookies.clear()
    assert c.get(callback).status_code == 400
    state = state_cookie["value"]
    done = c.get(callback, headers={"cookie": f"shikong_oidc_state={state}"})
    assert done.status_code == 303 and done.headers["location"] == "/workbench"
    request = provider.token_requests[-1]
    assert request["grant_type"] == "authorization_code" and len(request["code_verifier"]) >= 43
    sid = attributes(cookies_of(done)["shikong_session"])["value"]
    assert c.get(RESTRICTED, headers=cookie(sid)).status_code == 200  # psb from the ID token
    who = c.get("/signin/whoami", headers=cookie(sid)).json()
    assert who["user"] == "li.wei" and who["department"] == "psb"
    # the same state cannot be replayed
    c.cookies.clear()
    replay = c.get(callback, headers={"cookie": f"shikong_oidc_state={state}"})
    assert replay.status_code in (400, 401)
