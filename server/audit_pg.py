"""The audit chain in PostgreSQL, beside a PostgreSQL catalog (issue 21): one chain for
every node of a cloud deployment.

The same entries and hashes as the file chain (:mod:`audit`): each row holds one entry's
JSON line exactly as the file would, in ``<schema>.audit_log`` ordered by ``seq``; the
head (entry count and last hash) is a row of ``<schema>.meta`` written in the same
transaction. Appends from any node are serialised by a transaction-scoped advisory lock,
so the chain never forks; verify and query read one consistent snapshot (repeatable
read), so appends landing meanwhile are neither a false alarm nor a blind spot. The key
of process-input digests is kept in the database too, so every node digests alike.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from shikong.catalog.postgres_store import PostgresCatalogStore

GENESIS = "0" * 64
HEAD_KEY = "audit_head"
DIGEST_KEY = "audit_digest_key"
_DDL = """
CREATE TABLE IF NOT EXISTS {s}.audit_log (seq bigint PRIMARY KEY, line bytea NOT NULL);
"""


class PostgresAuditChain:
    """The audit log of a data directory whose catalog is in PostgreSQL."""

    def __init__(self, store: PostgresCatalogStore) -> None:
        self._store = store
        store.ensure_tables(_DDL)
        self._digest_key: bytes | None = None

    def _sql(self, text: str) -> str:
        return self._store.sql(text)

    def _lock_key(self) -> int:
        from shikong.catalog.postgres_store import _key

        return _key("audit", self._store.schema)

    def append(
        self,
        entries: list[dict[str, Any]],
        chain: Callable[[str, dict[str, Any]], str],
    ) -> None:
        """Chain ``entries`` after the head and write them, under the chain's lock.

        ``chain(prev, entry)`` sets the entry's ``prev`` and ``hash`` and returns the hash.
        """
        db = self._store._db()
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key(),))
            head = self._head(db)
            prev = str(head.get("hash") or GENESIS) if head else GENESIS
            count = int(head.get("entries", 0)) if head else 0
            rows = []
            for n, entry in enumerate(entries, start=count + 1):
                prev = chain(prev, entry)
                rows.append((n, orjson.dumps(entry)))
            with db.cursor() as cur:
                cur.executemany(
                    self._sql("INSERT INTO {s}.audit_log (seq, line) VALUES (%s, %s)"), rows
                )
            last = entries[-1]
            self._set_head(db, count + len(entries), prev, str(last.get("time", "")))

    def _head(self, db: Any) -> dict[str, Any] | None:
        row = db.execute(
            self._sql("SELECT value FROM {s}.meta WHERE key=%s"), (HEAD_KEY,)
        ).fetchone()
        if row is None:
            return None
        try:
            head = orjson.loads(row[0])
        except orjson.JSONDecodeError:
            return {}
        return head if isinstance(head, dict) else {}

    def _set_head(self, db: Any, entries: int, last: str, when: str) -> None:
        value = orjson.dumps({"entries": entries, "hash": last, "time": when}).decode()
        db.execute(
            self._sql(
                "INSERT INTO {s}.meta (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            (HEAD_KEY, value),
        )

    def digest_key(self) -> bytes:
        """The HMAC key of process-input digests, made once for every node."""
        if self._digest_key is None:
            db = self._store._db()
            db.execute(
                self._sql(
                    "INSERT INTO {s}.meta (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING"
                ),
                (DIGEST_KEY, secrets.token_hex(32)),
            )
            row = db.execute(
                self._sql("SELECT value FROM {s}.meta WHERE key=%s"), (DIGEST_KEY,)
            ).fetchone()
            self._digest_key = bytes.fromhex(row[0])
        return self._digest_key

    @contextmanager
    def snapshot(self) -> Iterator[tuple[Iterator[bytes], dict[str, Any] | None]]:
        """(the lines in order, the head) as of one moment, streamed from the server."""
        db = self._store._db()
        with db.transaction():
            db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            head = self._head(db)
            with db.cursor(name="audit_lines") as cur:
                cur.itersize = 5000
                cur.execute(self._sql("SELECT line FROM {s}.audit_log ORDER BY seq"))
                yield (bytes(row[0]) for row in cur), head

    def copy_in(self, log: Path) -> tuple[int, int]:
        """The lines of an embedded log file and its head, as they are (hashes kept), when
        the database holds no chain yet: (lines copied, lines already there)."""
        from .audit import read_head

        db = self._store._db()
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key(),))
            here = db.execute(self._sql("SELECT count(*) FROM {s}.audit_log")).fetchone()[0]
            if here or not log.exists():
                return 0, int(here)
            lines = [raw.rstrip(b"\n") for raw in log.read_bytes().splitlines() if raw.strip()]
            with db.cursor() as cur:
                cur.executemany(
                    self._sql("INSERT INTO {s}.audit_log (seq, line) VALUES (%s, %s)"),
                    list(enumerate(lines, start=1)),
                )
            head = read_head(log)
            if head and head.get("hash"):
                self._set_head(db, int(head["entries"]), str(head["hash"]), str(head.get("time")))
            key = log.with_name("digest.key")
            if key.exists():
                db.execute(
                    self._sql(
                        "INSERT INTO {s}.meta (key, value) VALUES (%s, %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                    ),
                    (DIGEST_KEY, key.read_bytes().hex()),
                )
            return len(lines), 0


def chain_of(data_dir: str | Path) -> PostgresAuditChain | None:
    """The PostgreSQL chain of a data directory whose catalog is in PostgreSQL, else None
    (the file chain in ``<data>/audit``)."""
    from shikong.catalog.stores import configured_store

    store = configured_store(data_dir)
    return PostgresAuditChain(store) if store is not None else None


def migrate_audit(data_dir: str | Path, store: PostgresCatalogStore) -> str:
    """Copy an embedded data directory's audit log into the database (``shikong
    migrate``), so the chain goes on there; a no-op once the database holds a chain."""
    from shikong.catalog.storage import DataDir

    copied, there = PostgresAuditChain(store).copy_in(DataDir(Path(data_dir)).audit_log)
    if there:
        return f"audit log: the database holds its chain already ({there} entries)"
    return f"audit log: {copied} entries copied, the chain goes on in the database"
