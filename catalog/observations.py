"""The observation store: sensor readings, durable on commit, fast for recent windows.

SQLite (WAL, synchronous=FULL) in two files (see ``observation_files``): an archive of
``points`` clustered by (series, time), so one sensor's window is one range scan, and a
live file that ingest writes. Each (layer, sensor, parameter) is a ``series`` with an
integer id; the ``readings`` view joins everything back for queries. A commit is on disk
when ``append`` returns, and any number of processes (server workers, CLI, notebooks)
can read while one writes.

New readings go to the open *run* of ``recent_runs`` (rows keyed (run, series, time)):
a batch from thousands of sensors touches the pages of one small run only. Every
``RUN_ROWS`` readings the run closes (a counter bump, nothing is copied) and the next
opens. Once ``COMPACT_ROWS`` readings wait in closed runs, a background thread moves
them into ``points`` in key order, so each leaf of that large tree is written once for
many readings, under the archive's write lock only: ingest goes on meanwhile. A query
seeks each run once (a few dozen seeks) besides ``points``.

Duplicates stay exact. Per series the live file keeps two horizons: ``newest``, the last
time outside the open run, and ``settled``, the same before the last run closed. A
reading newer than ``newest`` can only repeat one in the open run, whose key rejects it;
one between the two only one of the last closed run (or ``points``, if that run was
compacted since); older ones are checked against every run and ``points``. Horizons are
cached per process and reloaded when the store's generation changes: a bulk loader that
writes ``points`` directly should call ``compact()`` afterwards.

The newest reading of each series is kept in ``latest_values`` as runs close, and the
``latest`` view adds the open run's newest (one seek per series), so "latest reading of
every sensor" never scans history and a batch does not update a row per sensor.

``ObservationStore`` is the one class callers use. It composes three parts, each in a
module of its own: the append path (``observation_writes``: validation, series ids,
horizons, duplicate checks, channel counters), the compaction (``observation_compaction``:
closing runs, moving them into ``points``, the background thread) and the queries
(``observation_queries``). It holds what they share: the connections, the live file's
transaction, one append at a time per process, and the sizes at which runs close and
compactions start.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from . import observation_compaction as compaction
from . import observation_queries as queries
from .extension import Field
from .observation_compaction import COMPACTION_NICENESS, Compaction
from .observation_files import (
    connection_setup,
    live_path,
    migrate_legacy_layouts,
    move_tables_to_live,
)
from .observation_store import ReadingStore
from .observation_writes import (
    FUTURE_TOLERANCE,
    AppendResult,
    ObservationWriter,
    SensorSpec,
    factorize_names,
)
from .stac import rel
from .storage import SqliteConnections, exclusive_lock

__all__ = [
    "COMPACTION_NICENESS",
    "COMPACT_ROWS",
    "FUTURE_TOLERANCE",
    "MAX_WAITING",
    "RUN_ROWS",
    "AppendResult",
    "ObservationStore",
    "SensorSpec",
    "factorize_names",
]

# read on each append (so a test may shrink them here, before or after opening a store)
RUN_ROWS = 100_000  # readings appended to one run before the next one opens
COMPACT_ROWS = 1_000_000  # readings waiting in closed runs before they move to ``points``
# readings waiting beyond which an append compacts in its own thread: ingest may outrun
# the (lower-priority) background compaction in a burst, not for ever
MAX_WAITING = 4 * COMPACT_ROWS


class ObservationStore(ReadingStore):
    """Readings of every sensor layer: an archive file and its live file beside it (the
    embedded backend of the :class:`~.observation_store.ReadingStore` contract)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)  # the archive; the live file is found beside it
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer_lock = self.path.with_name(f".{self.path.name}.writer.lock")
        with exclusive_lock(writer_lock):
            migrate_legacy_layouts(self.path)
        self._connections = SqliteConnections(
            live_path(self.path), setup=connection_setup(self.path)
        )
        self._appending = threading.Lock()
        self._writer = ObservationWriter(self._connections.get, writer_lock)
        self._compaction = Compaction(
            self.path,
            self.path.with_name(f".{self.path.name}.compact.lock"),
            self._connections.get,
            # looked up on each call: every part writes the live file through the store's
            # one ``_transaction`` (which a test may stand in for)
            lambda: self._transaction(),
        )
        with exclusive_lock(writer_lock):
            move_tables_to_live(self.db)
        with self._transaction() as db:
            self._writer.open_first_run(db)

    @property
    def live_path(self) -> Path:
        return live_path(self.path)

    @property
    def db(self) -> sqlite3.Connection:
        return self._connections.get()

    def close(self) -> None:
        self.wait_for_compaction()
        self._connections.close()

    def data_assets(self, item_dir: Path, layer: str) -> dict[str, dict]:
        """The archive and the live file, as a readings layer's item names them."""
        return {
            "data": {
                "href": rel(self.path, item_dir),
                "type": "application/vnd.sqlite3",
                "title": "observation store: archive (series, points)",
                "roles": ["data"],
                Field.STORE_LAYER: layer,
            },
            "live": {
                "href": rel(self.live_path, item_dir),
                "type": "application/vnd.sqlite3",
                "title": "observation store: live file (recent runs, newest values, "
                "alerts); attaches the archive as 'archive'",
                "roles": ["data"],
            },
        }

    def dump(self, chunk: int = 200_000) -> Iterator[tuple[str, pd.DataFrame]]:
        """Every stored reading, by layer in chunks: (layer, frame of sensor_id,
        parameter, time as epoch ms, value); what ``shikong migrate`` copies."""
        yield from queries.dump(self.db, chunk)

    def alert_tables(self) -> tuple[list[tuple], list[tuple]]:
        """Fired alerts (rule, layer, sensor, parameter, time ms, value, threshold,
        message) in the order they fired, and alert states (rule, layer, sensor,
        parameter, above, last time ms)."""
        return queries.alert_tables(self.db)

    def all_counts(self) -> list[tuple[str, str, int]]:
        """Every channel counter: (channel, reason, n)."""
        return self.db.execute("SELECT channel, reason, n FROM channel_counts").fetchall()

    def _transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A transaction on the live file, with its writers queued on a file lock (see
        ``ObservationWriter.transaction``)."""
        return self._writer.transaction()

    # the append path (observation_writes)

    def register_series(self, keys: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
        """Ids of (layer, sensor, parameter) series, created if new, in a commit of the
        archive of their own (bulk loaders write ``points`` rows with them)."""
        return self._writer.register_series(keys)

    def append(
        self,
        layer: str,
        frame: pd.DataFrame,
        sensors: dict[str, SensorSpec],
        now: pd.Timestamp | None = None,
        attributes: dict[str, dict] | None = None,
    ) -> AppendResult:
        """Validate readings (sensor_id, time, value[, parameter]) and commit the good ones.

        Unknown sensors, unparseable times, times in the future, values that are not
        numbers or lie outside the sensor's valid range are refused and counted; a
        reading already stored (same sensor, parameter and time) counts as a duplicate.
        """
        # one append at a time per process: threads cannot validate in parallel anyway
        # (the GIL), and a thread holding the writer lock while others take turns at the
        # GIL held it four times as long (two server workers gained nothing)
        with self._appending:
            result, waiting = self._writer.append(
                layer, frame, sensors, now, attributes, run_rows=RUN_ROWS
            )
            if waiting >= MAX_WAITING:
                self._move_closed_runs(wait=True)
            elif waiting >= COMPACT_ROWS:
                self._compact_in_background()
            return result

    def add_counts(self, channel: str, counts: dict[str, int]) -> None:
        """Add to an ingest channel's counters (messages, accepted, refusals by reason),
        kept here so that every worker process of a server adds to the same ones."""
        self._writer.add_counts(channel, counts)

    def counts(self, channel: str) -> dict[str, int]:
        """An ingest channel's counters, summed over every process that added to them."""
        return self._writer.counts(channel)

    # compaction (observation_compaction)

    def waiting(self, db: sqlite3.Connection | None = None) -> int:
        """Readings in closed runs not yet compacted into ``points`` (the open run's
        count is not set until it closes)."""
        return compaction.waiting(db or self.db)

    def compact(self) -> int:
        """Move every reading of the live file into ``points`` now; returns how many
        moved. Runs by itself, in the background, as readings gather. Also raises the
        horizons to ``points``, so it is the call to make after writing there directly."""
        return self._compaction.compact()

    def wait_for_compaction(self) -> None:
        """Return once a background compaction of this process (if any) has finished."""
        self._compaction.wait()

    def _compact_in_background(self) -> None:
        """Start a background compaction unless one of this process is running."""
        self._compaction.in_background()

    def _move_closed_runs(self, wait: bool) -> int:
        """Move the closed runs into ``points`` in this thread (see ``Compaction``)."""
        return self._compaction.move_closed_runs(wait)

    # queries (observation_queries)

    def window(
        self,
        layer: str,
        sensors: list[str] | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        parameters: list[str] | None = None,
    ) -> pd.DataFrame:
        """Readings in a time window (inclusive), as sensor_id, parameter, time, value."""
        return queries.window(self.db, layer, sensors, start, end, parameters)

    def resample(
        self,
        layer: str,
        sensors: list[str] | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        freq: str = "1h",
        how: str = "mean",
        parameters: list[str] | None = None,
    ) -> pd.DataFrame:
        """Aggregates per sensor, parameter and time bucket (e.g. hourly mean, daily max),
        computed in SQL on the clustered key."""
        return queries.resample(self.db, layer, sensors, start, end, freq, how, parameters)

    def latest(self, layer: str, sensors: list[str] | None = None) -> pd.DataFrame:
        """The newest reading of each sensor and parameter."""
        return queries.latest(self.db, layer, sensors)

    def alerts(
        self, layer: str | None = None, since: pd.Timestamp | None = None, limit: int = 1000
    ) -> pd.DataFrame:
        """Fired alerts, newest first."""
        return queries.alerts(self.db, layer, since, limit)

    def layers(self) -> list[str]:
        """The layers whose sensors have sent readings."""
        return queries.layers(self.db)

    def parameters(self, layer: str) -> list[str]:
        """The parameters a layer's sensors have reported (from the latest table)."""
        return queries.parameters(self.db, layer)

    def last_time(self, layer: str) -> pd.Timestamp | None:
        """Time of the newest reading of a layer, from the small latest table."""
        return queries.last_time(self.db, layer)

    def extent(self, layer: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None, int]:
        """First and last reading time of a layer, and the number of readings."""
        return queries.extent(self.db, layer)
