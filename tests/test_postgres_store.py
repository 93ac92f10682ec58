"""The Catalog facade over the PostgreSQL store: ingest, versions and as-of, Chinese text
search and the STAC mirror answer as the catalog's documentation says, on PostgreSQL and
on SQLite alike (expected values written by hand from the sources ingested here)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
from pg_cluster import pg_cluster, pg_database  # noqa: F401
from shapely.geometry import box
from shikong.catalog import Catalog
from shikong.catalog.postgres_store import (
    PostgresCatalogStore,
    item_tokens,
    layer_tokens,
    tsquery_text,
    tsvector_text,
)
from shikong.catalog.sqlite_store import SqliteCatalogStore
from shikong.catalog.storage import DataDir
from shikong.spatial.errors import InputError


def write_geojson(path: Path, bounds: tuple, dlbm: str) -> Path:
    frame = gpd.GeoDataFrame({"DLBM": [dlbm]}, geometry=[box(*bounds)], crs=4490)
    frame.to_file(path)
    return path


@pytest.fixture(params=["postgres", "sqlite"])
def catalog(request, tmp_path) -> Catalog:
    paths = DataDir(tmp_path / "data")
    if request.param == "postgres":
        store = PostgresCatalogStore(request.getfixturevalue("pg_database"), paths)
    else:
        store = SqliteCatalogStore(paths)
    yield Catalog(store)
    store.close()


def ingest_city(cat: Catalog, folder: Path) -> None:
    """Land use in two versions (2020, 2023) and a river layer, as departments deliver."""
    landuse = {"department": "nrp", "layer": "landuse", "title": "土地利用现状"}
    a = write_geojson(folder / "a.geojson", (113.1, 33.7, 113.2, 33.8), "0103")
    b = write_geojson(folder / "b.geojson", (113.1, 33.7, 113.2, 33.8), "0701")
    rivers = write_geojson(folder / "r.geojson", (114.0, 34.0, 114.5, 34.2), "1101")
    cat.ingest(a, **landuse, version="2020", valid_from="2020-12-31")
    cat.ingest(b, **landuse, version="2023", valid_from="2023-12-31")
    cat.ingest(rivers, department="wat", layer="rivers", title="河流水系", valid_from="2021-06-01")


def ids(result) -> list[str]:
    return [i["id"] for i in result.items]


def test_versions_and_as_of_through_the_facade(catalog, tmp_path):
    ingest_city(catalog, tmp_path)
    assert catalog.version == 3
    layer = catalog.layer("nrp-landuse")
    assert [v.id for v in layer.versions] == ["nrp-landuse-v2020", "nrp-landuse-v2023"]
    assert layer.as_of("2023-12-30T23:59:59Z").id == "nrp-landuse-v2020"
    assert layer.as_of("2023-12-31T00:00:00Z").id == "nrp-landuse-v2023"  # start inclusive
    with pytest.raises(InputError, match="no version was valid on 2020-12-30"):
        layer.as_of("2020-12-30")
    assert layer.to_geodataframe(as_of="2022-01-01")["DLBM"].tolist() == ["0103"]
    assert layer.to_geodataframe()["DLBM"].tolist() == ["0701"]
    old = layer.versions[0].item["properties"]
    assert old["shikong:valid_to"] == "2023-12-31T00:00:00Z"
    same = catalog.ingest(tmp_path / "a.geojson", department="nrp", layer="landuse")
    assert same.status == "unchanged" and same.item_id == "nrp-landuse-v2020"
    assert catalog.version == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"text": "土地利用"}, ["nrp-landuse-v2020", "nrp-landuse-v2023"]),
        ({"text": "利用现状", "datetime": "2024-01-01"}, ["nrp-landuse-v2023"]),
        ({"text": "规划局 2023"}, ["nrp-landuse-v2023"]),  # 自然资源和规划局, the version's title
        ({"text": "河流"}, ["wat-rivers-v1"]),
        ({"text": "水利局"}, ["wat-rivers-v1"]),  # the department's name
        ({"text": "流水"}, ["wat-rivers-v1"]),  # the middle of 河流水系
        ({"text": "土地水系"}, []),
        ({"bbox": (114.4, 34.1, 115.0, 35.0)}, ["wat-rivers-v1"]),
        ({"current_only": True, "sortby": [("id", False)]}, ["wat-rivers-v1", "nrp-landuse-v2023"]),
    ],
)
def test_search_through_the_facade(catalog, tmp_path, query, expected):
    ingest_city(catalog, tmp_path)
    result = catalog.search(**query)
    assert ids(result) == expected


def test_the_stac_mirror_is_written_by_either_store(catalog, tmp_path):
    ingest_city(catalog, tmp_path)
    paths = catalog.paths
    item = json.loads(paths.item_json("nrp", "landuse", "nrp-landuse-v2020").read_text())
    assert item["properties"]["shikong:valid_to"] == "2023-12-31T00:00:00Z"
    assert any(link["rel"] == "successor-version" for link in item["links"])
    collection = json.loads(paths.collection_json("wat", "rivers").read_text())
    assert collection["title"] == "河流水系"
    root = json.loads(paths.root_catalog.read_text())
    children = sorted(link["href"] for link in root["links"] if link["rel"] == "child")
    assert [h.split("/")[-2] for h in children] == ["nrp", "wat"]


def test_tsvector_keeps_positions_and_tsquery_follows_match_terms():
    assert tsvector_text("土地 地利 roads 土地") == "'土地':1D '地利':2D 'roads':3D '土地':4D"
    # an item's own tokens; its layer's are its collection's
    assert item_tokens("a 河流") == "'a':1A '河流':2A"
    assert layer_tokens("流水 b") == "'流水':1B 'b':2B"
    assert tsquery_text('"土地 地利 利用"') == "'土地' <-> '地利' <-> '利用'"
    assert tsquery_text('"土"*') == "'土':*"
    assert tsquery_text('"it\'s"*') == "'it''s':*"


def test_schemas_keep_catalogs_apart_and_reopening_is_idempotent(request, tmp_path):
    dsn = request.getfixturevalue("pg_database")
    one = PostgresCatalogStore(dsn, DataDir(tmp_path / "one"), schema="city_one")
    two = PostgresCatalogStore(dsn, DataDir(tmp_path / "two"), schema="city_two")
    ingest_city(Catalog(one), tmp_path)
    assert one.version() == 3 and two.version() == 0 and two.collections() == []
    again = PostgresCatalogStore(dsn, DataDir(tmp_path / "one"), schema="city_one")
    assert again.version() == 3 and len(again.items_of("nrp-landuse")) == 2
    assert "password" not in repr(again)
    with pytest.raises(ValueError, match="schema name"):
        PostgresCatalogStore(dsn, DataDir(tmp_path / "x"), schema="a; DROP TABLE")
    with pytest.raises(ValueError, match="schema name"):
        PostgresCatalogStore(dsn, DataDir(tmp_path / "x"), schema="pg_catalog")
    for store in (one, two, again):
        store.close()


def test_a_catalog_whose_items_carried_their_layers_tokens_is_upgraded_once(request, tmp_path):
    """A catalog written when each item's tokens ended with its layer's (weight B) and its
    JSON was ``jsonb`` is brought up to date when next opened: the layer's tokens on its
    collection, the items' own only, the JSON ``json``; searches answer as before, and a
    layer's dropped words no longer find its items (they would have, had the items' stale
    copies of the layer's tokens stayed)."""
    import psycopg

    dsn = request.getfixturevalue("pg_database")
    store = PostgresCatalogStore(dsn, DataDir(tmp_path / "data"))
    cat = Catalog(store)
    ingest_city(cat, tmp_path)
    a = write_geojson(tmp_path / "s.geojson", (113.3, 33.7, 113.4, 33.8), "0101")
    survey = {"department": "nrp", "layer": "survey", "title": "三调"}
    cat.ingest(a, **survey, description="城市台账", version="2021", valid_from="2021-12-31")
    words = ("土地", "河流", "nrp", "2020", "水系 wat", "台账", "城市 2021")
    before = {t: ids(cat.search(text=t)) for t in words}
    assert before["台账"] == ["nrp-survey-v2021"]  # the layer's description only
    item = store.item("nrp-landuse-v2020")
    store.close()
    with psycopg.connect(dsn, autocommit=True) as db:  # as the earlier schema kept them
        for cid, text in db.execute("SELECT id, text FROM shikong.collections").fetchall():
            db.execute(
                "UPDATE shikong.items SET tokens = tokens || %s::tsvector WHERE collection = %s",
                (layer_tokens(text), cid),
            )
        db.execute("ALTER TABLE shikong.collections DROP COLUMN tokens")
        db.execute("ALTER TABLE shikong.item_json ALTER COLUMN json TYPE jsonb")

    store = PostgresCatalogStore(dsn, DataDir(tmp_path / "data"))
    cat = Catalog(store)
    with psycopg.connect(dsn) as db:
        weights = db.execute(
            "SELECT DISTINCT w FROM shikong.items, unnest(tokens) u, unnest(u.weights) w"
        ).fetchall()
        kind = db.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = 'shikong'"
            " AND table_name = 'item_json' AND column_name = 'json'"
        ).fetchone()
    assert weights == [("A",)] and kind == ("json",)
    assert {t: ids(cat.search(text=t)) for t in words} == before
    assert store.item("nrp-landuse-v2020") == item
    b = write_geojson(tmp_path / "t.geojson", (113.3, 33.7, 113.4, 33.8), "0102")
    cat.ingest(b, **survey, description="国土调查", version="2022", valid_from="2022-12-31")
    assert ids(cat.search(text="台账")) == []
    assert ids(cat.search(text="国土")) == ["nrp-survey-v2021", "nrp-survey-v2022"]
    store.close()
