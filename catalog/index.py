"""The catalog's search index and commit point: one SQLite file beside the STAC JSON.

SQLite gives us what a catalog of a city needs on one machine: transactions (an ingest
commits or it does not), B-tree keys of quadtree cells for bbox search (see
:mod:`.cells`), FTS5 over character bigrams for Chinese free text, and many readers
alongside one writer (WAL). Its tables and queries belong to
:class:`~shikong.catalog.sqlite_store.SqliteCatalogStore`; nothing else uses them.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import shapely
from shapely.geometry.base import BaseGeometry

from .cells import item_key, search_ranges
from .extension import Field, ShikongExtension
from .item_filter import SQLITE, FilterError, search_in_python, to_sql
from .storage import SqliteConnections, immediate_transaction, insert_flat, insert_rows
from .store import Query
from .textsearch import match_terms

_SCHEMA = """
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    id TEXT PRIMARY KEY, department TEXT NOT NULL, layer TEXT NOT NULL, kind TEXT NOT NULL,
    classification TEXT NOT NULL, title TEXT, changed_version INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, collection TEXT NOT NULL,
    department TEXT NOT NULL, kind TEXT NOT NULL, classification TEXT NOT NULL,
    version TEXT NOT NULL, valid_from REAL NOT NULL, valid_to REAL,
    minx REAL, miny REAL, maxx REAL, maxy REAL, footprint TEXT,
    text TEXT NOT NULL, source_checksum TEXT, changed_version INTEGER NOT NULL,
    json TEXT NOT NULL, cell INTEGER
);
CREATE INDEX IF NOT EXISTS items_collection ON items (collection, valid_from);
CREATE INDEX IF NOT EXISTS items_department ON items (department);
CREATE INDEX IF NOT EXISTS items_valid ON items (valid_from, valid_to);
CREATE TABLE IF NOT EXISTS item_cells (
    key INTEGER NOT NULL, rid INTEGER NOT NULL,
    minx REAL NOT NULL, miny REAL NOT NULL, maxx REAL NOT NULL, maxy REAL NOT NULL,
    PRIMARY KEY (key, rid)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(tokens, tokenize='unicode61');
CREATE VIRTUAL TABLE IF NOT EXISTS collections_fts USING fts5(
    id UNINDEXED, tokens, tokenize='unicode61'
);
"""

# An item's row carries its own cell key and search tokens; triggers file them in the
# spatial and full-text indexes, inside SQLite, as the row is written or deleted.
_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS items_indexed AFTER INSERT ON items BEGIN
    INSERT INTO items_fts(rowid, tokens) VALUES (new.rowid, new.text);
    INSERT INTO item_cells SELECT new.cell, new.rowid, new.minx, new.miny, new.maxx, new.maxy
        WHERE new.cell IS NOT NULL;
END;
CREATE TRIGGER IF NOT EXISTS items_unindexed AFTER DELETE ON items BEGIN
    DELETE FROM items_fts WHERE rowid = old.rowid;
    DELETE FROM item_cells WHERE key = old.cell AND rid = old.rowid;
END;
"""

_ITEM_COLUMNS = (
    "id, collection, department, kind, classification, version, valid_from, valid_to, "
    "minx, miny, maxx, maxy, footprint, text, source_checksum, changed_version, json, cell"
)
_ITEM_WIDTH = _ITEM_COLUMNS.count(",") + 1
_ROWS_PER_INSERT = 1000  # 18,000 values: within SQLite's 32,766 variables per statement

_COLLECTION_WIDTH = 8  # the columns of the collections table
_NO_BOX = (None, None, None, None)
_CHECKPOINT_BYTES = 16 << 20  # SQLite's own default: 1,000 pages of 16 KiB


def _no_autocheckpoint(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_autocheckpoint=0")  # see CatalogIndex._checkpoint_soon


SORTABLE = {
    "id": "i.id",
    "collection": "i.collection",
    "datetime": "i.valid_from",
    "start_datetime": "i.valid_from",
    "end_datetime": "i.valid_to",
    "version": "i.version",
    Field.DEPARTMENT: "i.department",
}


@dataclass(slots=True)
class ItemRow:
    """What the index keeps of an item to find it; ``json`` is the STAC item itself."""

    id: str
    collection: str
    department: str
    kind: str
    classification: str
    version: str
    valid_from: float
    valid_to: float | None
    bbox: Sequence[float] | None  # footprint bounds, EPSG:4490
    footprint: bytes | None  # GeoJSON of the footprint, for intersects; None = its bbox
    text: str  # full-text tokens (see textsearch.index_text)
    source_checksum: str | None
    json: bytes  # the STAC item as JSON, serialized once for the index and the file
    cell: int | None = None  # cells.item_key(bbox); computed if left out

    def values(self, version: int) -> tuple[Any, ...]:
        """The row's values in the order of ``_ITEM_COLUMNS``."""
        box = self.bbox or _NO_BOX
        cell = self.cell if self.cell is not None or self.bbox is None else item_key(box)
        return (
            self.id,
            self.collection,
            self.department,
            self.kind,
            self.classification,
            self.version,
            self.valid_from,
            self.valid_to,
            *box,
            self.footprint,
            self.text,
            self.source_checksum,
            version,
            self.json,
            cell,
        )


@dataclass
class PreparedItems:
    """Rows ready for :meth:`CatalogIndex.put_prepared`: built away from the connection
    (in a prefetch thread), so the writer only binds them."""

    ids: list[str]
    values: list[Any]  # every row's values, one after the other


@dataclass
class PreparedCollections:
    """Collection documents ready for :meth:`CatalogIndex.put_prepared_collections`."""

    ids: list[str]
    tokens: list[str]
    values: list[Any]  # every collection row's values, one after the other


def prepare_collections(
    collections: Iterable[tuple[dict[str, Any], str]], version: int
) -> PreparedCollections:
    prepared = PreparedCollections([], [], [])
    for c, tokens in collections:
        shikong = ShikongExtension.ext(c)
        prepared.ids.append(c["id"])
        prepared.tokens.append(tokens)
        prepared.values.extend(
            (
                c["id"],
                shikong.department,
                shikong.layer,
                shikong.kind,
                shikong.classification,
                c.get("title"),
                version,
                orjson.dumps(c).decode(),
            )
        )
    return prepared


def prepare_items(rows: Iterable[ItemRow], version: int) -> PreparedItems:
    ids: list[str] = []
    values: list[Any] = []
    for row in rows:
        ids.append(row.id)
        values += row.values(version)
    return PreparedItems(ids, values)


class CatalogIndex:
    """SQLite index: one connection per thread, writes inside :meth:`transaction`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # 64 MiB cache: bulk loads stay in memory until commit. 16 KiB pages: a STAC item
        # row is ~2 KB, so 4 KiB pages held one row each, half empty; the commit of
        # 10,000 items wrote 44 MB of WAL in 0.18 s, with 16 KiB pages 27 MB in 0.07 s.
        self._connections = SqliteConnections(
            self.path, cache_mib=64, page_size=16384, setup=_no_autocheckpoint
        )
        self.db.executescript(_SCHEMA)  # idempotent; executescript commits by itself
        self._checkpointing = threading.Lock()
        self._replace_rtree()
        self.db.executescript(_TRIGGERS)

    def _replace_rtree(self) -> None:
        """Index files before 2026-11-26 kept bboxes in an R*Tree: file them under cells."""
        find = "SELECT 1 FROM sqlite_master WHERE name='items_rtree'"
        if self.db.execute(find).fetchone() is None:
            return
        with self.transaction() as db:
            if db.execute(find).fetchone() is None:  # another process did it meanwhile
                return
            db.execute("ALTER TABLE items ADD COLUMN cell INTEGER")
            boxes = db.execute(
                "SELECT rowid, minx, miny, maxx, maxy FROM items WHERE minx IS NOT NULL"
            ).fetchall()
            db.executemany(
                "UPDATE items SET cell=? WHERE rowid=?", [(item_key(b[1:]), b[0]) for b in boxes]
            )
            db.execute(
                "INSERT INTO item_cells SELECT cell, rowid, minx, miny, maxx, maxy FROM items "
                "WHERE cell IS NOT NULL"
            )
            db.execute("DROP TABLE items_rtree")

    @property
    def db(self) -> sqlite3.Connection:
        return self._connections.get()

    def close(self) -> None:
        self._connections.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT: all of an ingest or none of it."""
        with immediate_transaction(self.db) as db:
            yield db
        self._checkpoint_soon()

    def _checkpoint_soon(self) -> None:
        """Copy the write-ahead log into the file in a helper thread, once it is large.

        A commit is durable once its log is synced; SQLite's own checkpoint would then copy
        every page again and sync the file before COMMIT returns (a third of a 10,000-item
        commit). Readers are not held up by a longer log, and a checkpoint left undone by a
        crash is finished by the next open.
        """
        try:
            if os.path.getsize(f"{self.path}-wal") < _CHECKPOINT_BYTES:
                return
        except OSError:
            return
        if self._checkpointing.acquire(blocking=False):  # one at a time; later ones wait
            threading.Thread(target=self._checkpoint, name="shikong-checkpoint").start()

    def _checkpoint(self) -> None:
        try:
            with contextlib.closing(sqlite3.connect(self.path, timeout=30.0)) as db:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # the data directory went away, or is busy: the next commit tries again
        finally:
            self._checkpointing.release()

    # -- catalog version -------------------------------------------------------------
    def version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        return int(row[0]) if row else 0

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    @staticmethod
    def set_meta(db: sqlite3.Connection, key: str, value: object) -> None:
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    @staticmethod
    def bump_version(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        version = (int(row[0]) if row else 0) + 1
        CatalogIndex.set_meta(db, "version", version)
        return version

    # -- collections -----------------------------------------------------------------
    @staticmethod
    def put_prepared_collections(db: sqlite3.Connection, prepared: PreparedCollections) -> None:
        """A few statements for many collections (each statement lets go of the GIL)."""
        for start in range(0, len(prepared.ids), 500):
            ids = prepared.ids[start : start + 500]
            db.execute(f"DELETE FROM collections_fts WHERE id IN ({','.join('?' * len(ids))})", ids)
            insert_rows(
                db,
                "INSERT INTO collections_fts(id, tokens)",
                [ids, prepared.tokens[start : start + 500]],
                rows_per_statement=500,
            )
        insert_flat(
            db,
            "INSERT OR REPLACE INTO collections",
            prepared.values,
            _COLLECTION_WIDTH,
            rows_per_statement=500,
        )

    def collections_by_id(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for chunk in range(0, len(ids), 900):
            part = ids[chunk : chunk + 900]
            sql = f"SELECT id, json FROM collections WHERE id IN ({','.join('?' * len(part))})"
            found.update({i: orjson.loads(j) for i, j in self.db.execute(sql, part)})
        return found

    def collection(self, collection_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT json FROM collections WHERE id=?", (collection_id,)
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    def collections(
        self, department: str | None = None, changed_since: int | None = None
    ) -> list[dict[str, Any]]:
        sql, args = "SELECT json FROM collections WHERE 1=1", []
        if department is not None:
            sql, args = sql + " AND department=?", [*args, department]
        if changed_since is not None:
            sql, args = sql + " AND changed_version>?", [*args, changed_since]
        return [orjson.loads(r[0]) for r in self.db.execute(sql + " ORDER BY id", args)]

    def collection_heads(self, changed_since: int | None = None) -> list[dict[str, Any]]:
        """Collections without links and summaries (cut in SQLite: never parsed here)."""
        sql, args = "SELECT json_remove(json, '$.links', '$.summaries') FROM collections", []
        if changed_since is not None:
            sql, args = sql + " WHERE changed_version>?", [changed_since]
        return [orjson.loads(r[0]) for r in self.db.execute(sql + " ORDER BY id", args)]

    def departments(self) -> list[str]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT DISTINCT department FROM collections ORDER BY department"
            )
        ]

    # -- items -----------------------------------------------------------------------
    @staticmethod
    def put_prepared(db: sqlite3.Connection, items: PreparedItems) -> None:
        """Insert or replace prepared items (a changed item's old row is deleted first;
        triggers keep the cells and the full-text index in step)."""
        for chunk in range(0, len(items.ids), 500):
            part = items.ids[chunk : chunk + 500]
            db.execute(f"DELETE FROM items WHERE id IN ({','.join('?' * len(part))})", part)
        insert_flat(
            db,
            f"INSERT INTO items ({_ITEM_COLUMNS})",
            items.values,
            _ITEM_WIDTH,
            rows_per_statement=_ROWS_PER_INSERT,
        )

    def items_of(self, collection_id: str) -> list[dict[str, Any]]:
        """Every item (version) of a collection, oldest validity first."""
        rows = self.db.execute(
            "SELECT json FROM items WHERE collection=? ORDER BY valid_from, id",
            (collection_id,),
        )
        return [orjson.loads(r[0]) for r in rows]

    def item_at(self, collection_id: str, when: float) -> dict[str, Any] | None:
        """The version valid at epoch ``when``: the last by validity with
        valid_from <= when < valid_to."""
        row = self.db.execute(
            "SELECT json FROM items WHERE collection=? AND valid_from<=? "
            "AND (valid_to IS NULL OR valid_to>?) ORDER BY valid_from DESC, id DESC LIMIT 1",
            (collection_id, when, when),
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    def item_during(
        self, collection_id: str, start: float | None, end: float | None
    ) -> dict[str, Any] | None:
        """The last version by validity valid at some moment of [start, end] (None: open)."""
        where, args = ["collection=?"], [collection_id]
        if end is not None:  # a bound, not coalesce(): the (collection, valid_from) index
            where, args = [*where, "valid_from<=?"], [*args, end]
        if start is not None:
            where, args = [*where, "(valid_to IS NULL OR valid_to>?)"], [*args, start]
        row = self.db.execute(
            f"SELECT json FROM items WHERE {' AND '.join(where)} "
            "ORDER BY valid_from DESC, id DESC LIMIT 1",
            args,
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    def versions_of(self, collection_id: str) -> list[tuple[str, str, float, float | None]]:
        """(id, version, valid_from, valid_to) of a collection's items, as items_of orders them."""
        return self.db.execute(
            "SELECT id, version, valid_from, valid_to FROM items WHERE collection=? "
            "ORDER BY valid_from, id",
            (collection_id,),
        ).fetchall()

    def item(self, item_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT json FROM items WHERE id=?", (item_id,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def items_changed_since(self, version: int) -> Iterator[tuple[str, str, str, str]]:
        """(department, layer of collection, id, json text) of items changed since."""
        return self.db.execute(
            "SELECT i.department, c.layer, i.id, i.json FROM items i JOIN collections c "
            "ON c.id = i.collection WHERE i.changed_version>? ORDER BY i.id",
            (version,),
        )

    def layer_names(self, department: str) -> list[str]:
        sql = "SELECT layer FROM collections WHERE department=? ORDER BY layer"
        return [r[0] for r in self.db.execute(sql, (department,))]

    def changed_departments(self, version: int) -> list[str]:
        sql = (
            "SELECT DISTINCT department FROM collections WHERE changed_version>? "
            "ORDER BY department"
        )
        return [r[0] for r in self.db.execute(sql, (version,))]

    def find_checksum(self, collection_id: str, checksum: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT json FROM items WHERE collection=? AND source_checksum=?",
            (collection_id, checksum),
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    # -- search ----------------------------------------------------------------------
    def search(self, query: Query) -> tuple[list[dict[str, Any]], int]:
        """Items matching a query, as STAC dicts, and how many matched in all.

        Filters select row ids (cells and the full-text index drive when present); only
        the page's items are read and parsed.
        """
        where, args = ["1=1"], []
        box = query.bbox
        if query.intersects is not None:
            box = shapely.bounds(query.intersects).tolist()
        if box is not None:
            ranges = search_ranges(box)
            where.append(
                f"i.rowid IN (WITH r(low, high) AS (VALUES {','.join(['(?,?)'] * len(ranges))}) "
                "SELECT c.rid FROM r JOIN item_cells c ON c.key BETWEEN r.low AND r.high "
                "WHERE c.maxx >= ? AND c.minx <= ? AND c.maxy >= ? AND c.miny <= ?)"
            )
            args += [bound for pair in ranges for bound in pair]
            args += [box[0], box[2], box[1], box[3]]
        if query.start is not None:
            where.append("(i.valid_to IS NULL OR i.valid_to > ?)")
            args.append(query.start)
        if query.end is not None:
            where.append("i.valid_from <= ?")
            args.append(query.end)
        for column, values in (
            ("collection", query.collections),
            ("id", query.ids),
            ("department", query.departments),
            ("kind", query.kinds),
            ("classification", query.classifications),
        ):
            if values is not None:
                where.append(f"i.{column} IN ({','.join('?' * len(values))})")
                args += list(values)
        if query.current_only:
            where.append("i.valid_to IS NULL")
        if query.filter is not None:
            translated = to_sql(query.filter, SQLITE)
            if translated is None:
                return search_in_python(self.search, query)
            where.append(translated[0])
            args += translated[1]
        for term in match_terms(query.text or ""):  # an item or its layer has each term
            where.append(
                "(i.rowid IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?) OR "
                "i.collection IN (SELECT id FROM collections_fts WHERE collections_fts MATCH ?))"
            )
            args += [term, term]
        order = [
            f"{SORTABLE[f]} {'ASC' if asc else 'DESC'}" for f, asc in query.sortby if f in SORTABLE
        ] or ["i.collection ASC", "i.valid_from ASC"]
        order.append("i.id ASC")
        sql = f"SELECT i.rowid FROM items i WHERE {' AND '.join(where)} ORDER BY {', '.join(order)}"
        try:
            rowids = [r[0] for r in self.db.execute(sql, args)]
        except sqlite3.OperationalError as exc:  # e.g. a stored property JSON cannot read
            if query.filter is None:
                raise
            raise FilterError(f"cannot be evaluated: {exc}") from exc
        if query.intersects is not None and rowids:
            rowids = self._intersecting(rowids, query.intersects)
        end = None if query.limit is None else query.offset + query.limit
        page = rowids[query.offset : end]
        return self._items_by_rowid(page), len(rowids)

    def _intersecting(self, rowids: list[int], geometry: BaseGeometry) -> list[int]:
        """Rows whose footprint intersects; a NULL footprint with a bbox is its bbox."""
        rows = {
            r: (fp, box)
            for r, fp, *box in self._column_by_rowid("footprint, minx, miny, maxx, maxy", rowids)
        }
        ids = [r for r in rowids if rows[r][0] or rows[r][1][0] is not None]
        shapes = [
            shapely.from_geojson(bytes(rows[r][0]).decode())
            if rows[r][0]
            else shapely.box(*rows[r][1])
            for r in ids
        ]
        mask = shapely.intersects(geometry, shapes)
        return [r for r, hit in zip(ids, mask, strict=True) if hit]

    def _column_by_rowid(self, column: str, rowids: list[int]) -> Iterator[tuple[int, Any]]:
        for chunk in range(0, len(rowids), 900):
            part = rowids[chunk : chunk + 900]
            yield from self.db.execute(
                f"SELECT rowid, {column} FROM items WHERE rowid IN ({','.join('?' * len(part))})",
                part,
            )

    def _items_by_rowid(self, rowids: list[int]) -> list[dict[str, Any]]:
        found = dict(self._column_by_rowid("json", rowids))
        return [orjson.loads(found[r]) for r in rowids]
