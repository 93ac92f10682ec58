"""The embedded catalog store: one SQLite file (``index.sqlite``) beside the STAC JSON.

With :mod:`.index` (its tables and queries) this is the only code that touches the
catalog's SQLite connection. The writer lock is a file lock on the data directory (so
CLI, notebooks and server workers on one machine take turns) held re-entrantly per
process.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any

import orjson
from shikong.spatial.temporal import parse_instant

from .cells import item_key
from .departments import departments
from .extension import Field, ShikongExtension
from .index import (
    CatalogIndex,
    ItemRow,
    PreparedCollections,
    PreparedItems,
    prepare_collections,
    prepare_items,
)
from .mirror import write_mirror
from .prefetch import prefetched
from .relink import relink_layer
from .storage import DataDir, collector_paused, exclusive_lock
from .store import CatalogStore, LayerBatch, Query, merge_batches
from .textsearch import index_text

_CHUNK_ITEMS = 1000  # rows per insert statement in a bulk commit
_FIRST_CHUNK_ITEMS = 200  # the first is smaller: SQLite starts sooner


class SqliteCatalogStore(CatalogStore):
    """The catalog in ``index.sqlite`` of a data directory (see :class:`CatalogStore`)."""

    def __init__(self, paths: DataDir) -> None:
        self.paths = paths
        self.index = CatalogIndex(paths.index)
        self._lock = threading.RLock()
        self._writing = 0

    def __repr__(self) -> str:
        return f"SqliteCatalogStore({str(self.paths.index)!r})"

    # -- reading (the index's queries) -------------------------------------------------
    def version(self) -> int:
        return self.index.version()

    def exported_version(self) -> int:
        return int(self.index.meta("exported_version") or 0)

    def collection(self, collection_id: str) -> dict[str, Any] | None:
        return self.index.collection(collection_id)

    def collections(
        self, department: str | None = None, changed_since: int | None = None
    ) -> list[dict[str, Any]]:
        return self.index.collections(department, changed_since)

    def collections_by_id(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return self.index.collections_by_id(ids)

    def collection_heads(self, changed_since: int | None = None) -> list[dict[str, Any]]:
        return self.index.collection_heads(changed_since)

    def departments(self) -> list[str]:
        return self.index.departments()

    def layer_names(self, department: str) -> list[str]:
        return self.index.layer_names(department)

    def changed_departments(self, version: int) -> list[str]:
        return self.index.changed_departments(version)

    def item(self, item_id: str) -> dict[str, Any] | None:
        return self.index.item(item_id)

    def items_of(self, collection_id: str) -> list[dict[str, Any]]:
        return self.index.items_of(collection_id)

    def item_at(self, collection_id: str, when: datetime) -> dict[str, Any] | None:
        return self.index.item_at(collection_id, when.timestamp())

    def item_during(
        self, collection_id: str, start: float | None, end: float | None
    ) -> dict[str, Any] | None:
        return self.index.item_during(collection_id, start, end)

    def versions_of(self, collection_id: str) -> list[tuple[str, str, float, float | None]]:
        return self.index.versions_of(collection_id)

    def find_checksum(self, collection_id: str, checksum: str) -> dict[str, Any] | None:
        return self.index.find_checksum(collection_id, checksum)

    def items_changed_since(self, version: int) -> Iterable[tuple[str, str, str, bytes]]:
        return self.index.items_changed_since(version)

    def search(self, query: Query) -> tuple[list[dict[str, Any]], int]:
        return self.index.search(query)

    def close(self) -> None:
        self.index.close()

    # -- writing -----------------------------------------------------------------------
    def _take_lock(self) -> None:
        self._file_lock = exclusive_lock(self.paths.lock)
        self._file_lock.__enter__()

    def _let_go(self) -> None:
        self._file_lock.__exit__(None, None, None)

    def commit(self, batches: Sequence[LayerBatch], export: bool = True) -> int:
        layers = merge_batches(batches)
        with (
            collector_paused(),
            self.writing(export=export),
            self.index.transaction() as db,
        ):
            version = CatalogIndex.bump_version(db)
            ids = [b.target.collection_id for b in layers]
            known = self.index.collections_by_id(ids)
            existing = {cid: self.index.items_of(cid) for cid in known}  # read before writes

            def chunks() -> Iterator[tuple[PreparedItems, PreparedCollections]]:
                """Rows and collection documents, about _CHUNK_ITEMS rows at a time."""
                rows: list[ItemRow] = []
                docs: list[tuple[dict[str, Any], str]] = []
                size = _FIRST_CHUNK_ITEMS
                for batch in layers:
                    cid = batch.target.collection_id
                    collection, changed = relink_layer(
                        batch, known.get(cid, {}), existing.get(cid, [])
                    )
                    rows += [_row(i) for i in changed]
                    docs.append((collection, _collection_text(collection)))
                    if len(rows) >= size:
                        yield prepare_items(rows, version), prepare_collections(docs, version)
                        rows, docs, size = [], [], _CHUNK_ITEMS
                if rows or docs:
                    yield prepare_items(rows, version), prepare_collections(docs, version)

            total = sum(len(b.items) for b in layers)
            ahead = prefetched(chunks) if total >= 2 * _CHUNK_ITEMS else nullcontext(chunks())
            with ahead as prepared:  # large commits: rows are built while others are inserted
                for items, collections in prepared:
                    CatalogIndex.put_prepared(db, items)
                    CatalogIndex.put_prepared_collections(db, collections)
        return version

    def _export_held(self) -> None:
        done = self.exported_version()
        current = self.version()
        if current <= done:
            return
        write_mirror(self, done, current)
        with self.index.transaction() as db:
            CatalogIndex.set_meta(db, "exported_version", current)


def _collection_text(collection: dict[str, Any]) -> str:
    """Search tokens of a layer: its items are found by them too."""
    shikong = ShikongExtension.ext(collection)
    dept = shikong.department
    parts = (
        collection.get("title"),
        shikong.title_en,
        collection.get("description"),
        " ".join(collection.get("keywords", [])),
        dept,
        departments()[dept]["name"],
    )
    return index_text(" ".join(str(p) for p in parts if p))


def _footprint(item: dict[str, Any]) -> bytes | None:
    """The geometry as GeoJSON for intersects, or None when it is just its bbox (most
    layer footprints are): the index keeps the bbox anyway."""
    geometry, bbox = item.get("geometry"), item.get("bbox")
    if not geometry:
        return None
    if bbox and len(bbox) == 4 and geometry["type"] == "Polygon":
        rings = geometry["coordinates"]
        if len(rings) == 1 and len(rings[0]) == 5:
            a, b, c, d, e = rings[0]
            x0, y0, x1, y1 = bbox
            # the bbox's four corners, closed, with a and c opposite (not a bow tie)
            if (
                a == e
                and a[0] != c[0]
                and a[1] != c[1]
                and {tuple(a), tuple(b), tuple(c), tuple(d)}
                == {(x0, y0), (x1, y0), (x1, y1), (x0, y1)}
            ):
                return None
    return orjson.dumps(geometry)


@functools.lru_cache(maxsize=1 << 14)
def _epoch(when: str) -> float:
    """Seconds since 1970 of an RFC 3339 time; a version's end is the next one's start,
    so a bulk commit reads most times twice."""
    return parse_instant(when).timestamp()


def _row(item: dict[str, Any]) -> ItemRow:
    props = item["properties"]  # once per item of a bulk commit: fields by name (Field)
    dept = props[Field.DEPARTMENT]
    text = index_text(f"{item['id']} {props.get('title') or ''}")
    to = props.get(Field.VALID_TO)
    bbox = item.get("bbox")
    return ItemRow(
        id=item["id"],
        collection=item["collection"],
        department=dept,
        kind=props[Field.KIND],
        classification=props[Field.CLASSIFICATION],
        version=props["version"],
        valid_from=_epoch(props[Field.VALID_FROM]),
        valid_to=_epoch(to) if to else None,
        bbox=bbox,
        footprint=_footprint(item),
        text=text,
        source_checksum=(props.get(Field.SOURCE) or {}).get("checksum"),
        json=orjson.dumps(item),
        cell=item_key(bbox) if bbox else None,
    )
