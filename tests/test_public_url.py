"""Links follow the request's own host unless a public URL is configured (issue 16, item 21)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from shikong.server.public_url import PublicUrl, parse_networks


class Served:
    """`shikong serve` without --url (the case that wrote localhost into every link)."""

    def __init__(self, data: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("shikong")
        clean = {k: v for k, v in os.environ.items() if k != "SHIKONG_URL"}
        self.proc = subprocess.Popen(
            [exe, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(self.port)],
            env={**clean, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/conformance?f=json", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.proc.kill()
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def hrefs(body: dict) -> list[str]:
    return [link["href"] for link in body.get("links", [])]


def under(base: str, href: str) -> bool:
    return href.startswith(base) and href[len(base) : len(base) + 1] in ("", "/", "?")


@pytest.fixture(scope="module")
def served(demo_data):
    running = Served(demo_data, {"SHIKONG_TRUSTED_PROXIES": "10.9.9.9"})
    yield running
    running.stop()


def test_links_name_the_host_the_client_used(served):
    for path in ("/", "/collections/tra-roads/items?f=json&limit=1", "/stac", "/stac/search"):
        body = httpx.get(f"{served.url}{path}").json()
        links = hrefs(body)
        assert links and all(under(served.url, h) for h in links), (path, links)
    colleague = {"Host": f"gis.city.example:{served.port}"}
    body = httpx.get(f"{served.url}/collections/tra-roads?f=json", headers=colleague).json()
    assert all(under(f"http://gis.city.example:{served.port}", h) for h in hrefs(body))
    described = next(h for h in hrefs(body) if "stac/collections" in h)
    assert described == f"http://gis.city.example:{served.port}/stac/collections/tra-roads"
    search = httpx.get(f"{served.url}/stac/search?collections=tra-roads", headers=colleague)
    asset = next(iter(search.json()["features"][0]["assets"].values()))["href"]
    assert asset.startswith(f"http://gis.city.example:{served.port}/assets/tra/roads/")


def test_forwarded_headers_count_only_from_a_trusted_proxy(served):
    forged = {"X-Forwarded-Host": "phish.example", "X-Forwarded-Proto": "https"}
    body = httpx.get(f"{served.url}/stac", headers=forged).json()
    assert all(under(served.url, h) for h in hrefs(body))  # 127.0.0.1 is not trusted
    bad_host = httpx.get(f"{served.url}/stac", headers={"Host": "a b"})
    assert bad_host.status_code in (200, 400)
    if bad_host.status_code == 200:
        assert all("a b" not in h for h in hrefs(bad_host.json()))


def test_a_configured_url_is_written_in_every_link(demo_data):
    running = Served(demo_data, {"SHIKONG_URL": "https://gis.example.gov.cn/shikong"})
    try:
        body = httpx.get(f"{running.url}/stac", headers={"Host": "other:1"}).json()
        assert all(under("https://gis.example.gov.cn/shikong", h) for h in hrefs(body))
    finally:
        running.stop()


def scope(client: str, headers: dict[str, str], scheme: str = "http") -> dict:
    encoded = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "scheme": scheme, "client": (client, 50000), "headers": encoded}


def test_the_base_url_rules():
    proxies = parse_networks("10.0.0.0/8, ::1")
    public = PublicUrl(None, "http://localhost:5000", proxies)
    assert public.of(scope("192.168.1.5", {"host": "gis:8080"})) == "http://gis:8080"
    via_proxy = {
        "host": "backend:5000",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "gis.city.cn",
        "x-forwarded-prefix": "/shikong/",
    }
    assert public.of(scope("10.1.2.3", via_proxy)) == "https://gis.city.cn/shikong"
    assert public.of(scope("192.168.1.5", via_proxy)) == "http://backend:5000"
    rfc7239 = {"host": "backend", "forwarded": 'for=1.2.3.4;proto=https;host="g.cn:443", for=x'}
    assert public.of(scope("::1", rfc7239)) == "https://g.cn:443"
    assert public.of(scope("192.168.1.5", {"host": "x/../y"})) == "http://localhost:5000"
    assert public.of(scope("192.168.1.5", {})) == "http://localhost:5000"
    forwarded_for = {"host": "b", "x-forwarded-for": "203.0.113.9, 10.0.0.7"}
    assert public.client_of(scope("10.1.2.3", forwarded_for)) == ("203.0.113.9", 0)
    assert public.client_of(scope("192.168.1.5", forwarded_for)) == ("192.168.1.5", 50000)
    fixed = PublicUrl("https://gis.example/", "http://localhost:5000", proxies)
    assert fixed.of(scope("10.1.2.3", via_proxy)) == "https://gis.example"
