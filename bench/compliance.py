"""Compliance benchmark: a 50-hectare proposal against control layers of 500,000 polygons.

Prints, from the same run: shikong's library p50 and HTTP p50 for planning-compliance,
a plain ``geopandas.overlay`` of the same inputs, and parcels-at-point throughput for
1,000,000 points against 1,000,000 parcels beside a bare shapely STRtree query.

Both sides do the same work: the shipped compliance rules (the ones the server's process
applies), as one caller, an ``nrp`` API key. The library runs on that caller's view of
the catalog (the collections the access policy lets it read), the HTTP side sends the
key; the script checks that both answer with the same layers available and prints them.
The data directory carries its own policy without the per-key rate limit (one key, many
requests; the shipped policy is unchanged). ``--smoke``: tiny sizes, a few seconds.

    .venv/bin/python bench/compliance.py [--polygons 500000] [--rounds 50] [--smoke]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import shapely
from shapely.geometry import box, mapping

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
from benchutil import lift_rate_limit  # noqa: E402
from conftest import RunningServer, free_port  # noqa: E402
from features import EXTENT, parcels  # noqa: E402
from shikong.catalog import Catalog  # noqa: E402
from shikong.catalog.analysis import planning_compliance  # noqa: E402
from shikong.catalog.policy import CollectionMeta, Policy  # noqa: E402
from shikong.catalog.view import CatalogView  # noqa: E402
from shikong.server.identity import KeyStore  # noqa: E402

# control layers and their share of the polygons
LAYERS = {"landuse": 0.6, "farmland_protection": 0.2, "planning_zones": 0.1, "approved_land": 0.1}


def control_layer(name: str, n: int, seed: int) -> gpd.GeoDataFrame:
    frame = parcels(n, seed=seed)
    if name == "landuse":
        frame["DLBM"] = np.where(frame["use"] == "0103", "0103", frame["use"])
        frame["QSXZ"] = np.where(frame["pid"] % 2 == 0, "30", "10")
    if name == "farmland_protection":
        frame["DLBM"] = "0103"
    if name == "planning_zones":
        frame["GHFQMC"] = np.where(frame["pid"] % 3 == 0, "城镇发展区", "农田保护区")
    if name == "approved_land":
        frame["批准文号"] = [f"豫政土〔2021〕{k}号" for k in frame["pid"]]
    return frame


def proposals(rounds: int, seed: int = 3) -> list:
    """50-hectare squares (707 m a side) at random places in the city."""
    rng = np.random.default_rng(seed)
    side = 707.1 / 111_320 / np.cos(np.radians(33.8))
    out = []
    for _ in range(rounds):
        x = rng.uniform(EXTENT[0], EXTENT[2] - 0.02)
        y = rng.uniform(EXTENT[1], EXTENT[3] - 0.02)
        out.append(box(x, y, x + side, y + side * np.cos(np.radians(33.8))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--polygons", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    args = parser.parse_args()
    if args.smoke:
        args.polygons, args.rounds, args.points = 4_000, 5, 5_000
    work = Path(tempfile.mkdtemp(prefix="shikong-bench-compliance-"))
    server = None
    try:
        data = work / "data"
        cat = Catalog.open(data)
        frames = {}
        for k, (name, share) in enumerate(LAYERS.items()):
            frame = control_layer(name, int(args.polygons * share), seed=10 + k)
            path = work / f"{name}.parquet"
            frame.to_parquet(path)
            cat.ingest(path, department="nrp", layer=name, id_field="pid", valid_from="2020-01-01")
            frames[name] = frame
        print(f"{args.polygons:,} control polygons in {len(LAYERS)} layers")
        lift_rate_limit(data)
        key, record = KeyStore(data).create("nrp", "bench")
        metas = [CollectionMeta(c.id, c.department, c.classification) for c in cat.collections()]
        view = CatalogView(cat, Policy.load(data).access(record.caller(), metas).visible)
        tests = proposals(args.rounds)
        first = planning_compliance(view, mapping(tests[0]))  # opens the layers once
        lib = []
        for geom in tests:
            t0 = time.perf_counter()
            planning_compliance(view, mapping(geom))
            lib.append((time.perf_counter() - t0) * 1000)
        plain = []
        for geom in tests[: max(5, args.rounds // 10)]:
            proposal = gpd.GeoDataFrame(geometry=[geom], crs=4490)
            t0 = time.perf_counter()
            for frame in frames.values():
                gpd.overlay(proposal, frame, how="intersection").to_crs(4547).area.sum()
            plain.append((time.perf_counter() - t0) * 1000)
        server = RunningServer(data, free_port())
        http = []
        with httpx.Client(timeout=120, headers={"X-API-Key": key}) as client:
            for k, geom in enumerate(tests):
                t0 = time.perf_counter()
                r = client.post(
                    f"{server.url}/processes/planning-compliance/execution",
                    json={"inputs": {"proposal": mapping(geom)}},
                )
                http.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
                if k == 0:
                    answered = r.json()
        checked = [layer["layer"] for layer in first["layers"] if layer.get("available", True)]
        if checked != [lay["layer"] for lay in answered["layers"] if lay.get("available", True)]:
            raise RuntimeError(f"library and HTTP checked different layers: {answered['layers']}")
        missing = len(first["layers"]) - len(checked)
        print(
            f"both sides as nrp/bench (rate limit lifted), shipped rules: {len(checked)} layers "
            f"checked ({', '.join(checked)}); {missing} rule layers absent from this catalog"
        )
        ours, theirs = statistics.median(lib), statistics.median(plain)
        print(
            f"planning compliance p50: library {ours:.1f} ms, HTTP {statistics.median(http):.1f}"
            f" ms; plain geopandas.overlay {theirs:.1f} ms; ratio {theirs / ours:.1f}x"
        )

        people = parcels(args.points, seed=99)
        rng = np.random.default_rng(4)
        points = shapely.points(
            rng.uniform(EXTENT[0], EXTENT[2], args.points),
            rng.uniform(EXTENT[1], EXTENT[3], args.points),
        )
        tree = shapely.STRtree(people.geometry.values)
        t0 = time.perf_counter()
        tree.query(points, predicate="intersects")
        bare = args.points / (time.perf_counter() - t0)
        from shikong.spatial.registry import parcels_at_points

        _ = people.sindex  # built once per layer version, as the registry keeps it
        t0 = time.perf_counter()
        hits = parcels_at_points(people, points)
        mine = args.points / (time.perf_counter() - t0)
        print(
            f"parcels at point: shikong {mine:,.0f} points/s ({len(hits):,} hits); bare "
            f"STRtree query {bare:,.0f} points/s; ratio {mine / bare:.2f}"
        )
    finally:
        if server:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
