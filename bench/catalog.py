"""Catalog benchmark: ingest 10,000 items and search a 100,000-item catalog.

Prints shikong's figures beside pystac's plain ``Catalog.save()`` of the same items, from
the same run, and their ratio. The library alone, no server (so no API key). Run alone:

    .venv/bin/python bench/catalog.py [--ingest 10000] [--catalog 100000] [--repeat 3]

``--smoke``: 200 items to ingest, a 1,000-item catalog, 5 rounds, one run, no sync
between runs: a few seconds, the same code paths and output lines.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pystac
from shapely.geometry import box
from shikong.catalog import Catalog, IngestRequest
from shikong.catalog.stac import item_dict
from shikong.spatial.readers.report import ReadReport  # noqa: F401  (import cost paid up front)

DEPARTMENTS = [
    "nrp",
    "rer",
    "hud",
    "tra",
    "wat",
    "eco",
    "agr",
    "frs",
    "ema",
    "met",
    "urb",
    "sta",
    "psb",
]
TITLES = [
    "土地利用现状",
    "永久基本农田",
    "河流水系",
    "空气质量监测",
    "森林资源",
    "道路网",
    "人口网格",
    "房屋建筑",
    "应急避难场所",
    "降雨量",
]


def synthetic(n_items: int, versions_per_layer: int, seed: int = 1):
    """(request, items) per layer: random footprints in the city, yearly versions."""
    rng = np.random.default_rng(seed)
    layers = []
    start = datetime(2000, 1, 1, tzinfo=UTC)
    for layer_no in range(n_items // versions_per_layer):
        dept = DEPARTMENTS[layer_no % len(DEPARTMENTS)]
        title = f"{TITLES[layer_no % len(TITLES)]} {layer_no}"
        req = IngestRequest(
            Path("/dev/null"), dept, f"layer_{layer_no}", title=title, keywords=["bench", title[:2]]
        )
        items = []
        for v in range(versions_per_layer):
            x, y = 113.0 + rng.uniform(0, 0.55), 33.6 + rng.uniform(0, 0.35)
            items.append(
                item_dict(
                    item_id=f"{req.collection_id}-v{v + 1}",
                    collection_id=req.collection_id,
                    department=dept,
                    layer=req.layer,
                    kind="vector",
                    classification="shared",
                    version=str(v + 1),
                    valid_from=start + timedelta(days=365 * v + layer_no % 300),
                    title=f"{title} v{v + 1}",
                    geometry=box(x, y, x + 0.02, y + 0.02),
                    assets={
                        "data": {
                            "href": f"../../../../assets/{dept}/{req.layer}/{v + 1}/data.parquet",
                            "type": "application/vnd.apache.parquet",
                            "roles": ["data"],
                            "file:size": 1234,
                        }
                    },
                    properties={"proj:code": "EPSG:4490"},
                    source=None,
                    created=start,
                )
            )
        layers.append((req, items))
    return layers


def settle(skip: bool = False) -> None:
    """Let the other side's buffered writes reach the disk before a timed run: pystac's
    10,000 files (and our JSON mirror's) are written back by the kernel for seconds after
    the call returns, and the next run's writes would queue behind them."""
    if not skip:
        os.sync()


def shikong_ingest(root: Path, layers) -> float:
    """Bulk ingest: every layer's versions committed in one transaction, then exported."""
    cat = Catalog.open(root)
    batches = [(req, "vector", copy.deepcopy(items), False) for req, items in layers]
    t0 = time.perf_counter()
    cat.commit_many(batches, export=False)
    committed = time.perf_counter() - t0
    with cat.writing():  # writes the JSON mirror of everything committed
        pass
    return committed, time.perf_counter() - t0


def pystac_save(root: Path, layers) -> float:
    t0 = time.perf_counter()
    catalog = pystac.Catalog("shikong", "bench")
    depts: dict[str, pystac.Catalog] = {}
    for req, items in layers:
        dept = depts.get(req.department)
        if dept is None:
            dept = depts[req.department] = pystac.Catalog(req.department, req.department)
            catalog.add_child(dept)
        boxes = [i["bbox"] for i in items]
        extent = pystac.Extent(
            pystac.SpatialExtent(
                [
                    [
                        min(b[0] for b in boxes),
                        min(b[1] for b in boxes),
                        max(b[2] for b in boxes),
                        max(b[3] for b in boxes),
                    ]
                ]
            ),
            pystac.TemporalExtent([[datetime(2000, 1, 1, tzinfo=UTC), None]]),
        )
        collection = pystac.Collection(req.collection_id, req.title, extent)
        dept.add_child(collection)
        for item in items:
            plain = copy.deepcopy(item)
            plain["links"] = []
            collection.add_item(pystac.Item.from_dict(plain))
    catalog.normalize_hrefs(str(root))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return time.perf_counter() - t0


def search_latencies(cat: Catalog, rounds: int, seed: int = 2) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    kinds: dict[str, list[float]] = {
        "bbox": [],
        "datetime": [],
        "department+bbox": [],
        "text": [],
        "intersects": [],
    }
    for _ in range(rounds):
        x, y = 113.0 + rng.uniform(0, 0.5), 33.6 + rng.uniform(0, 0.3)
        queries = {
            "bbox": dict(bbox=(x, y, x + 0.03, y + 0.03), limit=100),
            "datetime": dict(
                datetime=f"{rng.integers(2000, 2020)}-06-30",
                bbox=(x, y, x + 0.1, y + 0.1),
                limit=100,
            ),
            "department+bbox": dict(
                departments=[DEPARTMENTS[rng.integers(13)]],
                bbox=(x, y, x + 0.1, y + 0.1),
                limit=100,
            ),
            "text": dict(text=f"{TITLES[rng.integers(10)]} {rng.integers(1000)}", limit=100),
            "intersects": dict(intersects=box(x, y, x + 0.03, y + 0.05).buffer(0.01), limit=100),
        }
        for name, kwargs in queries.items():
            t0 = time.perf_counter()
            cat.search(**kwargs)
            kinds[name].append((time.perf_counter() - t0) * 1000)
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ingest", type=int, default=10_000)
    parser.add_argument("--catalog", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="ingest runs of each, best kept")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    args = parser.parse_args()
    if args.smoke:  # and no os.sync(): the machine's other writers are not ours to wait for
        args.ingest, args.catalog, args.rounds, args.repeat = 200, 1_000, 5, 1
    work = Path(tempfile.mkdtemp(prefix="shikong-bench-"))
    try:
        layers = synthetic(args.ingest, versions_per_layer=10)
        runs: list[tuple[float, float, float]] = []
        for k in range(args.repeat):  # alternating, each into a new directory; best of each
            settle(args.smoke)
            ours, with_json = shikong_ingest(work / f"ours-{k}", layers)
            settle(args.smoke)
            runs.append((ours, with_json, pystac_save(work / f"pystac-{k}", layers)))
        ours, with_json, theirs = (min(r[i] for r in runs) for i in range(3))
        n = args.ingest
        print(
            f"ingest {n} items, committed and searchable: shikong {n / ours:,.0f} items/s "
            f"({ours:.2f} s); pystac Catalog.save {n / theirs:,.0f} items/s "
            f"({theirs:.2f} s); ratio {theirs / ours:.1f}x; best of {args.repeat} (runs, s: "
            + "; ".join(f"{a:.2f} vs {c:.2f}" for a, _, c in runs)
            + ")"
        )
        print(
            f"  including the static STAC JSON mirror: {n / with_json:,.0f} items/s "
            f"({with_json:.2f} s); ratio {theirs / with_json:.1f}x"
        )
        big = work / "big"
        t0 = time.perf_counter()
        Catalog.open(big).commit_many(
            [(r, "vector", i, False) for r, i in synthetic(args.catalog, 10, seed=3)], export=False
        )
        print(f"built a {args.catalog:,}-item catalog in {time.perf_counter() - t0:.1f} s")
        cat = Catalog(big)  # no JSON mirror needed to search
        search_latencies(cat, 10)  # warm the page cache
        lat = search_latencies(cat, args.rounds)
        every = [v for values in lat.values() for v in values]
        for name, values in lat.items():
            print(
                f"  search {name:16s} p50 {statistics.median(values):6.2f} ms  "
                f"p95 {np.percentile(values, 95):6.2f} ms"
            )
        print(
            f"search p50 over all kinds: {statistics.median(every):.2f} ms "
            f"(goal <= 20 ms) on {args.catalog:,} items"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
