"""IoT benchmark: ingest rates, ingest-to-queryable latency and queries, beside PostgreSQL.

In one run: the raw store load rate, sustained HTTP ingest (readings/s), MQTT ingest
through a real Mosquitto (single-reading messages at QoS 0 and 1; batch messages),
latency from publish to visible in EDR (p50/p99), and one-sensor-one-day, latest of 100
sensors and hourly means over 30 days over HTTP, on a store of --readings readings;
beside PostgreSQL `COPY` into an indexed table and the same queries on it.

Every request to shikong carries a ``wat`` API key of role ``gateway`` (it owns the gauges
and may post readings of any sensor); the data directory carries its own policy without
the per-key rate limit, since one gateway key sends every batch (the shipped policy is
unchanged). ``--smoke``: 20,000 readings of 100 sensors, a few batches and messages, one
server worker: a few seconds, the same code paths and output lines.

    .venv/bin/pip install 'psycopg[binary]'
    .venv/bin/python bench/iot.py [--readings 50000000] [--sensors 5000] [--smoke]

PostgreSQL: `--pg` (default host=127.0.0.1 user=postgres dbname=postgres); the table is
named after the process, so two runs at once do not collide.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import paho.mqtt.client as mqtt
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from benchutil import lift_rate_limit  # noqa: E402
from conftest import RunningServer, free_port  # noqa: E402
from shikong.catalog import Catalog  # noqa: E402
from shikong.server.identity import KeyStore  # noqa: E402

LAYER = "wat-gauges"
START = pd.Timestamp("2026-08-01", tz="UTC")


def broker(work: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        "max_queued_messages 0\nmax_inflight_messages 0\n"
    )
    proc = subprocess.Popen(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def history(sensors: int, total: int, chunk: int = 2_000_000):
    """Readings every 10 minutes per sensor, in time order, in chunks."""
    per_sensor = total // sensors
    rng = np.random.default_rng(1)
    ids = np.array([f"G{i:05d}" for i in range(sensors)])
    step = max(1, chunk // sensors)
    for first in range(0, per_sensor, step):
        n = min(step, per_sensor - first)
        t = START + pd.to_timedelta(np.arange(first, first + n) * 600, unit="s")
        frame = pd.DataFrame(
            {
                "sensor": np.repeat(ids, n),
                "parameter": "value",
                "time": np.tile(t.as_unit("ms").asi8, sensors),
                "value": rng.uniform(0, 10, sensors * n).round(3),
            }
        )
        yield frame


def post_batch(client: httpx.Client, url: str, body: bytes) -> None:
    r = client.post(f"{url}/readings", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["accepted"] == 10_000, r.text[:300]


def p50(values):
    return statistics.median(values)


def timed(fn, rounds):
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=50_000_000)
    parser.add_argument("--sensors", type=int, default=5000)
    parser.add_argument("--pg", default="host=127.0.0.1 user=postgres dbname=postgres")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--posters", type=int, default=4, help="concurrent HTTP gateways")
    parser.add_argument(
        "--http-batches",
        type=int,
        default=500,
        help="HTTP batches of 10,000 posted (500: long enough for compactions to keep pace)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    args = parser.parse_args()
    messages = {"single": 40_000, "batches": 200, "per_batch": 1000, "latency": 50}
    if args.smoke:
        args.readings, args.sensors, args.rounds = 20_000, 100, 5
        args.workers, args.posters, args.http_batches = 1, 2, 4
        messages = {"single": 800, "batches": 10, "per_batch": 100, "latency": 5}
    table = f"bench_readings_{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="shikong-bench-iot-"))
    procs = []
    try:
        cat = Catalog.open(work / "data")
        sensors_csv = work / "gauges.csv"
        rows = ["sensor_id,lon,lat,min_valid,max_valid,warning_level"] + [
            f"G{i:05d},{113 + (i % 100) * 0.006},{33.6 + (i // 100) * 0.008},-100,1000,900"
            for i in range(args.sensors)
        ]
        sensors_csv.write_text("\n".join(rows) + "\n")
        cat.ingest(sensors_csv, department="wat", layer="gauges", kind="sensors")
        lift_rate_limit(work / "data")
        key, _ = KeyStore(work / "data").create("wat", "bench-gateway", role="gateway")
        store = cat.observations
        t0 = time.perf_counter()
        loaded = 0
        db = store.db
        ids = store.register_series({(LAYER, f"G{i:05d}", "value") for i in range(args.sensors)})
        for frame in history(args.sensors, args.readings):
            keys = zip(frame.sensor, frame.parameter, strict=True)
            series = [ids[(LAYER, s_, p_)] for s_, p_ in keys]
            rows_ = list(zip(series, frame.time.tolist(), frame.value.tolist(), strict=True))
            db.execute("BEGIN")
            db.executemany("INSERT OR IGNORE INTO points VALUES (?,?,?)", rows_)
            db.execute("COMMIT")
            loaded += len(frame)
        load_s = time.perf_counter() - t0
        store.compact()  # tells writers with cached horizons that points were bulk-loaded
        last_time = int(frame.time.max())
        db.executemany(
            "INSERT OR REPLACE INTO latest_values VALUES (?,?,?)",
            [(ids[(LAYER, s, "value")], last_time, 1.0) for s in frame.sensor.unique()],
        )
        print(f"store: {loaded:,} readings loaded at {loaded / load_s:,.0f} rows/s")
        print("shikong called with a wat gateway API key (access control on; rate limit lifted)")

        mq, port = broker(work)
        procs.append(mq)
        server = RunningServer(
            work / "data", free_port(), mqtt=f"mqtt://127.0.0.1:{port}", workers=args.workers
        )
        procs.append(server)
        client = httpx.Client(timeout=120, headers={"X-API-Key": key})
        now = pd.Timestamp.now(tz="UTC")
        # HTTP ingest: batches of 10,000 readings from --posters gateways at once (a city's
        # sensors reach the platform through many), built before the clock starts
        ids = [f"G{i % args.sensors:05d}" for i in range(10_000)]
        bodies = []
        for k in range(args.http_batches + 2 * args.workers):
            base = (now + pd.Timedelta(seconds=k / 10)).value // 1_000_000  # below +60 s
            stamps = pd.to_datetime(
                [base + i // args.sensors for i in range(10_000)], unit="ms", utc=True
            ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            bodies.append(
                json.dumps(
                    [
                        {"sensor_id": s_, "time": t_, "value": 1.0}
                        for s_, t_ in zip(ids, stamps, strict=True)
                    ]
                ).encode()
            )
        for body in bodies[: 2 * args.workers]:  # every worker has loaded the sensors
            post_batch(client, server.url, body)
        queue_ = list(reversed(bodies[2 * args.workers :]))
        sent, t0 = 0, time.perf_counter()

        def gateway() -> int:
            own = httpx.Client(timeout=120, headers={"X-API-Key": key})
            done = 0
            while queue_ and time.perf_counter() - t0 < 60:
                try:
                    body = queue_.pop()
                except IndexError:
                    break
                post_batch(own, server.url, body)
                done += 10_000
            return done

        with ThreadPoolExecutor(args.posters) as pool:
            sent = sum(pool.map(lambda _: gateway(), range(args.posters)))
        posting = time.perf_counter() - t0
        http_rate = sent / posting
        waiting = store.waiting()
        t1 = time.perf_counter()
        store.compact()  # what ingest left to compaction, timed: the sustainable rate
        drained = sent / (posting + time.perf_counter() - t1)
        print(
            f"HTTP ingest: {http_rate:,.0f} readings/s ({sent:,} in batches of 10,000 from "
            f"{args.posters} gateways at once, {args.workers} server workers, committed; "
            f"{waiting:,} waiting for compaction at the end); with all of it compacted "
            f"into the archive: {drained:,.0f} readings/s"
        )

        def handled() -> int:
            counts = client.get(f"{server.url}/readings/stats").json()["mqtt"]
            return sum(v for k, v in counts.items() if k != "messages")

        def wait_handled(target: int, t0: float) -> float:
            while handled() < target and time.perf_counter() - t0 < 120:
                time.sleep(0.02)
            return time.perf_counter() - t0

        def mqtt_single_rate(qos: int, messages: int, sensors: int = 8) -> float:
            """Single-reading messages from `sensors` devices at once, each a mosquitto_pub
            (libmosquitto, as sensor firmware is) publishing one line per message: a
            Python publisher tops out below the server here (paho -> Mosquitto -> paho with
            nothing done on arrival: about 15,000 messages/s at QoS 1)."""
            before = handled()
            base = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=1 + qos)
            each = messages // sensors
            stamps = (base + pd.to_timedelta(np.arange(each) * 10, unit="ms")).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            lines = "".join(f'{{"time": "{t}", "value": 1.0}}\n' for t in stamps).encode()
            exe = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
            t0 = time.perf_counter()
            devices = [
                subprocess.Popen(
                    [
                        exe,
                        "-p",
                        str(port),
                        "-q",
                        str(qos),
                        "-t",
                        f"shikong/wat/gauges/G{i:05d}",
                        "-l",
                    ],
                    stdin=subprocess.PIPE,
                )
                for i in range(sensors)
            ]
            for device in devices:
                device.stdin.write(lines)
                device.stdin.close()
            elapsed = wait_handled(before + each * sensors, t0)
            for device in devices:
                device.wait(30)
            return each * sensors / elapsed

        def mqtt_batch_rate(qos: int, messages: int, per_message: int) -> float:
            pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
            pub.connect("127.0.0.1", port)
            pub.loop_start()
            before = handled()
            base = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=4)
            payloads = []
            for m in range(messages):
                sid = f"G{m % args.sensors:05d}"
                t = base + pd.Timedelta(milliseconds=m)
                payload = {
                    "readings": [
                        {"time": (t + pd.Timedelta(seconds=j)).isoformat(), "value": 1.0}
                        for j in range(per_message)
                    ]
                }
                payloads.append((f"shikong/wat/gauges/{sid}", json.dumps(payload)))
            t0 = time.perf_counter()
            info = None
            for topic, payload in payloads:
                info = pub.publish(topic, payload, qos=qos)
            info.wait_for_publish()
            elapsed = wait_handled(before + messages * per_message, t0)
            pub.loop_stop()
            return messages * per_message / elapsed

        single, per_batch = messages["single"], messages["per_batch"]
        print(
            f"MQTT single readings (8 devices at once), QoS 0: {mqtt_single_rate(0, single):,.0f}"
            f" msg/s; QoS 1: {mqtt_single_rate(1, single):,.0f} msg/s; batches of "
            f"{per_batch:,}: {mqtt_batch_rate(1, messages['batches'], per_batch):,.0f} readings/s"
        )

        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        latencies = []
        for i in range(messages["latency"]):
            t = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=60 + i)).isoformat()
            t0 = time.perf_counter()
            pub.publish(
                "shikong/wat/gauges/G00001", json.dumps({"time": t, "value": 7.5 + i}), qos=1
            ).wait_for_publish()
            while time.perf_counter() - t0 < 10:
                r = client.get(
                    f"{server.url}/readings/latest", params={"layer": LAYER, "sensors": "G00001"}
                ).json()
                if r["readings"] and r["readings"][0]["value"] == 7.5 + i:
                    break
                time.sleep(0.002)
            else:
                raise RuntimeError(f"reading {i} not queryable after 10 s")
            latencies.append((time.perf_counter() - t0) * 1000)
        pub.loop_stop()
        print(
            f"ingest to queryable: p50 {p50(latencies):.0f} ms, "
            f"p99 {np.percentile(latencies, 99):.0f} ms"
        )

        span_days = args.readings // args.sensors * 600 / 86_400  # history per sensor
        middle = START + pd.Timedelta(days=max(0.0, span_days / 2 - 0.5))
        day = middle.strftime("%Y-%m-%dT%H:%M:%SZ")
        day_end = (middle + pd.Timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        hundred = ",".join(f"G{i:05d}" for i in range(0, args.sensors, args.sensors // 100))
        month_end = (START + pd.Timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        day_rows = client.get(
            f"{server.url}/collections/{LAYER}/locations/G00042",
            params={"datetime": f"{day}/{day_end}"},
        ).json()
        if "domain" not in day_rows:
            raise RuntimeError(f"one-day EDR query failed: {str(day_rows)[:500]}")
        print(f"one-day query returns {len(day_rows['domain']['axes']['t']['values'])} readings")
        ours = {
            "one sensor one day (EDR)": timed(
                lambda: client.get(
                    f"{server.url}/collections/{LAYER}/locations/G00042",
                    params={"datetime": f"{day}/{day_end}"},
                ),
                args.rounds,
            ),
            "latest of 100 sensors": timed(
                lambda: client.get(
                    f"{server.url}/readings/latest", params={"layer": LAYER, "sensors": hundred}
                ),
                args.rounds,
            ),
            "hourly means over 30 days": timed(
                lambda: client.get(
                    f"{server.url}/readings/resample",
                    params={
                        "layer": LAYER,
                        "sensors": "G00042",
                        "freq": "1h",
                        "how": "mean",
                        "start": START.isoformat(),
                        "end": month_end,
                    },
                ),
                args.rounds,
            ),
        }

        import psycopg

        with psycopg.connect(args.pg, autocommit=True) as pg:
            pg.execute(f"DROP TABLE IF EXISTS {table}")
            pg.execute(
                f"CREATE TABLE {table} (sensor text, parameter text, "
                "time timestamptz, value double precision, "
                "PRIMARY KEY (sensor, parameter, time))"
            )
            t0 = time.perf_counter()
            copied = 0
            for frame in history(args.sensors, min(args.readings, 10_000_000)):
                buffer = io.StringIO()
                pd.DataFrame(
                    {
                        "sensor": frame.sensor,
                        "parameter": frame.parameter,
                        "time": pd.to_datetime(frame.time, unit="ms", utc=True),
                        "value": frame.value,
                    }
                ).to_csv(buffer, index=False, header=False)
                with pg.cursor().copy(f"COPY {table} FROM STDIN WITH (FORMAT csv)") as cp:
                    cp.write(buffer.getvalue())
                copied += len(frame)
            copy_rate = copied / (time.perf_counter() - t0)
            print(
                f"PostgreSQL COPY into an indexed table: {copy_rate:,.0f} rows/s ({copied:,} rows)"
            )
            ids = [f"G{i:05d}" for i in range(0, args.sensors, args.sensors // 100)]
            theirs = {
                "one sensor one day (EDR)": timed(
                    lambda: pg.execute(
                        f"SELECT time, value FROM {table} WHERE sensor='G00042' AND "
                        "parameter='value' AND time >= %s AND time <= %s",
                        (day, day_end),
                    ).fetchall(),
                    args.rounds,
                ),
                "latest of 100 sensors": timed(
                    lambda: pg.execute(
                        f"SELECT DISTINCT ON (sensor) sensor, time, value FROM {table} "
                        "WHERE sensor = ANY(%s) ORDER BY sensor, time DESC",
                        (ids,),
                    ).fetchall(),
                    args.rounds,
                ),
                "hourly means over 30 days": timed(
                    lambda: pg.execute(
                        f"SELECT date_trunc('hour', time), avg(value) FROM {table} WHERE "
                        "sensor='G00042' AND time >= %s AND time <= %s GROUP BY 1 ORDER BY 1",
                        (START.isoformat(), month_end),
                    ).fetchall(),
                    args.rounds,
                ),
            }
            pg.execute(f"DROP TABLE {table}")
        print(
            f"--- queries p50 on {loaded:,} readings (shikong over HTTP; PostgreSQL over "
            f"its wire protocol, {min(args.readings, 10_000_000):,} rows) ---"
        )
        for name in ours:
            print(
                f"{name:28s} shikong {p50(ours[name]):7.2f} ms   PostgreSQL "
                f"{p50(theirs[name]):7.2f} ms   ratio {p50(theirs[name]) / p50(ours[name]):5.2f}"
            )
    finally:
        for proc in procs:
            if isinstance(proc, RunningServer):
                proc.stop()
            else:
                proc.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
