"""The observation store's compaction: closing runs and moving them into ``points``.

A run closes with a counter bump (nothing is copied): its newest reading per series goes
into ``latest_values`` and the horizons move up (see ``observations``). Closed runs are
moved into the archive's ``points`` in key order, in one transaction of the archive that
also records the last run moved (``compacted_through``): readers take those runs from
``points`` from that commit on, even while their rows still sit in the live file, and a
second transaction of the live file deletes them. The move holds the archive's write
lock only, so ingest, which writes the live file, goes on meanwhile; a background thread
at a lower priority does it as readings gather.

The bookkeeping of runs (``store_meta``: the open run, its row count, the generation of
the horizons) is read and written here, and by the append path through these helpers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .observation_files import moved_through
from .storage import exclusive_lock, transaction

log = logging.getLogger(__name__)

COMPACTION_NICENESS = 10  # of the background thread: ingest first, compaction in the gaps
NO_HORIZON = np.int64(-(2**62))  # the horizon arrays take its dtype

# a transaction on the live file, with its writers queued on the store's file lock
Transaction = Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]]


def meta(db: sqlite3.Connection, *keys: str) -> list[int]:
    """Counters of ``store_meta`` (0 when never set), read inside a transaction."""
    marks = ",".join("?" * len(keys))
    found = dict(db.execute(f"SELECT key, value FROM store_meta WHERE key IN ({marks})", keys))
    return [int(found.get(k, 0)) for k in keys]


def set_meta(db: sqlite3.Connection, **values: int) -> None:
    db.executemany("INSERT OR REPLACE INTO store_meta VALUES (?,?)", values.items())


def waiting(db: sqlite3.Connection) -> int:
    """Readings in closed runs not yet compacted into ``points`` (the open run's count is
    not set until it closes)."""
    row = db.execute(
        "SELECT coalesce(sum(rows), 0) FROM recent_run_ids WHERE run > ?",
        (moved_through(db),),
    ).fetchone()
    return int(row[0])


def close_run(db: sqlite3.Connection, run: int) -> int:
    """Close the open run and open the next; returns how many readings wait in closed
    runs for compaction. The closing run's newest reading per series goes into
    ``latest_values``, its newest time into ``newest``; the previous ``newest`` becomes
    ``settled``."""
    (run_rows,) = meta(db, "run_rows")
    db.execute(
        "INSERT INTO latest_values SELECT series, max(time), value FROM recent_runs "
        "WHERE run = ? GROUP BY series ON CONFLICT DO UPDATE SET time = excluded.time, "
        "value = excluded.value WHERE excluded.time > latest_values.time",
        (run,),
    )
    db.execute("UPDATE horizons SET settled = newest")
    db.execute(
        "INSERT INTO horizons SELECT series, ?, max(time) FROM recent_runs WHERE run = ? "
        "GROUP BY series ON CONFLICT DO UPDATE SET newest = max(newest, excluded.newest)",
        (int(NO_HORIZON), run),
    )
    db.execute(
        "UPDATE recent_run_ids SET rows = ?, (first_time, last_time) = (SELECT min(time), "
        "max(time) FROM recent_runs WHERE run = ?) WHERE run = ?",
        (run_rows, run, run),
    )
    db.execute("INSERT OR IGNORE INTO recent_run_ids (run) VALUES (?)", (run + 1,))
    (generation,) = meta(db, "generation")
    set_meta(db, run=run + 1, run_rows=0, generation=generation + 1)
    return waiting(db)


def horizons_from_points(db: sqlite3.Connection) -> None:
    """Raise both horizons of every series to its last time in ``points`` (one seek per
    series) and bump the generation, so that every process reloads them."""
    db.execute(
        "INSERT INTO horizons SELECT h.id, t, t FROM (SELECT id, (SELECT max(time) FROM "
        "archive.points p WHERE p.series = s.id) AS t FROM archive.series s) h "
        "WHERE t IS NOT NULL ON CONFLICT DO UPDATE SET "
        "settled = max(settled, excluded.settled), newest = max(newest, excluded.newest)"
    )
    db.execute(
        "INSERT INTO store_meta VALUES ('generation', 1) "
        "ON CONFLICT DO UPDATE SET value = value + 1"
    )


class Compaction:
    """Moves one store's closed runs into ``points``: on request, or in a background
    thread of this process; other processes and threads take turns on a file lock."""

    def __init__(
        self,
        path: Path,
        lock: Path,
        connection: Callable[[], sqlite3.Connection],
        live_transaction: Transaction,
    ) -> None:
        self.path = path  # the archive, named in logs
        self._lock = lock  # held while moving runs, by any process
        self._db = connection  # this thread's connection to the live file and the archive
        self._live_transaction = live_transaction
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def compact(self) -> int:
        """Close the open run and move every closed one into ``points`` now; returns how
        many readings moved. Then raise the horizons to ``points`` (after a bulk load)."""
        with self._live_transaction() as db:
            (run,) = meta(db, "run")
            close_run(db, run)
        moved = self.move_closed_runs(wait=True)
        with self._live_transaction() as db:
            horizons_from_points(db)
        return moved

    def wait(self) -> None:
        """Return once a background compaction of this process (if any) has finished."""
        thread = self._thread
        if thread is not None:
            thread.join()

    def in_background(self) -> None:
        """Start a background compaction unless one of this process is running."""
        with self._guard:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._quietly, name="shikong-compaction", daemon=True
            )
            self._thread.start()

    def _quietly(self) -> None:
        """The background compaction: a failure leaves the runs where they are (queries
        still read them) to be moved by the next one; it never reaches an ingest."""
        with contextlib.suppress(OSError, AttributeError):  # Linux: a thread's own niceness
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), COMPACTION_NICENESS)
        try:
            self.move_closed_runs(wait=False)
        except Exception:
            log.exception("compaction of %s failed; its runs stay in the live file", self.path)

    def move_closed_runs(self, wait: bool) -> int:
        """Copy every closed run into ``points`` and record the last one moved, in one
        transaction of the archive (readers then take those runs from ``points``); then
        delete them from the live file. Without ``wait``, returns 0 at once if another
        process or thread is compacting."""
        with exclusive_lock(self._lock, wait=wait) as locked:
            if not locked:
                return 0
            with transaction(self._db()) as db:
                # the archive's write lock first: a later upgrade could find it stale
                db.execute(
                    "INSERT OR IGNORE INTO archive.archive_meta VALUES ('compacted_through', 0)"
                )
                done = moved_through(db)
                (run,) = meta(db, "run")
                through = run - 1
                before = db.total_changes
                db.execute(
                    "INSERT OR IGNORE INTO archive.points SELECT series, time, value "
                    "FROM recent_runs WHERE run IN (SELECT run FROM recent_run_ids "
                    "WHERE run > ? AND run <= ?) ORDER BY series, time",
                    (done, through),
                )
                moved = db.total_changes - before
                db.execute(
                    "UPDATE archive.archive_meta SET value = ? WHERE key = 'compacted_through'",
                    (max(done, through),),
                )
            with self._live_transaction() as db:
                db.execute("DELETE FROM recent_runs WHERE run <= ?", (through,))
                db.execute("DELETE FROM recent_run_ids WHERE run <= ?", (through,))
            return moved
