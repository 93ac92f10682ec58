"""The CatalogStore contract (catalog/store.py), for every implementation in ``STORES``.

A second backend (PostgreSQL, issue 21) is added to ``STORES`` and must pass these
unchanged. Expected values are written out by hand from the versions committed here,
not read back from the store's own helpers.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import version_item
from pg_cluster import pg_cluster, pg_database  # noqa: F401  (fixtures of the postgres store)
from shapely.geometry import Point, Polygon
from shikong.catalog import IngestRequest
from shikong.catalog.extension import Field
from shikong.catalog.postgres_store import PostgresCatalogStore
from shikong.catalog.sqlite_store import SqliteCatalogStore
from shikong.catalog.storage import DataDir
from shikong.catalog.store import CatalogStore, LayerBatch, LayerTarget, Query

# each store opened on a data directory and, for a server, the DSN of a fresh database
STORES: dict[str, Callable[[Path, str | None], CatalogStore]] = {
    "sqlite": lambda root, dsn: SqliteCatalogStore(DataDir(root)),
    "postgres": lambda root, dsn: PostgresCatalogStore(str(dsn), DataDir(root)),
}
SERVICES = {"postgres": "pg_database"}  # the fixture that gives a store its database


@dataclass(frozen=True)
class StoreSpec:
    """Which store and where (picklable: a holder process opens the same store)."""

    kind: str
    dsn: str | None = None

    def open(self, root: Path) -> CatalogStore:
        return STORES[self.kind](root, self.dsn)


JAN = datetime(2020, 1, 1, tzinfo=UTC)
JUL = datetime(2020, 7, 1, tzinfo=UTC)
NEXT_JAN = datetime(2021, 1, 1, tzinfo=UTC)


@pytest.fixture(params=sorted(STORES))
def store_spec(request) -> StoreSpec:
    service = SERVICES.get(request.param)
    return StoreSpec(request.param, request.getfixturevalue(service) if service else None)


@pytest.fixture
def open_store(store_spec, tmp_path) -> Callable[[], CatalogStore]:
    """Opens the store of one data directory (again: a second handle, as another process)."""
    opened: list[CatalogStore] = []

    def open_() -> CatalogStore:
        opened.append(store_spec.open(tmp_path / "data"))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


def versions(layer: str, starts: list[datetime], dept: str = "nrp", x0: float = 113.0):
    req = IngestRequest(Path("/dev/null"), dept, layer)
    items = [
        version_item(req, k + 1, (x0 + k, 33.0, x0 + k + 0.5, 33.5), start, f"{layer} {k + 1}")
        for k, start in enumerate(starts)
    ]
    return LayerTarget(dept, layer, title=f"{layer} title"), items


def test_a_commit_bumps_the_version_once_and_is_seen_whole(open_store):
    store = open_store()
    assert store.version() == 0 and store.collections() == []
    roads, road_items = versions("roads", [JAN, JUL])
    rivers, river_items = versions("rivers", [JAN], x0=120.0)
    version = store.commit(
        [LayerBatch(roads, "vector", road_items), LayerBatch(rivers, "vector", river_items)]
    )
    assert version == store.version() == 1
    other = open_store()  # another handle sees all of it
    assert [c["id"] for c in other.collections()] == ["nrp-rivers", "nrp-roads"]
    assert other.departments() == ["nrp"] and other.layer_names("nrp") == ["rivers", "roads"]
    assert [i["id"] for i in other.items_of("nrp-roads")] == ["nrp-roads-v1", "nrp-roads-v2"]
    assert other.collection("nrp-roads")["title"] == "roads title"
    assert set(other.collections_by_id(["nrp-roads", "nope"])) == {"nrp-roads"}
    assert other.item("nrp-rivers-v1")["collection"] == "nrp-rivers"
    assert other.item("nope") is None and other.collection("nope") is None


def test_versions_are_relinked_when_one_arrives_in_between(open_store):
    store = open_store()
    target, items = versions("parcels", [JAN, NEXT_JAN])
    store.commit([LayerBatch(target, "vector", items)])
    _, middle = versions("parcels", [JUL])
    middle[0]["id"] = "nrp-parcels-v9"
    middle[0]["properties"]["version"] = "9"
    store.commit([LayerBatch(target, "vector", middle)])
    stored = store.items_of("nrp-parcels")
    assert [i["id"] for i in stored] == ["nrp-parcels-v1", "nrp-parcels-v9", "nrp-parcels-v2"]
    ends = [i["properties"][Field.VALID_TO] for i in stored]
    assert ends == ["2020-07-01T00:00:00Z", "2021-01-01T00:00:00Z", None]

    def link(item, rel):
        return [link["href"] for link in item["links"] if link["rel"] == rel]

    assert link(stored[0], "successor-version") and "v9" in link(stored[0], "successor-version")[0]
    assert "v9" in link(stored[2], "predecessor-version")[0]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (JAN - timedelta(seconds=1), None),
        (JAN, "nrp-zones-v1"),
        (JUL - timedelta(microseconds=1), "nrp-zones-v1"),
        (JUL, "nrp-zones-v2"),  # validity is [from, to): the end belongs to the next
        (datetime(2030, 1, 1, tzinfo=UTC), "nrp-zones-v2"),
    ],
)
def test_item_at_is_the_version_valid_then(open_store, when, expected):
    store = open_store()
    target, items = versions("zones", [JAN, JUL])
    store.commit([LayerBatch(target, "vector", items)])
    found = store.item_at("nrp-zones", when)
    assert (found["id"] if found else None) == expected


US = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, "nrp-zones-v3"),  # the current version
        (JAN - US, JAN - US, None),
        (JAN, JAN, "nrp-zones-v1"),  # an instant: item_at's answer
        (JUL - US, JUL - US, "nrp-zones-v1"),
        (JAN - timedelta(days=10), JUL, "nrp-zones-v2"),  # the last valid in the interval
        (JAN, JUL - US, "nrp-zones-v1"),  # v2 starts after it
        (None, JUL - US, "nrp-zones-v1"),
        (None, JAN - US, None),
        (JUL, None, "nrp-zones-v3"),
        (NEXT_JAN + timedelta(days=400), None, "nrp-zones-v3"),  # the current has no end
    ],
)
def test_item_during_is_the_last_version_valid_in_an_interval(open_store, start, end, expected):
    store = open_store()
    target, items = versions("zones", [JAN, JUL, NEXT_JAN])
    store.commit([LayerBatch(target, "vector", items)])
    found = store.item_during(
        "nrp-zones",
        start.timestamp() if start else None,
        end.timestamp() if end else None,
    )
    assert (found["id"] if found else None) == expected
    assert store.item_during("nrp-nope", None, None) is None


def test_versions_of_is_the_timeline_without_the_items(open_store):
    store = open_store()
    target, items = versions("zones", [JUL, JAN, NEXT_JAN])  # committed out of order
    store.commit([LayerBatch(target, "vector", items)])
    assert [tuple(row) for row in store.versions_of("nrp-zones")] == [
        ("nrp-zones-v2", "2", JAN.timestamp(), JUL.timestamp()),
        ("nrp-zones-v1", "1", JUL.timestamp(), NEXT_JAN.timestamp()),
        ("nrp-zones-v3", "3", NEXT_JAN.timestamp(), None),
    ]
    assert store.versions_of("nrp-nope") == []


def test_collection_heads_leave_out_what_grows_with_the_versions(open_store):
    store = open_store()
    roads, road_items = versions("roads", [JAN, JUL])
    rivers, river_items = versions("rivers", [JAN], x0=120.0)
    store.commit([LayerBatch(roads, "vector", road_items)])
    store.commit([LayerBatch(rivers, "vector", river_items)])
    heads = store.collection_heads()
    assert [c["id"] for c in heads] == ["nrp-rivers", "nrp-roads"]
    roads_head = heads[1]
    assert "links" not in roads_head and "summaries" not in roads_head
    assert roads_head["title"] == "roads title" and roads_head[Field.KIND] == "vector"
    assert roads_head["extent"]["temporal"]["interval"] == [["2020-01-01T00:00:00Z", None]]
    assert roads_head["extent"]["spatial"]["bbox"] == [[113.0, 33.0, 114.5, 33.5]]
    assert [c["id"] for c in store.collection_heads(changed_since=1)] == ["nrp-rivers"]
    assert store.collection_heads(changed_since=2) == []


def test_replace_swaps_an_item_in_place(open_store):
    store = open_store()
    target, items = versions("gauges_live", [JAN])
    store.commit([LayerBatch(target, "readings", items)])
    again = json.loads(json.dumps(items))
    again[0]["properties"]["title"] = "renewed"
    store.commit([LayerBatch(target, "readings", again, replace=True)])
    stored = store.items_of("nrp-gauges_live")
    assert [i["properties"]["title"] for i in stored] == ["renewed"]


def test_find_checksum_names_the_version_of_that_source(open_store):
    store = open_store()
    target, items = versions("roads", [JAN, JUL])
    items[1]["properties"][Field.SOURCE] = {"path": "/data/roads.shp", "checksum": "1220abc"}
    store.commit([LayerBatch(target, "vector", items)])
    assert store.find_checksum("nrp-roads", "1220abc")["id"] == "nrp-roads-v2"
    assert store.find_checksum("nrp-roads", "1220zzz") is None


def test_search_by_bbox_time_text_and_paging(open_store):
    store = open_store()
    roads, road_items = versions("roads", [JAN, JUL])  # boxes at x 113 and 114
    rivers, river_items = versions("rivers", [JAN], dept="wat", x0=120.0)
    store.commit(
        [LayerBatch(roads, "vector", road_items), LayerBatch(rivers, "vector", river_items)]
    )
    hits, matched = store.search(Query(bbox=(114.1, 33.1, 114.2, 33.2)))
    assert [i["id"] for i in hits] == ["nrp-roads-v2"] and matched == 1
    later = JUL.timestamp() + 1
    hits, _ = store.search(Query(start=later, end=later))
    assert sorted(i["id"] for i in hits) == ["nrp-roads-v2", "wat-rivers-v1"]
    hits, _ = store.search(Query(departments=["wat"]))
    assert [i["id"] for i in hits] == ["wat-rivers-v1"]
    hits, _ = store.search(Query(text="rivers"))
    assert [i["id"] for i in hits] == ["wat-rivers-v1"]
    hits, matched = store.search(Query(limit=1, offset=1))
    assert matched == 3 and len(hits) == 1
    hits, _ = store.search(Query(current_only=True))
    assert sorted(i["id"] for i in hits) == ["nrp-roads-v2", "wat-rivers-v1"]


def test_export_writes_the_stac_mirror_of_what_changed(open_store):
    store = open_store()
    target, items = versions("roads", [JAN])
    store.commit([LayerBatch(target, "vector", items)])  # exports on the way out
    paths = store.paths
    assert store.exported_version() == store.version() == 1
    item = json.loads(paths.item_json("nrp", "roads", "nrp-roads-v1").read_text())
    assert item["id"] == "nrp-roads-v1"
    collection = json.loads(paths.collection_json("nrp", "roads").read_text())
    assert collection["id"] == "nrp-roads"
    root = json.loads(paths.root_catalog.read_text())
    assert any("nrp" in link["href"] for link in root["links"] if link["rel"] == "child")
    _, more = versions("roads", [JUL])
    more[0]["id"], more[0]["properties"]["version"] = "nrp-roads-v7", "7"
    store.commit([LayerBatch(target, "vector", more)], export=False)
    assert (
        store.exported_version() == 1
        and not paths.item_json("nrp", "roads", more[0]["id"]).exists()
    )
    open_store().finish_interrupted_export()  # what Catalog.open does
    assert paths.item_json("nrp", "roads", "nrp-roads-v7").exists()
    assert store.exported_version() == 2


def _hold_writer_lock(spec: StoreSpec, root: str, held, release) -> None:
    store = spec.open(Path(root))
    with store.writing(export=False):
        held.set()
        release.wait(30)
    store.close()


def test_one_writer_at_a_time_across_processes(open_store, store_spec, tmp_path):
    store = open_store()
    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(
        target=_hold_writer_lock, args=(store_spec, str(store.paths.root), held, release)
    )
    holder.start()
    try:
        assert held.wait(60)
        target, items = versions("roads", [JAN])
        done = []
        writer = threading.Thread(
            target=lambda: done.append(store.commit([LayerBatch(target, "vector", items)]))
        )
        writer.start()
        writer.join(1.0)
        assert done == [] and store.version() == 0  # waiting for the other process
        release.set()
        writer.join(60)
        assert done == [1]
    finally:
        release.set()
        holder.join(30)


def test_writing_is_reentrant_in_a_process(open_store):
    store = open_store()
    target, items = versions("roads", [JAN])
    with store.writing(), store.writing():
        store.commit([LayerBatch(target, "vector", items)])
    with store.writing():  # taken again after the nested holds let go
        pass
    assert store.version() == 1


def _titled(layer: str, titles: list[str], dept: str = "wat", x0: float = 113.0):
    """Versions of a layer whose items carry these titles (a year apart from 2020)."""
    starts = [datetime(2020 + k, 1, 1, tzinfo=UTC) for k in range(len(titles))]
    target, items = versions(layer, starts, dept=dept, x0=x0)
    for item, title in zip(items, titles, strict=True):
        item["properties"]["title"] = title
    return target, items


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("土地利用", ["wat-parcels-v1"]),  # v2 has 土地 and 利用 as two words, not 地利
        ("地利", ["wat-parcels-v1"]),
        ("利用", ["wat-parcels-v1", "wat-parcels-v2", "wat-parcels-v4"]),
        ("土", ["wat-parcels-v1", "wat-parcels-v2"]),  # one character: a bigram's first
        ("用", ["wat-parcels-v1", "wat-parcels-v2"]),  # v4's only bigram is 利用
        ("利用 现状", ["wat-parcels-v1"]),  # every term
        ("lan", ["wat-parcels-v3"]),  # a Latin word by prefix, any case
        ("LAND Use", ["wat-parcels-v3"]),
        ("survey 土地", []),
        ("规划局", ["nrp-roads-v1"]),  # in nrp's name (自然资源和规划局): the layer's text
        ("规划", ["nrp-roads-v1", "wat-parcels-v2"]),  # the layer's text, or the item's
        ("水利局", [f"wat-parcels-v{k}" for k in (1, 2, 3, 4)]),
    ],
)
def test_text_search_finds_chinese_runs_as_bigram_phrases(open_store, text, expected):
    store = open_store()
    titles = ["土地利用现状", "土地 利用规划", "Land Use survey", "利用"]
    parcels, items = _titled("parcels", titles)
    roads, road_items = versions("roads", [JAN], x0=120.0)
    store.commit([LayerBatch(parcels, "vector", items), LayerBatch(roads, "vector", road_items)])
    hits, matched = store.search(Query(text=text))
    assert [i["id"] for i in hits] == expected and matched == len(expected)


def test_intersects_takes_the_footprint_and_bbox_edges_count(open_store):
    store = open_store()
    target, items = versions("zones", [JAN], x0=120.0)  # the box 120-120.5, 33-33.5
    triangle, tri_items = versions("triangle", [JAN])
    tri_items[0]["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[113.0, 33.0], [114.0, 33.0], [113.0, 34.0], [113.0, 33.0]]],
    }
    tri_items[0]["bbox"] = [113.0, 33.0, 114.0, 34.0]
    store.commit([LayerBatch(target, "vector", items), LayerBatch(triangle, "vector", tri_items)])

    def ids(**kwargs) -> list[str]:
        return [i["id"] for i in store.search(Query(**kwargs))[0]]

    corner = Point(113.9, 33.9)  # inside the triangle's bbox, outside the triangle
    assert ids(bbox=(113.85, 33.85, 113.95, 33.95)) == ["nrp-triangle-v1"]
    assert ids(intersects=corner) == []
    assert ids(intersects=Point(113.2, 33.2)) == ["nrp-triangle-v1"]
    assert ids(intersects=Point(120.2, 33.2)) == ["nrp-zones-v1"]  # its geometry is its box
    assert ids(bbox=(114.0, 33.9, 114.5, 34.5)) == ["nrp-triangle-v1"]  # touching the edge
    assert ids(bbox=(114.000001, 33.9, 114.5, 34.5)) == []
    across = Polygon([(112, 33.05), (121, 33.05), (121, 33.1), (112, 33.1)])
    assert ids(intersects=across) == ["nrp-triangle-v1", "nrp-zones-v1"]
    beside = Polygon([(113.8, 33.8), (114.5, 33.8), (114.5, 34.5)])  # x + y > 147 throughout
    assert ids(intersects=beside) == []


def test_sortby_time_filters_and_paging(open_store):
    store = open_store()
    target, items = versions("roads", [JAN, JUL, NEXT_JAN])
    for item, name in zip(items, ["nrp-roads-a", "nrp-roads-Z", "nrp-roads-_"], strict=True):
        item["id"] = name  # code-point order: Z (5A) < _ (5F) < a (61)
    store.commit([LayerBatch(target, "vector", items)])

    def ids(**kwargs) -> list[str]:
        return [i["id"] for i in store.search(Query(**kwargs))[0]]

    assert ids() == ["nrp-roads-a", "nrp-roads-Z", "nrp-roads-_"]  # layer, then validity
    assert ids(sortby=[("id", True)]) == ["nrp-roads-Z", "nrp-roads-_", "nrp-roads-a"]
    assert ids(sortby=[("id", False)]) == ["nrp-roads-a", "nrp-roads-_", "nrp-roads-Z"]
    # the current version has no end: first ascending, last descending
    assert ids(sortby=[("end_datetime", True)]) == ["nrp-roads-_", "nrp-roads-a", "nrp-roads-Z"]
    assert ids(sortby=[("end_datetime", False)]) == ["nrp-roads-Z", "nrp-roads-a", "nrp-roads-_"]
    assert ids(sortby=[("no-such-field", False)]) == ids()
    # validity is [from, to): an interval from JUL misses the version that ended then
    assert ids(start=JUL.timestamp()) == ["nrp-roads-Z", "nrp-roads-_"]
    assert ids(end=JUL.timestamp()) == ["nrp-roads-a", "nrp-roads-Z"]
    hits, matched = store.search(Query(limit=2, offset=2))
    assert [i["id"] for i in hits] == ["nrp-roads-_"] and matched == 3
    assert store.search(Query(limit=5, offset=7)) == ([], 3)  # past the end: still counted
    assert store.search(Query(limit=0)) == ([], 3)
    assert store.search(Query(ids=["nrp-roads-a"], kinds=["raster"])) == ([], 0)
    hits, matched = store.search(Query(collections=["nrp-roads"], classifications=["shared"]))
    assert matched == 3


def test_a_layers_new_title_finds_all_its_versions_and_the_old_one_none(open_store):
    store = open_store()
    _, items = _titled("roads", ["v one", "v two"])
    store.commit([LayerBatch(LayerTarget("wat", "roads", title="旧名称"), "vector", items[:1])])
    assert [i["id"] for i in store.search(Query(text="旧名"))[0]] == ["wat-roads-v1"]
    renamed = LayerTarget("wat", "roads", title="道路网", description="城市道路")  # both new
    store.commit([LayerBatch(renamed, "vector", items[1:])])
    assert [i["id"] for i in store.search(Query(text="道路"))[0]] == [
        "wat-roads-v1",
        "wat-roads-v2",
    ]
    assert store.search(Query(text="旧名")) == ([], 0)
    assert store.search(Query(text="two 道路")) == store.search(Query(ids=["wat-roads-v2"]))


def test_a_phrase_never_runs_from_an_items_title_into_its_layers_words(open_store):
    store = open_store()
    _, items = _titled("roads", ["v one 公路"])  # the item's last words, then the layer's
    store.commit([LayerBatch(LayerTarget("wat", "roads", title="路网规划"), "vector", items)])
    assert store.search(Query(text="公路网")) == ([], 0)  # 公路 + 路网, but not one run
    assert [i["id"] for i in store.search(Query(text="公路 路网"))[0]] == ["wat-roads-v1"]
