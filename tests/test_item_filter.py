"""CQL2 filters in catalog search, on both stores (catalog/item_filter.py).

Each store answers a filter in its own SQL where it can; the expected ids are computed
here by plain Python over the properties the test wrote (SQL's three-valued semantics:
a comparison with a missing property or one of another JSON type never matches, even
negated), not by the module under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import version_item
from pg_cluster import pg_cluster, pg_database  # noqa: F401  (fixtures of the postgres store)
from pygeofilter.parsers.cql2_json import parse as parse_json
from shikong.catalog import IngestRequest
from shikong.catalog.extension import Field
from shikong.catalog.item_filter import POSTGRES, SQLITE, FilterError, to_sql
from shikong.catalog.postgres_store import PostgresCatalogStore
from shikong.catalog.sqlite_store import SqliteCatalogStore
from shikong.catalog.storage import DataDir
from shikong.catalog.store import LayerBatch, LayerTarget, Query
from shikong.server.cql_text import parse as parse_text
from shikong.spatial.errors import InputError

START = datetime(2021, 1, 1, tzinfo=UTC)
# the properties of each version, as a caller wrote them (None: not written at all)
PROPS: list[dict] = [
    {"area_m2": 5, "name": "宗地甲", "flag": True},
    {"area_m2": 15.5, "name": "宗地乙", "flag": False},
    {"area_m2": 99, "name": "地块一"},
    {"area_m2": 100, "name": None},
    {"area_m2": 450, "name": "水库"},
    {"area_m2": "12", "name": "宗地丙"},  # a number written as text
    {"name": "Reservoir"},
    {"area_m2": 20, "name": "reservoir", "flag": True},
]
MISSING = object()


def _ids(pred) -> list[str]:
    return [f"nrp-parcels-v{k + 1}" for k, p in enumerate(PROPS) if pred(p)]


def num(p, key="area_m2"):
    v = p.get(key, MISSING)
    return v if isinstance(v, int | float) and not isinstance(v, bool) else None


def text(p, key="name"):
    v = p.get(key, MISSING)
    return v if isinstance(v, str) else None


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path: Path):
    if request.param == "sqlite":
        opened = SqliteCatalogStore(DataDir(tmp_path / "data"))
    else:
        opened = PostgresCatalogStore(
            str(request.getfixturevalue("pg_database")), DataDir(tmp_path / "data")
        )
    req = IngestRequest(Path("/dev/null"), "nrp", "parcels")
    items = []
    for k, props in enumerate(PROPS):
        item = version_item(
            req,
            k + 1,
            (113.0 + k, 33.0, 113.5 + k, 33.5),
            START + timedelta(days=30 * k),
            f"parcels {k + 1}",
        )
        item["properties"].update(props)
        items.append(item)
    opened.commit([LayerBatch(LayerTarget("nrp", "parcels"), "vector", items)])
    yield opened
    opened.close()


def found(store, node, **query) -> list[str]:
    items, matched = store.search(Query(filter=node, **query))
    assert matched == len(items) or "limit" in query
    return [i["id"] for i in items]


CASES = [
    ("area_m2 < 100", lambda p: num(p) is not None and num(p) < 100),
    ("area_m2 >= 15.5 AND area_m2 <= 450", lambda p: num(p) is not None and 15.5 <= num(p) <= 450),
    ("NOT (area_m2 < 100)", lambda p: num(p) is not None and not num(p) < 100),
    ("area_m2 BETWEEN 10 AND 100", lambda p: num(p) is not None and 10 <= num(p) <= 100),
    ("area_m2 IN (5, 450)", lambda p: num(p) in (5, 450)),
    ("name = '宗地甲'", lambda p: text(p) == "宗地甲"),
    ("name <> '宗地甲'", lambda p: text(p) is not None and text(p) != "宗地甲"),
    ("name > 'Z'", lambda p: text(p) is not None and text(p) > "Z"),  # code points
    ("name IN ('水库', 'reservoir')", lambda p: text(p) in ("水库", "reservoir")),
    ("name IS NULL", lambda p: p.get("name") is None),
    ("name IS NOT NULL", lambda p: p.get("name") is not None),
    ("flag = true", lambda p: p.get("flag") is True),
    (
        "area_m2 < 10 OR name = '水库'",
        lambda p: (num(p) is not None and num(p) < 10) or text(p) == "水库",
    ),
    ("id = 'nrp-parcels-v3'", lambda p: p is PROPS[2]),
    ("collection = 'nrp-parcels' AND area_m2 > 400", lambda p: (num(p) or 0) > 400),
]


@pytest.mark.parametrize(("cql", "truth"), CASES, ids=[c for c, _ in CASES])
def test_filter_matches_truth_in_sql(store, cql, truth):
    node = parse_text(cql)
    assert to_sql(node, POSTGRES) is not None and to_sql(node, SQLITE) is not None
    assert found(store, node) == _ids(truth)


LIKES = [
    ("name LIKE '宗地%'", lambda p: (text(p) or "").startswith("宗地")),
    ("name LIKE 'R%'", lambda p: text(p) == "Reservoir"),  # case counts
    ("name LIKE '宗地_'", lambda p: (text(p) or "").startswith("宗地") and len(text(p)) == 3),
    ("name LIKE '_eservoir'", lambda p: text(p) in ("Reservoir", "reservoir")),
    ("name NOT LIKE '%o%'", lambda p: text(p) is not None and "o" not in text(p)),
    ("name LIKE '*'", lambda p: text(p) == "*"),  # GLOB's own wildcards are plain here
]


@pytest.mark.parametrize(("cql", "truth"), LIKES, ids=[c for c, _ in LIKES])
def test_like_in_sql(store, cql, truth):
    """CQL2's LIKE: % any run, _ one character, case-sensitive."""
    node = parse_text(cql)
    assert to_sql(node, POSTGRES) is not None and to_sql(node, SQLITE) is not None
    assert found(store, node) == _ids(truth)


def test_instants_compare_as_instants(store):
    """A date property against a TIMESTAMP: the version valid from day 60 and later."""
    cut = START + timedelta(days=59)
    node = parse_json(
        {"op": ">", "args": [{"property": Field.VALID_FROM}, {"timestamp": cut.isoformat()}]}
    )
    assert found(store, node) == [f"nrp-parcels-v{k + 1}" for k in range(2, len(PROPS))]


def test_untranslatable_filter_is_evaluated_in_python(store):
    """A spatial operator has no SQL here: the rest of the query's matches are filtered
    in Python, with the same paging."""
    cql = "S_INTERSECTS(geometry, POINT(114.2 33.2)) OR area_m2 = 450"
    node = parse_text(cql)
    assert to_sql(node, POSTGRES) is None
    assert found(store, node) == ["nrp-parcels-v2", "nrp-parcels-v5"]


def test_paging_counts_every_match(store):
    node = parse_text("area_m2 < 1000")
    expected = _ids(lambda p: num(p) is not None)
    items, matched = store.search(Query(filter=node, limit=2, offset=1))
    assert matched == len(expected)
    assert [i["id"] for i in items] == expected[1:3]


def test_filter_with_bbox(store):
    """The filter narrows the bbox's candidates (v1–v3 touch x ≤ 115.1)."""
    node = parse_text("area_m2 > 10")
    assert found(store, node, bbox=(112.0, 32.0, 115.1, 34.0)) == [
        "nrp-parcels-v2",
        "nrp-parcels-v3",
    ]


def test_odd_literals_are_not_errors(store):
    """A number compared with text, a boolean with a number: never a match, no error."""
    assert found(store, parse_text("name < 5")) == []
    assert found(store, parse_text("flag = 1")) == []
    assert issubclass(FilterError, InputError)


@pytest.fixture
def dsn(request) -> str:
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def pg_store(dsn, tmp_path: Path):
    return lambda: PostgresCatalogStore(dsn, DataDir(tmp_path / "data"))


def _filled(store) -> None:
    req = IngestRequest(Path("/dev/null"), "nrp", "parcels")
    items = []
    for k, props in enumerate(PROPS):
        item = version_item(
            req, k + 1, (113.0 + k, 33.0, 113.5 + k, 33.5), START + timedelta(days=30 * k), "p"
        )
        item["properties"].update(props)
        items.append(item)
    store.commit([LayerBatch(LayerTarget("nrp", "parcels"), "vector", items)])


def test_a_catalog_from_before_props_is_upgraded_once(pg_store, dsn):
    """A PostgreSQL catalog made before items kept their properties gets the column,
    filled from the items' JSON, when it is next opened; filters then find them."""
    import psycopg

    store = pg_store()
    _filled(store)
    store.close()
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("ALTER TABLE shikong.items DROP COLUMN props")
    store = pg_store()
    node = parse_text("area_m2 < 100")
    assert found(store, node) == _ids(lambda p: num(p) is not None and num(p) < 100)
    store.close()


def test_optimize_keeps_every_answer(pg_store):
    """CLUSTER rewrites the rows in bbox order: searches answer the same after it."""
    store = pg_store()
    _filled(store)
    queries = [
        Query(filter=parse_text("area_m2 > 10")),
        Query(bbox=(112.0, 32.0, 115.1, 34.0)),
        Query(text="parcels", limit=3, offset=2),
    ]
    before = [store.search(q) for q in queries]
    store.optimize()
    assert [store.search(q) for q in queries] == before
    store.close()
