"""Reads of public layers, counted per layer and UTC day (for ``/stats``).

Public reads are not audited (the audit log records who read shared and restricted
data, and every refusal): a line per public tile would swamp it. Usage statistics still
need them, so the gate hands each answered request that touched a layer and was not
audited to :meth:`PublicReads.add`: requests, features and bytes per (layer, day), kept
in memory and added to a small table every few seconds (and before ``/stats`` reads it):
``<data>/audit/public_reads.sqlite``, or the catalog's PostgreSQL database when it has
one (every node adding to the same rows). A process killed between two flushes loses at
most those seconds of counts; nothing else depends on them.
"""

from __future__ import annotations

import atexit
import contextlib
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shikong.catalog.storage import DataDir

FLUSH_SECONDS = 5.0
FIGURES = ("requests", "features", "bytes")
_SQLITE_UPSERT = (
    "INSERT INTO public_reads VALUES (?, ?, ?, ?, ?) ON CONFLICT (layer, day) DO UPDATE SET "
    "requests = requests + excluded.requests, features = features + excluded.features, "
    "bytes = bytes + excluded.bytes"
)
_PG_DDL = (
    "CREATE TABLE IF NOT EXISTS {s}.public_reads (layer text NOT NULL, day text NOT NULL, "
    "requests bigint NOT NULL, features bigint NOT NULL, bytes bigint NOT NULL, "
    "PRIMARY KEY (layer, day))"
)
_PG_UPSERT = (
    "INSERT INTO {s}.public_reads AS r VALUES (%s, %s, %s, %s, %s) ON CONFLICT (layer, day) "
    "DO UPDATE SET requests = r.requests + excluded.requests, "
    "features = r.features + excluded.features, bytes = r.bytes + excluded.bytes"
)


class PublicReads:
    """Counts of one server process, flushed to the data directory's table."""

    def __init__(self, data_dir: str | Path) -> None:
        from shikong.catalog.stores import configured_store

        self.path = DataDir(Path(data_dir)).root / "audit" / "public_reads.sqlite"
        self._pending: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._store = configured_store(data_dir)
        self._timer: threading.Timer | None = None
        atexit.register(self._at_exit)  # a normal exit keeps the last seconds' counts
        if self._store is not None:
            self._store.ensure_tables(_PG_DDL)

    def add(self, layers: list[str], features: int, sent: int) -> None:
        """One answered, unaudited request that touched ``layers``."""
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        with self._lock:
            for layer in layers:
                self._pending[(layer, day, "requests")] += 1
                self._pending[(layer, day, "features")] += features
                self._pending[(layer, day, "bytes")] += sent
            if self._timer is None:
                self._timer = threading.Timer(FLUSH_SECONDS, self._flush_later)
                self._timer.daemon = True
                self._timer.start()

    def _at_exit(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        with contextlib.suppress(Exception):  # nothing to report to at exit
            self.flush()

    def _flush_later(self) -> None:
        with self._lock:
            self._timer = None
        self.flush()

    def flush(self) -> None:
        """Add the pending counts to the table (kept pending if that fails)."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, Counter()
            if not pending:
                return
            rows: dict[tuple[str, str], list[int]] = {}
            for (layer, day, figure), n in pending.items():
                rows.setdefault((layer, day), [0, 0, 0])[FIGURES.index(figure)] += n
            values = [(layer, day, *counts) for (layer, day), counts in rows.items()]
            try:
                self._write(values)
            except Exception:
                with self._lock:
                    self._pending.update(pending)
                raise

    def _write(self, values: list[tuple[Any, ...]]) -> None:
        if self._store is not None:
            db = self._store._db()
            with db.transaction(), db.cursor() as cur:
                cur.executemany(_PG_UPSERT.replace("{s}", self._store.schema), values)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = _connect(self.path)
        try:
            with db:
                db.executemany(_SQLITE_UPSERT, values)
        finally:
            db.close()

    def rows(self, first_day: str | None, last_day: str | None) -> list[dict[str, Any]]:
        """Stored rows (layer, day, figures), days within [first_day, last_day]."""
        self.flush()
        return read_rows(self.path, self._store, first_day, last_day)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30)
    db.execute(
        "CREATE TABLE IF NOT EXISTS public_reads (layer TEXT NOT NULL, day TEXT NOT NULL, "
        "requests INTEGER NOT NULL, features INTEGER NOT NULL, bytes INTEGER NOT NULL, "
        "PRIMARY KEY (layer, day))"
    )
    return db


def read_rows(
    path: Path, store: Any, first_day: str | None, last_day: str | None
) -> list[dict[str, Any]]:
    """The stored counts (``store``: a PostgreSQL catalog store, else the SQLite file)."""
    sql = "SELECT layer, day, requests, features, bytes FROM {t} WHERE day >= {p} AND day <= {p}"
    args = (first_day or "0000-00-00", last_day or "9999-99-99")
    if store is not None:
        found = (
            store._db()
            .execute(sql.format(t=f"{store.schema}.public_reads", p="%s"), args)
            .fetchall()
        )
    elif path.exists():
        db = _connect(path)
        try:
            found = db.execute(sql.format(t="public_reads", p="?"), args).fetchall()
        finally:
            db.close()
    else:
        found = []
    return [dict(zip(("collection", "day", *FIGURES), row, strict=True)) for row in found]


def stored_rows(data_dir: str | Path) -> Callable[[str | None, str | None], list[dict]]:
    """What the CLI reads: the counts flushed so far (a running server's last seconds
    may still be pending in it)."""
    from shikong.catalog.stores import configured_store

    path = DataDir(Path(data_dir)).root / "audit" / "public_reads.sqlite"
    store = configured_store(data_dir)
    if store is not None:
        PublicReads(data_dir)  # the table, if no server made it yet
    return lambda first, last: read_rows(path, store, first, last)
