"""Access requests in PostgreSQL, beside a PostgreSQL catalog (issue 22 on issue 21's
backend): one table in the catalog's schema, so every node of a cloud deployment sees a
decision at once (``version`` is read per request by :class:`GrantsInForce`).

The same contract as the SQLite store (:class:`~.sharing.SharingStore`): each write one
transaction; ``decide`` moves only a ``requested`` row and bumps the version with it;
``expire`` moves only ``approved`` rows and returns those it moved, so of several nodes
exactly one records each expiry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .sharing import AccessRequest

if TYPE_CHECKING:
    from .postgres_store import PostgresCatalogStore

_DDL = """
CREATE TABLE IF NOT EXISTS {s}.access_requests (
    id bigserial PRIMARY KEY,
    department text NOT NULL, "user" text, owner text NOT NULL, collection text NOT NULL,
    rights text NOT NULL, purpose text NOT NULL, until date NOT NULL,
    state text NOT NULL, created text NOT NULL, decided_by text, decided_at text,
    reason text, granted_rights text, granted_until date);
CREATE INDEX IF NOT EXISTS access_requests_state ON {s}.access_requests (state);
INSERT INTO {s}.meta (key, value) VALUES ('sharing_version', '0') ON CONFLICT DO NOTHING;
"""
_COLUMNS = (
    'id, department, "user", owner, collection, rights, purpose, until, state, created, '
    "decided_by, decided_at, reason, granted_rights, granted_until"
)


def _request(row: tuple[Any, ...]) -> AccessRequest:
    return AccessRequest(
        id=int(row[0]),
        department=row[1],
        user=row[2],
        owner=row[3],
        collection=row[4],
        rights=tuple(row[5].split(",")),
        purpose=row[6],
        until=row[7],
        state=row[8],
        created=row[9],
        decided_by=row[10],
        decided_at=row[11],
        reason=row[12],
        granted_rights=tuple(row[13].split(",")) if row[13] else None,
        granted_until=row[14],
    )


class PostgresSharingStore:
    """Access requests in the schema of a :class:`PostgresCatalogStore` (its connections)."""

    def __init__(self, catalog_store: PostgresCatalogStore) -> None:
        self._store = catalog_store
        catalog_store.ensure_tables(_DDL)

    def _sql(self, text: str) -> str:
        return self._store.sql(text)

    def _db(self) -> Any:
        return self._store._db()

    def add(self, department, user, owner, collection, rights, purpose, until, created):
        row = (
            self._db()
            .execute(
                self._sql(
                    'INSERT INTO {s}.access_requests (department, "user", owner, collection, '
                    "rights, purpose, until, state, created) "
                    f"VALUES (%s, %s, %s, %s, %s, %s, %s, 'requested', %s) RETURNING {_COLUMNS}"
                ),
                (department, user, owner, collection, ",".join(rights), purpose, until, created),
            )
            .fetchone()
        )
        return _request(row)

    def get(self, request_id: int) -> AccessRequest | None:
        row = (
            self._db()
            .execute(
                self._sql(f"SELECT {_COLUMNS} FROM {{s}}.access_requests WHERE id=%s"),
                (request_id,),
            )
            .fetchone()
        )
        return _request(row) if row else None

    def list(self, department=None, owner=None, collection=None) -> list[AccessRequest]:
        where, args = [], []
        for column, value in (("department", department), ("owner", owner),
                              ("collection", collection)):  # fmt: skip
            if value is not None:
                where.append(f"{column}=%s")
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM {{s}}.access_requests"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_request(r) for r in self._db().execute(self._sql(sql + " ORDER BY id"), args)]

    def decide(self, request_id, state, by, at, reason, rights, until):
        db = self._db()
        with db.transaction():
            moved = db.execute(
                self._sql(
                    "UPDATE {s}.access_requests SET state=%s, decided_by=%s, decided_at=%s, "
                    "reason=%s, granted_rights=%s, granted_until=%s "
                    "WHERE id=%s AND state='requested'"
                ),
                (state, by, at, reason, ",".join(rights) if rights else None, until, request_id),
            ).rowcount
            if moved:
                db.execute(
                    self._sql(
                        "UPDATE {s}.meta SET value=(value::bigint + 1)::text "
                        "WHERE key='sharing_version'"
                    )
                )
        return self.get(request_id) if moved else None

    def expire(self, request_ids: Iterable[int]) -> list[int]:
        ids = [int(i) for i in request_ids]
        if not ids:
            return []
        rows = (
            self._db()
            .execute(
                self._sql(
                    "UPDATE {s}.access_requests SET state='expired' "
                    "WHERE id = ANY(%s) AND state='approved' RETURNING id"
                ),
                (ids,),
            )
            .fetchall()
        )
        return sorted(int(r[0]) for r in rows)

    def approved(self) -> list[AccessRequest]:
        rows = self._db().execute(
            self._sql(
                f"SELECT {_COLUMNS} FROM {{s}}.access_requests WHERE state='approved' ORDER BY id"
            )
        )
        return [_request(r) for r in rows]

    def version(self) -> int:
        row = (
            self._db()
            .execute(self._sql("SELECT value FROM {s}.meta WHERE key='sharing_version'"))
            .fetchone()
        )
        return int(row[0]) if row else 0
