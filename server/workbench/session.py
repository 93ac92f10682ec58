"""Browser sessions: a random id in an HttpOnly cookie, the caller it stands for on disk.

A signed-in browser holds only ``shikong_session=<32 random bytes>``; the data directory
holds the SHA-256 of that id (a copied database opens no session), the caller it was
issued for, its CSRF token and when it expires (``SHIKONG_SESSION_HOURS``, default 8).
Every worker process reads the same SQLite file, so signing out anywhere ends the
session everywhere on the next request. The gate (``server/guard.py``) asks
:meth:`SessionStore.from_headers` only when a request carries no other credential, and
refuses a cookie-authenticated POST/PUT/PATCH/DELETE whose CSRF token is missing or wrong
(:meth:`Session.csrf_ok`): a page sends it as ``X-CSRF-Token``, a plain form as the
``csrf_token`` field. Key, Basic and bearer callers never meet either check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from shikong.catalog.policy import Caller
from shikong.catalog.storage import DataDir

COOKIE = "shikong_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_HOURS = 8.0


def session_hours() -> float:
    """How long a session lasts: ``SHIKONG_SESSION_HOURS`` (default 8)."""
    raw = os.environ.get("SHIKONG_SESSION_HOURS")
    if not raw:
        return DEFAULT_HOURS
    hours = float(raw)
    if not 0 < hours <= 24 * 30:
        raise ValueError("SHIKONG_SESSION_HOURS must be more than 0 and at most 720")
    return hours


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def cookie_value(headers: dict[str, str], name: str = COOKIE) -> str | None:
    """One cookie's value from a ``Cookie`` header (lower-cased header names)."""
    raw = headers.get("cookie")
    if not raw or name not in raw:
        return None
    for part in raw.split(";"):
        key, eq, value = part.strip().partition("=")
        if eq and key == name:
            return value.strip().strip('"') or None
    return None


@dataclass(frozen=True)
class Session:
    """One signed-in browser: who it is, its CSRF token, when it ends (epoch seconds)."""

    digest: str
    caller: Caller
    csrf: str
    expires: float
    via: str  # "key" or "oidc": how the caller signed in

    def csrf_ok(self, headers: dict[str, str], body: bytes | None) -> bool:
        """Whether an unsafe request carries this session's token (header or form field)."""
        token = headers.get(CSRF_HEADER)
        if (
            token is None
            and body
            and headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        ):
            values = parse_qs(body.decode("latin-1")).get(CSRF_FIELD)
            token = values[0] if values else None
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


def _caller_json(caller: Caller) -> str:
    return json.dumps(
        {
            "user": caller.user,
            "department": caller.department,
            "role": caller.role,
            "grants": sorted(f"{c}:{r}" for c, r in caller.grants),
            "key_id": caller.key_id,
        }
    )


def _caller_of(text: str) -> Caller:
    data = json.loads(text)
    grants = frozenset(tuple(g.rsplit(":", 1)) for g in data["grants"])
    return Caller(data["user"], data["department"], data["role"], grants, data["key_id"])


class SessionStore:
    """The sessions of one data directory (``DataDir.sessions``), or of its PostgreSQL
    catalog's database when it has one (:mod:`sessions_pg`: shared by every node)."""

    def __init__(self, data_dir: str | Path, hours: float | None = None) -> None:
        from shikong.catalog.stores import configured_store

        self.path = DataDir(Path(data_dir)).sessions
        self.hours = hours if hours is not None else session_hours()
        self._local = threading.local()
        catalog_store = configured_store(data_dir)
        self._pg = None
        if catalog_store is not None:
            from .sessions_pg import PostgresSessions

            self._pg = PostgresSessions(catalog_store)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS sessions (digest TEXT PRIMARY KEY, caller TEXT, "
                "csrf TEXT, via TEXT, created REAL, expires REAL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS pending (digest TEXT PRIMARY KEY, data TEXT, "
                "expires REAL)"
            )
            self._local.db = db
        return db

    def create(self, caller: Caller, via: str) -> tuple[str, Session]:
        """A new session for a caller: its id (for the cookie, shown nowhere else)."""
        if caller.anonymous:
            raise ValueError("an anonymous caller has no session")
        sid = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(
            _digest(sid), caller, secrets.token_urlsafe(32), now + self.hours * 3600, via
        )
        row = (session.digest, _caller_json(caller), session.csrf, via, now, session.expires)
        if self._pg is not None:
            self._pg.insert(row, now)
            return sid, session
        db = self._db()
        db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
        db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)", row)
        return sid, session

    def get(self, sid: str) -> Session | None:
        """The live session of an id, or None (unknown, signed out or expired)."""
        if self._pg is not None:
            row = self._pg.find(_digest(sid))
        else:
            row = (
                self._db()
                .execute(
                    "SELECT caller, csrf, via, expires FROM sessions WHERE digest = ?",
                    (_digest(sid),),
                )
                .fetchone()
            )
        if row is None or row[3] <= time.time():
            return None
        return Session(_digest(sid), _caller_of(row[0]), row[1], row[3], row[2])

    def from_headers(self, headers: dict[str, str]) -> Session | None:
        sid = cookie_value(headers)
        return self.get(sid) if sid else None

    def delete(self, sid: str) -> bool:
        """Sign out: the id opens nothing any more, in any worker."""
        if self._pg is not None:
            return self._pg.delete(_digest(sid))
        return bool(
            self._db().execute("DELETE FROM sessions WHERE digest = ?", (_digest(sid),)).rowcount
        )

    def put_pending(self, state: str, data: dict, seconds: float) -> None:
        """A sign-in under way at the identity provider (any worker may see it back)."""
        now = time.time()
        if self._pg is not None:
            self._pg.put_pending(_digest(state), json.dumps(data), now + seconds, now)
            return
        db = self._db()
        db.execute("DELETE FROM pending WHERE expires < ?", (now,))
        db.execute(
            "INSERT INTO pending VALUES (?, ?, ?)",
            (_digest(state), json.dumps(data), now + seconds),
        )

    def take_pending(self, state: str) -> dict | None:
        """A pending sign-in, once: a state is never accepted twice."""
        if self._pg is not None:
            row = self._pg.take_pending(_digest(state))
        else:
            row = (
                self._db()
                .execute(
                    "DELETE FROM pending WHERE digest = ? RETURNING data, expires",
                    (_digest(state),),
                )
                .fetchone()
            )
        if row is None or row[1] < time.time():
            return None
        return json.loads(row[0])

    def end_for_key(self, key_id: str) -> int:
        """End every session signed in with a key (when it is revoked)."""
        if self._pg is not None:
            return self._pg.end_for_key(key_id)
        return (
            self._db()
            .execute("DELETE FROM sessions WHERE json_extract(caller, '$.key_id') = ?", (key_id,))
            .rowcount
        )


def set_cookie_header(sid: str, max_age: int, secure: bool) -> str:
    """The Set-Cookie line of a session: HttpOnly, SameSite=Lax, Path=/, Secure on https."""
    parts = [f"{COOKIE}={sid}", "HttpOnly", "SameSite=Lax", "Path=/", f"Max-Age={max_age}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie_header(secure: bool) -> str:
    parts = [f"{COOKIE}=", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=0"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
