"""Which stores a data directory uses: the one place that decides (issue 21).

The embedded default is SQLite in the data directory (one command, no servers). A cloud
deployment names a PostgreSQL database instead, by configuration alone:
``SHIKONG_DATABASE=postgresql://…`` (or the CLI's ``--database``, or an explicit
``database=`` argument) and optionally ``SHIKONG_DATABASE_SCHEMA`` (default ``shikong``).
The data directory still holds the assets and the STAC mirror (S3 is a later step).

A data directory opened on PostgreSQL in a process stays bound to that store there: the
server's providers and processors that build ``Catalog(Path(data_root))`` from a
pygeoapi definition get the very store the app opened (and its connections), without the
DSN, password and all, being written into any pygeoapi config.

The readings follow the catalog: a PostgreSQL catalog keeps them in the same database and
schema (:class:`~.observations_pg.PostgresObservationStore`, one per process), the
embedded one in the data directory's ``observations*.sqlite``
(:func:`observation_store`, and :func:`observation_store_at` for the EDR providers,
which pygeoapi hands the archive's path).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from shikong.spatial.errors import ShikongError

from .storage import DataDir

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from .observation_store import ReadingStore
    from .observations_pg import PostgresObservationStore
    from .policy import CollectionMeta
    from .postgres_store import PostgresCatalogStore
    from .sharing import Sharing
    from .store import CatalogStore

DATABASE_ENV = "SHIKONG_DATABASE"
SCHEMA_ENV = "SHIKONG_DATABASE_SCHEMA"
DEFAULT_SCHEMA = "shikong"
_SCHEMES = ("postgresql://", "postgres://")
_EMBEDDED = ("", "sqlite")  # what names the embedded store explicitly

_guard = threading.Lock()
_opened: dict[tuple[str, str, Path], PostgresCatalogStore] = {}
_bound: dict[Path, PostgresCatalogStore] = {}
_readings: dict[tuple[str, str], PostgresObservationStore] = {}


class DatabaseError(ShikongError):
    """The configured catalog database cannot be used (a bad DSN, unreachable, refused)."""


def configured_database(database: str | None = None) -> str | None:
    """The PostgreSQL DSN to use: ``database`` if given, else ``$SHIKONG_DATABASE``;
    None for the embedded SQLite store."""
    value = os.environ.get(DATABASE_ENV, "") if database is None else database
    value = value.strip()
    if value.lower() in _EMBEDDED:
        return None
    if not is_postgres(value):
        raise DatabaseError(
            f"database {mask_dsn(value)!r} is not a PostgreSQL DSN: give postgresql://user@"
            "host:port/dbname (or host=… dbname=…), or leave it unset for the embedded store"
        )
    return value


def configured_schema(schema: str | None = None) -> str:
    return schema or os.environ.get(SCHEMA_ENV) or DEFAULT_SCHEMA


def is_postgres(dsn: str) -> bool:
    """A PostgreSQL URL, or a libpq ``key=value`` connection string."""
    return dsn.startswith(_SCHEMES) or ("=" in dsn and "://" not in dsn)


def mask_dsn(dsn: str) -> str:
    """The DSN as it may be printed or logged: any password replaced by ``***``."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:  # not parseable: show nothing of it but its kind
        return "postgresql://…" if dsn.startswith(_SCHEMES) else "(unreadable DSN)"
    if "password" in parts:
        parts["password"] = "***"
    if dsn.startswith(_SCHEMES):
        user = parts.get("user", "")
        auth = f"{user}{':***' if 'password' in parts else ''}@" if user else ""
        host = parts.get("host", "")
        port = f":{parts['port']}" if "port" in parts else ""
        return f"postgresql://{auth}{host}{port}/{parts.get('dbname', '')}"
    return make_conninfo(**{k: str(v) for k, v in parts.items()})


def configured_store(
    data_dir: str | Path, database: str | None = None, schema: str | None = None
) -> PostgresCatalogStore | None:
    """The PostgreSQL store configured for a data directory, or None for the embedded
    SQLite one (which the facade opens: ``catalog.open_store``).

    ``database`` None: the store this process already bound to the data directory, else
    ``$SHIKONG_DATABASE``. A PostgreSQL store is opened once per (database, schema, data
    directory) in a process and shared (its connections with it).
    """
    root = Path(data_dir)
    if database is None and schema is None:
        with _guard:
            bound = _bound.get(root.resolve())
        if bound is not None:
            return bound
    dsn = configured_database(database)
    if dsn is None:
        return None
    return _postgres(dsn, configured_schema(schema), root)


def _postgres(dsn: str, schema: str, root: Path) -> PostgresCatalogStore:
    import psycopg

    from .postgres_store import PostgresCatalogStore

    key = (dsn, schema, root.resolve())
    with _guard:
        store = _opened.get(key)
        if store is None:
            try:
                store = PostgresCatalogStore(dsn, DataDir(root), schema=schema)
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"cannot use the catalog database {mask_dsn(dsn)}: {first_line(exc, dsn)}"
                ) from None
            except ValueError as exc:  # a schema name it refuses
                raise DatabaseError(str(exc)) from None
            _opened[key] = store
        _bound[key[2]] = store
    return store


def observation_store(catalog_store: CatalogStore) -> ReadingStore:
    """The readings of a catalog: in the same PostgreSQL database and schema as a
    PostgreSQL catalog store, else the SQLite files of its data directory."""
    dsn, schema = getattr(catalog_store, "dsn", None), getattr(catalog_store, "schema", None)
    if dsn is not None and schema is not None:
        return _postgres_readings(dsn, schema)
    from .observations import ObservationStore

    return ObservationStore(catalog_store.paths.observations_archive)


def observation_store_at(archive: str | Path) -> ReadingStore:
    """The readings whose embedded archive would be ``archive`` (what a pygeoapi provider
    is given): PostgreSQL when this process bound its data directory to a database."""
    path = Path(archive)
    with _guard:
        bound = _bound.get(path.parent.resolve())
    if bound is not None:
        return _postgres_readings(bound.dsn, bound.schema)
    from .observations import ObservationStore

    return ObservationStore(path)


def _postgres_readings(dsn: str, schema: str) -> PostgresObservationStore:
    """The PostgreSQL readings of (database, schema), opened once per process."""
    import psycopg

    from .observations_pg import PostgresObservationStore

    with _guard:
        store = _readings.get((dsn, schema))
        if store is None:
            try:
                store = PostgresObservationStore(dsn, schema)
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"cannot use the readings in {mask_dsn(dsn)}: {first_line(exc, dsn)}"
                ) from None
            _readings[(dsn, schema)] = store
    return store


def check_database(dsn: str) -> None:
    """Connect once (a short timeout) so a bad DSN is one clear line before anything
    starts; raises DatabaseError naming the masked DSN and the server's reason."""
    import psycopg

    try:
        psycopg.connect(dsn, connect_timeout=10).close()
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot connect to the catalog database {mask_dsn(dsn)}: {first_line(exc, dsn)}"
        ) from None


def first_line(exc: BaseException, dsn: str = "") -> str:
    """An error's first non-empty line (libpq's messages run over several), with the
    DSN's password starred should libpq quote a piece of a malformed DSN."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    for secret in _passwords(dsn):
        text = text.replace(secret, "***")
    return text


def _passwords(dsn: str) -> list[str]:
    """The password pieces of a DSN, found even when it does not parse."""
    found = re.findall(r"://[^:/@?]*:([^@/?]+)@", dsn)
    found += re.findall(r"password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)", dsn)
    return [f for f in found if f]


def open_sharing(
    root: str | Path, collections: Callable[[], Mapping[str, CollectionMeta]]
) -> Sharing:
    """The sharing workflow of a data directory, its access requests kept where its
    catalog is: PostgreSQL beside a PostgreSQL catalog, else SQLite in ``DataDir.grants``."""
    from .sharing import Sharing, SqliteSharingStore

    catalog_store = configured_store(root)
    if catalog_store is not None:
        from .postgres_sharing import PostgresSharingStore

        return Sharing(PostgresSharingStore(catalog_store), collections)
    return Sharing(SqliteSharingStore(DataDir(Path(root)).grants), collections)
