"""Live IoT data against a real Mosquitto: MQTT and HTTP ingest, EDR within a second,
refusals counted, alerts once per crossing, nothing acknowledged lost to SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import httpx
import paho.mqtt.client as mqtt
import pandas as pd
import pytest
from conftest import RunningServer, free_port
from shikong.catalog import Catalog

pytestmark = pytest.mark.usefixtures("as_tester")  # a department user, see conftest

SENSOR = "WAT-WL-001"  # valid 146.57..159.57 m, warning level 152.07 m
TOPIC = f"shikong/wat/water_level/{SENSOR}"


def now_iso(offset_s: float = 0.0) -> str:
    t = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.fixture
def live_server(demo_data, tester_key, tmp_path, mosquitto):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    running = RunningServer(data, free_port(), mqtt=mosquitto)
    time.sleep(0.5)  # let the subscriber connect
    yield running, data
    running.stop()


def publisher(url: str) -> mqtt.Client:
    host, port = url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(host, int(port))
    client.loop_start()
    return client


def edr_values(url: str, sensor: str, start: str) -> list[float]:
    response = httpx.get(
        f"{url}/collections/wat-water_level_sensors/locations/{sensor}",
        params={"datetime": f"{start}/.."},
    )
    if response.status_code != 200:
        return []
    return response.json()["ranges"]["value"]["values"]


def test_mqtt_reading_is_queryable_through_edr(live_server, mosquitto):
    """A reading published over MQTT is served through EDR without any other step. How
    soon is a benchmark's figure (bench/iot.py: publish to visible), not a test's: a
    loaded CI machine must not fail a correct server."""
    server, _ = live_server
    start = now_iso(-1)
    client = publisher(mosquitto)
    try:
        sent = time.monotonic()
        client.publish(
            TOPIC, json.dumps({"time": now_iso(), "value": 150.25}), qos=1
        ).wait_for_publish()
        while time.monotonic() - sent < 30.0:
            if 150.25 in edr_values(server.url, SENSOR, start):
                break
            time.sleep(0.02)
        assert 150.25 in edr_values(server.url, SENSOR, start)
    finally:
        client.loop_stop()


def test_malformed_mqtt_payloads_are_counted_and_good_ones_kept(live_server, mosquitto):
    server, data = live_server
    start = now_iso(-1)
    client = publisher(mosquitto)
    try:
        batch = {
            "readings": [
                {"time": now_iso(), "value": 150.5},  # good
                {"time": "yesterday", "value": 150.6},  # unparseable time
                {"time": now_iso(0.1), "value": 999},  # outside the valid range
                {"time": now_iso(3600 * 24 * 30), "value": 150},  # far in the future
                {"time": now_iso(0.2), "value": "abc"},  # not a number
                42,  # not a reading object
            ]
        }
        client.publish(TOPIC, json.dumps(batch), qos=1).wait_for_publish()
        client.publish(TOPIC, b"{not json", qos=1).wait_for_publish()
        client.publish(
            "shikong/eco/air_quality/" + SENSOR,
            json.dumps({"time": now_iso(0.3), "value": 150.7}),
            qos=1,
        ).wait_for_publish()  # topic names another department
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            stats = httpx.get(f"{server.url}/readings/stats").json()["mqtt"]
            if stats.get("rejected: topic does not match the sensor"):
                break
            time.sleep(0.05)
        assert stats["rejected: unparseable time"] == 1
        assert stats["rejected: value outside the sensor's valid range"] == 1
        assert stats["rejected: time in the future"] == 1
        assert stats["rejected: value is not a number"] == 1
        assert stats["rejected: not a reading object"] == 1
        assert stats["rejected: payload is not JSON"] == 1
        assert stats["rejected: topic does not match the sensor"] == 1
        assert edr_values(server.url, SENSOR, start) == [150.5]
    finally:
        client.loop_stop()
    stored = Catalog.open(data).observations.window(
        "wat-water_level_sensors", [SENSOR], pd.Timestamp(start)
    )
    assert stored["value"].tolist() == [150.5]  # no bad row stored


def test_http_batches_json_ndjson_csv(live_server):
    server, _ = live_server
    start = now_iso(-1)
    rows = [
        {"sensor_id": SENSOR, "time": now_iso(i * 0.01), "value": 150 + i / 10} for i in range(3)
    ]
    r = httpx.post(
        f"{server.url}/readings", json=[*rows, {"sensor_id": "NOPE", "time": now_iso(), "value": 1}]
    )
    assert r.status_code == 200
    assert r.json()["accepted"] == 3 and r.json()["rejected"] == {"unknown sensor": 1}
    again = httpx.post(f"{server.url}/readings", json=rows)
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 3  # idempotent
    nd = "\n".join(
        json.dumps({"sensor_id": SENSOR, "time": now_iso(1 + i), "value": 151}) for i in range(2)
    )
    r = httpx.post(
        f"{server.url}/readings", content=nd, headers={"Content-Type": "application/x-ndjson"}
    )
    assert r.json()["accepted"] == 2
    csv = f"sensor_id,time,value\n{SENSOR},{now_iso(3)},151.5\n"
    r = httpx.post(f"{server.url}/readings", content=csv, headers={"Content-Type": "text/csv"})
    assert r.json()["accepted"] == 1
    assert len(edr_values(server.url, SENSOR, start)) == 6
    bad = httpx.post(
        f"{server.url}/readings", content=b"[{oops", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400 and "not application/json" in bad.json()["description"]


def test_an_alert_fires_exactly_once_per_crossing(live_server, mosquitto):
    server, _ = live_server
    received = []
    listener = publisher(mosquitto)
    listener.on_message = lambda c, u, m: received.append(json.loads(m.payload))
    listener.subscribe("shikong/alerts/#", qos=1)
    time.sleep(0.3)
    sender = publisher(mosquitto)
    try:
        levels = [150.0, 153.0, 154.0, 151.0, 155.0, 156.0]  # warning level 152.07
        for i, level in enumerate(levels):
            sender.publish(
                TOPIC, json.dumps({"time": now_iso(i * 0.01), "value": level}), qos=1
            ).wait_for_publish()
            time.sleep(0.05)  # separate commits, in order
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(received) < 2:
            time.sleep(0.05)
        time.sleep(0.3)
        mine = [a for a in received if a["sensor_id"] == SENSOR]
        assert [a["value"] for a in mine] == [153.0, 155.0]  # two upward crossings
        collection = httpx.get(
            f"{server.url}/collections/alerts/items", params={"sensor_id": SENSOR, "f": "json"}
        ).json()
        assert sorted(f["properties"]["value"] for f in collection["features"]) == [153.0, 155.0]
        assert collection["features"][0]["geometry"]["type"] == "Point"
        listed = httpx.get(f"{server.url}/readings/alerts").json()["alerts"]
        assert sorted(a["value"] for a in listed if a["sensor_id"] == SENSOR) == [153.0, 155.0]
    finally:
        sender.loop_stop()
        listener.loop_stop()


def test_sigkill_loses_nothing_acknowledged(demo_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    server = RunningServer(data, free_port())
    acknowledged = []
    try:
        for batch in range(20):
            rows = [
                {
                    "sensor_id": SENSOR,
                    "time": now_iso(batch * 10 + i * 0.01),
                    "value": 150 + (i % 50) / 10,
                }
                for i in range(200)
            ]
            r = httpx.post(f"{server.url}/readings", json=rows)
            if r.status_code == 200:
                acknowledged += [row["time"] for row in rows]
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
    finally:
        server.log.close()
    store = Catalog.open(data).observations
    stored = store.window(
        "wat-water_level_sensors", [SENSOR], pd.Timestamp(acknowledged[0]) - pd.Timedelta(seconds=1)
    )
    have = set(stored["time"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z")
    assert set(acknowledged) <= have
    assert len(acknowledged) == 4000


@pytest.mark.parametrize("channel", ["http", "mqtt"])
def test_the_simulator_feeds_every_sensor(live_server, mosquitto, channel):
    from shikong.server.simulator import Simulator

    server, data = live_server
    cat = Catalog.open(data)
    start = pd.Timestamp.now(tz="UTC")
    sim = Simulator(cat, server.url, mosquitto if channel == "mqtt" else None, interval=0.1)
    assert (sim.mqtt_url is not None) == (channel == "mqtt")
    sim.run(rounds=2)
    every = {
        s for layer in cat.collections(kind="sensors") for s in layer.to_geodataframe()["sensor_id"]
    }

    def fed() -> set[str]:
        found = set()
        for layer in cat.collections(kind="sensors"):
            found |= set(cat.observations.window(layer.id, start=start)["sensor_id"])
        return found

    deadline = time.monotonic() + 30  # MQTT is asynchronous: wait (a loaded machine is slow)
    while fed() != every and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fed() == every


def test_latest_and_resample_over_http(live_server):
    server, data = live_server
    store = Catalog.open(data).observations
    latest = httpx.get(
        f"{server.url}/readings/latest",
        params={"layer": "wat-water_level_sensors", "sensors": SENSOR},
    ).json()
    truth = store.latest("wat-water_level_sensors", [SENSOR])
    assert latest["readings"][0]["value"] == truth["value"].iloc[0]
    hourly = httpx.get(
        f"{server.url}/readings/resample",
        params={"layer": "wat-water_level_sensors", "sensors": SENSOR, "freq": "1h"},
    ).json()["rows"]
    expect = store.resample("wat-water_level_sensors", [SENSOR], freq="1h")
    assert [r["mean"] for r in hourly] == pytest.approx(expect["mean"].tolist())
    assert httpx.get(f"{server.url}/readings/latest").status_code == 400
    bad = httpx.get(
        f"{server.url}/readings/resample",
        params={"layer": "wat-water_level_sensors", "how": "median"},
    )
    assert bad.status_code == 400 and "median" in bad.json()["description"]


def test_two_workers_share_the_subscription_and_the_counts(demo_data, tmp_path, mosquitto):
    """With ``serve --workers 2`` each MQTT message is ingested by one worker (a shared
    subscription), the counters add up over both, and concurrent HTTP batches all land."""
    from concurrent.futures import ThreadPoolExecutor

    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    server = RunningServer(data, free_port(), mqtt=mosquitto, workers=2)
    time.sleep(1.0)  # let both subscribers connect
    client = publisher(mosquitto)
    try:
        times = [now_iso(-100 + i * 0.01) for i in range(300)]
        for t in times:
            client.publish(TOPIC, json.dumps({"time": t, "value": 150.0}), qos=1)
        deadline = time.monotonic() + 20
        stats: dict = {}
        while time.monotonic() < deadline:
            stats = httpx.get(f"{server.url}/readings/stats").json()["mqtt"]
            if stats.get("messages", 0) >= 300:
                break
            time.sleep(0.1)
        assert stats["messages"] == 300  # not 600: no message went to both workers
        assert stats["accepted"] == 300
        assert not stats.get("duplicates")

        def post(k: int) -> int:
            rows = [
                {"sensor_id": SENSOR, "time": now_iso(-50 + k + i * 0.001), "value": 151.0}
                for i in range(500)
            ]
            return httpx.post(f"{server.url}/readings", json=rows, timeout=60).json()["accepted"]

        with ThreadPoolExecutor(4) as pool:
            assert sum(pool.map(post, range(8))) == 8 * 500
    finally:
        client.loop_stop()
        server.stop()
    stored = Catalog.open(data).observations.window(
        "wat-water_level_sensors", [SENSOR], pd.Timestamp(times[0]) - pd.Timedelta(seconds=1)
    )
    assert len(stored) == 300 + 8 * 500


@pytest.mark.parametrize("protocol", ["NoDelayH11Protocol", "NoDelayHttpToolsProtocol"])
def test_server_connections_send_without_nagle_delay(protocol):
    """Worker processes accept on an inherited socket asyncio does not recognise as TCP;
    the protocol turns Nagle's algorithm off itself (else each response waited 40 ms).
    Both parsers: httptools (what serve uses) and h11 (the fallback)."""
    import asyncio
    import socket

    from shikong.server import http_protocol
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    peer = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    inherited = socket.socket(fileno=os.dup(accepted.fileno()), proto=0)  # as a worker sees it
    assert inherited.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0

    class Transport(asyncio.Transport):
        def get_extra_info(self, name, default=None):
            return {
                "socket": inherited,
                "peername": ("127.0.0.1", 1),
                "sockname": ("127.0.0.1", 2),
            }.get(name, default)

    async def app(scope, receive, send) -> None:  # never called: no request is made
        raise AssertionError

    async def made() -> None:
        config = Config(app=app, http=f"shikong.server.http_protocol:{protocol}")
        config.load()
        made = getattr(http_protocol, protocol)(config, ServerState(), app_state={})
        made.connection_made(Transport())

    asyncio.run(made())
    assert inherited.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    for s in (inherited, accepted, peer, listener):
        s.close()


def test_buffered_client_receives_every_message_whole(mosquitto):
    """The subscriber's buffered reads split and join packets correctly: a burst of small
    messages and ones far larger than a read chunk all arrive, byte for byte, in order.
    Its merged acknowledgements reach the broker whole: Mosquitto sends at most 20 QoS 1
    messages ahead of their PUBACKs, so all 3,000 arrive only if every ack is understood,
    and they left in far fewer sends than messages."""
    import random

    from shikong.server.mqtt_client import CHUNK, BufferedClient

    host, port = mosquitto.removeprefix("mqtt://").split(":")
    rng = random.Random(7)
    sizes = [rng.choice([1, 10, 200, 5_000]) for _ in range(3_000)]
    sizes[100], sizes[2_000] = 3 * CHUNK + 17, CHUNK - 1
    sent = [bytes(rng.getrandbits(8) for _ in range(min(n, 64))) * (n // 64 + 1) for n in sizes]
    sent = [payload[:n] for payload, n in zip(sent, sizes, strict=True)]
    got: list[bytes] = []
    subscriber = BufferedClient(mqtt.CallbackAPIVersion.VERSION2)
    subscriber.on_message = lambda client, userdata, message: got.append(message.payload)
    sends = []
    real_send = subscriber._sock_send
    subscriber._sock_send = lambda buf: sends.append(len(buf)) or real_send(buf)
    subscriber.connect(host, int(port))
    subscriber.subscribe("buffered-test/#", qos=1)
    subscriber.loop_start()
    time.sleep(0.3)
    client = publisher(mosquitto)
    try:
        for payload in sent:
            client.publish("buffered-test/x", payload, qos=1)
        deadline = time.monotonic() + 30
        while len(got) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        subscriber.loop_stop()
        subscriber.disconnect()
    assert len(got) == len(sent)
    assert got == sent
    assert len(sends) < len(sent) / 2
