"""What access control costs per request: the same endpoints with and without it, same run.

Builds the small demo city in a temporary folder and serves it in process twice:
"with" is the real application (gate: API key lookup, rate limit, the caller's view,
masking, audit entries for shared/restricted reads); "without" is the same routes with
the gate removed and every caller given the full view, which is what the server did
before access control. Requests go through httpx's ASGI transport, so both sides pay the
same client cost, and rounds alternate between the two sides so drift hits both.
"With" calls as an ``nrp`` API key (it reads public, shared and granted restricted
layers); the data directory carries its own policy without the per-key rate limit, so
the limiter runs but never refuses (the shipped policy is unchanged). ``--smoke``: 10
rounds, a few seconds beside the demo city's build.

    .venv/bin/python bench/auth.py [--rounds 400] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from benchutil import lift_rate_limit
from shikong.catalog import Catalog
from shikong.catalog.bulk import ingest_entries, read_manifest
from shikong.catalog.policy import Access
from shikong.demo import MANIFEST, generate
from shikong.server.app import create_app
from shikong.server.identity import KeyStore

ENDPOINTS = [
    ("landing", "/?f=json"),
    ("collections", "/collections?f=json"),
    ("items (shared, audited)", "/collections/nrp-landuse/items?f=json&limit=10"),
    ("item by id (restricted, masked, audited)", "/collections/rer-parcels/items/{fid}?f=json"),
    ("items (public)", "/collections/tra-roads/items?f=json&limit=10"),
    ("STAC search", "/stac/search?limit=10"),
]


def build(root: Path) -> Path:
    generate(root / "sources", scale="small")
    data = root / "data"
    ingest_entries(Catalog.open(data), root / "sources", read_manifest(root / "sources" / MANIFEST))
    return data


def open_app(guarded):
    """The same server with its gate removed and a full view for every caller."""
    server = guarded.state.server
    everything = frozenset(server.publisher.snapshot.metas)
    full = Access(everything, everything)
    server.access = lambda caller: full
    return guarded.app.app  # the Starlette app inside the gate (inside the base-URL layer)


async def measure(rounds: int, data: Path, warm: int = 20) -> dict[str, tuple[float, float]]:
    key, _ = KeyStore(data).create("nrp", "bench")
    guarded = create_app(data, "http://bench", watch=False)
    plain = create_app(data, "http://bench", watch=False)
    plain_inner = open_app(plain)
    fid = Catalog.open(data)["rer-parcels"].to_geodataframe()["fid"].iloc[0]
    sides = {
        "with": (guarded, {"X-API-Key": key}),
        "without": (plain_inner, {}),
    }
    clients = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
        for name, (app, _) in sides.items()
    }
    results = {}
    for label, template in ENDPOINTS:
        path = template.format(fid=fid)
        times: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(warm):  # warm caches and views on both sides
            for name, (_, headers) in sides.items():
                assert (await clients[name].get(path, headers=headers)).status_code == 200, path
        for _ in range(rounds):
            for name, (_, headers) in sides.items():
                started = time.perf_counter()
                response = await clients[name].get(path, headers=headers)
                times[name].append(time.perf_counter() - started)
                assert response.status_code == 200
        results[label] = (
            statistics.median(times["with"]) * 1000,
            statistics.median(times["without"]) * 1000,
        )
    for client in clients.values():
        await client.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--smoke", action="store_true", help="10 rounds, a few seconds")
    args = parser.parse_args()
    if args.smoke:
        args.rounds = 10
    with tempfile.TemporaryDirectory() as tmp:
        data = build(Path(tmp))
        lift_rate_limit(data)
        results = asyncio.run(measure(args.rounds, data, warm=3 if args.smoke else 20))
    print(f"p50 latency over {args.rounds} requests per endpoint and side (in process, ASGI)")
    print("'with': an nrp API key, the data directory's policy without the rate limit")
    print(f"{'endpoint':44} {'with AC ms':>10} {'without ms':>10} {'added ms':>9} {'ratio':>6}")
    for label, (with_ms, without_ms) in results.items():
        print(
            f"{label:44} {with_ms:10.2f} {without_ms:10.2f} {with_ms - without_ms:9.2f} "
            f"{with_ms / without_ms:6.2f}"
        )


if __name__ == "__main__":
    main()
