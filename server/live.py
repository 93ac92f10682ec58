"""Live ingest endpoints: HTTP batches and an MQTT subscriber, both into LiveIngest.

HTTP: ``POST /readings`` with a JSON array, NDJSON or CSV; the 200 answer comes after the
commit (the store syncs to disk), with counts of what was accepted and refused, and why.
MQTT: topics ``shikong/<department>/<kind>/<sensor>`` with a JSON reading, a list, or
``{"readings": [...]}``; messages are committed in small batches (every 20 ms or 5,000
readings) and fired alerts are published on ``shikong/alerts/<department>/<sensor>``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import pandas as pd
from shikong.catalog.live import LiveIngest, load_json, parse_batch, readings_frame
from shikong.catalog.policy import Access
from shikong.spatial.errors import InputError, ShikongError
from shikong.spatial.temporal import parse_datetime
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .guard import CHALLENGES
from .problems import problem

LOGGER = logging.getLogger(__name__)
MAX_BODY = 64 * 1024 * 1024
TOPIC_PREFIX = "shikong"
COUNTS_EVERY = 0.25  # seconds between writes of the MQTT counters while messages stream in


class LiveApi:
    """HTTP routes for live data: ingest, alerts, channel statistics."""

    def __init__(
        self,
        live: LiveIngest,
        bridge: MqttBridge | None = None,
        access_of: Callable[[Request], Access] | None = None,
    ) -> None:
        self.live = live
        self.bridge = bridge
        self.access_of = access_of or (lambda request: Access(frozenset(), frozenset()))

    def _hidden_layer(self, request: Request, layer: str) -> Response | None:
        """404 for a layer the caller may not see, exactly as for one that is absent."""
        if layer in self.access_of(request).visible:
            ctx = getattr(request.state, "shikong", None)
            if ctx is not None:
                ctx.touch(layer)
            return None
        return problem(404, "NotFound", f"no layer {layer!r} in the catalog")

    async def post_readings(self, request: Request) -> Response:
        """A batch of readings; each is kept only if the caller may write its layer (its
        department's sensors, a write grant, or the gateway role)."""
        caller = request.state.shikong.caller if hasattr(request.state, "shikong") else None
        if caller is None or caller.anonymous:
            return problem(
                401,
                "Unauthorized",
                "posting readings needs an identity (X-API-Key, Basic or a bearer token) "
                "of the sensors' department or a gateway",
                [("www-authenticate", c) for c in CHALLENGES],  # HTTP: every 401 challenges
            )
        writable = self.access_of(request).writable
        gateway = caller.role == "gateway"
        body = await request.body()
        if len(body) > MAX_BODY:
            return problem(413, "PayloadTooLarge", f"batch over {MAX_BODY} bytes")
        content_type = request.headers.get("content-type", "")
        may_write = None if gateway else writable.__contains__

        def parse_and_ingest():
            with self.live.one_batch:  # parsing included (see LiveIngest.one_batch)
                return self.live.ingest(parse_batch(body, content_type), None, None, may_write)

        try:
            result = await run_in_threadpool(parse_and_ingest)
        except ShikongError as exc:
            return problem(400, "InvalidParameterValue", str(exc))
        if result.rejected:
            LOGGER.info("POST /readings: %s refused (%s)", dict(result.rejected), result.examples)
        metrics = getattr(request.app.state, "metrics", None)  # /metrics counts outcomes
        if metrics is not None:
            metrics.posted(result.accepted, result.duplicates, result.rejected)
        if result.alerts and self.bridge is not None:
            self.bridge.publish_alerts(result.alerts)
        return JSONResponse(result.to_dict())

    async def get_alerts(self, request: Request) -> Response:
        since = request.query_params.get("since")
        try:  # the one datetime parser: a date is its day's start here
            since_ts = pd.Timestamp(parse_datetime(since, name="since").start) if since else None
        except InputError as exc:
            return problem(400, "InvalidParameterValue", str(exc))
        frame = self.live.observations.alerts(since=since_ts)
        frame = frame[frame["layer"].isin(self.access_of(request).visible)]
        frame["time"] = frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        return JSONResponse({"alerts": frame.to_dict("records")})

    async def latest(self, request: Request) -> Response:
        """Newest reading of each sensor of a layer: ?layer=…[&sensors=a,b]."""
        layer = request.query_params.get("layer")
        if not layer:
            return problem(400, "MissingParameterValue", "give layer=<sensors collection id>")
        hidden = self._hidden_layer(request, layer)
        if hidden is not None:
            return hidden
        sensors = request.query_params.get("sensors")
        frame = self.live.observations.latest(layer, sensors.split(",") if sensors else None)
        frame["time"] = frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        return JSONResponse({"layer": layer, "readings": frame.to_dict("records")})

    async def resample(self, request: Request) -> Response:
        """Aggregates: ?layer=…&sensors=…&freq=1h&how=mean&start=…&end=…"""
        q = request.query_params
        if not q.get("layer"):
            return problem(400, "MissingParameterValue", "give layer=<sensors collection id>")
        hidden = self._hidden_layer(request, q["layer"])
        if hidden is not None:
            return hidden
        try:
            frame = self.live.observations.resample(
                q["layer"],
                q["sensors"].split(",") if q.get("sensors") else None,
                pd.Timestamp(q["start"]) if q.get("start") else None,
                pd.Timestamp(q["end"]) if q.get("end") else None,
                q.get("freq", "1h"),
                q.get("how", "mean"),
            )
        except ValueError as exc:
            return problem(400, "InvalidParameterValue", str(exc))
        frame["time"] = frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        return JSONResponse({"layer": q["layer"], "rows": frame.to_dict("records")})

    async def stats(self, request: Request) -> Response:
        return JSONResponse({"mqtt": self.bridge.stats() if self.bridge else None})

    def routes(self) -> list[Route]:
        return [
            Route("/readings", self.post_readings, methods=["POST"]),
            Route("/readings/alerts", self.get_alerts),
            Route("/readings/latest", self.latest),
            Route("/readings/resample", self.resample),
            Route("/readings/stats", self.stats),
        ]


class MqttBridge:
    """Subscribes to sensor topics and commits their readings in small batches."""

    def __init__(
        self, live: LiveIngest, url: str, batch_ms: int = 20, batch_max: int = 5000
    ) -> None:
        import paho.mqtt.client as mqtt

        from .mqtt_client import BufferedClient

        parsed = urlparse(url if "://" in url else f"mqtt://{url}")
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 1883
        self.live = live
        self.batch_ms, self.batch_max = batch_ms, batch_max
        self.queue: queue.SimpleQueue[tuple[str, bytes] | None] = queue.SimpleQueue()
        self.counts: Counter = Counter()  # this process's; the store sums every worker's
        self._flushed: Counter = Counter()
        self._counts_due = 0.0
        self.lock = threading.Lock()
        self.client = BufferedClient(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"shikong-server-{id(self)}"
        )
        # one shared subscription per data directory: the broker hands each message to
        # one of the server's worker processes (``serve --workers``), not to all of them
        root = str(live.store.paths.root.resolve())
        self.group = "shikong-" + hashlib.sha256(root.encode()).hexdigest()[:12]
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._writer = threading.Thread(target=self._write_loop, name="mqtt-writer", daemon=True)

    def start(self) -> None:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        self._writer.start()

    def stop(self) -> None:
        self.queue.put(None)
        self.client.loop_stop()
        self.client.disconnect()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(f"$share/{self.group}/{TOPIC_PREFIX}/+/+/+", qos=1)

    def _count(self, reason: str, n: int = 1) -> None:
        with self.lock:
            self.counts[reason] += n

    def _flush_counts(self) -> None:
        """Add this process's new counts to the store's (shared by the server's workers);
        on failure they stay pending for the next flush and ingest goes on."""
        with self.lock:
            now = Counter(self.counts)
        new = {k: v - self._flushed[k] for k, v in now.items() if v != self._flushed[k]}
        try:
            self.live.observations.add_counts("mqtt", new)
        except Exception:  # the counters must never stop the subscriber
            LOGGER.exception("MQTT counters not written; kept for the next attempt")
            return
        self._flushed = now

    def _on_message(self, client, userdata, message) -> None:
        """Only hand the message over: paho calls this on its network thread, one message
        at a time, so any work here caps the rate; the writer thread parses in batches."""
        self.queue.put((message.topic, message.payload))

    def _parse(self, topic: str, payload: bytes) -> tuple[str, str, list[Any]] | None:
        """(department, kind, readings) of a message; None, counted, if the topic or the
        payload as a whole cannot be read. Readings are checked one by one later
        (``readings_frame``), so a bad one never costs the others of its message."""
        parts = topic.split("/")
        if len(parts) != 4 or parts[1] == "alerts":
            return None
        _, department, kind, sensor = parts
        self._count("messages")
        if not all(parts):  # shikong//water_level/X, shikong/wat//X, or a trailing /
            self._count("rejected: topic has an empty level")
            LOGGER.warning("MQTT %r: topic has an empty level", topic)
            return None
        try:
            data = load_json(payload)
        except ValueError:
            self._count("rejected: payload is not JSON")
            LOGGER.warning("MQTT %s: payload is not JSON", topic)
            return None
        rows = data.get("readings", [data]) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            self._count("rejected: payload is not a reading or a list")
            return None
        for row in rows:
            if type(row) is dict and "sensor_id" not in row:
                row["sensor_id"] = sensor  # the topic names it
        return department, kind, rows

    def _parse_safely(self, topic: str, payload: bytes) -> tuple[str, str, list[Any]] | None:
        try:
            return self._parse(topic, payload)
        except Exception:  # one message must never stop the subscriber
            LOGGER.exception("MQTT message on %r could not be read", topic)
            self._count("rejected: internal error")
            return None

    def _write_loop(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                self._flush_counts()
                return
            raw = [first]
            deadline = time.monotonic() + self.batch_ms / 1000
            while len(raw) < self.batch_max and time.monotonic() < deadline:
                try:
                    item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    self.queue.put(None)
                    break
                raw.append(item)
            with self.live.one_batch:  # beside HTTP batches, not interleaved with them
                batch = [parsed for parsed in (self._parse_safely(*m) for m in raw) if parsed]
                if batch:
                    self._commit(batch)
            # counters are written when idle, else at most every COUNTS_EVERY seconds: a
            # commit of their own after every batch cost as much as the batch's
            if self.queue.empty() or time.monotonic() >= self._counts_due:
                self._flush_counts()
                self._counts_due = time.monotonic() + COUNTS_EVERY

    def _commit(self, batch: list[tuple[str, str, list[Any]]]) -> None:
        by_topic: dict[tuple[str, str], list[Any]] = {}
        for department, kind, rows in batch:
            by_topic.setdefault((department, kind), []).extend(rows)
        for (department, kind), rows in by_topic.items():
            try:
                result = self.live.ingest(readings_frame(rows), department=department, kind=kind)
            except Exception:  # a bad batch must not stop the subscriber
                LOGGER.exception("MQTT batch from %s/%s failed", department, kind)
                self._count("rejected: internal error", len(rows))
                continue
            self._count("accepted", result.accepted)
            self._count("duplicates", result.duplicates)
            for reason, n in result.rejected.items():
                self._count(f"rejected: {reason}", n)
                LOGGER.warning("MQTT %s/%s: %d readings refused: %s", department, kind, n, reason)
            if result.alerts:
                self.publish_alerts(result.alerts)

    def publish_alerts(self, alerts: list) -> None:
        directory = self.live.sensors()
        for alert in alerts:
            department = directory[alert.sensor].department if alert.sensor in directory else "x"
            self.client.publish(
                f"{TOPIC_PREFIX}/alerts/{department}/{alert.sensor}",
                json.dumps(alert.to_dict(), ensure_ascii=False),
                qos=1,
            )

    def stats(self) -> dict[str, Any]:
        """Messages, accepted readings and refusals by reason, of every worker process."""
        return self.live.observations.counts("mqtt")
