"""Cloud catalog benchmark (issue 21): our PostgreSQL catalog beside stac-fastapi-pgstac.

One run, one throwaway PostgreSQL 15 + PostGIS cluster (bench/tiles.py's ``PostGIS``) on a
free loopback port, two databases in it:

- ``pgstac``: the baseline, **pgSTAC** installed by ``pypgstac migrate``, loaded by
  ``pypgstac load`` (collections, then the items file) and served by
  **stac-fastapi-pgstac** under uvicorn with 2 workers. They live in a virtualenv of
  their own that this script creates on first use under ``bench/data/cloud/venv``
  (``pip install stac-fastapi.pgstac pypgstac[psycopg] uvicorn``), never in .venv;
- ``shikong``: ours, the same NDJSON file loaded as ``shikong catalog load`` loads it
  (``catalog/pg_ndjson_load.py``: a worker process per core, each parsing its
  part of the file and copying its rows, 5,000 items a transaction; the search indexes
  built at the end, in the load's time), then ordered by place (``optimize``:
  ``CLUSTER`` by the bbox index; timed and printed on its own, not in the load rate),
  and served by ``shikong serve --workers 2`` with ``SHIKONG_DATABASE``.

The items (default 1,000,000): ~20 layers of several departments, small footprints
inside the demo city's extent, datetimes over 5 years (each valid for a day:
``start_datetime``/``end_datetime`` and our validity say the same), a numeric
``area_m2`` for CQL2 filters and Chinese titles (宗地, 地块, 水库 …). Both sides load the
same newline-delimited JSON file (the same ids, geometry, datetimes and properties);
both load rates include reading and parsing it. Each item names its asset in object
storage (``s3://…``, as a cloud deployment with ``SHIKONG_ASSETS`` stores them; nothing
is read from it here): the server then need not resolve a local path per version while
it publishes every layer's versions at start-up (with local paths that took 130 s per
worker at 200,000 items on this machine, and uvicorn restarted the workers).

Measured, interleaved query by query (the side asked first alternates), p50 over
distinct random queries per kind, limit=10 each: a bbox search; bbox + one year; one
collection + bbox; a CQL2 property filter + bbox; an item by id; then bbox searches
with 16 concurrent keep-alive clients against each (requests/s); and the Chinese
substring search (``q=``) on ours, each answer checked against the truth computed from
the generated titles (what pgSTAC answers to the same ``q`` is printed). Before the
timed queries, the first query of each kind is asked of both with a large limit and the
ids compared (the sides must answer the same question).

    .venv/bin/python bench/cloud.py [--items 1000000] [--queries 50] [--smoke]

``--smoke``: 2,000 items, a few queries, well under a minute once the venv exists; if
the baseline's venv cannot be made (no PyPI), the smoke runs ours only and says so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
from benchutil import lift_rate_limit, load_average, timed_get  # noqa: E402
from conftest import free_port  # noqa: E402
from shikong.catalog.extension import Field  # noqa: E402
from tiles import PG_BIN, POSTGIS, PostGIS, throughput  # noqa: E402

WORK = HERE / "data" / "cloud"
VENV = WORK / "venv"
BASELINE_PACKAGES = ["stac-fastapi.pgstac", "pypgstac[psycopg]", "uvicorn"]
EXTENT = (113.0, 33.6, 113.6, 34.0)  # the demo city, CGCS2000 lon/lat
FIRST_DAY = datetime(2020, 1, 1, tzinfo=UTC)
YEARS = 5
BOX = 0.02  # degrees: a search box's side
LIMIT = 10

# (department, layer, title): layers of several departments; no layer title shares a
# word with the item titles below, so a substring's truth is plain to see
LAYERS = [
    ("nrp", "cadastre", "不动产权籍调查成果"),
    ("nrp", "landuse_survey", "国土变更调查"),
    ("nrp", "planning_blocks", "控制性详细规划单元"),
    ("nrp", "mineral_rights", "矿业权范围"),
    ("rer", "registrations", "不动产登记簿"),
    ("rer", "mortgages", "抵押登记"),
    ("hud", "permits", "施工许可"),
    ("hud", "housing_projects", "保障性住房项目"),
    ("tra", "road_works", "公路养护工程"),
    ("tra", "bridges", "桥梁检测"),
    ("wat", "reservoir_checks", "水利设施巡查"),
    ("wat", "flood_zones", "防洪排涝分区"),
    ("eco", "monitoring", "生态环境监测点位"),
    ("eco", "pollution_sources", "污染源普查"),
    ("agr", "farmland", "高标准农田建设"),
    ("frs", "forest_inventory", "森林资源清查"),
    ("ema", "hazards", "地质灾害隐患点"),
    ("urb", "facilities", "市政设施普查"),
    ("sta", "census_units", "统计调查单元"),
    ("psb", "patrol_zones", "治安巡逻区"),
]
PLACES = ["金水", "二七", "中原", "管城", "惠济", "郑东", "高新", "航空港", "上街", "荥阳"]
FEATURES = ["宗地", "地块", "水库", "河道", "林地", "农田", "学校", "医院", "公园", "堤防"]
GOALS = {  # issue 21: ours at most 20 ms and faster than stac-fastapi-pgstac
    "bbox": "29-38 ms",
    "year": "23-26 ms",
    "collection": "10-12 ms",
    "cql2": "48-50 ms",
    "id": "7.4 ms",
}


# -- the items ----------------------------------------------------------------------------
class Items:
    """N synthetic STAC items as columns (for queries and the truth) and as NDJSON."""

    def __init__(self, n: int, seed: int = 21) -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        self.layer = np.arange(n) % len(LAYERS)
        span = YEARS * 365 * 86400
        self.seconds = rng.integers(0, span, n)
        size = rng.uniform(0.0005, 0.005, (n, 2))
        x0, y0, x1, y1 = EXTENT
        self.minx = np.round(rng.uniform(x0, x1 - size[:, 0]), 6)
        self.miny = np.round(rng.uniform(y0, y1 - size[:, 1]), 6)
        self.maxx = np.round(self.minx + size[:, 0], 6)
        self.maxy = np.round(self.miny + size[:, 1], 6)
        self.area = np.round(rng.uniform(50, 10_000, n), 1)
        place = rng.integers(0, len(PLACES), n)
        feature = rng.integers(0, len(FEATURES), n)
        number = rng.integers(1, 500, n)
        self.titles = [
            f"{PLACES[p]}{FEATURES[f]}{k}号" for p, f, k in zip(place, feature, number, strict=True)
        ]
        # each layer's versions numbered by time
        order = np.lexsort((np.arange(n), self.seconds, self.layer))
        self.version = np.empty(n, dtype=np.int64)
        counts = np.zeros(len(LAYERS), dtype=np.int64)
        for i in order:
            counts[self.layer[i]] += 1
            self.version[i] = counts[self.layer[i]]
        self.order = order  # by layer, then time: the file's order
        self.ids = [
            f"{LAYERS[self.layer[i]][0]}-{LAYERS[self.layer[i]][1]}-v{self.version[i]}"
            for i in range(n)
        ]

    @staticmethod
    def collection_id(k: int) -> str:
        return f"{LAYERS[k][0]}-{LAYERS[k][1]}"

    def when(self, i: int) -> datetime:
        return FIRST_DAY + timedelta(seconds=int(self.seconds[i]))

    def item(self, i: int) -> dict[str, Any]:
        """Item i as both sides store it."""
        dept, layer, _ = LAYERS[self.layer[i]]
        start = self.when(i)
        end = start + timedelta(days=1)
        t0, t1 = start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")
        box = [float(self.minx[i]), float(self.miny[i]), float(self.maxx[i]), float(self.maxy[i])]
        ring = [[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]]
        version = str(self.version[i])
        return {
            "type": "Feature",
            "stac_version": "1.1.0",
            "stac_extensions": ["https://shikong.dev/stac/shikong/v1.0.0/schema.json"],
            "id": self.ids[i],
            "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
            "bbox": box,
            "properties": {
                "title": self.titles[i],
                "description": f"{self.titles[i]}的调查记录，面积{self.area[i]}平方米",
                "datetime": t0,
                "start_datetime": t0,
                "end_datetime": t1,
                "area_m2": float(self.area[i]),
                "version": version,
                Field.DEPARTMENT: dept,
                Field.CLASSIFICATION: "public",
                Field.KIND: "vector",
                Field.LAYER: layer,
                Field.VALID_FROM: t0,
                Field.VALID_TO: t1,
            },
            "links": [],
            "assets": {
                "data": {
                    "href": f"s3://city-gis/shikong/{dept}/{layer}/{version}/data.parquet",
                    "type": "application/vnd.apache.parquet",
                    "roles": ["data"],
                }
            },
            "collection": f"{dept}-{layer}",
        }

    def collection(self, k: int) -> dict[str, Any]:
        dept, layer, title = LAYERS[k]
        mine = self.layer == k
        t0 = FIRST_DAY + timedelta(seconds=int(self.seconds[mine].min()))
        return {
            "type": "Collection",
            "stac_version": "1.1.0",
            "stac_extensions": ["https://shikong.dev/stac/shikong/v1.0.0/schema.json"],
            "id": self.collection_id(k),
            "title": title,
            "description": title,
            "keywords": [],
            "license": "other",
            "extent": {
                "spatial": {"bbox": [list(EXTENT)]},
                "temporal": {"interval": [[t0.strftime("%Y-%m-%dT%H:%M:%SZ"), None]]},
            },
            "links": [],
            Field.DEPARTMENT: dept,
            Field.CLASSIFICATION: "public",
            Field.KIND: "vector",
            Field.LAYER: layer,
        }

    def write(self, folder: Path) -> tuple[Path, Path]:
        """collections.ndjson and items.ndjson (by layer, each layer's oldest first)."""
        collections, items = folder / "collections.ndjson", folder / "items.ndjson"
        with collections.open("wb") as out:
            for k in range(len(LAYERS)):
                out.write(orjson.dumps(self.collection(k)) + b"\n")
        with items.open("wb") as out:
            for i in self.order:
                out.write(orjson.dumps(self.item(int(i))) + b"\n")
        return collections, items

    def layer_text(self, k: int) -> str:
        """What our search finds a layer's items by besides their own id and title."""
        from shikong.catalog.departments import departments

        dept, _, title = LAYERS[k]
        return f"{title} {title} {dept} {departments()[dept]['name']}"

    def text_truth(self, q: str) -> list[str]:
        """Ids of the items a Chinese substring finds (in the title, or in the layer's
        text for every item of it), in our search's order: collection, time, id."""
        layer_hit = [q in self.layer_text(k) for k in range(len(LAYERS))]
        hits = [i for i in range(self.n) if layer_hit[self.layer[i]] or q in self.titles[i]]
        hits.sort(key=lambda i: (self.collection_id(self.layer[i]), self.seconds[i], self.ids[i]))
        return [self.ids[i] for i in hits]


# -- the queries --------------------------------------------------------------------------
def random_box(rng: np.random.Generator) -> str:
    x0, y0, x1, y1 = EXTENT
    x, y = rng.uniform(x0, x1 - BOX), rng.uniform(y0, y1 - BOX)
    return f"{x:.5f},{y:.5f},{x + BOX:.5f},{y + BOX:.5f}"


def queries(items: Items, count: int, seed: int) -> dict[str, list[tuple[str, str]]]:
    """Per kind, (our path, pgSTAC's path) of distinct random queries."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[str, str]]] = {k: [] for k in GOALS}
    for _ in range(count):
        box = random_box(rng)
        search = f"search?limit={LIMIT}&bbox={box}"
        out["bbox"].append((f"/stac/{search}", f"/{search}"))
        year = FIRST_DAY.year + int(rng.integers(0, YEARS))
        when = f"{year}-01-01T00:00:00Z/{year}-12-31T23:59:59Z"
        search = f"search?limit={LIMIT}&bbox={random_box(rng)}&datetime={when}"
        out["year"].append((f"/stac/{search}", f"/{search}"))
        cid = items.collection_id(int(rng.integers(0, len(LAYERS))))
        search = f"search?limit={LIMIT}&collections={cid}&bbox={random_box(rng)}"
        out["collection"].append((f"/stac/{search}", f"/{search}"))
        cql = f"area_m2 < {int(rng.integers(500, 5000))}".replace(" ", "%20")
        search = f"search?limit={LIMIT}&bbox={random_box(rng)}&filter-lang=cql2-text&filter={cql}"
        out["cql2"].append((f"/stac/{search}", f"/{search}"))
        i = int(rng.integers(0, items.n))
        cid, iid = items.collection_id(items.layer[i]), items.ids[i]
        out["id"].append(
            (f"/stac/collections/{cid}/items/{iid}", f"/collections/{cid}/items/{iid}")
        )
    return out


def text_queries(items: Items, count: int, seed: int) -> list[str]:
    """Distinct Chinese substrings (2 to 4 characters) of random titles, digits left out."""
    rng = np.random.default_rng(seed)
    found: list[str] = []
    while len(found) < count:
        title = items.titles[int(rng.integers(0, items.n))]
        chinese = "".join(c for c in title if not c.isdigit() and c != "号")
        length = int(rng.integers(2, min(4, len(chinese)) + 1))
        start = int(rng.integers(0, len(chinese) - length + 1))
        q = chinese[start : start + length]
        if q not in found:
            found.append(q)
    return found


# -- the baseline: pgSTAC, pypgstac, stac-fastapi-pgstac ------------------------------------
def baseline_venv() -> tuple[Path | None, str]:
    """The baseline's virtualenv (made on first use), or None and why it cannot be."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import stac_fastapi.pgstac, pypgstac, uvicorn"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return VENV, "ready"
    print(f"making the baseline's virtualenv in {VENV} (pip install {' '.join(BASELINE_PACKAGES)})")
    shutil.rmtree(VENV, ignore_errors=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
    if made.returncode != 0:
        return None, f"python -m venv failed: {made.stderr.strip()[-300:]}"
    pip = [str(VENV / "bin" / "pip"), "install", "-q", *BASELINE_PACKAGES]
    installed = subprocess.run(pip, capture_output=True, text=True, timeout=600)
    if installed.returncode != 0 or subprocess.run(check, capture_output=True).returncode != 0:
        shutil.rmtree(VENV, ignore_errors=True)
        return None, f"pip install failed: {installed.stderr.strip()[-300:]}"
    return VENV, "made"


def baseline_versions() -> str:
    pip = [str(VENV / "bin" / "pip"), "list", "--format=json"]
    listed = orjson.loads(subprocess.run(pip, capture_output=True, check=True).stdout)
    wanted = ("stac-fastapi-pgstac", "stac-fastapi.pgstac", "pypgstac", "uvicorn")
    return ", ".join(f"{p['name']} {p['version']}" for p in listed if p["name"] in wanted)


def pypgstac(*args: str, dsn: str) -> float:
    """Run ``pypgstac`` of the baseline's venv; seconds it took."""
    t0 = time.perf_counter()
    run = subprocess.run(
        [str(VENV / "bin" / "pypgstac"), *args, "--dsn", dsn], capture_output=True, text=True
    )
    if run.returncode != 0:
        raise RuntimeError(f"pypgstac {' '.join(args)}: {run.stderr[-2000:]}")
    return time.perf_counter() - t0


@dataclass
class Started:
    """A server process started, and where to ask whether it answers."""

    proc: subprocess.Popen
    url: str
    probe: str
    log: Path

    def wait(self, timeout: float = 600) -> str:
        """Its URL once it answers (both sides start side by side: start-up is slow)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.url} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + self.probe, timeout=5).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.url} did not start: {self.log.read_text()[-2000:]}")


def start_stac_fastapi(pg: PostGIS, db: str, work: Path) -> Started:
    """stac-fastapi-pgstac under uvicorn, 2 workers, over database ``db``."""
    port = free_port()
    where = {"user": "postgres", "password": "bench", "host": "127.0.0.1", "port": str(pg.port)}
    env = {
        **os.environ,
        "PGUSER": where["user"],
        "PGPASSWORD": where["password"],
        "PGHOST": where["host"],
        "PGPORT": where["port"],
        "PGDATABASE": db,
        "POSTGRES_USER": where["user"],  # the names of releases before 5
        "POSTGRES_PASS": where["password"],
        "POSTGRES_HOST_READER": where["host"],
        "POSTGRES_HOST_WRITER": where["host"],
        "POSTGRES_PORT": where["port"],
        "POSTGRES_DBNAME": db,
    }
    log = open(work / "stac-fastapi.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(VENV / "bin" / "uvicorn"),
            "stac_fastapi.pgstac.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=work,  # no .env there
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return Started(proc, f"http://127.0.0.1:{port}", "/collections", work / "stac-fastapi.log")


# -- ours ---------------------------------------------------------------------------------
def load_ours(dsn: str, node: Path, collections: Path, items_file: Path) -> float:
    """The items file through ``shikong catalog load``'s path (``load_items``); seconds taken,
    reading and parsing the file included."""
    from shikong.catalog.pg_ndjson_load import load_items
    from shikong.catalog.postgres_store import PostgresCatalogStore
    from shikong.catalog.storage import DataDir

    store = PostgresCatalogStore(dsn, DataDir(node))
    t0 = time.perf_counter()
    docs = [orjson.loads(line) for line in collections.read_bytes().splitlines()]
    load_items(store, items_file, docs, 1)
    took = time.perf_counter() - t0
    store.close()
    return took


def settle(dsn: str) -> None:
    """``VACUUM ANALYZE`` of a database just loaded, not timed: what autovacuum would do
    soon after, done before the next side's load or the queries, so neither shares the
    machine with the other's vacuum."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("VACUUM ANALYZE")


def optimize_ours(dsn: str, node: Path) -> float:
    """The step ``shikong migrate`` ends with (and ``shikong catalog optimize``): the items
    rewritten in bbox order. Timed on its own, not in the bulk load's rate."""
    from shikong.catalog.postgres_store import PostgresCatalogStore
    from shikong.catalog.storage import DataDir

    store = PostgresCatalogStore(dsn, DataDir(node))
    t0 = time.perf_counter()
    store.optimize()
    store.close()
    return time.perf_counter() - t0


def start_ours(dsn: str, node: Path) -> Started:
    """``shikong serve --workers 2`` on the database, the node's own folder beside."""
    port = free_port()
    lift_rate_limit(node)
    log = node.parent / "shikong.log"
    exe = Path(sys.executable).with_name("shikong")
    proc = subprocess.Popen(
        [
            exe,
            "serve",
            "--data",
            str(node),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--url",
            f"http://127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        env={**os.environ, "SHIKONG_DATABASE": dsn},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return Started(proc, f"http://127.0.0.1:{port}", "/conformance?f=json", log)


# -- measuring ----------------------------------------------------------------------------
def p50(values: list[float]) -> float:
    return float(np.percentile(values, 50)) if values else float("nan")


def ids_of(answer: dict[str, Any]) -> set[str]:
    return {f["id"] for f in answer.get("features", [answer])}


def same_answers(ours: str, theirs: str | None, todo: dict[str, list[tuple[str, str]]]) -> None:
    """The first query of each search kind with a large limit: both sides must name the
    same items (ours counts them; pgSTAC's page must hold them all)."""
    if theirs is None:
        return
    big = 2000
    with httpx.Client(timeout=600) as client:
        for kind, pairs in todo.items():
            mine, other = (p.replace(f"limit={LIMIT}", f"limit={big}") for p in pairs[0])
            a = client.get(ours + mine).json()
            b = client.get(theirs + other).json()
            matched = a.get("numberMatched", 1)
            if matched >= big or len(b.get("features", [])) >= big:
                print(f"answers of {kind}: {matched:,} items, too many to compare whole")
                continue
            if ids_of(a) != ids_of(b):
                only = sorted(ids_of(a) ^ ids_of(b))[:5]
                raise SystemExit(f"the sides answer {kind} differently: {only} ({mine})")
            print(f"answers of {kind}: the same {len(ids_of(a)):,} items on both sides")


def interleaved(
    ours: str, theirs: str | None, todo: list[tuple[str, str]]
) -> tuple[list[float], list[float]]:
    """Each query of one side then of the other, the side asked first alternating."""
    a: list[float] = []
    b: list[float] = []
    with httpx.Client(timeout=600) as to_ours, httpx.Client(timeout=600) as to_theirs:
        for k, (mine, other) in enumerate(todo):
            steps = [(to_ours, ours + mine, a)]
            if theirs is not None:
                steps.append((to_theirs, theirs + other, b))
            for client, url, into in steps if k % 2 == 0 else steps[::-1]:
                into.append(timed_get(client, url)[0])
    return a, b


def line(name: str, ours: float, theirs: float | None, unit: str, goal: str) -> None:
    """Ours, the baseline's and how many times better ours is."""
    if theirs is None:
        print(f"{name:32s} shikong {ours:9.1f} {unit:6s} pgstac       n/a          {goal}")
        return
    better = theirs / ours if unit == "ms" else ours / theirs
    print(
        f"{name:32s} shikong {ours:9.1f} {unit:6s} pgstac {theirs:9.1f} {unit:6s}"
        f" ratio {better:6.2f}x  {goal}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=50, help="distinct queries per kind")
    parser.add_argument("--text-queries", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0, help="throughput run length")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, well under a minute")
    parser.add_argument("--load-only", action="store_true", help="stop after both bulk loads")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # servers and cluster stopped
    if args.smoke:
        args.items, args.queries, args.text_queries, args.seconds = 2_000, 5, 5, 1.0
    if not (PG_BIN / "initdb").exists() or not POSTGIS.exists():
        raise SystemExit(f"needs PostgreSQL 15 in {PG_BIN} and PostGIS (postgresql-15-postgis-3)")
    WORK.mkdir(parents=True, exist_ok=True)
    work = WORK / ("smoke" if args.smoke else "run")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    venv, why = baseline_venv()
    if venv is None:
        if not args.smoke:
            raise SystemExit(f"the stac-fastapi-pgstac baseline cannot be installed: {why}")
        print(f"baseline skipped, ours only: {why}")
    else:
        print(f"baseline: {baseline_versions()}")
    print(f"load average at the start: {load_average()}")

    t0 = time.perf_counter()
    items = Items(args.items)
    collections, items_file = items.write(work)
    print(
        f"generated {args.items:,} items in {len(LAYERS)} layers of "
        f"{len({d for d, _, _ in LAYERS})} departments ({items_file.stat().st_size / 1e6:.0f} MB "
        f"of NDJSON) in {time.perf_counter() - t0:.1f} s"
    )
    procs: list[subprocess.Popen] = []
    pg = PostGIS()
    try:
        import psycopg

        with psycopg.connect(pg.dsn, autocommit=True) as db:
            db.execute("CREATE DATABASE pgstac")
            db.execute("CREATE DATABASE shikong")
        base = f"postgresql://postgres@127.0.0.1:{pg.port}"
        theirs_rate = None
        if venv is not None:
            pypgstac("migrate", dsn=f"{base}/pgstac")
            pypgstac(
                "load", "collections", str(collections), "--method", "insert", dsn=f"{base}/pgstac"
            )
            took = pypgstac(
                "load", "items", str(items_file), "--method", "insert", dsn=f"{base}/pgstac"
            )
            theirs_rate = args.items / took
            print(f"pypgstac loaded {args.items:,} items in {took:.1f} s")
            settle(f"{base}/pgstac")
        node = work / "node"
        took = load_ours(f"{base}/shikong", node, collections, items_file)
        ours_rate = args.items / took
        print(f"shikong catalog load took {took:.1f} s for {args.items:,} items")
        settle(f"{base}/shikong")
        if args.load_only:
            ratio = f"ratio {ours_rate / theirs_rate:.2f}x" if theirs_rate else "pypgstac n/a"
            rates = f"{ours_rate:,.0f} item/s, pypgstac {theirs_rate or float('nan'):,.0f}"
            print(f"bulk load: shikong {rates} item/s, {ratio}; load average {load_average()}")
            return
        took = optimize_ours(f"{base}/shikong", node)
        print(f"shikong catalog optimize (CLUSTER by bbox, as migrate ends) took {took:.1f} s")

        t0 = time.perf_counter()
        mine = start_ours(f"{base}/shikong", node)
        other = start_stac_fastapi(pg, "pgstac", work) if venv is not None else None
        procs += [s.proc for s in (mine, other) if s is not None]
        ours = mine.wait()
        print(f"shikong serve --workers 2 answered {time.perf_counter() - t0:.1f} s after start")
        theirs = other.wait() if other is not None else None

        todo = queries(items, args.queries + 3, seed=1)
        warm = {k: v[:3] for k, v in todo.items()}
        todo = {k: v[3:] for k, v in todo.items()}
        same_answers(ours, theirs, {k: v for k, v in warm.items() if k != "id"})
        for pairs in warm.values():  # both workers of both sides have connected
            interleaved(ours, theirs, pairs * 2)
        print(f"load average before the queries: {load_average()}")
        results = {kind: interleaved(ours, theirs, pairs) for kind, pairs in todo.items()}
        texts = text_search(ours, theirs, items, args.text_queries)

        boxes = [
            (f"/stac/search?limit={LIMIT}&bbox={b}", f"/search?limit={LIMIT}&bbox={b}")
            for b in (random_box(np.random.default_rng(s)) for s in range(1000, 1200))
        ]
        rates: tuple[list[float], list[float]] = ([], [])
        rounds = 1 if args.smoke else 2
        sides = [(ours, 0, 0)] + ([(theirs, 1, 1)] if theirs else [])
        for url, which, _ in sides:  # both workers warm
            throughput(url, {}, [b[which] for b in boxes[:20]], 2, min(args.seconds, 2.0))
        for _ in range(rounds):  # alternating, so both meet the machine's load
            for url, which, into in sides:
                tps, _ = throughput(url, {}, [b[which] for b in boxes], args.clients, args.seconds)
                rates[into].append(tps)
        print(f"load average at the end: {load_average()}")

        print(
            f"--- {args.items:,} items; p50 of {args.queries} distinct queries per kind, "
            f"limit={LIMIT}, boxes {BOX} deg ---"
        )
        names = {
            "bbox": "bbox search p50",
            "year": "bbox + one year p50",
            "collection": "one collection + bbox p50",
            "cql2": "CQL2 filter + bbox p50",
            "id": "item by id p50",
        }
        for kind, (a, b) in results.items():
            line(
                names[kind],
                p50(a),
                p50(b) if b else None,
                "ms",
                f"(goal <= 20 ms and faster; issue's pgstac {GOALS[kind]})",
            )
        line(
            f"bbox searches/s, {args.clients} clients",
            float(np.mean(rates[0])),
            float(np.mean(rates[1])) if rates[1] else None,
            "req/s",
            "(goal >= 2x; issue's pgstac 47 req/s)",
        )
        line(
            "bulk load",
            ours_rate,
            theirs_rate,
            "item/s",
            "(goal >= 2x; issue's pypgstac 10,300 items/s)",
        )
        print(texts)
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        pg.stop()
        if args.smoke:
            shutil.rmtree(work, ignore_errors=True)


def text_search(ours: str, theirs: str | None, items: Items, count: int) -> str:
    """Chinese substrings asked of ours (checked against the truth) and of pgSTAC (what it
    answers is reported); the summary lines."""
    from urllib.parse import quote

    exact, times, total, pgstac_notes = 0, [], 0, []
    with httpx.Client(timeout=600) as client:
        for q in text_queries(items, count, seed=7):
            truth = items.text_truth(q)
            ms, answer = timed_get(client, f"{ours}/stac/search?limit={LIMIT}&q={quote(q)}")
            times.append(ms)
            got = [f["id"] for f in answer["features"]]
            if answer.get("numberMatched") == len(truth) and got == truth[:LIMIT]:
                exact += 1
            else:
                print(
                    f"q={q}: ours matched {answer.get('numberMatched')} (truth {len(truth)}), "
                    f"page {got[:3]}… (truth {truth[:3]}…)"
                )
            total += len(truth)
            if theirs is not None:
                other = client.get(f"{theirs}/search?limit={LIMIT}&q={quote(q)}")
                if other.status_code != 200:
                    pgstac_notes.append(f"{other.status_code}")
                else:
                    found = [f["id"] for f in other.json().get("features", [])]
                    right = sum(i in set(truth) for i in found)
                    pgstac_notes.append(f"{right}/{len(found)}")
    said = (
        "pgstac: not run"
        if theirs is None
        else "pgstac's pages (items of the truth / returned): " + " ".join(pgstac_notes)
    )
    return (
        f"Chinese substring search (q=) p50 shikong {p50(times):.1f} ms; {exact} of {count} "
        f"queries answered exactly (numberMatched and first page equal to the truth; "
        f"{total / count:,.0f} matches a query on average)\n{said}"
    )


if __name__ == "__main__":
    main()
