"""The base URL links are written with: the configured one, or the request's own.

Served on 0.0.0.0 without ``--url``, every link used to say ``http://localhost:PORT``, so
a colleague's QGIS, GDAL or pystac-client followed links to its own machine. Now, unless
a public URL is configured (``--url``, ``$SHIKONG_URL``), links follow the scheme and
``Host`` of each request. Behind a reverse proxy, ``Forwarded`` (RFC 7239) or
``X-Forwarded-Proto``/``-Host``/``-Prefix`` are believed only when the connection comes
from an address listed in ``$SHIKONG_TRUSTED_PROXIES`` (comma-separated addresses or
networks): anyone else could make the server write links to a host of their choosing.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

# The base URL of the request being answered (set by PublicUrl's middleware).
BASE_URL: ContextVar[str | None] = ContextVar("shikong_base_url", default=None)
HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)
PREFIX = re.compile(r"^(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_from_env() -> list[Network]:
    """The proxies named in $SHIKONG_TRUSTED_PROXIES."""
    return parse_networks(os.environ.get("SHIKONG_TRUSTED_PROXIES", ""))


def parse_networks(text: str | Iterable[str]) -> list[Network]:
    items = text.split(",") if isinstance(text, str) else list(text)
    return [ipaddress.ip_network(i.strip(), strict=False) for i in items if i.strip()]


def _forwarded(value: str) -> dict[str, str]:
    """The first element of a Forwarded header (the proxy nearest the client)."""
    first = value.split(",")[0]
    pairs = (p.split("=", 1) for p in first.split(";") if "=" in p)
    return {k.strip().lower(): v.strip().strip('"') for k, v in pairs}


class PublicUrl:
    """Works out the base URL of a request (see the module docstring)."""

    def __init__(self, fixed: str | None, fallback: str, trusted: Iterable[Network] = ()) -> None:
        self.fixed = fixed.rstrip("/") if fixed else None
        self.fallback = fallback.rstrip("/")
        self.trusted = list(trusted)

    def _from_proxy(self, scope: dict) -> bool:
        client = scope.get("client")
        if not client or not self.trusted:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def of(self, scope: dict) -> str:
        """The base URL for links in the answer to this request."""
        if self.fixed:
            return self.fixed
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scheme = scope.get("scheme", "http")
        host = headers.get("host", "")
        prefix = ""
        if self._from_proxy(scope):
            if "forwarded" in headers:
                found = _forwarded(headers["forwarded"])
                scheme = found.get("proto", scheme)
                host = found.get("host", host)
            else:
                scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
                host = headers.get("x-forwarded-host", host).split(",")[0].strip()
                prefix = headers.get("x-forwarded-prefix", "").split(",")[0].strip().rstrip("/")
        if scheme not in ("http", "https") or not HOST.match(host) or not PREFIX.match(prefix):
            return self.fallback
        return f"{scheme}://{host}{prefix}"

    def client_of(self, scope: dict) -> tuple[str, int] | None:
        """The caller's address: behind a trusted proxy, the nearest untrusted hop it names."""
        client = scope.get("client")
        if not self._from_proxy(scope):
            return client
        for name, value in scope["headers"]:
            if name.lower() == b"x-forwarded-for":
                hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
                for hop in reversed(hops):
                    try:
                        address = ipaddress.ip_address(hop)
                    except ValueError:
                        break
                    if not any(address in network for network in self.trusted):
                        return (hop, 0)
        return client

    def middleware(self, app: Any) -> BaseUrlMiddleware:
        return BaseUrlMiddleware(app, self)


class BaseUrlMiddleware:
    """ASGI middleware: sets BASE_URL, and the caller's address behind a trusted proxy
    (so the gate's rate limits and audit see the caller, not the proxy)."""

    def __init__(self, app: Any, public: PublicUrl) -> None:
        self.app, self.public = app, public
        self.state = getattr(app, "state", None)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        token = BASE_URL.set(self.public.of(scope))
        scope = {**scope, "client": self.public.client_of(scope)}
        try:
            return await self.app(scope, receive, send)
        finally:
            BASE_URL.reset(token)


def current(default: str) -> str:
    """The base URL of the request being answered, or ``default`` outside a request."""
    return BASE_URL.get() or default
