"""The catalog's search index and commit point: one SQLite file beside the STAC JSON.

SQLite gives us what a catalog of a city needs on one machine: transactions (an ingest
commits or it does not), an R*Tree for bbox search, FTS5 with a trigram tokenizer for
Chinese free text, and many readers alongside one writer (WAL). The same queries map to
PostgreSQL/pgSTAC when a city outgrows it; this class is the seam.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import shapely
from shapely.geometry.base import BaseGeometry

from .storage import SqliteConnections, immediate_transaction
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
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_collection ON items (collection, valid_from);
CREATE INDEX IF NOT EXISTS items_department ON items (department);
CREATE INDEX IF NOT EXISTS items_valid ON items (valid_from, valid_to);
CREATE VIRTUAL TABLE IF NOT EXISTS items_rtree USING rtree(rowid, minx, maxx, miny, maxy);
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(tokens, tokenize='unicode61');
CREATE VIRTUAL TABLE IF NOT EXISTS collections_fts USING fts5(
    id UNINDEXED, tokens, tokenize='unicode61'
);
"""

SORTABLE = {
    "id": "i.id",
    "collection": "i.collection",
    "datetime": "i.valid_from",
    "start_datetime": "i.valid_from",
    "end_datetime": "i.valid_to",
    "version": "i.version",
    "shikong:department": "i.department",
}


@dataclass
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


@dataclass
class Query:
    """A search over items; every field narrows the result (None = no constraint)."""

    bbox: Sequence[float] | None = None
    intersects: BaseGeometry | None = None
    start: float | None = None  # epoch seconds of the query interval; None = open
    end: float | None = None
    collections: Sequence[str] | None = None
    ids: Sequence[str] | None = None
    departments: Sequence[str] | None = None
    kinds: Sequence[str] | None = None
    classifications: Sequence[str] | None = None
    text: str | None = None
    current_only: bool = False
    sortby: Sequence[tuple[str, bool]] = field(default_factory=list)  # (field, ascending)
    limit: int | None = None
    offset: int = 0


class CatalogIndex:
    """SQLite index: one connection per thread, writes inside :meth:`transaction`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # 64 MiB cache: bulk loads stay in memory until commit. 16 KiB pages: a STAC item
        # row is ~2 KB, so 4 KiB pages held one row each, half empty; the commit of
        # 10,000 items wrote 44 MB of WAL in 0.18 s, with 16 KiB pages 27 MB in 0.07 s
        # (32 KiB: 0.03 s, but R*Tree nodes of that size slowed bbox search by half).
        self._connections = SqliteConnections(self.path, cache_mib=64, page_size=16384)
        self.db.executescript(_SCHEMA)  # idempotent; executescript commits by itself

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
    def put_collections(
        db: sqlite3.Connection, collections: list[tuple[dict[str, Any], str]], version: int
    ) -> None:
        """Insert or replace collections with their full-text tokens."""
        ids = [(c["id"],) for c, _ in collections]
        db.executemany("DELETE FROM collections_fts WHERE id=?", ids)
        db.executemany(
            "INSERT INTO collections_fts(id, tokens) VALUES (?, ?)",
            [(c["id"], tokens) for c, tokens in collections],
        )
        db.executemany(
            "INSERT OR REPLACE INTO collections VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    c["id"],
                    c["shikong:department"],
                    c["shikong:layer"],
                    c["shikong:kind"],
                    c["shikong:classification"],
                    c.get("title"),
                    version,
                    orjson.dumps(c).decode(),
                )
                for c, _ in collections
            ],
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

    def departments(self) -> list[str]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT DISTINCT department FROM collections ORDER BY department"
            )
        ]

    # -- items -----------------------------------------------------------------------
    @staticmethod
    def put_items(db: sqlite3.Connection, rows: Iterable[ItemRow], version: int) -> None:
        """Insert or replace items, keeping the R*Tree and full-text index in step."""
        rows = list(rows)
        if not rows:
            return
        ids = [r.id for r in rows]
        old: dict[str, int] = {}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            marks = ",".join("?" * len(part))
            sql = f"SELECT rowid, id FROM items WHERE id IN ({marks})"
            old.update({i: rowid for rowid, i in db.execute(sql, part)})
        # new rows number after every existing row, deleted ones included, so a new row
        # never takes the number of a changed row that is re-inserted below
        next_rowid = db.execute("SELECT coalesce(max(rowid), 0) FROM items").fetchone()[0] + 1
        if old:  # changed items: drop their index entries, then insert afresh
            gone = [(rowid,) for rowid in old.values()]
            db.executemany("DELETE FROM items_fts WHERE rowid=?", gone)
            db.executemany("DELETE FROM items_rtree WHERE rowid=?", gone)
            db.executemany("DELETE FROM items WHERE rowid=?", gone)
        values, fts, rtree = [], [], []
        for row in rows:
            if row.id in old:
                rowid = old[row.id]
            else:
                rowid, next_rowid = next_rowid, next_rowid + 1
            b = row.bbox or (None, None, None, None)
            values.append(
                (
                    rowid,
                    row.id,
                    row.collection,
                    row.department,
                    row.kind,
                    row.classification,
                    row.version,
                    row.valid_from,
                    row.valid_to,
                    *b,
                    row.footprint,
                    row.text,
                    row.source_checksum,
                    version,
                    row.json,
                )
            )
            fts.append((rowid, row.text))
            if row.bbox is not None:
                rtree.append((rowid, b[0], b[2], b[1], b[3]))
        db.executemany(
            "INSERT INTO items (rowid, id, collection, department, kind, "
            "classification, version, valid_from, valid_to, minx, miny, maxx, "
            "maxy, footprint, text, source_checksum, changed_version, json) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            values,
        )
        db.executemany("INSERT INTO items_fts(rowid, tokens) VALUES (?, ?)", fts)
        db.executemany("INSERT INTO items_rtree VALUES (?, ?, ?, ?, ?)", rtree)

    def items_of(self, collection_id: str) -> list[dict[str, Any]]:
        """Every item (version) of a collection, oldest validity first."""
        rows = self.db.execute(
            "SELECT json FROM items WHERE collection=? ORDER BY valid_from, id",
            (collection_id,),
        )
        return [orjson.loads(r[0]) for r in rows]

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

        Filters select row ids (the R*Tree and full-text index drive when present); only
        the page's items are read and parsed.
        """
        where, args = ["1=1"], []
        box = query.bbox
        if query.intersects is not None:
            box = shapely.bounds(query.intersects).tolist()
        if box is not None:
            minx, miny, maxx, maxy = box
            where.append(
                "i.rowid IN (SELECT rowid FROM items_rtree WHERE maxx >= ? AND "
                "minx <= ? AND maxy >= ? AND miny <= ?)"
            )
            args += [minx, maxx, miny, maxy]
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
        rowids = [r[0] for r in self.db.execute(sql, args)]
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
