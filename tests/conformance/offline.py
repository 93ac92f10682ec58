"""Run a conformance tool with the JSON schemas it fetches from the web served locally.

CI has no general internet, and the suites look schemas up by URL. Every HTTP client
they use (requests, urllib3, urllib, httpx) is given a transport that answers a URL on a mirrored
host from ``schemas/<host>/<path>``; other URLs (the server under test) go out as usual.
A URL on a mirrored host that has no copy is a 404, named on stderr, never a fetch.

Usage: ``python offline.py MODULE ARGS...`` runs ``python -m MODULE ARGS...``;
``SHIKONG_CONFORMANCE_HEADERS`` (JSON) adds headers to every httpx request (ogctests has
no header option), e.g. the API key.
"""

from __future__ import annotations

import email.message
import io
import json
import os
import runpy
import sys
import urllib.request
import urllib.response
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

SCHEMAS = Path(__file__).with_name("schemas")
# Our own extension's schema ships in the package: served from there, not copied.
PACKAGE_SCHEMAS = {
    "https://shikong.dev/stac/shikong/v1.0.0/schema.json": "schemas/shikong-v1.0.0.json",
}
MIRRORED = {p.name for p in SCHEMAS.iterdir() if p.is_dir()} | {"shikong.dev"}


def local_copy(url: str) -> tuple[int, bytes, str] | None:
    """(status, body, media type) for a URL on a mirrored host; None for other hosts."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in MIRRORED:
        return None
    plain = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if plain in PACKAGE_SCHEMAS:
        body = resources.files("shikong.catalog").joinpath(PACKAGE_SCHEMAS[plain]).read_bytes()
        return 200, body, "application/json"
    path = (SCHEMAS / parts.hostname / parts.path.lstrip("/")).resolve()
    if not path.is_relative_to(SCHEMAS.resolve()) or not path.is_file():
        print(f"offline: no local copy of {url}", file=sys.stderr)
        return 404, b"not mirrored", "text/plain"
    kind = "application/json" if path.suffix == ".json" else "application/yaml"
    return 200, path.read_bytes(), kind


def _patch_requests() -> None:
    import requests
    from requests.adapters import BaseAdapter
    from requests.structures import CaseInsensitiveDict

    class LocalAdapter(BaseAdapter):
        def send(self, request, **kwargs):
            status, body, kind = local_copy(request.url)
            response = requests.Response()
            response.status_code, response.url, response.request = status, request.url, request
            response.headers = CaseInsensitiveDict({"Content-Type": kind})
            response.raw = io.BytesIO(body)
            response.encoding = "utf-8"
            return response

        def close(self) -> None:
            pass

    original = requests.Session.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        for host in MIRRORED:
            for scheme in ("http", "https"):
                self.mount(f"{scheme}://{host}/", LocalAdapter())

    requests.Session.__init__ = init


class _LocalHandler(urllib.request.BaseHandler):
    handler_order = 100  # before the real HTTP(S) handlers, which get what we decline

    def _open(self, request):
        found = local_copy(request.full_url)
        if found is None:
            return None
        status, body, kind = found
        headers = email.message.Message()
        headers["Content-Type"] = kind
        if status != 200:
            raise urllib.error.HTTPError(request.full_url, status, "not mirrored", headers, None)
        return urllib.response.addinfourl(io.BytesIO(body), headers, request.full_url, status)

    http_open = https_open = _open


def _patch_urllib() -> None:
    urllib.request.install_opener(urllib.request.build_opener(_LocalHandler()))


def _patch_httpx() -> None:
    import httpx

    class LocalTransport(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            status, body, kind = local_copy(str(request.url))
            return httpx.Response(status, content=body, headers={"Content-Type": kind})

    extra = json.loads(os.environ.get("SHIKONG_CONFORMANCE_HEADERS", "{}"))
    original = httpx.Client.__init__

    def init(self, *args, headers=None, mounts=None, **kwargs):
        local = {f"{s}://{host}": LocalTransport() for host in MIRRORED for s in ("http", "https")}
        original(
            self,
            *args,
            headers={**extra, **dict(headers or {})},
            mounts={**local, **dict(mounts or {})},
            **kwargs,
        )

    httpx.Client.__init__ = init


def _patch_urllib3() -> None:
    """pystac reads through a bare urllib3 PoolManager (requests goes below it)."""
    import urllib3

    original = urllib3.PoolManager.urlopen

    def urlopen(self, method, url, *args, **kwargs):
        found = local_copy(url)
        if found is None:
            return original(self, method, url, *args, **kwargs)
        status, body, kind = found
        return urllib3.HTTPResponse(
            body=io.BytesIO(body),
            status=status,
            headers={"Content-Type": kind},
            preload_content=kwargs.get("preload_content", True),
            request_url=url,
        )

    urllib3.PoolManager.urlopen = urlopen


def install() -> None:
    _patch_requests()
    _patch_urllib3()
    _patch_urllib()
    _patch_httpx()


if __name__ == "__main__":
    install()
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
