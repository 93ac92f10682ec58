"""``copy_catalog`` (``shikong migrate``'s bulk path) into PostgreSQL: every row is what the
text literals of each value make of it (tokens, footprint, validity), a copy that stopped
half-way runs again to the same catalog, and the indexes left for the end of a copy into
an empty catalog are there once it is finished, or once the store is opened again."""

from __future__ import annotations

import orjson
import psycopg
import pytest
import shapely
from pg_cluster import pg_cluster, pg_database  # noqa: F401
from shikong.catalog.extension import Field
from shikong.catalog.postgres_store import (
    _LATER_INDEXES,
    PostgresCatalogStore,
    item_text,
    item_tokens,
)
from shikong.catalog.storage import DataDir
from shikong.catalog.store import Query
from shikong.server.cli import migrate
from shikong.spatial.temporal import parse_instant


@pytest.fixture
def dsn(request) -> str:
    """A fresh database with PostGIS (``pg_cluster.pg_database``)."""
    return request.getfixturevalue("pg_database")


LAYERS = [("nrp", "cadastre", "不动产权籍调查成果"), ("wat", "reservoirs", "水利设施巡查")]
TITLES = ["金水宗地", "二七地块", "中原水库", "管城河道"]


def collection(k: int) -> dict:
    dept, layer, title = LAYERS[k]
    return {
        "type": "Collection",
        "id": f"{dept}-{layer}",
        "title": title,
        "description": title,
        "keywords": [],
        "license": "other",
        "extent": {"spatial": {"bbox": [[113.0, 33.6, 113.6, 34.0]]}, "temporal": {}},
        "links": [],
        Field.DEPARTMENT: dept,
        Field.CLASSIFICATION: "public",
        Field.KIND: "vector",
        Field.LAYER: layer,
    }


def item(k: int, v: int) -> dict:
    dept, layer, _ = LAYERS[k]
    x, y = 113.0 + 0.01 * v + 0.1 * k, 33.6 + 0.02 * v
    ring = [[x, y], [x + 0.005, y], [x + 0.005, y + 0.004], [x, y + 0.004], [x, y]]
    start, end = f"202{v % 5}-0{1 + v % 9}-1{v % 10}T0{v % 10}:30:00Z", None
    if v % 3:
        end = f"202{v % 5}-0{1 + v % 9}-2{v % 10}T12:00:0{v % 10}Z"
    props = {
        "title": f"{TITLES[v % 4]}{v}号",
        "datetime": start,
        "version": str(v),
        Field.DEPARTMENT: dept,
        Field.CLASSIFICATION: "public",
        Field.KIND: "vector",
        Field.LAYER: layer,
        Field.VALID_FROM: start,
    }
    if end:
        props[Field.VALID_TO] = end
    if v % 2:
        props[Field.SOURCE] = {"checksum": f"sha256:{k}{v}"}
    return {
        "type": "Feature",
        "id": f"{dept}-{layer}-v{v}",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [x, y, x + 0.005, y + 0.004],
        "properties": props,
        "links": [],
        "assets": {},
        "collection": f"{dept}-{layer}",
    }


@pytest.fixture
def layers(monkeypatch) -> list[tuple[dict, list[dict]]]:
    monkeypatch.setattr(migrate, "BATCH_ITEMS", 4)  # several batches a layer
    return [(collection(k), [item(k, v) for v in range(11)]) for k in range(len(LAYERS))]


def indexes(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as db:
        rows = db.execute("SELECT indexname FROM pg_indexes WHERE schemaname='shikong'")
        return {r[0] for r in rows}


def check_rows(dsn: str, layers: list[tuple[dict, list[dict]]]) -> None:
    """Every stored item against the literals of its values (what text COPY sent)."""
    with psycopg.connect(dsn) as db:
        for _, items in layers:
            for it in items:
                props = it["properties"]
                shape = shapely.set_srid(shapely.from_geojson(orjson.dumps(it["geometry"])), 4490)
                to = props.get(Field.VALID_TO)
                row = db.execute(
                    "SELECT j.json::text = %s, i.tokens = %s::tsvector,"
                    " ST_AsEWKB(i.footprint) = %s, i.valid_from, i.valid_to, i.source_checksum,"
                    " i.version, i.changed_version, ARRAY[i.minx, i.miny, i.maxx, i.maxy]"
                    " FROM shikong.items i JOIN shikong.item_json j USING (id) WHERE i.id = %s",
                    (
                        orjson.dumps(it).decode(),
                        item_tokens(item_text(it)),
                        shapely.to_wkb(shape, include_srid=True),
                        it["id"],
                    ),
                ).fetchone()
                assert row == (
                    True,
                    True,
                    True,
                    parse_instant(props[Field.VALID_FROM]).timestamp(),
                    parse_instant(to).timestamp() if to else None,
                    (props.get(Field.SOURCE) or {}).get("checksum"),
                    props["version"],
                    7,
                    it["bbox"],
                ), it["id"]


def test_a_copy_stopped_half_way_runs_again_to_the_same_catalog(dsn, tmp_path, layers):
    first = PostgresCatalogStore(dsn, DataDir(tmp_path / "a"))
    half = [layers[0], (layers[1][0], layers[1][1][:5])]
    migrate.copy_catalog(half, first, version=7)
    first.wait_copies()
    assert not indexes(dsn) & set(_LATER_INDEXES)  # built at the end, at once
    first.close()  # stopped here, never finished

    again = PostgresCatalogStore(dsn, DataDir(tmp_path / "b"))
    assert set(_LATER_INDEXES) <= indexes(dsn)  # opening the store made them
    migrate.copy_catalog(layers, again, version=7)  # the first batches' ids are there
    again.finish_copy(7, 7, "test")
    assert again.counts() == (2, 22)
    check_rows(dsn, layers)
    assert again.version() == 7
    again.close()


def test_a_finished_copy_has_every_index_and_answers_searches(dsn, tmp_path, layers):
    store = PostgresCatalogStore(dsn, DataDir(tmp_path / "a"))
    before = indexes(dsn)
    migrate.copy_catalog(layers, store, version=7)
    store.finish_copy(7, 7, "test")
    assert indexes(dsn) == before
    check_rows(dsn, layers)
    every = [it for _, items in layers for it in items]
    found, total = store.search(Query(text="水库", limit=100))
    truth = [it["id"] for it in every if "水库" in it["properties"]["title"]]
    assert sorted(i["id"] for i in found) == sorted(truth) and total == len(truth)
    box = (113.0, 33.6, 113.05, 33.7)
    found, _ = store.search(Query(bbox=box, limit=100))
    truth = [
        it["id"]
        for it in every
        if it["bbox"][0] <= box[2] and it["bbox"][2] >= box[0]
        and it["bbox"][1] <= box[3] and it["bbox"][3] >= box[1]
    ]  # fmt: skip
    assert sorted(i["id"] for i in found) == sorted(truth) and truth
    store.close()


def test_a_batch_with_an_id_twice_is_refused(dsn, tmp_path, layers):
    store = PostgresCatalogStore(dsn, DataDir(tmp_path / "a"))
    doc, items = layers[0]
    with pytest.raises(psycopg.errors.UniqueViolation):
        store.put_verbatim(doc, [items[0], items[1], items[0]], 7)
    assert store.counts() == (0, 0)
    written = []
    store.put_verbatim_later(doc, items[:2], 7, lambda: written.append(2))
    store.put_verbatim_later(doc, [items[2], items[2]], 7, lambda: written.append(1))
    store.put_verbatim_later(doc, items[3:5], 7, lambda: written.append(3))
    with pytest.raises(psycopg.errors.UniqueViolation):  # behind the caller's back: later
        store.wait_copies()
    assert written == [2] and store.counts() == (1, 2)  # what came after it was dropped
    store.close()
