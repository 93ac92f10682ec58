"""OGC API Features benchmark: shikong vs pygeoapi's stock providers, over HTTP, same run.

Generates a 1,000,000-parcel layer (GeoParquet with a bbox covering column, written by
geopandas), serves it with `shikong serve` and with stock pygeoapi 0.24 (its Parquet
provider on the same file, its GeoJSON provider on a 100,000-parcel subset), and
measures bbox queries (limit=100), item by id and /collections with 100 collections.

shikong is called as the owner department of the parcels (an ``rer`` API key), so access
control runs on every request as it does in service; the benchmark's data directory
carries its own policy without the per-key rate limit (one key sends thousands of
requests; the shipped policy is unchanged). ``--smoke``: tiny sizes, a few seconds, same
code paths and output lines (``make test`` runs it).

    .venv/bin/pip install s3fs            # the stock Parquet provider imports it
    .venv/bin/python bench/features.py [--features 1000000] [--rounds 200] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import shapely
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
from benchutil import lift_rate_limit  # noqa: E402
from conftest import RunningServer, free_port  # noqa: E402
from shikong.catalog import Catalog  # noqa: E402
from shikong.server.identity import KeyStore  # noqa: E402

EXTENT = (113.0, 33.6, 113.6, 34.0)


def parcels(n: int, seed: int = 1) -> gpd.GeoDataFrame:
    """n small jittered quadrilaterals tiling the city's extent, with attributes."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    dx, dy = (EXTENT[2] - EXTENT[0]) / side, (EXTENT[3] - EXTENT[1]) / side
    i = np.arange(n)
    x0 = EXTENT[0] + (i % side) * dx
    y0 = EXTENT[1] + (i // side) * dy
    j = rng.uniform(0.05, 0.2, size=(n, 4))
    coords = np.stack(
        [
            np.column_stack([x0 + j[:, 0] * dx, y0 + j[:, 1] * dy]),
            np.column_stack([x0 + dx * (1 - j[:, 2]), y0 + j[:, 1] * dy]),
            np.column_stack([x0 + dx * (1 - j[:, 2]), y0 + dy * (1 - j[:, 3])]),
            np.column_stack([x0 + j[:, 0] * dx, y0 + dy * (1 - j[:, 3])]),
            np.column_stack([x0 + j[:, 0] * dx, y0 + j[:, 1] * dy]),
        ],
        axis=1,
    )
    geoms = shapely.polygons(coords)
    uses = np.array(["0701", "0702", "0601", "0103", "0301", "1003"])
    return gpd.GeoDataFrame(
        {
            "pid": i.astype("int64"),
            "code": [f"410402{k:06d}GB{k % 99999:05d}W00000000" for k in i],
            "use": uses[rng.integers(0, len(uses), n)],
            "area_m2": rng.uniform(200, 5000, n).round(2),
        },
        geometry=geoms,
        crs=4490,
    )


def stock_server(work: Path, parquet: Path, geojson: Path, small: list[Path], port: int):
    """Stock pygeoapi 0.24 (its Starlette app) on the same data."""
    crs84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    ext = {"spatial": {"bbox": list(EXTENT), "crs": crs84}}
    resources = {
        "parcels": {
            "type": "collection",
            "title": "parcels",
            "description": "1M parcels",
            "keywords": ["bench"],
            "extents": ext,
            "providers": [
                {
                    "type": "feature",
                    "name": "Parquet",
                    "id_field": "pid",
                    "data": {"source": str(parquet)},
                }
            ],
        },
        "parcels_geojson": {
            "type": "collection",
            "title": "parcels 100k",
            "description": "subset",
            "keywords": ["bench"],
            "extents": ext,
            "providers": [
                {"type": "feature", "name": "GeoJSON", "id_field": "pid", "data": str(geojson)}
            ],
        },
    }
    for k, path in enumerate(small):
        resources[f"layer_{k}"] = {
            "type": "collection",
            "title": f"layer {k}",
            "description": "small",
            "keywords": ["bench"],
            "extents": ext,
            "providers": [
                {"type": "feature", "name": "GeoJSON", "id_field": "pid", "data": str(path)}
            ],
        }
    config = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json",
            "encoding": "utf-8",
            "languages": ["en"],
            "limits": {"default_items": 10, "max_items": 1000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "stock",
                "description": "stock",
                "keywords": ["x"],
                "terms_of_service": "x",
                "url": "x",
            },
            "license": {"name": "x", "url": "x"},
            "provider": {"name": "x", "url": "x"},
            "contact": {"name": "x"},
        },
        "resources": resources,
    }
    cfg = work / "stock.yml"
    cfg.write_text(yaml.safe_dump(config, allow_unicode=True))
    oas = work / "stock-openapi.yml"
    pygeoapi = Path(sys.executable).with_name("pygeoapi")
    with open(oas, "w") as fh:
        subprocess.run(
            [pygeoapi, "openapi", "generate", str(cfg)],
            stdout=fh,
            check=True,
            env={**os.environ, "PYGEOAPI_CONFIG": str(cfg)},
        )
    env = {**os.environ, "PYGEOAPI_CONFIG": str(cfg), "PYGEOAPI_OPENAPI": str(oas)}
    log = open(work / "stock.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            Path(sys.executable).with_name("uvicorn"),
            "pygeoapi.starlette_app:APP",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/conformance?f=json", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError((work / "stock.log").read_text()[-2000:])


def timed(client: httpx.Client, url: str, params: dict | None = None) -> float:
    t0 = time.perf_counter()
    response = client.get(url, params=params)
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{url} {params}: {response.status_code} {response.text[:300]}")
    return elapsed


def bbox_queries(rounds: int, seed: int = 5) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rounds):
        x = rng.uniform(EXTENT[0], EXTENT[2] - 0.02)
        y = rng.uniform(EXTENT[1], EXTENT[3] - 0.02)
        out.append({"bbox": f"{x},{y},{x + 0.01},{y + 0.01}", "limit": 100, "f": "json"})
    return out


def measure(
    url: str, collection: str, n: int, rounds: int, headers: dict | None = None
) -> dict[str, list[float]]:
    rng = np.random.default_rng(9)
    with httpx.Client(timeout=300, headers=headers) as client:
        timed(client, f"{url}/collections/{collection}/items", {"limit": 1, "f": "json"})
        bbox = [
            timed(client, f"{url}/collections/{collection}/items", q) for q in bbox_queries(rounds)
        ]
        ids = [
            timed(client, f"{url}/collections/{collection}/items/{int(i)}", {"f": "json"})
            for i in rng.integers(0, n, rounds)
        ]
        listing = [
            timed(client, f"{url}/collections", {"f": "json"}) for _ in range(max(5, rounds // 10))
        ]
    return {"bbox": bbox, "id": ids, "collections": listing}


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--geojson", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--stock-rounds", type=int, default=20)
    parser.add_argument("--collections", type=int, default=100)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    args = parser.parse_args()
    if args.smoke:
        args.features, args.geojson, args.collections = 2_000, 500, 5
        args.rounds, args.stock_rounds = 10, 3
    work = Path(tempfile.mkdtemp(prefix="shikong-bench-features-"))
    servers = []
    try:
        t0 = time.perf_counter()
        frame = parcels(args.features)
        parquet = work / "parcels.parquet"
        frame.to_parquet(parquet, write_covering_bbox=True)
        geojson = work / "parcels_100k.geojson"
        frame.iloc[: args.geojson].to_file(geojson, driver="GeoJSON")
        small = []
        for k in range(args.collections - 2):
            path = work / f"small_{k}.geojson"
            frame.iloc[k * 10 : (k + 1) * 10].to_file(path, driver="GeoJSON")
            small.append(path)
        print(f"generated {args.features:,} parcels in {time.perf_counter() - t0:.1f} s")

        data = work / "data"
        cat = Catalog.open(data)
        with cat.writing():
            cat.ingest(
                parquet, department="rer", layer="parcels", id_field="pid", valid_from="2024-01-01"
            )
            cat.ingest(
                geojson,
                department="rer",
                layer="parcels_geojson",
                id_field="pid",
                valid_from="2024-01-01",
            )
            for k, path in enumerate(small):
                cat.ingest(
                    path,
                    department="sta",
                    layer=f"layer_{k}",
                    id_field="pid",
                    valid_from="2024-01-01",
                )
        print(f"ingested into shikong in {time.perf_counter() - t0:.1f} s")
        lift_rate_limit(data)
        key, _ = KeyStore(data).create("rer", "bench")
        as_rer = {"X-API-Key": key}
        print("shikong called with an rer API key (access control on; rate limit lifted)")

        ours = RunningServer(data, free_port())
        servers.append(ours)
        stock_proc, stock_url = stock_server(work, parquet, geojson, small, free_port())
        servers.append(stock_proc)

        seen = [  # the same /collections on both sides: the key sees every collection
            len(httpx.get(f"{u}/collections?f=json", headers=h).json()["collections"])
            for u, h in ((ours.url, as_rer), (stock_url, {}))
        ]
        if seen != [args.collections] * 2:
            raise RuntimeError(f"collections seen (shikong, stock): {seen}, not {args.collections}")
        mine = measure(ours.url, "rer-parcels", args.features, args.rounds, as_rer)
        theirs = measure(stock_url, "parcels", args.features, args.stock_rounds)
        mine_gj = measure(ours.url, "rer-parcels_geojson", args.geojson, args.rounds, as_rer)
        theirs_gj = measure(stock_url, "parcels_geojson", args.geojson, args.stock_rounds)

        def row(name, a, b, key, q=50):
            ratio = p(b[key], q) / p(a[key], q)
            print(
                f"{name:48s} shikong {p(a[key], q):8.1f} ms   stock {p(b[key], q):9.1f} ms"
                f"   ratio {ratio:7.1f}x"
            )

        print(f"--- {args.features:,} parcels, GeoParquet (stock: Parquet provider) ---")
        row("bbox limit=100 p50", mine, theirs, "bbox")
        row("bbox limit=100 p95", mine, theirs, "bbox", 95)
        row("item by id p50", mine, theirs, "id")
        print(f"--- {args.geojson:,} parcels (stock: GeoJSON provider) ---")
        row("bbox limit=100 p50", mine_gj, theirs_gj, "bbox")
        row("item by id p50", mine_gj, theirs_gj, "id")
        print(f"--- /collections with {args.collections} collections ---")
        row("/collections p50", mine, theirs, "collections")
    finally:
        for s in servers:
            if isinstance(s, RunningServer):
                s.stop()
            else:
                s.terminate()
                s.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
