"""The catalog in PostgreSQL with PostGIS: the store of a cloud deployment (issue 21).

The same contract as the embedded SQLite store (:class:`~.store.CatalogStore`), with the
same answers: items keep their footprint in a PostGIS geometry and their bbox as an
envelope with a GiST index (the exact bbox test runs on the stored doubles, as SQLite's
does); free text is the very token stream of :mod:`.textsearch` (character bigrams for
Chinese, lower-case words) kept with its positions in a ``tsvector`` (GIN index), so a
Chinese run is a phrase of its bigrams (``<->``) and a single character or a Latin word a
prefix (``:*``), as FTS5 matches them. An item's tokens are its own; its layer's are the
collection's, and a term matches an item found by either (as the SQLite index asks its two
indexes). Text columns sort by code point (``COLLATE "C"``), NULLs first ascending, as
SQLite does. The item JSON is ``json``: kept as written (keys in their order), checked but
not parsed into ``jsonb`` on the way in (measured in a bulk copy: 4 µs of server time an
item's JSON against 9), and sent back as stored; the properties CQL2 filters read are
``jsonb`` (``props``). The writer lock is a session advisory lock held by a connection of
its own (re-entrant per process); readers use one autocommit connection per thread.
The STAC mirror and the assets stay in a local data directory (``paths``).

Every commit sends ``NOTIFY shikong_catalog, '<schema> <version>'`` inside its
transaction (delivered when it commits), so servers on other machines watching
:meth:`PostgresCatalogStore.watch_versions` publish a new layer at once instead of
polling. :meth:`PostgresCatalogStore.put_verbatim` stores documents exactly as given
(``shikong migrate`` copies an embedded catalog with it).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Any

import orjson
import psycopg
import shapely
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import set_json_loads
from shapely.geometry.base import BaseGeometry
from shikong.spatial.errors import InputError
from shikong.spatial.temporal import parse_instant

from .bulk_writer import BulkWriter
from .departments import departments
from .extension import Field, ShikongExtension
from .item_filter import POSTGRES, FilterError, search_in_python, to_sql
from .mirror import write_mirror
from .pg_copy import JSONB_VERSION, MAX_POSITION, ewkb, tsvector_binary
from .pg_copy import lexeme as _cut
from .relink import relink_layer
from .storage import DataDir, collector_paused
from .store import CatalogStore, LayerBatch, Query, merge_batches
from .textsearch import index_text, match_terms

LOGGER = logging.getLogger(__name__)
SRID = 4490  # CGCS2000 geographic: every bbox and footprint of the catalog
CHANNEL = "shikong_catalog"  # NOTIFY channel of every schema; the payload names the schema
WATCH_FALLBACK_SECONDS = 2.0  # the version is read anew this often whatever is notified
INDEX_BUILD_MEMORY = "256MB"  # maintenance_work_mem of each index built after a copy
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MAX_POSITION = MAX_POSITION  # tsvector positions stop here (later tokens share it)
_EXPORT_CHUNK = 1000  # items read per query while the mirror is written

# {s} is the schema (checked against _SCHEMA_NAME); "C" collation: code-point order, as
# SQLite compares text. The bbox envelope is generated from the doubles (never disagrees).
# An item's row is what search reads (narrow, so a filter touches few pages); its JSON is
# in item_json. Its tokens are its own; the layer's are its collection's (``tokens``).
_DDL = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.meta (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.collections (
    id text COLLATE "C" PRIMARY KEY, department text COLLATE "C" NOT NULL,
    layer text COLLATE "C" NOT NULL, kind text COLLATE "C" NOT NULL,
    classification text COLLATE "C" NOT NULL, title text,
    changed_version bigint NOT NULL, text text NOT NULL, json jsonb NOT NULL,
    tokens tsvector
);
CREATE INDEX IF NOT EXISTS collections_department ON {s}.collections (department, layer);
CREATE INDEX IF NOT EXISTS collections_changed ON {s}.collections (changed_version);
CREATE TABLE IF NOT EXISTS {s}.items (
    id text COLLATE "C" PRIMARY KEY, collection text COLLATE "C" NOT NULL,
    department text COLLATE "C" NOT NULL, kind text COLLATE "C" NOT NULL,
    classification text COLLATE "C" NOT NULL, version text COLLATE "C" NOT NULL,
    valid_from double precision NOT NULL, valid_to double precision,
    minx double precision, miny double precision, maxx double precision,
    maxy double precision,
    bbox geometry(Polygon, 4490)
        GENERATED ALWAYS AS (ST_MakeEnvelope(minx, miny, maxx, maxy, 4490)) STORED,
    footprint geometry(Geometry, 4490),
    tokens tsvector NOT NULL, source_checksum text COLLATE "C",
    changed_version bigint NOT NULL, props jsonb
);
CREATE TABLE IF NOT EXISTS {s}.item_json (id text COLLATE "C" PRIMARY KEY, json json NOT NULL);
CREATE INDEX IF NOT EXISTS items_collection ON {s}.items (collection, valid_from);
CREATE INDEX IF NOT EXISTS items_department ON {s}.items (department);
CREATE INDEX IF NOT EXISTS items_valid ON {s}.items (valid_from, valid_to);
CREATE INDEX IF NOT EXISTS items_changed ON {s}.items (changed_version);
CREATE INDEX IF NOT EXISTS items_checksum ON {s}.items (collection, source_checksum);
CREATE INDEX IF NOT EXISTS items_bbox ON {s}.items USING gist (bbox);
CREATE INDEX IF NOT EXISTS items_tokens ON {s}.items USING gin (tokens);
"""

# left out of a load into an empty catalog by worker processes (pg_ndjson_load, every
# core busy) and built at the end (finish_copy), two at a time on connections of their
# own: a million items' copy with them took 31.4 s, without them 21.8 s, and building
# them after it 4.6 s (the text index on one connection, the rest on another; measured)
_ITEM_INDEXES = {  # name → its CREATE INDEX statement, as _DDL has it
    line.split()[5]: line.strip()
    for line in _DDL.splitlines()
    if line.startswith("CREATE INDEX") and " ON {s}.items " in line
}
_LOAD_LATER_INDEXES = tuple(_ITEM_INDEXES)
# left out of put_verbatim's copy into an empty catalog (one writer thread: the server
# keeps up with the other indexes row by row while Python makes the next rows, and
# leaving them out too made 200,000 items 17,000 items/s instead of 20,500)
_LATER_INDEXES = ("items_bbox", "items_valid")

_ITEM_COLUMNS = (
    "id, collection, department, kind, classification, version, valid_from, valid_to, "
    "minx, miny, maxx, maxy, footprint, tokens, source_checksum, changed_version, props"
)
# a catalog made before items kept their properties: the column, then its values
_PROPS_UPGRADE = """
ALTER TABLE {s}.items ADD COLUMN props jsonb;
UPDATE {s}.items i SET props = (j.json->'properties')::jsonb FROM {s}.item_json j
WHERE j.id = i.id;
"""
# a catalog made when items carried their layer's tokens (weight B) and their JSON was
# jsonb: the layer's tokens move to its collection (filled by _create_schema), the items
# keep their own
_TOKENS_UPGRADE = """
ALTER TABLE {s}.collections ADD COLUMN tokens tsvector;
UPDATE {s}.items SET tokens = ts_filter(tokens, '{a}');
ALTER TABLE {s}.item_json ALTER COLUMN json TYPE json USING json::json;
"""

# sortby fields of STAC search, as CatalogIndex sorts them (unknown fields are ignored)
SORTABLE = {
    "id": "i.id",
    "collection": "i.collection",
    "datetime": "i.valid_from",
    "start_datetime": "i.valid_from",
    "end_datetime": "i.valid_to",
    "version": "i.version",
    Field.DEPARTMENT: "i.department",
}


def _key(purpose: str, schema: str) -> int:
    """A stable signed 64-bit advisory-lock key for one schema's lock."""
    digest = hashlib.blake2b(f"shikong/{purpose}/{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@functools.lru_cache(maxsize=1 << 16)
def _lexeme(token: str) -> str:
    """A token quoted for a tsvector or tsquery literal (cut to the longest lexeme)."""
    return "'" + _cut(token).replace("\\", "\\\\").replace("'", "''") + "'"


@functools.lru_cache(maxsize=4096)  # a layer's tokens follow every one of its items'
def tsvector_text(tokens: str, weight: str = "D") -> str:
    """``textsearch.index_text`` tokens as a tsvector literal that keeps their positions
    (so a phrase of bigrams matches only consecutive tokens, as in FTS5)."""
    return " ".join(
        f"{_lexeme(token)}:{min(position, _MAX_POSITION)}{weight}"
        for position, token in enumerate(tokens.split(), 1)
    )


def layer_tokens(layer_text: str) -> str:
    """A layer's tokens (its collection's ``tokens``)."""
    return tsvector_text(layer_text, "B")


def item_tokens(own_text: str) -> str:
    """An item's own tokens (weight A)."""
    return tsvector_text(own_text, "A")


def tsquery_text(term: str) -> str:
    """One ``textsearch.match_terms`` clause (``"a b"`` phrase, ``"x"*`` prefix) as a
    tsquery: the phrase's tokens follow each other (``<->``), a prefix is ``:*``."""
    prefix = term.endswith("*")
    tokens = term.removesuffix("*").strip('"').split()
    parts = [_lexeme(t) for t in tokens]
    if prefix and parts:
        parts[-1] += ":*"
    return " <-> ".join(parts)


def _ewkb(geometries: Sequence[BaseGeometry | None]) -> list[str | None]:
    """Hex EWKB with the catalog's SRID (what COPY hands PostGIS), None kept."""
    array = shapely.set_srid(list(geometries), SRID)
    return [
        None if g is None else str(g) for g in shapely.to_wkb(array, hex=True, include_srid=True)
    ]


def _epoch(when: str) -> float:
    """Seconds since 1970 of an RFC 3339 time. ``2021-06-30T08:00:00Z``, the form STAC
    items have, is read here (``parse_instant`` took a fifth of a bulk load's time);
    any other form, or a time that is not one, by ``parse_instant``."""
    if len(when) == 20 and when[10] == "T" and when[13] == when[16] == ":" and when[19] == "Z":
        day = _day_epoch(when[:10])
        hour = _HOURS.get(when[11:13])
        minute = _MINUTES.get(when[14:16])
        second = _SECONDS.get(when[17:19])
        if day is not None and hour is not None and minute is not None and second is not None:
            return float(day + hour + minute + second)
    return _parsed_epoch(when)


_SECONDS = {f"{n:02d}": n for n in range(60)}  # two digits, as seconds
_MINUTES = {text: n * 60 for text, n in _SECONDS.items()}
_HOURS = {text: n * 3600 for text, n in _SECONDS.items() if n < 24}
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_EPOCH_DAY = date(1970, 1, 1)


@functools.lru_cache(maxsize=1 << 12)
def _day_epoch(day: str) -> int | None:
    """Seconds since 1970 at the start of a YYYY-MM-DD day (UTC), None if not one."""
    if not _DAY.fullmatch(day):
        return None
    try:
        return (date.fromisoformat(day) - _EPOCH_DAY).days * 86400
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 14)
def _parsed_epoch(when: str) -> float:
    """``_epoch`` of other forms (a version's end is the next one's start: most times
    are read twice)."""
    return parse_instant(when).timestamp()


def _bounds(bbox: Sequence[float] | None) -> tuple[float | None, ...]:
    """minx, miny, maxx, maxy of a STAC bbox (2D or 3D), or four NULLs."""
    if bbox and len(bbox) == 6:
        return (bbox[0], bbox[1], bbox[3], bbox[4])
    if bbox and len(bbox) == 4:
        return tuple(bbox)
    return (None, None, None, None)


def item_text(item: dict[str, Any]) -> str:
    """An item's search tokens: its id and title (as the SQLite index has them)."""
    return index_text(f"{item['id']} {item['properties'].get('title') or ''}")


def collection_text(collection: dict[str, Any]) -> str:
    """A layer's search tokens (its items are found by them too): titles, description,
    keywords and its department's code and name, as the SQLite index has them."""
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


def copy_item_rows(
    db: psycopg.Connection[Any],
    schema: str,
    rows: Iterable[tuple[Any, ...]],
    documents: Iterable[tuple[str, bytes]],
) -> None:
    """Items rows (:func:`item_row`) and their JSON documents (id, JSON text) into a
    schema by binary ``COPY``, in the caller's transaction. Given iterators, each row is
    made as it is written, so the server stores the first rows while Python makes the
    next."""
    binary = "FROM STDIN (FORMAT binary)"
    for sql, types, values in (
        (f"COPY {schema}.items ({_ITEM_COLUMNS}) {binary}", _ITEM_TYPES, rows),
        (f"COPY {schema}.item_json (id, json) {binary}", _JSON_TYPES, documents),
    ):
        with db.cursor().copy(sql) as copy:
            copy.set_types(types)
            for value in values:
                copy.write_row(value)


def item_row(item: dict[str, Any], version: int, dsn: str) -> tuple[Any, ...]:
    """An item's row of items (``_ITEM_COLUMNS``) in ``_ITEM_TYPES``. The footprint is the
    item's geometry (SQLite leaves out one that is just its bbox: the same shape)."""
    props = item["properties"]
    to = props.get(Field.VALID_TO)
    return (
        item["id"],
        item["collection"],
        props[Field.DEPARTMENT],
        props[Field.KIND],
        props[Field.CLASSIFICATION],
        props["version"],
        _epoch(props[Field.VALID_FROM]),
        _epoch(to) if to else None,
        *_bounds(item.get("bbox")),
        ewkb(item.get("geometry"), SRID),
        item_tokens_binary(item_text(item), dsn),
        (props.get(Field.SOURCE) or {}).get("checksum"),
        version,
        JSONB_VERSION + orjson.dumps(props),
    )


def item_tokens_binary(own_text: str, dsn: str) -> bytes:
    """``item_tokens(own_text)`` in binary; past the last position (where tokens share
    it) the server's own conversion of the literal, on a connection of its own (the
    caller's may be in the middle of a COPY)."""
    data = tsvector_binary(own_text)
    if data is None:
        with psycopg.connect(dsn, autocommit=True) as db:
            row = db.execute(
                "SELECT tsvectorsend(%s::tsvector)", (item_tokens(own_text),)
            ).fetchone()
        assert row is not None
        data = bytes(row[0])
    return data


# psycopg's binary dumpers by column; "bytea" hands over bytes already in the column's
# binary form (jsonb: version 1 and the text; geometry: EWKB; tsvector: tsvectorsend's)
_JSON_TYPES = ["text", "bytea"]
_ITEM_TYPES = ["text"] * 6 + ["float8"] * 6 + ["bytea", "bytea", "text", "int8", "bytea"]


class _Connections:
    """One autocommit connection per thread: a commit's transaction on one connection is
    never seen half-done by readers in other threads."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._local = threading.local()
        self._all: list[psycopg.Connection[Any]] = []
        self._guard = threading.Lock()

    def open(self) -> psycopg.Connection[Any]:
        db = psycopg.connect(self._dsn, autocommit=True)
        set_json_loads(orjson.loads, db)
        return db

    def get(self) -> psycopg.Connection[Any]:
        db = getattr(self._local, "db", None)
        if db is None or db.closed:
            db = self.open()
            self._local.db = db
            with self._guard:
                self._all.append(db)
        return db

    def close(self) -> None:
        with self._guard:
            for db in self._all:
                db.close()
            self._all.clear()


class PostgresCatalogStore(CatalogStore):
    """The catalog in schema ``schema`` of a PostgreSQL database with PostGIS; the STAC
    mirror and the assets under ``paths`` (see the module docstring)."""

    def __init__(self, dsn: str, paths: DataDir, schema: str = "shikong") -> None:
        if not _SCHEMA_NAME.match(schema) or schema.startswith("pg_"):
            raise ValueError(
                f"schema name {schema!r}: lower-case letters, digits and _, not starting pg_"
            )
        self.dsn = dsn
        self.paths = paths
        self.schema = schema
        self._connections = _Connections(dsn)
        self._lock = threading.RLock()
        self._writing = 0
        self._lock_db: psycopg.Connection[Any] | None = None
        self._write_key = _key("writer", schema)
        self._ensured: set[str] = set()  # tables of modules beside the catalog, made
        self._replacing = False  # put_verbatim deletes rows of its ids first (see there)
        self._copying = False  # put_verbatim has looked whether the catalog was empty
        self._copies: BulkWriter[Any] | None = None  # put_verbatim_later's
        paths.root.mkdir(parents=True, exist_ok=True)
        self._create_schema()

    def __repr__(self) -> str:
        where = conninfo_to_dict(self.dsn)
        shown = " ".join(f"{k}={where[k]}" for k in ("host", "port", "dbname") if k in where)
        return f"PostgresCatalogStore({shown!r}, schema={self.schema!r})"

    def _sql(self, text: str) -> str:
        return text.replace("{s}", self.schema)

    def sql(self, text: str) -> str:
        """SQL naming ``{s}`` for this store's schema (for modules keeping tables in it)."""
        return self._sql(text)

    def ensure_tables(self, ddl: str) -> None:
        """Run a module's ``CREATE … IF NOT EXISTS`` DDL (``{s}``: the schema) once per
        process, under the schema lock, so nodes starting together take turns."""
        with self._lock:
            if ddl in self._ensured:
                return
            db = self._db()
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_key("schema", self.schema),))
                db.execute(self._sql(ddl))
            self._ensured.add(ddl)

    def _create_schema(self) -> None:
        """Tables and indexes if absent; processes opening a new database take turns. An
        older catalog is brought up to date once: items get their properties (``props``,
        what CQL2 filters read) from their JSON; the layers' tokens move from the items to
        the collections, and the items' JSON becomes ``json`` (a rewrite of both tables:
        a minute or so a million items)."""
        db = self._db()
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_key("schema", self.schema),))
            if self._lacks_column("items", "props"):
                db.execute(self._sql(_PROPS_UPGRADE))
            if self._lacks_column("collections", "tokens"):
                LOGGER.info("catalog %s: moving the layers' tokens to their collections", self)
                db.execute(self._sql(_TOKENS_UPGRADE))
                texts = db.execute(self._sql("SELECT id, text FROM {s}.collections")).fetchall()
                db.cursor().executemany(
                    self._sql("UPDATE {s}.collections SET tokens = %s::tsvector WHERE id = %s"),
                    [(layer_tokens(text), cid) for cid, text in texts],
                )
            db.execute(self._sql(_DDL))

    def _lacks_column(self, table: str, column: str) -> bool:
        """This schema's ``table`` exists without ``column`` (an older catalog's; a table
        that does not exist yet is made as it is today, by _DDL)."""
        row = (
            self._db()
            .execute(
                "SELECT bool_or(column_name = %s) FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                (column, self.schema, table),
            )
            .fetchone()
        )
        return row is not None and row[0] is False

    def _db(self) -> psycopg.Connection[Any]:
        return self._connections.get()

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db().execute(self._sql(sql), args).fetchall()

    def _one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        return self._db().execute(self._sql(sql), args).fetchone()

    # -- reading -----------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM {s}.meta WHERE key=%s", (key,))
        return row[0] if row else None

    def version(self) -> int:
        return int(self._meta("version") or 0)

    def exported_version(self) -> int:
        return int(self._meta("exported_version") or 0)

    def collection(self, collection_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT json FROM {s}.collections WHERE id=%s", (collection_id,))
        return row[0] if row else None

    def collections(
        self, department: str | None = None, changed_since: int | None = None
    ) -> list[dict[str, Any]]:
        sql, args = "SELECT json FROM {s}.collections WHERE true", []
        if department is not None:
            sql, args = sql + " AND department=%s", [*args, department]
        if changed_since is not None:
            sql, args = sql + " AND changed_version>%s", [*args, changed_since]
        return [r[0] for r in self._rows(sql + " ORDER BY id", args)]

    def collections_by_id(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        rows = self._rows("SELECT id, json FROM {s}.collections WHERE id = ANY(%s)", (list(ids),))
        return dict(rows)

    def departments(self) -> list[str]:
        rows = self._rows("SELECT DISTINCT department FROM {s}.collections ORDER BY department")
        return [r[0] for r in rows]

    def layer_names(self, department: str) -> list[str]:
        sql = "SELECT layer FROM {s}.collections WHERE department=%s ORDER BY layer"
        return [r[0] for r in self._rows(sql, (department,))]

    def changed_departments(self, version: int) -> list[str]:
        sql = (
            "SELECT DISTINCT department FROM {s}.collections WHERE changed_version>%s "
            "ORDER BY department"
        )
        return [r[0] for r in self._rows(sql, (version,))]

    def item(self, item_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT json FROM {s}.item_json WHERE id=%s", (item_id,))
        return row[0] if row else None

    def items_of(self, collection_id: str) -> list[dict[str, Any]]:
        sql = (
            "SELECT j.json FROM {s}.items i JOIN {s}.item_json j ON j.id = i.id "
            "WHERE i.collection=%s ORDER BY i.valid_from, i.id"
        )
        return [r[0] for r in self._rows(sql, (collection_id,))]

    def item_at(self, collection_id: str, when: datetime) -> dict[str, Any] | None:
        t = when.timestamp()
        row = self._one(
            "SELECT j.json FROM {s}.items i JOIN {s}.item_json j ON j.id = i.id "
            "WHERE i.collection=%s AND i.valid_from<=%s AND (i.valid_to IS NULL OR i.valid_to>%s) "
            "ORDER BY i.valid_from DESC, i.id DESC LIMIT 1",
            (collection_id, t, t),
        )
        return row[0] if row else None

    def find_checksum(self, collection_id: str, checksum: str) -> dict[str, Any] | None:
        row = self._one(
            "SELECT j.json FROM {s}.items i JOIN {s}.item_json j ON j.id = i.id "
            "WHERE i.collection=%s AND i.source_checksum=%s ORDER BY i.valid_from, i.id LIMIT 1",
            (collection_id, checksum),
        )
        return row[0] if row else None

    def items_changed_since(self, version: int) -> Iterator[tuple[str, str, str, bytes]]:
        """In pages by id: no cursor stays open while the caller writes files."""
        after = ""
        while True:
            rows = self._rows(
                "SELECT i.department, c.layer, i.id, j.json::text FROM {s}.items i "
                "JOIN {s}.collections c ON c.id = i.collection "
                "JOIN {s}.item_json j ON j.id = i.id "
                "WHERE i.changed_version>%s AND i.id>%s ORDER BY i.id LIMIT %s",
                (version, after, _EXPORT_CHUNK),
            )
            yield from ((d, layer, i, text.encode()) for d, layer, i, text in rows)
            if len(rows) < _EXPORT_CHUNK:
                return
            after = rows[-1][2]

    def search(self, query: Query) -> tuple[list[dict[str, Any]], int]:
        """Items matching a query, and how many matched in all (as ``CatalogIndex.search``:
        bbox overlap on the stored bbox, intersects on the footprint or else the bbox,
        validity overlap, every text term in the item's or its layer's tokens; a CQL2
        filter in SQL over the item's properties where :mod:`.item_filter` can translate
        it)."""
        source = "{s}.items i"
        where, args = self._where(query)
        if query.filter is not None:
            translated = to_sql(query.filter, POSTGRES)
            if translated is None:
                return search_in_python(self.search, query)
            where = f"{where} AND {translated[0]}"
            args = [*args, *translated[1]]
        order = [
            f"{SORTABLE[f]} {'ASC NULLS FIRST' if asc else 'DESC NULLS LAST'}"
            for f, asc in query.sortby
            if f in SORTABLE
        ] or ["i.collection ASC", "i.valid_from ASC"]
        order.append("i.id ASC")
        by = ", ".join(order)
        # a text search counts apart: a common word matches a tenth of a million items,
        # and counted in the page's statement every match is visited in the page's order
        # (the LIMIT's cheap plan: 3.2 s measured); apart, the page stops at its last
        # item and the count reads the text index's bitmap (0.3 s)
        together = not (query.text and query.limit)
        total = "count(*) OVER () AS total, " if together else ""
        try:
            rows = self._rows(
                f"SELECT j.json{', p.total' if together else ''} FROM (SELECT i.id, {total}"
                f"row_number() OVER (ORDER BY {by}) AS n FROM {source} WHERE {where} "
                f"ORDER BY {by} LIMIT %s OFFSET %s) p JOIN {{s}}.item_json j ON j.id = p.id "
                "ORDER BY p.n",
                [*args, query.limit, query.offset],
            )
            found = [r[0] for r in rows]
            if together and rows:
                return found, rows[0][1]
            if not rows and query.offset == 0 and query.limit != 0:  # nothing matched
                return [], 0
            counted = self._one(f"SELECT count(*) FROM {source} WHERE {where}", args)
        except psycopg.errors.DataException as exc:  # a stored value the filter cannot read
            raise FilterError(f"cannot be evaluated: {exc}") from exc
        return found, counted[0] if counted else 0

    def _where(self, query: Query) -> tuple[str, list[Any]]:
        where, args = ["true"], []
        box = query.bbox
        if query.intersects is not None:
            box = shapely.bounds(query.intersects).tolist()
        if box is not None:  # the index finds candidates; the doubles decide
            where.append(
                f"i.bbox && ST_MakeEnvelope(%s, %s, %s, %s, {SRID}) "
                "AND i.maxx >= %s AND i.minx <= %s AND i.maxy >= %s AND i.miny <= %s"
            )
            args += [box[0], box[1], box[2], box[3], box[0], box[2], box[1], box[3]]
        if query.intersects is not None:
            where.append("ST_Intersects(%s::geometry, COALESCE(i.footprint, i.bbox))")
            args.append(_ewkb([query.intersects])[0])
        if query.start is not None:
            where.append("(i.valid_to IS NULL OR i.valid_to > %s)")
            args.append(query.start)
        if query.end is not None:
            where.append("i.valid_from <= %s")
            args.append(query.end)
        for column, values in (
            ("collection", query.collections),
            ("id", query.ids),
            ("department", query.departments),
            ("kind", query.kinds),
            ("classification", query.classifications),
        ):
            if values is not None:
                where.append(f"i.{column} = ANY(%s)")
                args.append(list(values))
        if query.current_only:
            where.append("i.valid_to IS NULL")
        terms = [tsquery_text(t) for t in match_terms(query.text or "")]
        if terms:  # every term, in the item's own tokens or its layer's
            layers = self._layers_matching(terms)
            own = [t for t in terms if not layers.get(t)]
            if own:  # one tsquery: one GIN search
                where.append("i.tokens @@ %s::tsquery")
                args.append(" & ".join(f"({t})" for t in own))
            for term in terms:
                if layers.get(term):
                    where.append("(i.tokens @@ %s::tsquery OR i.collection = ANY(%s))")
                    args += [term, layers[term]]
        return " AND ".join(where), args

    def _layers_matching(self, terms: list[str]) -> dict[str, list[str]]:
        """The collections whose own tokens match each tsquery term (one statement)."""
        rows = self._rows(
            "SELECT t.term, c.id FROM unnest(%s::text[]) AS t(term) "
            "JOIN {s}.collections c ON c.tokens @@ t.term::tsquery ORDER BY c.id",
            (terms,),
        )
        found: dict[str, list[str]] = {}
        for term, cid in rows:
            found.setdefault(term, []).append(cid)
        return found

    def item_during(
        self, collection_id: str, start: float | None, end: float | None
    ) -> dict[str, Any] | None:
        where, args = ["i.collection=%s"], [collection_id]
        if end is not None:  # a bound only when given: the (collection, valid_from) index
            where, args = [*where, "i.valid_from<=%s"], [*args, end]
        if start is not None:
            where, args = [*where, "(i.valid_to IS NULL OR i.valid_to>%s)"], [*args, start]
        row = self._one(
            "SELECT j.json FROM {s}.items i JOIN {s}.item_json j ON j.id = i.id "
            f"WHERE {' AND '.join(where)} ORDER BY i.valid_from DESC, i.id DESC LIMIT 1",
            args,
        )
        return row[0] if row else None

    def collection_heads(self, changed_since: int | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT json - 'links' - 'summaries' FROM {s}.collections", []
        if changed_since is not None:
            sql, args = sql + " WHERE changed_version>%s", [changed_since]
        return [r[0] for r in self._rows(sql + " ORDER BY id", args)]

    def versions_of(self, collection_id: str) -> list[tuple[str, str, float, float | None]]:
        sql = (
            "SELECT id, version, valid_from, valid_to FROM {s}.items WHERE collection=%s "
            "ORDER BY valid_from, id"
        )
        return self._rows(sql, (collection_id,))

    def close(self) -> None:
        self.wait_copies()
        self._connections.close()
        if self._lock_db is not None and self._writing == 0:
            self._lock_db.close()
            self._lock_db = None

    # -- writing -----------------------------------------------------------------------
    def _take_lock(self) -> None:
        """Wait for the advisory lock on a connection of its own (a session lock: it is
        let go when this process or its connection dies)."""
        if self._lock_db is None or self._lock_db.closed:
            self._lock_db = psycopg.connect(self.dsn, autocommit=True)
        self._lock_db.execute("SELECT pg_advisory_lock(%s)", (self._write_key,))

    def _let_go(self) -> None:
        db = self._lock_db
        if db is None:
            return
        try:
            db.execute("SELECT pg_advisory_unlock(%s)", (self._write_key,))
        except psycopg.Error:  # the connection is gone, and the lock with it
            db.close()
            self._lock_db = None

    def commit(self, batches: Sequence[LayerBatch], export: bool = True) -> int:
        layers = merge_batches(batches)
        with collector_paused(), self.writing(export=export):
            db = self._db()
            with db.transaction():
                version = self._bump_version(db)
                self._notify(db, version)  # delivered to listeners when this commits
                ids = [b.target.collection_id for b in layers]
                known = self.collections_by_id(ids)  # read in the transaction, before writes
                existing = {cid: self.items_of(cid) for cid in known}
                rows: list[dict[str, Any]] = []
                docs: list[dict[str, Any]] = []
                for batch in layers:
                    cid = batch.target.collection_id
                    collection, changed = relink_layer(
                        batch, known.get(cid, {}), existing.get(cid, [])
                    )
                    rows += changed
                    docs.append(collection)
                self._put_items(db, rows, version)
                self._put_collections(db, docs, version)
        return version

    def _bump_version(self, db: psycopg.Connection[Any]) -> int:
        row = db.execute(
            self._sql(
                "INSERT INTO {s}.meta VALUES ('version', '1') ON CONFLICT (key) DO UPDATE "
                "SET value = (meta.value::bigint + 1)::text RETURNING value"
            )
        ).fetchone()
        assert row is not None
        return int(row[0])

    def _notify(self, db: psycopg.Connection[Any], version: int) -> None:
        db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{self.schema} {version}"))

    def watch_versions(
        self, stop: threading.Event, fallback: float = WATCH_FALLBACK_SECONDS
    ) -> Iterator[int]:
        """The catalog version whenever it may have moved, until ``stop`` is set: at once
        on a commit's NOTIFY (from any process on this database), and every ``fallback``
        seconds and after each (re)connection read anew, so a lost notification or a
        dropped connection delays a change by at most that long."""
        while not stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as db:
                    db.execute(f"LISTEN {CHANNEL}")
                    yield self.version()  # what was committed before we listened
                    while not stop.is_set():
                        versions = [
                            int(version)
                            for note in db.notifies(timeout=fallback, stop_after=1)
                            for schema, _, version in [note.payload.partition(" ")]
                            if schema == self.schema
                        ]
                        yield max(versions) if versions else self.version()
            except psycopg.Error as exc:  # the database went away: retry, keep serving
                LOGGER.warning("catalog watch of %r: %s; retrying", self, type(exc).__name__)
                stop.wait(fallback)

    def _set_meta(self, db: psycopg.Connection[Any], key: str, value: object) -> None:
        db.execute(
            self._sql(
                "INSERT INTO {s}.meta VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            (key, str(value)),
        )

    def _put_items(
        self, db: psycopg.Connection[Any], rows: list[dict[str, Any]], version: int
    ) -> None:
        """Replace rows of the same ids, then COPY the items in."""
        self._copy_items(db, rows, version, replace=True)

    def _copy_items(
        self,
        db: psycopg.Connection[Any],
        rows: Sequence[dict[str, Any]],
        version: int,
        replace: bool,
    ) -> None:
        """COPY items in (:func:`copy_item_rows`), deleting rows of the same ids first if
        ``replace``."""
        if not rows:
            return
        if replace:
            ids = [item["id"] for item in rows]
            db.execute(self._sql("DELETE FROM {s}.items WHERE id = ANY(%s)"), (ids,))
            db.execute(self._sql("DELETE FROM {s}.item_json WHERE id = ANY(%s)"), (ids,))
        copy_item_rows(
            db,
            self.schema,
            (item_row(item, version, self.dsn) for item in rows),
            ((item["id"], orjson.dumps(item)) for item in rows),
        )

    def _put_collections(
        self, db: psycopg.Connection[Any], docs: list[dict[str, Any]], version: int
    ) -> None:
        values = []
        for c in docs:
            text = collection_text(c)
            shikong = ShikongExtension.ext(c)
            values.append(
                (
                    c["id"],
                    shikong.department,
                    shikong.layer,
                    shikong.kind,
                    shikong.classification,
                    c.get("title"),
                    version,
                    text,
                    orjson.dumps(c).decode(),
                    layer_tokens(text),
                )
            )
        with db.cursor() as cur:
            cur.executemany(
                self._sql(
                    "INSERT INTO {s}.collections VALUES (%s, %s, %s, %s, %s, %s, %s, "
                    "%s, %s::jsonb, %s::tsvector) ON CONFLICT (id) DO UPDATE SET "
                    "department=EXCLUDED.department, layer=EXCLUDED.layer, "
                    "kind=EXCLUDED.kind, classification=EXCLUDED.classification, "
                    "title=EXCLUDED.title, changed_version=EXCLUDED.changed_version, "
                    "text=EXCLUDED.text, json=EXCLUDED.json, tokens=EXCLUDED.tokens"
                ),
                values,
            )

    # -- copying a catalog in (shikong migrate) -----------------------------------------
    def put_verbatim(
        self, collection: dict[str, Any], items: Sequence[dict[str, Any]], version: int
    ) -> None:
        """Store a layer's collection document and items exactly as given, in one
        transaction: no relinking, no version bump (the copy of another store's catalog;
        :meth:`finish_copy` sets the version once everything is in). Items of the same
        ids are replaced, so a copy that stopped half-way can run again. Their rows go in
        without deleting rows of their ids first until some are found there (the primary
        keys refuse them and the batch is written again, replacing them, as is every
        later one): a first copy into an empty schema never looks for them. A copy into
        an empty catalog leaves out the indexes ``_LATER_INDEXES`` name until
        :meth:`finish_copy` (built at once, not row by row; a copy that stops half-way
        has them again when the store is next opened)."""
        self.wait_copies()  # in the order given
        with collector_paused():
            self._put_verbatim((collection, items, version))

    def _put_verbatim(self, job: tuple[dict[str, Any], Sequence[dict[str, Any]], int]) -> None:
        collection, items, version = job
        with self.writing(export=False):
            db = self._db()
            try:
                with db.transaction():
                    if not self._copying:
                        self._copying = True
                        empty = db.execute(self._sql("SELECT NOT EXISTS (TABLE {s}.items)"))
                        if empty.fetchone() == (True,):
                            self._drop_indexes(db, _LATER_INDEXES)
                    self._put_collections(db, [collection], version)
                    self._copy_items(db, items, version, replace=self._replacing)
            except psycopg.errors.UniqueViolation:
                if self._replacing:
                    raise
                self._replacing = True  # a copy that stopped half-way is running again
                self._put_verbatim(job)

    def begin_empty_copy(self, collections: list[dict[str, Any]], version: int) -> set[str]:
        """Ready a catalog that holds no items for a load by other connections: the
        collections in, the indexes built at the end (``_LOAD_LATER_INDEXES``) dropped;
        the ids of the collections it added. Inside :meth:`writing`. :class:`InputError`
        if it holds items."""
        db = self._db()
        with db.transaction():
            held = db.execute(self._sql("SELECT EXISTS (TABLE {s}.items)")).fetchone()
            if held == (True,):
                raise InputError(
                    str(self),
                    "holds items already: a load fills an empty catalog (new versions of a "
                    "layer go in by `shikong ingest`)",
                )
            before = db.execute(self._sql("SELECT id FROM {s}.collections")).fetchall()
            self._put_collections(db, collections, version)
            self._drop_indexes(db, _LOAD_LATER_INDEXES)
        self._copying = True
        return {c["id"] for c in collections} - {r[0] for r in before}

    def _drop_indexes(self, db: psycopg.Connection[Any], names: Sequence[str]) -> None:
        db.execute(f"DROP INDEX IF EXISTS {', '.join(f'{self.schema}.{n}' for n in names)}")

    def _build_later_indexes(self, connections: int = 2) -> None:
        """The indexes a copy left out (``_LOAD_LATER_INDEXES``; those there are skipped),
        built on ``connections`` connections of their own at once, the text index (the
        longest) first: the server builds one on each core."""
        statements = [self._sql(_ITEM_INDEXES[name]) for name in _LOAD_LATER_INDEXES]

        def build(sql: str) -> None:
            with psycopg.connect(self.dsn, autocommit=True) as db:
                db.execute(f"SET maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
                db.execute(sql)

        with ThreadPoolExecutor(connections) as pool:
            list(pool.map(build, sorted(statements, key=lambda sql: "gin" not in sql)))

    def undo_empty_copy(self, added: set[str]) -> None:
        """A failed load undone: no items, the collections it ``added`` gone, every index
        back."""
        db = self._db()
        with db.transaction():
            db.execute(self._sql("TRUNCATE {s}.items, {s}.item_json"))
            db.execute(
                self._sql("DELETE FROM {s}.collections WHERE id = ANY(%s)"),
                (sorted(added),),
            )
        self._copying = False
        self._create_schema()

    def put_verbatim_later(
        self,
        collection: dict[str, Any],
        items: Sequence[dict[str, Any]],
        version: int,
        done: Callable[[], None] | None = None,
    ) -> None:
        """:meth:`put_verbatim` behind the caller's back (:mod:`.bulk_writer`), on a
        thread of its own while the caller goes on (reading its next batch); ``done()``
        once written. What fails is raised by a later call, by :meth:`wait_copies` or by
        :meth:`finish_copy`; :meth:`close` waits too. A thread inside :meth:`writing`
        (which the writer needs) writes at once instead."""
        if self._holding():
            self.put_verbatim(collection, items, version)
            if done is not None:
                done()
            return
        if self._copies is None:
            self._copies = BulkWriter(self._put_quietly, lambda: self.writing(export=False))
        self._copies.put((collection, items, version), done)

    def _put_quietly(self, job: tuple[dict[str, Any], Sequence[dict[str, Any]], int]) -> None:
        """A batch of :meth:`put_verbatim_later` with the cyclic garbage collector held off
        (``collector_paused``, as every bulk write here: the rows are acyclic, reference
        counting frees them). It is the process's collector: the caller's thread, reading
        on meanwhile, is spared its full collections too."""
        with collector_paused():
            self._put_verbatim(job)

    def wait_copies(self) -> None:
        """Wait until what :meth:`put_verbatim_later` was given is written; raise what
        failed. Not inside :meth:`writing`: the writer could never have the lock."""
        if self._copies is None:
            return
        if self._holding():
            raise RuntimeError("copies waited for inside writing(): they need its lock")
        copies, self._copies = self._copies, None
        copies.finish()

    def _holding(self) -> bool:
        """Whether this thread is inside :meth:`writing` (re-entrant lock: a thread that
        holds it takes it again at once; one that does not, only when nobody holds it)."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            return self._writing > 0
        finally:
            self._lock.release()

    def finish_copy(self, version: int, exported_version: int, source: str) -> None:
        """The copy is whole: its indexes all there (see :meth:`put_verbatim`), the
        catalog version (and the mirror's) as the source had them, and where it came
        from; listeners are told."""
        self.wait_copies()
        with self.writing(export=False):
            self._build_later_indexes()
            self._create_schema()
            self._copying = False
            db = self._db()
            with db.transaction():
                self._set_meta(db, "version", version)
                self._set_meta(db, "exported_version", exported_version)
                self._set_meta(db, "copied_from", source)
                self._notify(db, version)

    def copied_from(self) -> str | None:
        """The source a finished copy came from (see :meth:`finish_copy`), or None."""
        return self._meta("copied_from")

    def optimize(self) -> None:
        """Rewrite the items in the order of their bbox index (``CLUSTER``), then
        ``ANALYZE``: a bbox search then reads a few pages of neighbours, not one page per
        match (rows land in commit order, scattered over the city). Locks the items
        against reads while it runs (minutes for millions of items): for a bulk load or
        a maintenance window (``shikong catalog optimize``); later commits append."""
        with self.writing(export=False):
            db = self._db()
            db.execute(self._sql("CLUSTER {s}.items USING items_bbox"))
            db.execute(self._sql("ANALYZE {s}.items"))
            db.execute(self._sql("ANALYZE {s}.item_json"))

    def counts(self) -> tuple[int, int]:
        """How many collections and items are stored."""
        row = self._one(
            "SELECT (SELECT count(*) FROM {s}.collections), (SELECT count(*) FROM {s}.items)"
        )
        assert row is not None
        return int(row[0]), int(row[1])

    def _export_held(self) -> None:
        done = self.exported_version()
        current = self.version()
        if current <= done:
            return
        write_mirror(self, done, current)
        db = self._db()
        with db.transaction():
            self._set_meta(db, "exported_version", current)
