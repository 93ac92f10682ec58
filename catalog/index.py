"""The catalog's search index and commit point: one SQLite file beside the STAC JSON.

SQLite gives us what a catalog of a city needs on one machine: transactions (an ingest
commits or it does not), an R*Tree for bbox search, FTS5 with a trigram tokenizer for
Chinese free text, and many readers alongside one writer (WAL). The same queries map to
PostgreSQL/pgSTAC when a city outgrows it; this class is the seam.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

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
    minx REAL, miny REAL, maxx REAL, maxy REAL, geom BLOB,
    text TEXT NOT NULL, source_checksum TEXT, changed_version INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_collection ON items (collection, valid_from);
CREATE INDEX IF NOT EXISTS items_department ON items (department);
CREATE INDEX IF NOT EXISTS items_valid ON items (valid_from, valid_to);
CREATE VIRTUAL TABLE IF NOT EXISTS items_rtree USING rtree(rowid, minx, maxx, miny, maxy);
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(
    text, content='items', content_rowid='rowid', tokenize='trigram'
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
    geometry: BaseGeometry | None
    text: str
    source_checksum: str | None
    json: dict[str, Any]


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
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db.executescript(_SCHEMA)  # idempotent; executescript commits by itself

    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT: all of an ingest or none of it."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

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
    def put_collection(db: sqlite3.Connection, collection: dict[str, Any], version: int) -> None:
        db.execute(
            "INSERT OR REPLACE INTO collections VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                collection["id"],
                collection["shikong:department"],
                collection["shikong:layer"],
                collection["shikong:kind"],
                collection["shikong:classification"],
                collection.get("title"),
                version,
                json.dumps(collection, ensure_ascii=False),
            ),
        )

    def collection(self, collection_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT json FROM collections WHERE id=?", (collection_id,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def collections(
        self, department: str | None = None, changed_since: int | None = None
    ) -> list[dict[str, Any]]:
        sql, args = "SELECT json FROM collections WHERE 1=1", []
        if department is not None:
            sql, args = sql + " AND department=?", [*args, department]
        if changed_since is not None:
            sql, args = sql + " AND changed_version>?", [*args, changed_since]
        return [json.loads(r[0]) for r in self.db.execute(sql + " ORDER BY id", args)]

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
        for row in rows:
            old = db.execute("SELECT rowid, text FROM items WHERE id=?", (row.id,)).fetchone()
            bounds = shapely.bounds(row.geometry) if row.geometry is not None else [None] * 4
            values = (
                row.id,
                row.collection,
                row.department,
                row.kind,
                row.classification,
                row.version,
                row.valid_from,
                row.valid_to,
                *map(_float, bounds),
                shapely.to_wkb(row.geometry) if row.geometry is not None else None,
                row.text,
                row.source_checksum,
                version,
                json.dumps(row.json, ensure_ascii=False),
            )
            if old is None:
                cur = db.execute(
                    "INSERT INTO items (id, collection, department, kind, classification, "
                    "version, valid_from, valid_to, minx, miny, maxx, maxy, geom, text, "
                    "source_checksum, changed_version, json) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    values,
                )
                rowid = cur.lastrowid
            else:
                rowid = old[0]
                db.execute(
                    "INSERT INTO items_fts(items_fts, rowid, text) VALUES('delete', ?, ?)",
                    (rowid, old[1]),
                )
                db.execute(
                    "UPDATE items SET id=?, collection=?, department=?, kind=?, "
                    "classification=?, version=?, valid_from=?, valid_to=?, minx=?, miny=?, "
                    "maxx=?, maxy=?, geom=?, text=?, source_checksum=?, changed_version=?, "
                    "json=? WHERE rowid=?",
                    (*values, rowid),
                )
                db.execute("DELETE FROM items_rtree WHERE rowid=?", (rowid,))
            db.execute("INSERT INTO items_fts(rowid, text) VALUES (?, ?)", (rowid, row.text))
            if row.geometry is not None:
                minx, miny, maxx, maxy = bounds
                db.execute(
                    "INSERT INTO items_rtree VALUES (?, ?, ?, ?, ?)",
                    (rowid, minx, maxx, miny, maxy),
                )

    def items_of(self, collection_id: str) -> list[dict[str, Any]]:
        """Every item (version) of a collection, oldest validity first."""
        rows = self.db.execute(
            "SELECT json FROM items WHERE collection=? ORDER BY valid_from, id",
            (collection_id,),
        )
        return [json.loads(r[0]) for r in rows]

    def item(self, item_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT json FROM items WHERE id=?", (item_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def items_changed_since(self, version: int) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT json FROM items WHERE changed_version>? ORDER BY id", (version,)
        )
        return [json.loads(r[0]) for r in rows]

    def find_checksum(self, collection_id: str, checksum: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT json FROM items WHERE collection=? AND source_checksum=?",
            (collection_id, checksum),
        ).fetchone()
        return json.loads(row[0]) if row else None

    # -- search ----------------------------------------------------------------------
    def search(self, query: Query) -> tuple[list[dict[str, Any]], int]:
        """Items matching a query, as STAC dicts, and how many matched in all."""
        where, args, joins = ["1=1"], [], []
        box = query.bbox
        if query.intersects is not None:
            box = shapely.bounds(query.intersects).tolist()
        if box is not None:
            minx, miny, maxx, maxy = box
            joins.append("JOIN items_rtree r ON r.rowid = i.rowid")
            where.append("r.maxx >= ? AND r.minx <= ? AND r.maxy >= ? AND r.miny <= ?")
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
        if query.text:
            for term in query.text.split():
                if len(term) >= 3:
                    where.append("i.rowid IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)")
                    args.append('"' + term.replace('"', '""') + '"')
                else:  # trigrams need three characters; short Chinese words scan
                    where.append("i.text LIKE ? ESCAPE '\\'")
                    args.append("%" + term.replace("%", "\\%").replace("_", "\\_") + "%")
        order = [
            f"{SORTABLE[f]} {'ASC' if asc else 'DESC'}" for f, asc in query.sortby if f in SORTABLE
        ] or ["i.collection ASC", "i.valid_from ASC"]
        order.append("i.id ASC")
        base = f"FROM items i {' '.join(joins)} WHERE {' AND '.join(where)}"
        if query.intersects is None:
            matched = self.db.execute(f"SELECT count(*) {base}", args).fetchone()[0]
            sql = f"SELECT i.json {base} ORDER BY {', '.join(order)}"
            page_args = list(args)
            if query.limit is not None:
                sql += " LIMIT ? OFFSET ?"
                page_args += [query.limit, query.offset]
            return [json.loads(r[0]) for r in self.db.execute(sql, page_args)], matched
        rows = self.db.execute(f"SELECT i.geom, i.json {base} ORDER BY {', '.join(order)}", args)
        prepared = query.intersects
        shapely.prepare(prepared)
        hits = [j for g, j in rows if g is not None and prepared.intersects(shapely.from_wkb(g))]
        end = None if query.limit is None else query.offset + query.limit
        return [json.loads(j) for j in hits[query.offset : end]], len(hits)


def _float(value: object) -> float | None:
    return None if value is None else float(value)
