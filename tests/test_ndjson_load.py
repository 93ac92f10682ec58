"""``shikong catalog load``: STAC items from NDJSON into an empty PostgreSQL catalog by
worker processes (catalog/pg_ndjson_load.py). The truth is the file written here: every
line stored as given, the search indexes built, searches answering what the items say;
a bad line named by its number with the catalog left empty; a catalog holding items
refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import psycopg
import pytest
from pg_cluster import pg_cluster, pg_database  # noqa: F401
from shikong.catalog.extension import Field
from shikong.catalog.pg_ndjson_load import load_items
from shikong.catalog.postgres_store import (
    _LOAD_LATER_INDEXES,
    PostgresCatalogStore,
    item_text,
    item_tokens,
)
from shikong.catalog.storage import DataDir
from shikong.catalog.store import Query
from shikong.spatial.errors import InputError

LAYERS = [("nrp", "parcels", "宗地"), ("wat", "gauges", "水文站")]
PLACES = ["金水", "郑东", "管城"]


def collection(dept: str, layer: str, title: str) -> dict:
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": f"{dept}-{layer}",
        "title": title,
        "description": title,
        "license": "other",
        "extent": {
            "spatial": {"bbox": [[113.0, 33.0, 114.0, 34.0]]},
            "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
        },
        "links": [],
        Field.DEPARTMENT: dept,
        Field.CLASSIFICATION: "public",
        Field.KIND: "vector",
        Field.LAYER: layer,
    }


def item(k: int) -> dict:
    """Item k: layer k % 2, a 0.01° box at (113 + k/1000, 33.5), a title naming a place."""
    dept, layer, title = LAYERS[k % 2]
    x = 113.0 + k / 1000
    ring = [[x, 33.5], [x + 0.01, 33.5], [x + 0.01, 33.51], [x, 33.51], [x, 33.5]]
    day = f"2021-01-{1 + k % 28:02d}T00:00:00Z"
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": f"{dept}-{layer}-{k}",
        "geometry": {
            "type": "Polygon",
            "coordinates": [ring],
        },
        "bbox": [x, 33.5, x + 0.01, 33.51],
        "properties": {
            "title": f"{PLACES[k % 3]}{title}{k}号",
            "datetime": day,
            "area_m2": float(k),
            "version": str(k),
            Field.DEPARTMENT: dept,
            Field.CLASSIFICATION: "public",
            Field.KIND: "vector",
            Field.LAYER: layer,
            Field.VALID_FROM: day,
        },
        "links": [],
        "assets": {},
        "collection": f"{dept}-{layer}",
    }


N = 3_000


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path, list[bytes]]:
    """collections.ndjson and items.ndjson (with a blank line and CRLF endings among
    them, as files from elsewhere have), and the items' lines."""
    cols = tmp_path / "collections.ndjson"
    cols.write_bytes(b"".join(orjson.dumps(collection(*layer)) + b"\n" for layer in LAYERS))
    spaced = orjson.OPT_INDENT_2  # spaces inside a line are kept too
    lines = [orjson.dumps(item(k), option=spaced).replace(b"\n", b"") for k in range(N)]
    body = b"\n".join(lines[:100]) + b"\n\n" + b"\r\n".join(lines[100:]) + b"\r\n"
    items = tmp_path / "items.ndjson"
    items.write_bytes(body)
    return cols, items, lines


def store_of(dsn: str, tmp_path: Path) -> PostgresCatalogStore:
    return PostgresCatalogStore(dsn, DataDir(tmp_path / "data"))


def collections_of(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def indexes(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as db:
        rows = db.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'shikong'")
        return {r[0] for r in rows}


def test_every_line_is_stored_as_given_and_found(request, tmp_path, files):
    dsn = request.getfixturevalue("pg_database")
    cols, items, lines = files
    store = store_of(dsn, tmp_path)
    seen: list[int] = []
    count = load_items(store, items, collections_of(cols), 1, workers=3, advance=seen.append)
    assert count == N and sum(seen) == N
    assert store.counts() == (2, N) and store.version() == 1
    assert set(_LOAD_LATER_INDEXES) <= indexes(dsn)
    with psycopg.connect(dsn) as db:
        stored = dict(db.execute("SELECT id, json::text FROM shikong.item_json").fetchall())
        tokens = db.execute(
            "SELECT count(*) FROM shikong.items i JOIN unnest(%s::text[], %s::text[]) "
            "AS t(id, tokens) USING (id) WHERE i.tokens = t.tokens::tsvector",
            (
                [item(k)["id"] for k in range(N)],
                [item_tokens(item_text(item(k))) for k in range(N)],
            ),
        ).fetchone()
    assert stored == {item(k)["id"]: lines[k].decode() for k in range(N)}  # byte for byte
    assert tokens == (N,)
    # what the items say, computed from item() here
    box = (113.5005, 33.4, 113.6005, 33.6)  # boxes from k 491 (ends 113.501) to k 600
    truth = sorted(item(k)["id"] for k in range(491, 601))
    hits, matched = store.search(Query(bbox=box, limit=1000))
    assert sorted(i["id"] for i in hits) == truth and matched == len(truth)
    hits, matched = store.search(Query(text="郑东宗地", limit=5))
    assert matched == len([k for k in range(N) if k % 2 == 0 and k % 3 == 1])
    assert store.item("wat-gauges-7") == item(7)
    store.close()


def test_a_bad_line_is_named_and_leaves_the_catalog_empty(request, tmp_path, files):
    dsn = request.getfixturevalue("pg_database")
    cols, items, lines = files
    broken = dict(item(2500))
    del broken["properties"][Field.VALID_FROM]
    text = b"\n".join([*lines[:2500], orjson.dumps(broken), *lines[2501:]]) + b"\n"
    items.write_bytes(text)
    store = store_of(dsn, tmp_path)
    with pytest.raises(InputError) as failed:
        load_items(store, items, collections_of(cols), 1, workers=2)
    assert "line 2501" in str(failed.value) and Field.VALID_FROM in str(failed.value)
    assert store.counts() == (0, 0) and store.version() == 0
    assert set(_LOAD_LATER_INDEXES) <= indexes(dsn)  # every index back
    items.write_bytes(b"\n".join([*lines[:10], b"{not json", *lines[11:]]) + b"\n")
    with pytest.raises(InputError, match="line 11"):
        load_items(store, items, collections_of(cols), 1, workers=2)
    twice = [*lines[:2800], lines[2000], *lines[2801:]]  # nrp-parcels-2000 again
    items.write_bytes(b"\n".join(twice) + b"\n")
    with pytest.raises(InputError, match="nrp-parcels-2000.*already exists") as failed:
        load_items(store, items, collections_of(cols), 1, workers=2)
    assert "refused" in str(failed.value)
    other = dict(item(5), collection="psb-cameras")
    items.write_bytes(b"\n".join([*lines[:5], orjson.dumps(other), *lines[6:]]) + b"\n")
    with pytest.raises(InputError, match="line 6.*psb-cameras"):
        load_items(store, items, collections_of(cols), 1, workers=2)
    assert store.counts() == (0, 0)
    store.close()


def test_a_catalog_that_holds_items_is_refused(request, tmp_path, files):
    dsn = request.getfixturevalue("pg_database")
    cols, items, _ = files
    store = store_of(dsn, tmp_path)
    assert load_items(store, items, collections_of(cols), 1, workers=1) == N
    with pytest.raises(InputError, match="holds items already"):
        load_items(store, items, collections_of(cols), 1, workers=1)
    assert store.counts() == (2, N)
    store.close()


def test_the_command_loads_and_names_a_bad_file(request, tmp_path, files):
    dsn = request.getfixturevalue("pg_database")
    cols, items, _ = files
    exe = Path(sys.executable).with_name("shikong")
    args = [exe, "catalog", "load", str(items), "--collections", str(cols)]
    env = {"SHIKONG_DATABASE": dsn, "PATH": "/usr/bin:/bin"}
    data = ["--data", str(tmp_path / "node")]
    done = subprocess.run([*args, *data], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"loaded {N:,} items of 2 layers" in done.stdout
    again = subprocess.run([*args, *data], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 2 and "holds items already" in again.stderr
    assert "Traceback" not in again.stderr
