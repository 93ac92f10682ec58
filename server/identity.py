"""Who is calling: API keys (stored hashed, revocable) and bearer JWTs.

API keys are issued by ``shikong keys create`` as ``sk_<id>_<secret>``; only the SHA-256
of the whole key is stored (the secret is 32 random bytes, so a fast hash is enough: there
is nothing to brute-force that a slow hash would protect). Keys live in
``<data>/access/keys.sqlite``; a server notices a revocation on the next request (it
re-reads the table when the file changes). A data directory whose catalog is in
PostgreSQL keeps its keys there too (:mod:`keys_pg`), shared by every node.

An API key may also come as ``Authorization: Bearer sk_...`` (GDAL >= 3.9's
``GDAL_HTTP_AUTH=BEARER``) or as the password of HTTP Basic auth (RFC 7617), the one
scheme every desktop client speaks: QGIS 3.22's Basic auth config, GDAL 3.6's
``GDAL_HTTP_USERPWD``. The Basic user name is a check, not an identity: it must be empty
or the key's own user, so a colleague's pasted key is refused rather than audited under
the wrong name. Other bearer tokens are JWTs
from one configured issuer, HS256 (shared secret) or RS256 (the
issuer's public key), with claims ``sub`` (user), ``department``, optional ``role`` and
``grants`` (``["rer-parcels:read", ...]``). The algorithm is pinned by the configuration,
never taken from the token. A bad credential is an error (401), never the public.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from shikong.catalog.departments import departments
from shikong.catalog.policy import RIGHTS, ROLES, Caller
from shikong.catalog.storage import DataDir

if TYPE_CHECKING:
    from .workbench.session import Session

KEY_HEADER = "x-api-key"
USER_NAME = re.compile(r"[\w.-]+")
KEYS_FILE = DataDir(Path(".")).keys  # relative to a data directory


class AuthError(Exception):
    """A credential that cannot be accepted; the message says why (HTTP 401)."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    department: str
    user: str
    role: str
    created: str
    revoked: str | None

    def caller(self) -> Caller:
        return Caller(self.user, self.department, self.role, key_id=self.key_id)


class KeyStore:
    """API keys of one data directory: in its ``access/keys.sqlite``, or in the catalog's
    PostgreSQL database when the data directory's catalog is there (``SHIKONG_DATABASE``,
    or the store this process bound to the directory)."""

    def __init__(self, data_dir: str | Path) -> None:
        from shikong.catalog.stores import configured_store

        self.path = Path(data_dir) / KEYS_FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_digest: dict[str, KeyRecord] = {}
        catalog_store = configured_store(data_dir)
        self._pg = None
        if catalog_store is not None:
            from .keys_pg import PostgresKeys

            self._pg = PostgresKeys(catalog_store)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        db.execute(
            "CREATE TABLE IF NOT EXISTS keys (key_id TEXT PRIMARY KEY, digest TEXT UNIQUE, "
            "department TEXT, user TEXT, role TEXT, created TEXT, revoked TEXT)"
        )
        return db

    def create(self, department: str, user: str, role: str = "user") -> tuple[str, KeyRecord]:
        """A new key (shown once) and its record."""
        if department not in departments():
            raise ValueError(
                f"unknown department {department!r}; known: {', '.join(departments())}"
            )
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        if not USER_NAME.fullmatch(user or ""):
            raise ValueError("user must be a name of letters, digits, '-', '_' or '.'")
        key_id = secrets.token_hex(4)
        key = f"sk_{key_id}_{secrets.token_urlsafe(32)}"
        record = KeyRecord(key_id, department, user, role, _now(), None)
        if self._pg is not None:
            self._pg.insert((key_id, _digest(key), department, user, role, record.created))
            return key, record
        with self._connect() as db:
            db.execute(
                "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (key_id, _digest(key), department, user, role, record.created),
            )
        db.close()
        return key, record

    def revoke(self, key_id: str) -> bool:
        if self._pg is not None:
            return self._pg.revoke(key_id, _now())
        with self._connect() as db:
            changed = db.execute(
                "UPDATE keys SET revoked=? WHERE key_id=? AND revoked IS NULL", (_now(), key_id)
            ).rowcount
        db.close()
        return bool(changed)

    def list(self) -> list[KeyRecord]:
        if self._pg is not None:
            return [KeyRecord(*row) for row in self._pg.all()]
        db = self._connect()
        try:
            rows = db.execute(
                "SELECT key_id, department, user, role, created, revoked FROM keys ORDER BY created"
            ).fetchall()
        finally:
            db.close()
        return [KeyRecord(*row) for row in rows]

    def _reload_if_changed(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._by_digest, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        with self._lock:
            db = self._connect()
            try:
                rows = db.execute(
                    "SELECT digest, key_id, department, user, role, created, revoked FROM keys"
                ).fetchall()
            finally:
                db.close()
            self._by_digest = {r[0]: KeyRecord(*r[1:]) for r in rows}
            self._stamp = stamp

    def revoked(self, key_id: str) -> bool:
        """Whether a key was revoked (or deleted): sessions it opened end with it."""
        if self._pg is not None:
            row = self._pg.by_key_id(key_id)
            return row is None or row[5] is not None
        self._reload_if_changed()
        found = [r for r in self._by_digest.values() if r.key_id == key_id]
        return not found or found[0].revoked is not None

    def lookup(self, key: str) -> Caller:
        if self._pg is not None:
            row = self._pg.by_digest(_digest(key))
            record = KeyRecord(*row) if row else None
        else:
            self._reload_if_changed()
            record = self._by_digest.get(_digest(key))
        if record is None:
            raise AuthError("unknown API key")
        if record.revoked:
            raise AuthError(f"API key {record.key_id} was revoked on {record.revoked}")
        return record.caller()


@dataclass(frozen=True)
class JwtSettings:
    """The one token issuer the platform trusts."""

    issuer: str
    algorithm: str  # HS256 | RS256
    key: str  # the shared secret, or the issuer's PEM public key
    audience: str | None = None

    @classmethod
    def from_env(cls) -> JwtSettings | None:
        """SHIKONG_JWT_ISSUER with SHIKONG_JWT_SECRET (HS256) or SHIKONG_JWT_PUBLIC_KEY
        (a PEM file, RS256); SHIKONG_JWT_AUDIENCE optional."""
        issuer = os.environ.get("SHIKONG_JWT_ISSUER")
        if not issuer:
            return None
        audience = os.environ.get("SHIKONG_JWT_AUDIENCE") or None
        if os.environ.get("SHIKONG_JWT_PUBLIC_KEY"):
            pem = Path(os.environ["SHIKONG_JWT_PUBLIC_KEY"]).read_text()
            return cls(issuer, "RS256", pem, audience)
        secret = os.environ.get("SHIKONG_JWT_SECRET")
        if not secret:
            raise ValueError(
                "SHIKONG_JWT_ISSUER is set but neither SHIKONG_JWT_SECRET nor "
                "SHIKONG_JWT_PUBLIC_KEY"
            )
        return cls(issuer, "HS256", secret, audience)


class JwtVerifier:
    """Verifies bearer tokens; decoded callers are cached until their expiry."""

    def __init__(self, settings: JwtSettings, cache_size: int = 4096) -> None:
        if settings.algorithm not in ("HS256", "RS256"):
            raise ValueError("JWT algorithm must be HS256 or RS256")
        self.settings = settings
        self._cache: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()

    def verify(self, token: str) -> Caller:
        now = datetime.now(UTC).timestamp()
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        s = self.settings
        try:
            claims = jwt.decode(
                token,
                s.key,
                algorithms=[s.algorithm],
                issuer=s.issuer,
                audience=s.audience,
                options={"require": ["exp", "iss", "sub"], "verify_aud": s.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("bearer token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"bearer token rejected: {exc}") from None
        caller = caller_from_claims(claims)
        with self._lock:
            self._cache[token] = (caller, float(claims["exp"]))
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return caller


def caller_from_claims(claims: dict[str, Any]) -> Caller:
    department = claims.get("department")
    if department not in departments():
        raise AuthError(f"bearer token names unknown department {department!r}")
    role = claims.get("role", "user")
    if role not in ROLES:
        raise AuthError(f"bearer token names unknown role {role!r}")
    grants = set()
    for grant in claims.get("grants") or []:
        cid, _, right = str(grant).rpartition(":")
        if not cid or right not in RIGHTS:
            raise AuthError(f"bearer token grant {grant!r} is not <collection>:<right>")
        grants.add((cid, right))
    return Caller(str(claims["sub"]), department, role, frozenset(grants), key_id=None)


class Authenticator:
    """Turns request headers into a Caller (anonymous when none is given)."""

    def __init__(self, keys: KeyStore, jwt_settings: JwtSettings | None = None) -> None:
        from .workbench.session import SessionStore

        self.keys = keys
        self.jwt = JwtVerifier(jwt_settings) if jwt_settings else None
        self.sessions = SessionStore(keys.path.parent.parent)  # <data>/access/keys.sqlite

    def identify(self, headers: dict[str, str]) -> tuple[Caller, Session | None]:
        """The caller, and its browser session when the session cookie is the credential
        (then, and only then, unsafe methods need the session's CSRF token). A header
        credential wins over the cookie; an unknown or expired cookie is the public."""
        if KEY_HEADER in headers or "authorization" in headers or "cookie" not in headers:
            return self.caller(headers), None
        session = self.sessions.from_headers(headers)
        if session is None:
            return Caller(), None
        key_id = session.caller.key_id
        if key_id is not None and self.keys.revoked(key_id):
            self.sessions.end_for_key(key_id)  # signed out: the sign-in page still opens
            return Caller(), None
        return session.caller, session

    def caller(self, headers: dict[str, str]) -> Caller:
        key = headers.get(KEY_HEADER)
        if key:
            return self.keys.lookup(key.strip())
        auth = headers.get("authorization")
        if auth:
            scheme, _, token = auth.strip().partition(" ")
            token = token.strip()
            if scheme.lower() == "basic" and token:
                return self._basic(token)
            if scheme.lower() != "bearer" or not token:
                raise AuthError("Authorization must be 'Bearer <token>' or 'Basic <user:key>'")
            if token.startswith("sk_"):  # an API key from a client that only
                return self.keys.lookup(token)  # speaks bearer auth (GDAL >= 3.9)
            if self.jwt is None:
                raise AuthError("this server accepts no bearer tokens (no issuer configured)")
            return self.jwt.verify(token)
        return Caller()

    def _basic(self, token: str) -> Caller:
        """HTTP Basic: the API key is the password; the user name, if any, must be its user."""
        user, key = parse_basic(token)
        if not key.startswith("sk_"):
            raise AuthError("Basic auth takes an API key (sk_...) as the password")
        caller = self.keys.lookup(key)
        if user and user != caller.user:
            raise AuthError(
                f"Basic auth user {user!r} does not match the key's user; "
                "give the key's user name or leave the user name empty"
            )
        return caller


def parse_basic(token: str) -> tuple[str, str]:
    """``base64(user:password)`` → (user, password), UTF-8 as the challenge advertises."""
    try:
        raw = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise AuthError("Basic credentials are not base64 of UTF-8 'user:key'") from None
    user, colon, password = raw.partition(":")
    if not colon:
        raise AuthError("Basic credentials have no ':' between user name and key")
    return user, password.strip()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
