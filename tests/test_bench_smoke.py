"""Every benchmark runs in its --smoke mode, so a change that breaks one fails make test.

Each bench/X.py runs as a subprocess with the venv's Python (as a person runs it) and
must exit 0 and print its figure lines: shikong's figure, the baseline's, their ratio.
A baseline's package or service that is missing skips here, and fails under
SHIKONG_REQUIRE_SERVICES (CI), where it must be there.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PG = "host=127.0.0.1 user=postgres dbname=test connect_timeout=5"
N = r"-?[\d,]+(?:\.\d+)?(?:e[-+]\d+)?"  # a printed figure: 1,234 or 0.52 or 2.09e-08

# the lines each benchmark must print; every group is a figure
FIGURES = {
    "auth": [
        rf"^{label}\s+({N})\s+({N})\s+({N})\s+({N})$"
        for label in (
            r"landing",
            r"collections",
            r"items \(shared, audited\)",
            r"item by id \(restricted, masked, audited\)",
            r"items \(public\)",
            r"STAC search",
        )
    ]
    + [r"^'with': an nrp API key"],
    "catalog": [
        rf"^ingest 200 items, committed and searchable: shikong ({N}) items/s .*pystac "
        rf"Catalog\.save ({N}) items/s .*ratio ({N})x",
        rf"^  including the static STAC JSON mirror: ({N}) items/s .*ratio ({N})x",
        rf"^search p50 over all kinds: ({N}) ms .*on 1,000 items",
    ],
    "compliance": [
        r"^both sides as nrp/bench .*: 4 layers checked \(nrp-farmland_protection, "
        r"nrp-planning_zones, nrp-approved_land, nrp-landuse\)",
        rf"^planning compliance p50: library ({N}) ms, HTTP ({N}) ms; plain geopandas\.overlay "
        rf"({N}) ms; ratio ({N})x$",
        rf"^parcels at point: shikong ({N}) points/s \(({N}) hits\); bare STRtree query ({N}) "
        rf"points/s; ratio ({N})$",
    ],
    "features": [r"^shikong called with an rer API key"]
    + [
        rf"^{label}\s+shikong\s+({N}) ms\s+stock\s+({N}) ms\s+ratio\s+({N})x$"
        for label in (
            r"bbox limit=100 p50",
            r"bbox limit=100 p95",
            r"item by id p50",
            r"/collections p50",
        )
    ],
    "iot": [
        r"^shikong called with a wat gateway API key",
        rf"^HTTP ingest: ({N}) readings/s .*into the archive: ({N}) readings/s$",
        rf"^MQTT single readings .*QoS 0: ({N}) msg/s; QoS 1: ({N}) msg/s; batches of 100: "
        rf"({N}) readings/s$",
        rf"^ingest to queryable: p50 ({N}) ms, p99 ({N}) ms$",
        rf"^PostgreSQL COPY into an indexed table: ({N}) rows/s",
    ]
    + [
        rf"^{label}\s+shikong\s+({N}) ms\s+PostgreSQL\s+({N}) ms\s+ratio\s+({N})$"
        for label in (
            r"one sensor one day \(EDR\)",
            r"latest of 100 sensors",
            r"hourly means over 30 days",
        )
    ],
    "observations_pg": [  # readings into PostgreSQL: the store beside plain COPY
        rf"^the store \(append: validation, COPY, newest values\): ({N}) readings/s$",
        rf"^the store's COPY path alone \(load, no validation\): ({N}) readings/s$",
        rf"^plain COPY of the same rows into a keyed table: ({N}) rows/s; ratio store/COPY "
        rf"({N}), COPY path/COPY ({N})$",
    ],
    "raster": [
        rf"^NDVI of one date: ({N}) Mpx/s reading from disk",
        rf"^NDVI change \+ zonal mean \(200 polygons\), best of 1: 1 worker ({N}) s, 2 workers "
        rf"({N}) s",
        rf"^zonal mean: shikong .* ({N}) s; rasterstats \(zonal only\) ({N}) s \(({N})x\); "
        rf"exactextract .* ({N}) s \(({N})x\); max \|shikong - rasterstats\| = ({N});",
        rf"^zonal mean on the same change raster: shikong ({N}) s; rasterstats ({N})x slower; "
        rf"exactextract ({N})x slower; max \|shikong - rasterstats\| = ({N})",
    ],
    "workbench": [
        rf"^{k} p50 shikong ({N}) ms  bare map ({N}) ms  ratio ({N})x"
        for k in ("first map paint \\(opening layers\\)", "full paint \\(every layer on\\)")
    ]
    + [rf"^page JS and CSS gzip -9: ({N}) KB in ({N}) files"],
}


def require(ok: bool, what: str) -> None:
    """A missing baseline skips on a developer's machine and fails under CI."""
    if ok:
        return
    if os.environ.get("SHIKONG_REQUIRE_SERVICES"):
        pytest.fail(f"{what}, and SHIKONG_REQUIRE_SERVICES is set")
    pytest.skip(what)


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def postgres_answers() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.Error:
        return False


def require_postgis() -> None:
    """The PostgreSQL 15 binaries and PostGIS a benchmark's throwaway cluster needs."""
    pg_bin = Path(os.environ.get("SHIKONG_PG_BIN", "/usr/lib/postgresql/15/bin"))
    require((pg_bin / "initdb").exists(), f"PostgreSQL binaries are not in {pg_bin}")
    postgis = Path("/usr/share/postgresql/15/extension/postgis.control")
    require(postgis.exists(), "PostGIS is not installed (postgresql-15-postgis-3)")


def run_smoke(bench: str, extra: Sequence[str] = (), timeout: int = 180) -> tuple[str, str]:
    """``bench/<bench>.py --smoke``, which must exit 0: its stdout, and the tail of both
    streams for failure messages."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{bench}.py"), "--smoke", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    tail = f"\n--- stdout ---\n{run.stdout[-3000:]}\n--- stderr ---\n{run.stderr[-3000:]}"
    assert run.returncode == 0, f"bench/{bench}.py --smoke exited {run.returncode}{tail}"
    return run.stdout, tail


def assert_figures(bench: str, stdout: str, patterns: list[str], tail: str) -> None:
    """Every pattern's line printed, each number it captures finite."""
    for pattern in patterns:
        found = re.search(pattern, stdout, re.MULTILINE)
        assert found, f"bench/{bench}.py --smoke printed no line matching {pattern!r}{tail}"
        assert all(math.isfinite(float(g.replace(",", ""))) for g in found.groups()), found[0]


def prerequisites(bench: str) -> list[str]:
    """Extra arguments for the benchmark, once what its baseline needs is checked."""
    if bench == "features":
        require(has_module("s3fs"), "s3fs (stock pygeoapi's Parquet provider) is not installed")
    if bench == "raster":
        for module in ("rasterstats", "exactextract"):
            require(has_module(module), f"{module} (a zonal baseline) is not installed")
    if bench == "observations_pg":  # its own throwaway cluster (bench/tiles.py's)
        pg_bin = Path(os.environ.get("SHIKONG_PG_BIN", "/usr/lib/postgresql/15/bin"))
        require((pg_bin / "initdb").exists(), f"PostgreSQL binaries are not in {pg_bin}")
    if bench == "workbench":
        require(bool(shutil.which("chromium") or Path("/usr/bin/chromium").exists()), "no chromium")
    if bench == "iot":
        require(has_module("psycopg"), "psycopg (the PostgreSQL baseline) is not installed")
        for tool in ("mosquitto", "mosquitto_pub"):
            found = shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()
            require(bool(found), f"{tool} is not installed")
        require(postgres_answers(), f"PostgreSQL does not answer at {PG!r}")
        return ["--pg", PG]
    return []


@pytest.mark.parametrize("bench", sorted(FIGURES))
def test_bench_smoke(bench: str) -> None:
    stdout, tail = run_smoke(bench, prerequisites(bench))
    assert_figures(bench, stdout, FIGURES[bench], tail)
    if bench == "raster":  # shikong's zonal means equal rasterstats' (same pixel rule)
        diffs = re.findall(rf"max \|shikong - rasterstats\| = ({N})", stdout)
        assert diffs and all(float(d) < 1e-6 for d in diffs), diffs


TILES = [
    r"^shikong called with an rer API key",
    rf"^vector tile z14 cold p50\s+shikong\s+({N}) ms\s+tipg\s+({N}) ms\s+ratio\s+({N})x"
    rf"  \(goal <= 15 ms; features/tile shikong ({N}), tipg ({N})\)$",
    rf"^vector tile z12 cold p50\s+shikong\s+({N}) ms\s+tipg\s+({N}) ms\s+ratio\s+({N})x"
    rf"  \(goal <= 60 ms; features/tile shikong ({N}), tipg ({N})\)$",
    rf"^vector tile cached p50\s+shikong\s+({N}) ms\s",
    rf"^raster tile z15 cold p50\s+shikong\s+({N}) ms\s+rio-tiler\s+({N}) ms\s+ratio\s+({N})x"
    r"  \(goal <= 30 ms; rio-tiler on the COG as stored",
    rf"^WMS GetMap 1024x768 parcels p50\s+shikong\s+({N}) ms\s",
    rf"^cached tiles/s, 16 clients, 2 workers shikong\s+({N}) tile/s",
]


def test_bench_tiles_smoke() -> None:
    """bench/tiles.py --smoke: shikong's tiles beside tipg over PostGIS and rio-tiler."""
    require(has_module("tipg"), "tipg (the vector tile baseline) is not installed")
    require(has_module("rio_tiler"), "rio-tiler (the raster tile baseline) is not installed")
    require_postgis()
    stdout, tail = run_smoke("tiles")
    assert_figures("tiles", stdout, TILES, tail)
    # both sides cut the same tiles: tipg's features are those meeting the tile itself,
    # shikong's those meeting it grown by its 64-unit buffer (a few more, never fewer)
    for z in (14, 12):
        line = re.search(rf"^vector tile z{z} cold .*tipg ({N})\)$", stdout, re.MULTILINE)
        ours = re.search(rf"^vector tile z{z} cold .*shikong ({N}),", stdout, re.MULTILINE)
        assert line and ours
        theirs, mine = (int(m[1].replace(",", "")) for m in (line, ours))
        assert theirs <= mine <= 1.2 * theirs + 5, (z, mine, theirs)


CLOUD_KINDS = (
    "bbox search p50",
    r"bbox \+ one year p50",
    r"one collection \+ bbox p50",
    r"CQL2 filter \+ bbox p50",
    "item by id p50",
    "bbox searches/s, 16 clients",
    "bulk load",
)


def test_bench_cloud_smoke() -> None:
    """bench/cloud.py --smoke: our PostgreSQL catalog beside pgSTAC/stac-fastapi-pgstac.

    The baseline's virtualenv is made by the benchmark on first use (pip from PyPI); where
    it cannot be, the benchmark runs ours alone and says so.
    """
    require_postgis()
    stdout, tail = run_smoke("cloud", timeout=600)  # the first run makes the baseline's venv
    baseline = "baseline skipped, ours only" not in stdout
    theirs = rf"pgstac\s+({N}) \S+\s+ratio\s+({N})x" if baseline else r"pgstac\s+n/a"
    patterns = [rf"^{label}\s+shikong\s+({N}) \S+\s+{theirs}" for label in CLOUD_KINDS]
    assert_figures("cloud", stdout, patterns, tail)
    # every Chinese substring found exactly: the count and the first page equal to the
    # truth the benchmark computes from the titles it generated
    text = re.search(
        r"^Chinese substring search .* (\d+) of (\d+) queries answered exactly",
        stdout,
        re.MULTILINE,
    )
    assert text and int(text[1]) == int(text[2]) > 0, f"Chinese search not exact{tail}"
    if baseline:  # the sides answered the same searches with the same items
        assert len(re.findall(r"^answers of \w+: the same", stdout, re.MULTILINE)) == 4, tail


NODES = [
    rf"^HTTP readings into PostgreSQL, 1 node x 1 worker: ({N}) readings/s .*; plain COPY "
    rf"({N}) rows/s; ratio ({N})$",
    rf"^HTTP readings into PostgreSQL, 2 nodes x 1 worker: ({N}) readings/s .*; plain COPY "
    rf"({N}) rows/s; ratio ({N})$",
    rf"^    checked: the database holds the ({N}) readings accepted, once each$",
    rf"^bbox items/s, 16 clients, nodes x 1 worker: 1 node ({N}) req/s, 2 nodes ({N}) req/s; "
    rf"ratio ({N}) ",
    rf"^first bbox request \(opens the layer\): S3 ({N}) s, local file ({N}) s ",
    rf"^bbox p50 over ({N}) distinct boxes, interleaved: S3 ({N}) ms, local file ({N}) ms; "
    rf"ratio ({N})$",
]


def test_bench_cloud_nodes_smoke() -> None:
    """bench/cloud_nodes.py --smoke: two nodes on PostgreSQL and SeaweedFS; readings
    beside plain COPY, one node's bbox throughput beside two, S3 beside a local file."""
    import s3_server

    require_postgis()
    require(s3_server.weed_binary() is not None, "the weed binary (SeaweedFS) is not installed")
    stdout, tail = run_smoke("cloud_nodes", timeout=600)
    assert_figures("cloud_nodes", stdout, NODES, tail)
