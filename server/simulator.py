"""Keeps the demo city's sensors talking: a reading per sensor every few seconds.

Each sensor continues from its latest stored reading with a small random walk inside its
valid range; readings go over MQTT when a broker is reachable, else as HTTP batches.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from urllib.parse import urlparse

import httpx
import numpy as np
import pandas as pd
from shikong.catalog import Catalog
from shikong.catalog.live import LiveIngest

LOGGER = logging.getLogger(__name__)


def broker_reachable(url: str, timeout: float = 0.5) -> bool:
    parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 1883), timeout=timeout):
            return True
    except OSError:
        return False


class Simulator:
    """Random-walk readings for every sensor of a catalog."""

    def __init__(
        self,
        catalog: Catalog,
        http_url: str,
        mqtt_url: str | None = None,
        interval: float = 5.0,
        seed: int = 7,
        api_key: str | None = None,
    ) -> None:
        self.catalog = catalog
        self.headers = {"X-API-Key": api_key} if api_key else {}  # HTTP needs a gateway key
        self.http_url = http_url.rstrip("/")
        self.mqtt_url = mqtt_url if mqtt_url and broker_reachable(mqtt_url) else None
        self.interval = interval
        self.rng = np.random.default_rng(seed)
        self.stop_event = threading.Event()
        self.state: dict[tuple[str, str], float] = {}
        self.sent = 0

    def _start_values(self) -> None:
        for layer in self.catalog.collections(kind="sensors"):
            latest = self.catalog.observations.latest(layer.id)
            for row in latest.itertuples(index=False):
                self.state[(row.sensor_id, row.parameter)] = float(row.value)

    def readings(self) -> list[dict]:
        sensors = LiveIngest(self.catalog.store, self.catalog.observations).sensors()
        now = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out = []
        for sid, sensor in sorted(sensors.items()):
            params = [p for p in str(sensor.attributes.get("parameters") or "value").split(",")]
            for parameter in params:
                lo, hi = sensor.spec.min_valid, sensor.spec.max_valid
                span = (hi - lo) if np.isfinite(hi - lo) else 10.0
                value = self.state.get((sid, parameter), lo + span / 3 if np.isfinite(lo) else 0)
                value = float(
                    np.clip(
                        value + self.rng.normal(0, span * 0.002),
                        lo if np.isfinite(lo) else -1e9,
                        hi if np.isfinite(hi) else 1e9,
                    )
                )
                self.state[(sid, parameter)] = value
                out.append(
                    {
                        "sensor_id": sid,
                        "time": now,
                        "value": round(value, 3),
                        "parameter": parameter,
                        "_dept": sensor.department,
                        "_kind": sensor.kind,
                    }
                )
        return out

    def send(self, rows: list[dict], client=None) -> None:
        if client is not None:
            for r in rows:
                payload = {k: v for k, v in r.items() if not k.startswith("_")}
                client.publish(
                    f"shikong/{r['_dept']}/{r['_kind']}/{r['sensor_id']}",
                    json.dumps(payload),
                    qos=1,
                )
        else:
            body = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
            reply = httpx.post(
                f"{self.http_url}/readings", json=body, headers=self.headers, timeout=30
            )
            reply.raise_for_status()
        self.sent += len(rows)

    def run(self, rounds: int | None = None) -> None:
        self._start_values()
        client = None
        if self.mqtt_url:
            import paho.mqtt.client as mqtt

            parsed = urlparse(self.mqtt_url)
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
            client.connect(parsed.hostname, parsed.port or 1883)
            client.loop_start()
        done = 0
        while not self.stop_event.is_set() and (rounds is None or done < rounds):
            try:
                self.send(self.readings(), client)
            except (httpx.HTTPError, OSError) as exc:
                LOGGER.warning("simulator: %s", exc)
            done += 1
            self.stop_event.wait(self.interval)
        if client is not None:
            client.loop_stop()
            client.disconnect()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="simulator", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()


def wait_for(url: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/conformance?f=json", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False
