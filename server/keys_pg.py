"""API keys in PostgreSQL, beside a PostgreSQL catalog (issue 21): every node of a cloud
deployment reads one table, so a key created through one node works on every node and a
key revoked through one is refused by every other on its next request.

Only digests are stored, as in the embedded store. A lookup is one indexed read by
digest (about 0.1 ms on loopback): nothing is cached, so there is nothing to go stale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shikong.catalog.postgres_store import PostgresCatalogStore

_DDL = """
CREATE TABLE IF NOT EXISTS {s}.api_keys (
    key_id text PRIMARY KEY, digest text UNIQUE NOT NULL, department text NOT NULL,
    "user" text NOT NULL, role text NOT NULL, created text NOT NULL, revoked text);
"""
_FIELDS = 'key_id, department, "user", role, created, revoked'


class PostgresKeys:
    """Rows of ``<schema>.api_keys`` through the catalog store's connections."""

    def __init__(self, store: PostgresCatalogStore) -> None:
        self._store = store
        store.ensure_tables(_DDL)

    def _sql(self, text: str) -> str:
        return self._store.sql(text)

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._store._db().execute(self._sql(sql), args).fetchall()

    def insert(self, row: tuple[str, str, str, str, str, str]) -> None:
        """(key_id, digest, department, user, role, created)."""
        self._store._db().execute(
            self._sql(
                'INSERT INTO {s}.api_keys (key_id, digest, department, "user", role, created) '
                "VALUES (%s, %s, %s, %s, %s, %s)"
            ),
            row,
        )

    def revoke(self, key_id: str, when: str) -> bool:
        moved = self._rows(
            "UPDATE {s}.api_keys SET revoked=%s WHERE key_id=%s AND revoked IS NULL "
            "RETURNING key_id",
            (when, key_id),
        )
        return bool(moved)

    def all(self) -> list[tuple[Any, ...]]:
        return self._rows(f"SELECT {_FIELDS} FROM {{s}}.api_keys ORDER BY created, key_id")

    def by_digest(self, digest: str) -> tuple[Any, ...] | None:
        found = self._rows(f"SELECT {_FIELDS} FROM {{s}}.api_keys WHERE digest=%s", (digest,))
        return found[0] if found else None

    def by_key_id(self, key_id: str) -> tuple[Any, ...] | None:
        found = self._rows(f"SELECT {_FIELDS} FROM {{s}}.api_keys WHERE key_id=%s", (key_id,))
        return found[0] if found else None

    def copy_in(self, rows: list[tuple[Any, ...]]) -> int:
        """Rows (key_id, digest, department, user, role, created, revoked) of another
        store; those already here are left as they are. The number added."""
        added = 0
        for row in rows:
            added += len(
                self._rows(
                    'INSERT INTO {s}.api_keys (key_id, digest, department, "user", role, '
                    "created, revoked) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT DO NOTHING RETURNING key_id",
                    tuple(row),
                )
            )
        return added


def migrate_keys(data_dir: Any, store: PostgresCatalogStore) -> str:
    """Copy an embedded data directory's API keys (``access/keys.sqlite``: digests and
    revocations) into the database, as ``shikong migrate`` does; running it again adds
    nothing. The line it prints."""
    import sqlite3
    from pathlib import Path

    from shikong.catalog.storage import DataDir

    path = DataDir(Path(data_dir)).keys
    if not path.exists():
        return "API keys: none in the data directory"
    db = sqlite3.connect(path, timeout=30)
    try:
        rows = db.execute(
            "SELECT key_id, digest, department, user, role, created, revoked FROM keys"
        ).fetchall()
    finally:
        db.close()
    added = PostgresKeys(store).copy_in(rows)
    return f"API keys: {added} copied, {len(rows) - added} already there"
