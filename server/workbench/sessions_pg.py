"""Browser sessions in PostgreSQL, beside a PostgreSQL catalog (issue 21): a browser
signed in through one node is signed in on every node (no sticky sessions needed), and
signing out, or revoking the key it signed in with, ends it everywhere.

The same rows as the embedded store (:class:`~.session.SessionStore`): only digests of
session ids and sign-in states are kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shikong.catalog.postgres_store import PostgresCatalogStore

_DDL = """
CREATE TABLE IF NOT EXISTS {s}.sessions (
    digest text PRIMARY KEY, caller text NOT NULL, csrf text NOT NULL, via text,
    created double precision NOT NULL, expires double precision NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.sessions_pending (
    digest text PRIMARY KEY, data text NOT NULL, expires double precision NOT NULL);
"""


class PostgresSessions:
    """The session rows of a PostgreSQL catalog's schema (its connections)."""

    def __init__(self, store: PostgresCatalogStore) -> None:
        self._store = store
        store.ensure_tables(_DDL)

    def _sql(self, text: str) -> str:
        return self._store.sql(text)

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return self._store._db().execute(self._sql(sql), args)

    def insert(self, row: tuple[Any, ...], now: float) -> None:
        """(digest, caller json, csrf, via, created, expires); expired rows go first."""
        db = self._store._db()
        with db.transaction():
            db.execute(self._sql("DELETE FROM {s}.sessions WHERE expires < %s"), (now,))
            db.execute(self._sql("INSERT INTO {s}.sessions VALUES (%s, %s, %s, %s, %s, %s)"), row)

    def find(self, digest: str) -> tuple[Any, ...] | None:
        return self._run(
            "SELECT caller, csrf, via, expires FROM {s}.sessions WHERE digest = %s", (digest,)
        ).fetchone()

    def delete(self, digest: str) -> bool:
        return bool(self._run("DELETE FROM {s}.sessions WHERE digest = %s", (digest,)).rowcount)

    def put_pending(self, digest: str, data: str, expires: float, now: float) -> None:
        db = self._store._db()
        with db.transaction():
            db.execute(self._sql("DELETE FROM {s}.sessions_pending WHERE expires < %s"), (now,))
            db.execute(
                self._sql("INSERT INTO {s}.sessions_pending VALUES (%s, %s, %s)"),
                (digest, data, expires),
            )

    def take_pending(self, digest: str) -> tuple[Any, ...] | None:
        return self._run(
            "DELETE FROM {s}.sessions_pending WHERE digest = %s RETURNING data, expires",
            (digest,),
        ).fetchone()

    def end_for_key(self, key_id: str) -> int:
        return self._run(
            "DELETE FROM {s}.sessions WHERE (caller::jsonb)->>'key_id' = %s", (key_id,)
        ).rowcount
