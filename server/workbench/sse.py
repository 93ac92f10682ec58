"""Live sensors for the workbench: readings and alerts as server-sent events.

``GET /workbench/events`` streams, for the sensors layers the caller may see, first the
newest reading of every sensor, then each newer one as the observation store commits it
(``event: reading``), and fired alerts (``event: alert``). The store is polled every
``POLL_SECONDS`` (a SQLite read of its latest table per visible sensors layer); one
stream per open page. A reading posted to ``/readings`` or arriving by MQTT is on every
open map within that interval plus the page's draw.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd
from shikong.catalog.live import LiveIngest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from ..app import Server

POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0


def event(kind: str, data: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


class LiveStream:
    """The event stream of one server."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.live = LiveIngest(server.catalog.store, server.catalog.observations)

    def _sensor_layers(self, request: Request) -> list[str]:
        resources = self.server.view(request).resources
        return sorted(
            cid
            for cid, r in resources.items()
            if r.get("type") == "collection" and r.get("shikong", {}).get("kind") == "sensors"
        )

    def _changes(self, layers: list[str], seen: dict[tuple[str, str, str], str]) -> list[dict]:
        """Readings newer than what this stream has sent (all of them the first time)."""
        sensors = self.live.sensors()
        out = []
        for layer in layers:
            frame = self.live.observations.latest(layer)
            for row in frame.to_dict("records"):
                when = _clean(row["time"])
                key = (layer, row["sensor_id"], row["parameter"])
                if seen.get(key) == when:
                    continue
                seen[key] = when
                sensor = sensors.get(row["sensor_id"])
                attrs = sensor.attributes if sensor is not None else {}
                out.append(
                    {
                        "layer": layer,
                        "sensor": row["sensor_id"],
                        "name": attrs.get("name"),
                        "parameter": row["parameter"],
                        "value": _clean(row["value"]),
                        "unit": attrs.get("unit"),
                        "time": when,
                        "lon": attrs.get("lon"),
                        "lat": attrs.get("lat"),
                        "warning": attrs.get("warning_level"),
                    }
                )
        return out

    def _alerts(self, visible: set[str], since: pd.Timestamp, sent: set[str]) -> list[dict]:
        frame = self.live.observations.alerts(since=since)
        if frame.empty:
            return []
        frame = frame[frame["layer"].isin(visible)]
        out = []
        for row in frame.to_dict("records"):
            row = {k: _clean(v) for k, v in row.items()}
            key = orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()
            if key not in sent:
                sent.add(key)
                out.append(row)
        return out

    async def events(self, request: Request) -> StreamingResponse:
        layers = self._sensor_layers(request)
        visible = set(self.server.access(request.state.shikong.caller).visible)
        since = pd.Timestamp.now(tz="UTC").tz_localize(None) - pd.Timedelta(minutes=5)

        async def stream() -> AsyncIterator[bytes]:
            seen: dict[tuple[str, str, str], str] = {}
            sent: set[str] = set()
            quiet = 0.0
            yield b"retry: 1000\n\n"
            while not await request.is_disconnected():
                readings = await run_in_threadpool(self._changes, layers, seen)
                alerts = await run_in_threadpool(self._alerts, visible, since, sent)
                if readings:
                    yield event("readings", readings)
                for alert in alerts:
                    yield event("alert", alert)
                quiet = 0.0 if readings or alerts else quiet + POLL_SECONDS
                if quiet >= HEARTBEAT_SECONDS:
                    quiet = 0.0
                    yield b": keep-alive\n\n"
                await asyncio.sleep(POLL_SECONDS)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    def routes(self) -> list[Route]:
        return [Route("/workbench/events", self.events)]
