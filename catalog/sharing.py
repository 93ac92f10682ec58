"""Sharing between departments: access requests, their decisions, the grants they make.

A department asks another for ``read``, ``write`` or ``personal-data`` on one of its
layers, with a purpose and an end date. An ``admin`` of the owner department approves
(perhaps narrowed: fewer rights, an earlier end date) or refuses with a reason. Approved
requests are data in a store, never an edit of the policy file: they join the file's
grants while in force (:meth:`Sharing.in_force`), and end by themselves at the end of
their end date (a bare date is its whole UTC day, as everywhere on the platform), with no
write needed. The policy file stays the base.

The store sits behind :class:`SharingStore`; :class:`SqliteSharingStore` keeps it in the
data directory (``DataDir.grants``), :class:`~.postgres_sharing.PostgresSharingStore` in a
PostgreSQL catalog's database; :func:`~.stores.open_sharing` picks the one beside the
catalog. Each decision bumps the store's version in the same transaction; servers read
that one row on every access check, so a decision takes effect at once on every process
of a data directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from shikong.spatial.errors import InputError, ShikongError

from .policy import RIGHTS, Caller, CollectionMeta, Grant
from .storage import SqliteConnections, immediate_transaction

STATES = ("requested", "approved", "refused", "expired")
DECISIONS = ("approve", "refuse")
MAX_PURPOSE = 2000  # characters


def now() -> datetime:
    """The sharing clock (tests move time by replacing this function)."""
    return datetime.now(UTC)


class NotAllowed(ShikongError):
    """The caller may not take this step (HTTP 403)."""


class UnknownRequest(ShikongError):
    """No such request, or one the caller may not see (HTTP 404, alike)."""


class AlreadyDecided(ShikongError):
    """The request was decided already (HTTP 409)."""


def end_of(day: date) -> datetime:
    """The instant a grant until ``day`` ends: the end of that UTC day."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


@dataclass(frozen=True)
class AccessRequest:
    """One request and its decision (``granted_*`` set when approved)."""

    id: int
    department: str  # the requesting department
    user: str | None
    owner: str  # the owner department of the layer
    collection: str
    rights: tuple[str, ...]
    purpose: str
    until: date
    state: str
    created: str
    decided_by: str | None = None
    decided_at: str | None = None
    reason: str | None = None
    granted_rights: tuple[str, ...] | None = None
    granted_until: date | None = None

    def ends(self) -> datetime | None:
        """When the grant ends (None unless approved)."""
        return end_of(self.granted_until) if self.granted_until else None

    def state_at(self, moment: datetime) -> str:
        """The state as of ``moment``: an approved request past its end date is expired."""
        ends = self.ends()
        if self.state == "approved" and ends is not None and moment >= ends:
            return "expired"
        return self.state

    def grant(self) -> Grant:
        """The policy grant an approved request makes."""
        layer = self.collection.removeprefix(f"{self.owner}-")
        return Grant(self.owner, (layer,), (self.department,), frozenset(self.granted_rights or ()))

    def as_dict(self, moment: datetime | None = None) -> dict[str, Any]:
        out = asdict(self)
        out["rights"] = list(self.rights)
        out["until"] = self.until.isoformat()
        out["granted_rights"] = list(self.granted_rights) if self.granted_rights else None
        out["granted_until"] = self.granted_until.isoformat() if self.granted_until else None
        out["state"] = self.state_at(moment or now())
        return out


class SharingStore(Protocol):
    """What a backend of access requests must do (SQLite here, PostgreSQL in
    :mod:`postgres_sharing`).

    Every write is one transaction; ``decide`` moves only a ``requested`` row and bumps
    the version in the same transaction; ``expire`` moves only ``approved`` rows and says
    which it moved, so of several processes exactly one records each expiry.
    """

    def add(
        self,
        department: str,
        user: str | None,
        owner: str,
        collection: str,
        rights: tuple[str, ...],
        purpose: str,
        until: date,
        created: str,
    ) -> AccessRequest: ...

    def get(self, request_id: int) -> AccessRequest | None: ...

    def list(
        self,
        department: str | None = None,
        owner: str | None = None,
        collection: str | None = None,
    ) -> list[AccessRequest]: ...

    def decide(
        self,
        request_id: int,
        state: str,
        by: str,
        at: str,
        reason: str | None,
        rights: tuple[str, ...] | None,
        until: date | None,
    ) -> AccessRequest | None: ...

    def expire(self, request_ids: Iterable[int]) -> list[int]: ...

    def approved(self) -> list[AccessRequest]: ...

    def version(self) -> int: ...


COLUMNS = (
    "id, department, user, owner, collection, rights, purpose, until, state, created, "
    "decided_by, decided_at, reason, granted_rights, granted_until"
)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "department TEXT NOT NULL, user TEXT, owner TEXT NOT NULL, collection TEXT NOT NULL, "
    "rights TEXT NOT NULL, purpose TEXT NOT NULL, until TEXT NOT NULL, "
    "state TEXT NOT NULL, created TEXT NOT NULL, decided_by TEXT, decided_at TEXT, "
    "reason TEXT, granted_rights TEXT, granted_until TEXT)",
    "CREATE INDEX IF NOT EXISTS requests_state ON requests(state)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT OR IGNORE INTO meta VALUES ('version', '0')",
)


def _row(row: tuple) -> AccessRequest:
    granted = row[13]
    return AccessRequest(
        id=row[0],
        department=row[1],
        user=row[2],
        owner=row[3],
        collection=row[4],
        rights=tuple(row[5].split(",")),
        purpose=row[6],
        until=date.fromisoformat(row[7]),
        state=row[8],
        created=row[9],
        decided_by=row[10],
        decided_at=row[11],
        reason=row[12],
        granted_rights=tuple(granted.split(",")) if granted else None,
        granted_until=date.fromisoformat(row[14]) if row[14] else None,
    )


def _schema(db: Any) -> None:
    with immediate_transaction(db):
        for statement in SCHEMA:
            db.execute(statement)


class SqliteSharingStore:
    """Access requests in ``<data>/access/grants.sqlite`` (the storage module's per-thread
    WAL connections and transactions).

    Reading the version costs one row read on a kept connection; before the file exists
    a read creates nothing (version 0, no requests).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._connections = SqliteConnections(self.path, setup=_schema)

    def _db(self, create: bool) -> Any:
        if not create and not self.path.exists():
            return None
        return self._connections.get()

    def _write(self, fn: Callable[[Any], Any]) -> Any:
        db = self._db(create=True)
        with immediate_transaction(db):
            return fn(db)

    def add(self, department, user, owner, collection, rights, purpose, until, created):
        def insert(db: Any) -> int:
            cur = db.execute(
                "INSERT INTO requests (department, user, owner, collection, rights, purpose, "
                "until, state, created) VALUES (?, ?, ?, ?, ?, ?, ?, 'requested', ?)",
                (department, user, owner, collection, ",".join(rights), purpose,
                 until.isoformat(), created),
            )  # fmt: skip
            return int(cur.lastrowid or 0)

        found = self.get(self._write(insert))
        assert found is not None
        return found

    def get(self, request_id: int) -> AccessRequest | None:
        db = self._db(create=False)
        if db is None:
            return None
        row = db.execute(f"SELECT {COLUMNS} FROM requests WHERE id=?", (request_id,)).fetchone()
        return _row(row) if row else None

    def list(self, department=None, owner=None, collection=None) -> list[AccessRequest]:
        db = self._db(create=False)
        if db is None:
            return []
        where, args = [], []
        for column, value in (("department", department), ("owner", owner)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if collection is not None:
            where.append("collection=?")
            args.append(collection)
        sql = f"SELECT {COLUMNS} FROM requests"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_row(r) for r in db.execute(sql + " ORDER BY id", args)]

    def decide(self, request_id, state, by, at, reason, rights, until):
        def update(db: Any) -> bool:
            moved = db.execute(
                "UPDATE requests SET state=?, decided_by=?, decided_at=?, reason=?, "
                "granted_rights=?, granted_until=? WHERE id=? AND state='requested'",
                (state, by, at, reason, ",".join(rights) if rights else None,
                 until.isoformat() if until else None, request_id),
            ).rowcount  # fmt: skip
            if moved:
                db.execute("UPDATE meta SET value=CAST(value AS INTEGER) + 1 WHERE key='version'")
            return bool(moved)

        return self.get(request_id) if self._write(update) else None

    def expire(self, request_ids: Iterable[int]) -> list[int]:
        ids = list(request_ids)

        def update(db: Any) -> list[int]:
            moved = []
            for rid in ids:
                if db.execute(
                    "UPDATE requests SET state='expired' WHERE id=? AND state='approved'", (rid,)
                ).rowcount:
                    moved.append(rid)
            return moved

        return self._write(update) if ids else []

    def approved(self) -> list[AccessRequest]:
        db = self._db(create=False)
        if db is None:
            return []
        rows = db.execute(f"SELECT {COLUMNS} FROM requests WHERE state='approved' ORDER BY id")
        return [_row(r) for r in rows]

    def version(self) -> int:
        db = self._db(create=False)
        if db is None:
            return 0
        row = db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        return int(row[0]) if row else 0


def _rights(value: object, name: str) -> tuple[str, ...]:
    """Rights as given (a list or a comma-separated text), checked and in RIGHTS order."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise InputError(name, f"give one or more rights among {', '.join(RIGHTS)}")
    for right in value:
        if right not in RIGHTS:
            raise InputError(name, f"unknown right {right!r}; rights: {', '.join(RIGHTS)}")
    return tuple(r for r in RIGHTS if r in value)


def _date(value: object, name: str, today: date) -> date:
    if isinstance(value, datetime):
        raise InputError(name, "give a date (YYYY-MM-DD), not a date-time")
    if isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value))
        except ValueError:
            raise InputError(name, f"{value!r} is not a date (YYYY-MM-DD)") from None
    if day < today:
        raise InputError(name, f"end date {day} is in the past (today is {today}, UTC)")
    return day


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Sharing:
    """The workflow over a store: request, decide, list, and the grants in force.

    ``collections`` gives the catalog's collections (id → owner and classification) when
    asked, so a request names a layer that exists now.
    """

    def __init__(
        self,
        store: SharingStore,
        collections: Callable[[], Mapping[str, CollectionMeta]],
    ) -> None:
        self.store = store
        self.collections = collections

    # -- steps ---------------------------------------------------------------------------
    def request(
        self, caller: Caller, collection: object, rights: object, purpose: object, until: object
    ) -> AccessRequest:
        """A department asks the owner of ``collection`` for ``rights`` until a date."""
        if caller.anonymous:
            raise NotAllowed("sign in as a department to ask for access")
        assert caller.department is not None
        moment = now()
        if not isinstance(collection, str) or not collection:
            raise InputError("collection", "name the layer (collection id) you ask for")
        meta = self.collections().get(collection)
        if meta is None:
            raise InputError("collection", f"no layer {collection!r} in the catalog")
        if meta.department == caller.department:
            raise InputError(
                "collection", f"{collection} belongs to your own department {meta.department}"
            )
        wanted = _rights(rights, "rights")
        if not isinstance(purpose, str) or not purpose.strip():
            raise InputError("purpose", "say what the data is needed for")
        if len(purpose) > MAX_PURPOSE:
            raise InputError("purpose", f"at most {MAX_PURPOSE} characters")
        day = _date(until, "until", moment.date())
        return self.store.add(
            caller.department,
            caller.user,
            meta.department,
            collection,
            wanted,
            purpose.strip(),
            day,
            _stamp(moment),
        )

    def decide(
        self,
        caller: Caller,
        request_id: int,
        decision: object,
        rights: object = None,
        until: object = None,
        reason: object = None,
    ) -> AccessRequest:
        """The owner department's admin approves (perhaps narrowed) or refuses."""
        found = self.get(caller, request_id)
        if caller.role != "admin" or caller.department != found.owner:
            raise NotAllowed(
                f"only an admin of the owner department {found.owner} may decide request "
                f"{request_id}"
            )
        if decision not in DECISIONS:
            raise InputError("decision", f"{decision!r}: give 'approve' or 'refuse'")
        if found.state != "requested":
            raise AlreadyDecided(f"request {request_id} was {found.state} already")
        if reason is not None and not isinstance(reason, str):
            raise InputError("reason", "give the reason as text")
        moment = now()
        if decision == "refuse":
            if not reason or not reason.strip():
                raise InputError("reason", "a refusal needs a reason")
            if rights is not None or until is not None:
                raise InputError("rights", "a refusal grants no rights and no end date")
            granted, day, state = None, None, "refused"
        else:
            granted = found.rights if rights is None else _rights(rights, "rights")
            wider = [r for r in granted if r not in found.rights]
            if wider:
                raise InputError(
                    "rights", f"{', '.join(wider)} was not asked for; approve fewer rights, "
                    f"not more (asked: {', '.join(found.rights)})",
                )  # fmt: skip
            day = found.until if until is None else _date(until, "until", moment.date())
            if day > found.until:
                raise InputError(
                    "until", f"{day} is later than the end date asked for ({found.until}); "
                    "a decision may only end earlier",
                )  # fmt: skip
            state = "approved"
        decided = self.store.decide(
            request_id,
            state,
            caller.label,
            _stamp(moment),
            reason.strip() if isinstance(reason, str) and reason.strip() else None,
            granted,
            day,
        )
        if decided is None:  # another admin decided it in between
            raise AlreadyDecided(f"request {request_id} was decided already")
        return decided

    # -- reading ------------------------------------------------------------------------
    def may_see(self, caller: Caller, found: AccessRequest) -> bool:
        """The requesting department sees its requests; the owner's admins theirs."""
        if caller.anonymous:
            return False
        if caller.department == found.department:
            return True
        return caller.role == "admin" and caller.department == found.owner

    def get(self, caller: Caller, request_id: int) -> AccessRequest:
        found = self.store.get(request_id)
        if found is None or not self.may_see(caller, found):
            raise UnknownRequest(f"no access request {request_id}")
        return found

    def list(self, caller: Caller, collection: str | None = None) -> list[AccessRequest]:
        """The caller's department's requests, and, for an admin, those for its layers."""
        if caller.anonymous:
            return []
        mine = self.store.list(department=caller.department, collection=collection)
        if caller.role == "admin":
            mine += self.store.list(owner=caller.department, collection=collection)
        return sorted({r.id: r for r in mine}.values(), key=lambda r: r.id)

    def in_force(self, moment: datetime | None = None) -> list[AccessRequest]:
        """Approved requests whose end has not come."""
        moment = moment or now()
        return [r for r in self.store.approved() if r.state_at(moment) == "approved"]

    def lapsed(self, moment: datetime | None = None) -> list[AccessRequest]:
        """Approved requests past their end date, marked expired by this call (so of
        several processes exactly one reports each)."""
        moment = moment or now()
        due = [r for r in self.store.approved() if r.state_at(moment) == "expired"]
        moved = set(self.store.expire(r.id for r in due))
        return [r for r in due if r.id in moved]


def grants_of(requests: Iterable[AccessRequest]) -> tuple[Grant, ...]:
    return tuple(r.grant() for r in requests)
