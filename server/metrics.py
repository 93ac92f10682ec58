"""Prometheus metrics for operators: ``GET /metrics`` and the middleware that counts.

A small ASGI middleware around the Starlette app (inside the gate) counts every request
the app answers and times it, labelled by the *route template* that served it
(``/collections/{collection_id}/items``, never the raw path, so the label set stays
bounded), the method and the status class (``2xx``…). A request no route matched is
``route="(unmatched)"``. Refusals the gate answers itself (bad credential 401, rate limit
429, body too large 413, CSRF 403) never reach the app: the gate counts them in
``shikong_gate_refusals`` by status (and the audit log has each, ``/stats``).
Readings posted over HTTP are counted per process by outcome in
``shikong_readings_posted`` (accepted, duplicate, and each reason of refusal).

Read at each scrape: the catalog version, the tile cache's hits and misses, and the
readings the MQTT channel ingested (the observation store's counters, summed over every
worker). The registry is per application, so per process: with ``serve --workers N``
each worker answers with its own request counts (a scrape reaches one of them), while
the readings counters are shared ones.

Who may read it: auditors and admins (with their key), and callers on the loopback
interface without a credential (a scraper on the same host); others get the 404 of a
missing resource. A reverse proxy on the same host must be a trusted proxy
(``SHIKONG_TRUSTED_PROXIES``) so that its callers are not taken for loopback ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from .problems import problem

if TYPE_CHECKING:
    from .app import Server

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"
LOOPBACK = frozenset({"127.0.0.1", "::1"})
ROLES = ("auditor", "admin")
# seconds; tiles and cached reads answer in about a millisecond, big exports in seconds
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """One application's registry: request counters and latencies, plus server readings."""

    def __init__(self, server: Server) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "shikong_http_requests",
            "HTTP requests answered, by route template, method and status class",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "shikong_http_request_duration_seconds",
            "Time from a request reaching the app to its last byte sent, by route template",
            ("route", "method"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.gate_refusals = Counter(
            "shikong_gate_refusals",
            "Requests the gate refused before the app (401 credential, 403 CSRF, 413 body "
            "too large, 429 rate limit), by status",
            ("status",),
            registry=self.registry,
        )
        self.readings_posted = Counter(
            "shikong_readings_posted",
            "Readings posted over HTTP to this process, by outcome",
            ("outcome",),
            registry=self.registry,
        )
        self.registry.register(ServerCollector(server))

    def refused(self, status: int) -> None:
        """A request the gate answered itself."""
        self.gate_refusals.labels(str(status)).inc()

    def posted(self, accepted: int, duplicates: int, rejected: Mapping[str, int]) -> None:
        """The outcome of one HTTP batch of readings."""
        if accepted:
            self.readings_posted.labels("accepted").inc(accepted)
        if duplicates:
            self.readings_posted.labels("duplicate").inc(duplicates)
        for reason, n in rejected.items():
            self.readings_posted.labels(reason).inc(n)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "other"
        self.requests.labels(route, method, f"{status // 100}xx").inc()
        self.latency.labels(route, method).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class ServerCollector:
    """Values read from the server at each scrape (nothing to keep in step)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        version = GaugeMetricFamily(
            "shikong_catalog_version", "The catalog version this process serves"
        )
        version.add_metric([], float(self.server.publisher.snapshot.version))
        yield version
        cache = getattr(self.server, "_tile_cache", None)  # made on the first tile asked
        tiles = CounterMetricFamily(
            "shikong_tile_cache_lookups",
            "Tiles of this process: hit served from the cache, miss rendered",
            labels=("result",),
        )
        tiles.add_metric(["hit"], float(getattr(cache, "hits", 0)))
        tiles.add_metric(["miss"], float(getattr(cache, "misses", 0)))
        yield tiles
        readings = CounterMetricFamily(
            "shikong_readings_ingested",
            "Readings of the MQTT channel, by outcome (summed over every worker)",
            labels=("channel", "outcome"),
        )
        for outcome, n in sorted(self.server.catalog.observations.counts("mqtt").items()):
            readings.add_metric(["mqtt", outcome], float(n))
        yield readings


class RouteTemplates:
    """The template of the route that served a request, from the endpoint the router
    left in the scope (several routes may share one endpoint: their regexes decide)."""

    def __init__(self, routes: Callable[[], list[Any]]) -> None:
        self._routes = routes
        self._by_endpoint: dict[Any, list[tuple[Any, str]]] | None = None

    def _index(self) -> dict[Any, list[tuple[Any, str]]]:
        index: dict[Any, list[tuple[Any, str]]] = {}
        for route in self._routes():
            if isinstance(route, Route):
                index.setdefault(route.endpoint, []).append((route.path_regex, route.path))
            elif isinstance(route, Mount):
                index.setdefault(route.app, []).append((route.path_regex, f"{route.path}/{{path}}"))
        return index

    def of(self, endpoint: Any, path: str) -> str:
        if endpoint is None:
            return UNMATCHED
        if self._by_endpoint is None:
            self._by_endpoint = self._index()
        candidates = self._by_endpoint.get(endpoint, ())
        if len(candidates) == 1:
            return candidates[0][1]
        for regex, template in candidates:
            if regex.match(path):
                return template
        return UNMATCHED


class MetricsMiddleware:
    """ASGI middleware: count and time each HTTP request by its route template."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = RouteTemplates(lambda: app.routes)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        status = 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = self.templates.of(scope.get("endpoint"), path)
            self.metrics.observe(route, scope["method"], status, time.perf_counter() - started)


def instrument(app: Any, server: Server) -> MetricsMiddleware:
    """The app wrapped in the counting middleware; ``/metrics`` answers from its registry."""
    metrics = Metrics(server)
    app.state.metrics = metrics
    return MetricsMiddleware(app, metrics)


def may_read(request: Request) -> bool:
    """Auditors and admins, or a caller without a credential on the loopback interface."""
    from .app import context  # app imports this module

    caller = context(request).caller
    if caller.anonymous:
        client = request.client
        return client is not None and client.host in LOOPBACK
    return caller.role in ROLES


def routes(server: Server) -> list[Route]:
    """``GET /metrics`` in the Prometheus text exposition format."""

    async def exposition(request: Request) -> Response:
        if not may_read(request):
            from .app import context

            context(request).denied = True
            return problem(404, "NotFound", f"no resource at {request.url.path}")
        metrics: Metrics = request.app.state.metrics
        body = await run_in_threadpool(metrics.exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", exposition)]
