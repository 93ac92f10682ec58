"""Where the observation store keeps what: an archive file and a live file beside it.

``observations.sqlite``, the *archive*, holds ``series`` and ``points``: every compacted
reading, clustered by (series, time). ``observations-live.sqlite`` holds what ingest
writes: runs of new readings, the newest value per series, horizons, alert state, fired
alerts and channel counters. Ingest commits to the live file only and compaction writes
the archive only, each under its own SQLite write lock, so moving readings into the
large clustered ``points`` table (about 1.5 µs per reading on a store of tens of
millions) runs beside ingest instead of stopping it.

Each connection opens the live file and attaches the archive as ``archive``. Views that
span both files are TEMP views of each connection. A statement takes its snapshot of
``main`` before that of ``archive`` (SQLite begins read transactions in schema order),
which is what keeps a query exact while compaction moves runs: see
:func:`moved_through`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from . import alerts
from .storage import immediate_transaction, transaction

ARCHIVE_SCHEMA = """
CREATE TABLE IF NOT EXISTS archive.series (
    id INTEGER PRIMARY KEY, layer TEXT NOT NULL, sensor TEXT NOT NULL,
    parameter TEXT NOT NULL, UNIQUE (layer, sensor, parameter)
);
CREATE TABLE IF NOT EXISTS archive.points (
    series INTEGER NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (series, time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS archive.archive_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
# runs: rows keyed (run, series, time), so a batch from thousands of sensors touches only
# the pages of the small open run; ``rows`` and its time span are set when a run closes
LIVE_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS main.recent_runs (
    run INTEGER NOT NULL, series INTEGER NOT NULL, time INTEGER NOT NULL,
    value REAL NOT NULL, PRIMARY KEY (run, series, time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS main.recent_run_ids (
    run INTEGER PRIMARY KEY, rows INTEGER, first_time INTEGER, last_time INTEGER
);
CREATE TABLE IF NOT EXISTS main.horizons (
    series INTEGER PRIMARY KEY, settled INTEGER NOT NULL, newest INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS main.store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS main.channel_counts (
    channel TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (channel, reason)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS main.latest_values (
    series INTEGER PRIMARY KEY, time INTEGER NOT NULL, value REAL NOT NULL
);
"""
    + alerts.SCHEMA
)
# the runs not yet in ``points``: a run whose number is at most the archive's
# ``compacted_through`` is read from ``points``, even while its rows still sit in the
# live file (compaction commits the archive first, then deletes the runs)
_UNMOVED_RUNS = (
    "SELECT run FROM main.recent_run_ids WHERE run > (SELECT coalesce(max(value), 0) "
    "FROM archive.archive_meta WHERE key = 'compacted_through')"
)
# what queries read, one row per reading; each arm gets the WHERE terms pushed down and
# uses its primary key (the runs arm seeks (run, series) once per run). ``latest``: the
# newest of closed runs (``latest_values``, kept as runs close) or of the open run
_VIEWS = f"""
CREATE TEMP VIEW IF NOT EXISTS readings AS
SELECT s.layer AS layer, s.sensor AS sensor, s.parameter AS parameter, p.time AS time,
       p.value AS value
FROM archive.series s JOIN archive.points p ON p.series = s.id
UNION ALL
SELECT s.layer, s.sensor, s.parameter, r.time, r.value
FROM archive.series s JOIN main.recent_runs r ON r.run IN ({_UNMOVED_RUNS})
     AND r.series = s.id;
CREATE TEMP VIEW IF NOT EXISTS latest AS
SELECT s.layer AS layer, s.sensor AS sensor, s.parameter AS parameter,
       CASE WHEN o.time > coalesce(l.time, o.time - 1) THEN o.time ELSE l.time END AS time,
       CASE WHEN o.time > coalesce(l.time, o.time - 1) THEN o.value ELSE l.value END AS value
FROM archive.series s
LEFT JOIN main.latest_values l ON l.series = s.id
LEFT JOIN main.recent_runs o
     ON o.run = (SELECT value FROM main.store_meta WHERE key = 'run') AND o.series = s.id
     AND o.time = (SELECT max(time) FROM main.recent_runs m WHERE m.series = s.id
                   AND m.run = (SELECT value FROM main.store_meta WHERE key = 'run'))
WHERE l.series IS NOT NULL OR o.series IS NOT NULL;
"""
# the tables of the single-file layout that now live in the live file
_MOVED_TO_LIVE = ("store_meta", "channel_counts", "alert_state", "alerts", "latest_values")


def live_path(archive: Path) -> Path:
    """The live file beside an archive: ``observations.sqlite`` → ``observations-live.sqlite``."""
    return archive.with_name(f"{archive.stem}-live{archive.suffix}")


def connection_setup(archive: Path):
    """What each new connection to the live file runs: attach the archive, make it as
    durable as the live file, create the TEMP views."""

    def setup(db: sqlite3.Connection) -> None:
        db.execute("ATTACH DATABASE ? AS archive", (str(archive),))
        db.execute("PRAGMA archive.journal_mode=WAL")
        db.execute("PRAGMA archive.synchronous=FULL")
        db.executescript(ARCHIVE_SCHEMA + LIVE_SCHEMA + _VIEWS)

    return setup


def moved_through(db: sqlite3.Connection) -> int:
    """The newest run number compacted into ``points`` (0 if none)."""
    row = db.execute(
        "SELECT value FROM archive.archive_meta WHERE key = 'compacted_through'"
    ).fetchone()
    return int(row[0]) if row else 0


def migrate_legacy_layouts(archive: Path) -> None:
    """Bring a store of an earlier one-file layout up to the archive's shape, on a plain
    connection to that file: the first layout's text-keyed ``readings`` table becomes
    series + points, a text-keyed ``latest`` table becomes ``latest_values`` (moved to
    the live file next, by :func:`move_tables_to_live`). Each step is one transaction;
    another process opening the store at the same time finds the work done."""
    if not archive.exists():
        return
    db = sqlite3.connect(archive, isolation_level=None, timeout=30.0)
    try:
        kinds = dict(db.execute("SELECT name, type FROM sqlite_master"))
        if kinds.get("readings") == "table":
            _migrate_readings_table(db)
        if kinds.get("latest") == "table":
            _migrate_latest_table(db)
    finally:
        db.close()


def move_tables_to_live(db: sqlite3.Connection) -> None:
    """Move what ingest writes out of an archive of the one-file layout (call with the
    live file's writer lock held). The live file first: its commit records the move, so
    a crash before the archive's tables are dropped leaves them unused, and the next open
    drops them; the old ``recent`` table's readings go straight into ``points``."""
    names = {r[0] for r in db.execute("SELECT name FROM archive.sqlite_master")}
    if not names & {*_MOVED_TO_LIVE, "recent", "readings", "latest"}:
        return
    row = db.execute("SELECT value FROM main.store_meta WHERE key = 'moved_from_archive'")
    if row.fetchone() is None:
        with transaction(db):
            for table in _MOVED_TO_LIVE:
                if table in names:
                    db.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM archive.{table}")
            db.execute("INSERT OR REPLACE INTO main.store_meta VALUES ('moved_from_archive', 1)")
    with transaction(db):
        if "recent" in names:
            db.execute(
                "INSERT OR IGNORE INTO archive.points SELECT series, time, value "
                "FROM archive.recent"
            )
        for view in ("readings", "latest"):
            db.execute(f"DROP VIEW IF EXISTS archive.{view}")
        for table in (*_MOVED_TO_LIVE, "recent"):
            db.execute(f"DROP TABLE IF EXISTS archive.{table}")


def _migrate_latest_table(db: sqlite3.Connection) -> None:
    """A text-keyed ``latest`` table (stores before ``latest_values``) becomes rows of
    ``latest_values``, in one transaction."""
    with immediate_transaction(db):
        row = db.execute("SELECT type FROM sqlite_master WHERE name='latest'").fetchone()
        if row is None or row[0] != "table":
            return
        db.execute(
            "CREATE TABLE IF NOT EXISTS latest_values (series INTEGER PRIMARY KEY, "
            "time INTEGER NOT NULL, value REAL NOT NULL)"
        )
        db.execute(
            "INSERT OR REPLACE INTO latest_values SELECT s.id, l.time, l.value FROM latest l "
            "JOIN series s ON s.layer = l.layer AND s.sensor = l.sensor "
            "AND s.parameter = l.parameter"
        )
        db.execute("DROP TABLE latest")


def _migrate_readings_table(db: sqlite3.Connection) -> None:
    """The first layout (one ``readings`` table keyed by layer, sensor, parameter and
    time) becomes series + points, in one transaction: integer series ids make a reading
    about a third of the size."""
    with immediate_transaction(db):
        row = db.execute("SELECT type FROM sqlite_master WHERE name='readings'").fetchone()
        if row is None or row[0] != "table":
            return
        for statement in ARCHIVE_SCHEMA.replace("archive.", "").split(";"):
            db.execute(statement)  # (executescript would commit the open transaction)
        db.execute(
            "INSERT OR IGNORE INTO series (layer, sensor, parameter) "
            "SELECT DISTINCT layer, sensor, parameter FROM readings"
        )
        db.execute(
            "INSERT OR IGNORE INTO points SELECT s.id, r.time, r.value FROM readings r "
            "JOIN series s ON s.layer = r.layer AND s.sensor = r.sensor "
            "AND s.parameter = r.parameter"
        )
        db.execute("DROP TABLE readings")
