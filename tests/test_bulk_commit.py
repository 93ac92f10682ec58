"""A bulk commit builds rows in a helper thread: failures there must undo everything."""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import version_item
from shikong.catalog import Catalog, IngestRequest
from shikong.catalog.prefetch import prefetched

START = datetime(2020, 1, 1, tzinfo=UTC)


def layer_items(layer: str, n: int) -> tuple[IngestRequest, list[dict]]:
    req = IngestRequest(Path("/dev/null"), "nrp", layer)
    items = [
        version_item(
            req,
            k,
            (113 + k * 1e-4, 33.6, 113.01 + k * 1e-4, 33.61),
            START.replace(year=2000 + k % 20, day=1 + k % 28),
            f"{layer} {k}",
        )
        for k in range(n)
    ]
    return req, items


def test_a_bad_item_late_in_a_bulk_commit_leaves_the_catalog_as_it_was(tmp_path):
    cat = Catalog.open(tmp_path / "data")
    req, items = layer_items("kept", 10)
    cat.commit_many([(req, "vector", items, False)], export=False)
    before = cat.store.version()
    batches = [layer_items(f"layer_{n}", 100) for n in range(40)]  # 4,000 items: prefetched
    del batches[-1][1][-1]["properties"]["shikong:valid_from"]  # the very last item
    interval = sys.getswitchinterval()
    with pytest.raises(KeyError):
        cat.commit_many([(req, "vector", items, False) for req, items in batches], export=False)
    assert cat.store.version() == before
    assert cat.store.index.db.execute("SELECT count(*) FROM items").fetchone()[0] == 10
    assert cat.store.index.db.execute("SELECT count(*) FROM item_cells").fetchone()[0] == 10
    assert [c["id"] for c in cat.store.collections()] == ["nrp-kept"]
    assert sys.getswitchinterval() == interval
    assert not [t for t in threading.enumerate() if t.name == "shikong-prefetch"]
    del batches[-1][1][-1]  # without the bad item the same commit goes through
    cat.commit_many([(req, "vector", items, False) for req, items in batches], export=False)
    assert cat.store.index.db.execute("SELECT count(*) FROM items").fetchone()[0] == 10 + 3999


def test_prefetched_hands_over_every_chunk_in_order_and_stops_when_the_reader_does():
    produced: list[int] = []

    def chunks(pause: float = 0.0):
        for k in range(1000):
            produced.append(k)
            time.sleep(pause)
            yield k

    with prefetched(chunks) as got:
        assert list(got) == list(range(1000))
    produced.clear()
    with prefetched(lambda: chunks(pause=0.002)) as got:
        assert next(got) == 0
    assert len(produced) < 20  # the producer stopped at its next chunk, not after 1,000
    assert not [t for t in threading.enumerate() if t.name == "shikong-prefetch"]


def test_a_large_commit_is_checkpointed_into_the_file_after_it_returns(tmp_path):
    cat = Catalog.open(tmp_path / "data")
    batches = [layer_items(f"layer_{n}", 100) for n in range(100)]  # ~18 MB of log
    cat.commit_many([(req, "vector", items, False) for req, items in batches], export=False)
    wal = cat.paths.index.with_name("index.sqlite-wal")
    assert wal.stat().st_size >= 16 << 20  # SQLite did not copy it back before returning
    deadline = time.monotonic() + 60
    while cat.store.index._checkpointing.locked() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cat.paths.index.stat().st_size > 10 << 20  # the helper copied the rows in


def test_every_stored_version_links_the_current_chain(tmp_path):
    """Adding a version relinks versions whose validity it does not close: the old
    latest-version links of earlier ones, a successor's predecessor when one arrives
    in between. Checked in the index and in the exported JSON."""
    cat = Catalog.open(tmp_path / "data")
    req, items = layer_items("chain", 6)
    for k in (0, 1, 4, 5, 2):  # one at a time; 2 arrives between 1 and 4 by validity
        cat.commit_many([(req, "vector", [items[k]], False)])
    chain = sorted(
        (items[k]["properties"]["shikong:valid_from"], items[k]["id"]) for k in (0, 1, 4, 5, 2)
    )
    ids = [i for _, i in chain]

    def version_links(item: dict) -> dict[str, str]:
        return {
            link["rel"]: link["href"].removeprefix("./").removesuffix(".json")
            for link in item["links"]
            if link["rel"].endswith("-version")
        }

    stored = {i["id"]: i for i in cat.store.items_of(req.collection_id)}
    exported = {
        p.stem: json.loads(p.read_text())
        for p in (cat.paths.stac / "nrp" / "chain" / "items").glob("*.json")
    }
    for pos, item_id in enumerate(ids):
        expect = {"latest-version": ids[-1]}
        if pos:
            expect["predecessor-version"] = ids[pos - 1]
        if pos + 1 < len(ids):
            expect["successor-version"] = ids[pos + 1]
        assert version_links(stored[item_id]) == expect, item_id
        assert version_links(exported[item_id]) == expect, item_id
