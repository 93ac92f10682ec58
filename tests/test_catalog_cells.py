"""Bbox search through quadtree cell keys, against a brute-force overlap test."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import version_item
from shapely.geometry import box
from shikong.catalog import Catalog, IngestRequest
from shikong.catalog.store import Query

START = datetime(2020, 1, 1, tzinfo=UTC)


def boxes_of_every_size(rng: np.random.Generator, n: int) -> list[tuple[float, ...]]:
    """Points, metres, kilometres, a province, a hemisphere; some on cell edges."""
    out = []
    for k in range(n):
        size = 10.0 ** rng.uniform(-7, 2) if k % 7 else 0.0  # every 7th a point
        x = rng.uniform(-180, 180 - size)
        y = rng.uniform(-90, 90 - min(size, 179))
        if k % 11 == 0:  # on a coarse grid line: straddles cells of many levels
            x = 112.5 - size / 2
        if k % 13 == 0:
            y = 0.0 - min(size, 90) / 2
        out.append((x, y, x + size, y + min(size, 179)))
    out += [(-180, -90, 180, 90), (180, 90, 180, 90), (-180, -90, -180, -90), (113, 33.6, 113, 34)]
    return out


def overlapping(boxes: dict[str, tuple[float, ...]], q: tuple[float, ...]) -> list[str]:
    return sorted(
        i
        for i, b in boxes.items()
        if b[0] <= q[2] and b[2] >= q[0] and b[1] <= q[3] and b[3] >= q[1]
    )


def commit_boxes(cat: Catalog, boxes: list[tuple[float, ...]], layer: str = "boxes") -> dict:
    req = IngestRequest(Path("/dev/null"), "nrp", layer)
    items, truth = [], {}
    for k, b in enumerate(boxes):
        item_id = f"{req.collection_id}-v{k}"
        items.append(version_item(req, k, b, START, f"box {k}"))
        truth[item_id] = b
    cat.commit_many([(req, "vector", items, False)], export=False)
    return truth


def search_ids(cat: Catalog, q) -> list[str]:
    found, _ = cat.store.search(Query(bbox=q))
    return sorted(i["id"] for i in found)


@pytest.fixture
def cat(tmp_path) -> Catalog:
    return Catalog.open(tmp_path / "data")


def test_bbox_search_finds_exactly_the_overlapping_items(cat):
    rng = np.random.default_rng(11)
    truth = commit_boxes(cat, boxes_of_every_size(rng, 2500))
    queries = boxes_of_every_size(np.random.default_rng(12), 150)
    queries += list(truth.values())[:50]  # an item's own bbox, and its edges, must find it
    hits = 0
    for q in queries:
        expect = overlapping(truth, q)
        assert search_ids(cat, q) == expect, q
        hits += len(expect)
    assert hits > 1000  # the queries did find things


def test_a_replaced_item_is_found_only_where_it_now_is(cat):
    before = commit_boxes(cat, [(113.0, 33.6, 113.01, 33.61), (10, 10, 11, 11)])
    moved, stays = sorted(before)
    item = cat.store.item(moved)
    item["bbox"] = [113.5, 33.9, 113.51, 33.91]
    item["geometry"] = box(*item["bbox"]).__geo_interface__
    req = IngestRequest(Path("/dev/null"), "nrp", "boxes")
    cat.commit_many([(req, "vector", [item], True)], export=False)  # a live item's update
    assert search_ids(cat, before[moved]) == []
    assert search_ids(cat, (113.505, 33.905, 113.6, 34.0)) == [moved]
    assert search_ids(cat, (10.5, 10.5, 10.6, 10.6)) == [stays]


def test_an_index_with_an_rtree_is_moved_to_cells_on_open(tmp_path):
    data = tmp_path / "data"
    truth = commit_boxes(Catalog.open(data), boxes_of_every_size(np.random.default_rng(5), 300))
    with sqlite3.connect(data / "index.sqlite") as db:  # the layout before cells
        db.execute("DROP TRIGGER items_indexed")
        db.execute("DROP TRIGGER items_unindexed")
        db.execute("DROP TABLE item_cells")
        db.execute("ALTER TABLE items DROP COLUMN cell")
        db.execute("CREATE VIRTUAL TABLE items_rtree USING rtree(rowid, minx, maxx, miny, maxy)")
        db.execute("INSERT INTO items_rtree SELECT rowid, minx, maxx, miny, maxy FROM items")
    reopened = Catalog.open(data)
    names = {r[0] for r in reopened.store.index.db.execute("SELECT name FROM sqlite_master")}
    assert "items_rtree" not in names and "item_cells" in names
    truth |= commit_boxes(reopened, boxes_of_every_size(np.random.default_rng(7), 100), "more")
    for q in boxes_of_every_size(np.random.default_rng(6), 60):
        assert search_ids(reopened, q) == overlapping(truth, q)
    titled_7 = [k for k in truth if k.rsplit("-v", 1)[1].startswith("7")]  # words by prefix
    assert sorted(reopened.search(text="box 7").ids) == sorted(titled_7)
