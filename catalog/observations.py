"""The observation store: sensor readings, durable on commit, fast for recent windows.

SQLite (WAL, synchronous=FULL). Each (layer, sensor, parameter) is a ``series`` with an
integer id; ``points`` are clustered by (series, time), so one sensor's window is one
range scan, and the ``readings`` view joins them back for queries. A commit is on disk
when ``append`` returns, and any number of processes (server, CLI, notebooks) can read
while one writes.

New readings land in ``recent``, a small table of the same shape, and move to ``points``
in bulk every ``COMPACT_ROWS`` readings (a log-structured merge in two levels). A batch
from thousands of sensors touches one leaf page of ``points`` per sensor; written there
directly, each commit rewrote thousands of pages of a large tree (53k readings/s on a
5,000,000-reading store), while the small table stays in cache and a compaction writes
each leaf once for many readings (238k readings/s, compactions included). Duplicates stay
exact: a reading not newer than its series' last compacted time (its "horizon") is
checked against ``points``; newer ones can only collide inside ``recent``. Horizons are
cached per process and reloaded when the store's generation changes: a bulk loader that
writes ``points`` directly should call ``compact()`` afterwards, which bumps it.

The newest reading of each series is kept up to date on ingest (``latest_values``, read
through the ``latest`` view) so "latest reading of every sensor" never scans history.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import alerts
from .storage import SqliteConnections, exclusive_lock, immediate_transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, layer TEXT NOT NULL, sensor TEXT NOT NULL,
    parameter TEXT NOT NULL, UNIQUE (layer, sensor, parameter)
);
CREATE TABLE IF NOT EXISTS points (
    series INTEGER NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (series, time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recent (
    series INTEGER NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (series, time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS channel_counts (
    channel TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (channel, reason)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latest_values (
    series INTEGER PRIMARY KEY, time INTEGER NOT NULL, value REAL NOT NULL
);
"""
# the newest reading per series, named as when it was a table keyed by text: an ingest
# batch updates one integer-keyed row per series (half the cost of the text-keyed upsert)
_LATEST_VIEW = """
CREATE VIEW IF NOT EXISTS latest AS
SELECT s.layer AS layer, s.sensor AS sensor, s.parameter AS parameter, l.time AS time,
       l.value AS value
FROM series s JOIN latest_values l ON l.series = s.id;
"""
# what queries read: one row per reading, named as before the points/series split; each
# arm of the UNION ALL gets the query's WHERE terms pushed down and uses its primary key
_READINGS_VIEW = """
CREATE VIEW IF NOT EXISTS readings AS
SELECT s.layer AS layer, s.sensor AS sensor, s.parameter AS parameter, p.time AS time,
       p.value AS value
FROM series s JOIN points p ON p.series = s.id
UNION ALL
SELECT s.layer, s.sensor, s.parameter, r.time, r.value
FROM series s JOIN recent r ON r.series = s.id;
"""
COMPACT_ROWS = 200_000  # readings gathered in ``recent`` before they move to ``points``
_NO_HORIZON = np.int64(-(2**62))  # the horizon arrays take its dtype
FUTURE_TOLERANCE = pd.Timedelta(minutes=10)  # clocks drift; a reading from next week is wrong


@dataclass(frozen=True)
class SensorSpec:
    """What the store needs to know of a sensor to accept its readings."""

    sensor: str
    min_valid: float = -np.inf
    max_valid: float = np.inf


@dataclass
class AppendResult:
    """Readings stored, and readings refused with the reason for each."""

    accepted: int = 0
    duplicates: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> count
    alerts: list = field(default_factory=list)  # Alert objects fired by this batch
    examples: list[str] = field(default_factory=list)  # first few refusals, for logs

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def refuse(self, mask: np.ndarray, reason: str, frame: pd.DataFrame) -> None:
        n = int(mask.sum())
        if n:
            self.rejected[reason] += n
            if len(self.examples) < 5:
                row = frame[mask].iloc[0]
                self.examples.append(
                    f"{reason}: sensor {row.get('sensor_id')!r} at "
                    f"{row.get('time')!r} value {row.get('value')!r}"
                )


class ObservationStore:
    """Readings of every sensor layer in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._connections = SqliteConnections(self.path)
        self._writer_lock = self.path.with_name(f".{self.path.name}.writer.lock")
        self._appending = threading.Lock()
        self.db.executescript(_SCHEMA + alerts.SCHEMA)
        _migrate_readings_table(self.db)
        _replace_readings_view(self.db)
        _migrate_latest_table(self.db)
        self._series: dict[tuple[str, str, str], int] = {}  # committed series ids
        self._horizon = np.full(0, _NO_HORIZON)  # per series id: last compacted time (ms)
        self._generation: int | None = None  # of the horizons above (see compact)
        self._pending = 0  # readings this process put in ``recent`` since a compaction

    def register_series(self, keys: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
        """Ids of (layer, sensor, parameter) series, created if new, in a commit of their own
        (bulk loaders write ``points`` rows with them)."""
        with self._transaction() as db:
            ids = self.series_ids(db, keys)
        self._series.update(ids)
        return ids

    def series_ids(
        self, db: sqlite3.Connection, keys: set[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], int]:
        """Ids of (layer, sensor, parameter) series, new ones added (call inside the
        write transaction; the cache is updated only after its commit)."""
        found = {k: self._series[k] for k in keys if k in self._series}
        missing = [k for k in keys if k not in found]
        if missing:
            db.executemany(
                "INSERT OR IGNORE INTO series (layer, sensor, parameter) VALUES (?,?,?)", missing
            )
            for layer in {k[0] for k in missing}:
                for sid, sensor, parameter in db.execute(
                    "SELECT id, sensor, parameter FROM series WHERE layer=?", (layer,)
                ):
                    found.setdefault((layer, sensor, parameter), sid)
        return found

    @property
    def db(self) -> sqlite3.Connection:
        return self._connections.get()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT with the store's writers queued on a file lock.

        Threads and worker processes then take turns as soon as one commits; left to
        SQLite, a writer finding the file locked sleeps between retries (up to 100 ms
        each), far longer than a batch's transaction takes.
        """
        with exclusive_lock(self._writer_lock), immediate_transaction(self.db) as db:
            yield db

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
            return self._append(layer, frame, sensors, now, attributes)

    def _append(
        self,
        layer: str,
        frame: pd.DataFrame,
        sensors: dict[str, SensorSpec],
        now: pd.Timestamp | None,
        attributes: dict[str, dict] | None,
    ) -> AppendResult:
        result = AppendResult()
        if frame.empty:
            return result
        now = now or pd.Timestamp.now(tz="UTC")
        frame = frame.reset_index(drop=True)
        # plain Python lists and numpy arrays: pandas' Arrow strings iterate slowly
        # per distinct sensor and parameter, not per reading: a batch holds few of each
        s_code, sensor = factorize_names(frame["sensor_id"], str)
        if "parameter" in frame:
            p_code, parameter = factorize_names(
                frame["parameter"], lambda v: str(v) if v not in (None, "") and v == v else "value"
            )
        else:
            p_code, parameter = np.zeros(len(frame), np.intp), ["value"]
        # cache=False: a batch rarely repeats a timestamp string, so the cache only costs
        times = pd.to_datetime(
            frame["time"], errors="coerce", utc=True, format="ISO8601", cache=False
        )
        values = pd.to_numeric(frame["value"], errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
        specs = [sensors.get(s_) for s_ in sensor]
        known = np.array([spec is not None for spec in specs], bool)[s_code]
        result.refuse(~known, "unknown sensor", frame)
        ok = known.copy()
        bad_time = ok & times.isna().to_numpy()
        result.refuse(bad_time, "unparseable time", frame)
        ok &= ~bad_time
        future = ok & (times > now + FUTURE_TOLERANCE).fillna(False).to_numpy()
        result.refuse(future, "time in the future", frame)
        ok &= ~future
        bad_value = ok & ~np.isfinite(values)
        result.refuse(bad_value, "value is not a number", frame)
        ok &= ~bad_value
        lo = np.array([sp.min_valid if sp else -np.inf for sp in specs], float)[s_code]
        hi = np.array([sp.max_valid if sp else np.inf for sp in specs], float)[s_code]
        with np.errstate(invalid="ignore"):
            out_of_range = ok & ((values < lo) | (values > hi))
        result.refuse(out_of_range, "value outside the sensor's valid range", frame)
        ok &= ~out_of_range
        keep = np.flatnonzero(ok)
        if keep.size == 0:  # every reading refused: nothing to commit
            return result
        ms = times.dt.as_unit("ms").to_numpy(dtype="int64", na_value=0)
        pair_code = s_code[keep] * len(parameter) + p_code[keep]
        distinct, pair_of = np.unique(pair_code, return_inverse=True)
        pairs = [(sensor[c // len(parameter)], parameter[c % len(parameter)]) for c in distinct]
        t_ms, vals = ms[keep], values[keep]
        # series ids and the batch's order are settled before the writer lock when every
        # series is known (the usual case): other writers wait only for the SQL below
        known_ids = self._series  # committed ids; new series get theirs in the transaction
        per_pair = [known_ids.get((layer, s_, p_)) for s_, p_ in pairs]
        fresh: dict[tuple[str, str, str], int] = {}
        keyed = None if None in per_pair else _in_key_order(per_pair, pair_of, t_ms, vals)
        with self._transaction() as db:
            if keyed is None:
                wanted = {(layer, *pairs[i]) for i, v in enumerate(per_pair) if v is None}
                fresh = self.series_ids(db, wanted)
                per_pair = [
                    v if v is not None else fresh[(layer, *pairs[i])]
                    for i, v in enumerate(per_pair)
                ]
                keyed = _in_key_order(per_pair, pair_of, t_ms, vals)
            sid, t_ms, vals, first = keyed
            result.duplicates += len(pair_of) - len(first)  # repeated within the batch
            horizon = self._horizons(db, int(sid.max()))
            late = t_ms <= horizon[sid]  # may repeat a compacted reading: checked in points
            before = db.total_changes
            for table, rows in (("recent", ~late), ("points", late)):
                if rows.any():
                    picked = (sid[rows].tolist(), t_ms[rows].tolist(), vals[rows].tolist())
                    db.executemany(
                        f"INSERT OR IGNORE INTO {table} VALUES (?,?,?)", zip(*picked, strict=True)
                    )
            inserted = db.total_changes - before
            if attributes is not None and alerts.rules_for(layer):  # seen in the same commit
                which = pair_of[first]
                good = pd.DataFrame(
                    {
                        "sensor": pd.array([pairs[i][0] for i in which], dtype=object),
                        "parameter": pd.array([pairs[i][1] for i in which], dtype=object),
                        "time": t_ms,
                        "value": vals,
                    }
                )
                result.alerts = alerts.evaluate(db, layer, good, attributes)
            # the newest reading of each series in the batch (the last of its run)
            last = np.r_[sid[1:] != sid[:-1], True]
            db.executemany(
                "INSERT INTO latest_values VALUES (?,?,?) ON CONFLICT DO UPDATE SET "
                "time=excluded.time, value=excluded.value WHERE excluded.time > latest_values.time",
                zip(sid[last].tolist(), t_ms[last].tolist(), vals[last].tolist(), strict=True),
            )
        self._series.update(fresh)
        result.accepted = inserted
        result.duplicates += len(sid) - inserted  # already stored before this batch
        self._pending += inserted
        if self._pending >= COMPACT_ROWS:
            self.compact()
        return result

    def add_counts(self, channel: str, counts: dict[str, int]) -> None:
        """Add to an ingest channel's counters (messages, accepted, refusals by reason),
        kept here so that every worker process of a server adds to the same ones."""
        if counts:
            with self._transaction() as db:
                db.executemany(
                    "INSERT INTO channel_counts VALUES (?,?,?) "
                    "ON CONFLICT DO UPDATE SET n = n + excluded.n",
                    [(channel, reason, int(n)) for reason, n in counts.items()],
                )

    def counts(self, channel: str) -> dict[str, int]:
        """An ingest channel's counters, summed over every process that added to them."""
        rows = self.db.execute(
            "SELECT reason, n FROM channel_counts WHERE channel=? ORDER BY reason", (channel,)
        )
        return dict(rows.fetchall())

    def _horizons(self, db: sqlite3.Connection, max_series: int) -> np.ndarray:
        """Last compacted time per series id (call inside a transaction). Reloaded from
        ``points`` when another process compacted, or bulk-loaded, since this one read."""
        row = db.execute("SELECT value FROM store_meta WHERE key='generation'").fetchone()
        generation = row[0] if row else 0
        if generation != self._generation:
            last = db.execute(
                "SELECT id, (SELECT max(time) FROM points WHERE series = s.id) FROM series s"
            ).fetchall()
            self._horizon = np.full(max((i for i, _ in last), default=-1) + 1, _NO_HORIZON)
            for sid, t in last:
                if t is not None:
                    self._horizon[sid] = t
            self._generation = generation
        if max_series >= len(self._horizon):  # series newer than the cache: none compacted
            grown = np.full(max_series + 1, _NO_HORIZON)
            grown[: len(self._horizon)] = self._horizon
            self._horizon = grown
        return self._horizon

    def compact(self) -> int:
        """Move every reading of ``recent`` into ``points`` in one transaction; returns
        how many moved. Runs by itself every ``COMPACT_ROWS`` readings appended."""
        with self._transaction() as db:
            newest = db.execute("SELECT series, max(time) FROM recent GROUP BY series").fetchall()
            # current horizons first (reloaded only if another process compacted since)
            horizon = self._horizons(db, max((s for s, _ in newest), default=0))
            db.execute("INSERT OR IGNORE INTO points SELECT series, time, value FROM recent")
            moved = db.execute("DELETE FROM recent").rowcount
            db.execute(
                "INSERT INTO store_meta VALUES ('generation', 1) "
                "ON CONFLICT DO UPDATE SET value = value + 1"
            )
            generation = db.execute(
                "SELECT value FROM store_meta WHERE key='generation'"
            ).fetchone()[0]
        for sid, last in newest:  # this process knows the new horizons without a reload
            horizon[sid] = max(int(horizon[sid]), last)
        self._generation = generation
        self._pending = 0
        return moved

    def window(
        self,
        layer: str,
        sensors: list[str] | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        parameters: list[str] | None = None,
    ) -> pd.DataFrame:
        """Readings in a time window (inclusive), as sensor_id, parameter, time, value."""
        where, args = _where(layer, sensors, parameters, start, end)
        sql = f"SELECT sensor, parameter, time, value FROM readings WHERE {where}"
        return _frame(self.db.execute(sql + " ORDER BY sensor, parameter, time", args))

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
        """Aggregates per sensor, parameter and time bucket (e.g. hourly mean, daily max).

        Buckets are computed in SQL on the clustered key, so a month of one sensor is a
        single range scan, not a pandas resample of every reading.
        """
        functions = {"mean": "avg", "max": "max", "min": "min", "sum": "sum", "count": "count"}
        if how not in functions:
            raise ValueError(f"how={how!r}: one of {', '.join(functions)}")
        bucket = int(pd.Timedelta(freq).total_seconds() * 1000)
        if bucket <= 0:
            raise ValueError(f"freq={freq!r} is not a positive duration")
        where, args = _where(layer, sensors, parameters, start, end)
        sql = (
            f"SELECT sensor, parameter, (time / {bucket}) * {bucket} AS bucket, "
            f"{functions[how]}(value), count(*) FROM readings WHERE {where}"
        )
        sql += " GROUP BY sensor, parameter, bucket ORDER BY sensor, parameter, bucket"
        frame = pd.DataFrame(
            self.db.execute(sql, args).fetchall(),
            columns=["sensor_id", "parameter", "time", how, "n"],
        )
        frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
        return frame

    def latest(self, layer: str, sensors: list[str] | None = None) -> pd.DataFrame:
        """The newest reading of each sensor and parameter."""
        where, args = _where(layer, sensors)
        sql = f"SELECT sensor, parameter, time, value FROM latest WHERE {where}"
        return _frame(self.db.execute(sql + " ORDER BY sensor, parameter", args))

    def alerts(
        self, layer: str | None = None, since: pd.Timestamp | None = None, limit: int = 1000
    ) -> pd.DataFrame:
        """Fired alerts, newest first."""
        sql, args = (
            "SELECT id, rule, layer, sensor, parameter, time, value, threshold, "
            "message FROM alerts WHERE 1=1",
            [],
        )
        if layer is not None:
            sql, args = sql + " AND layer=?", [*args, layer]
        if since is not None:
            sql, args = sql + " AND time >= ?", [*args, _ms(since)]
        rows = self.db.execute(sql + " ORDER BY time DESC, id DESC LIMIT ?", [*args, limit])
        frame = pd.DataFrame(
            rows.fetchall(),
            columns=[
                "id",
                "rule",
                "layer",
                "sensor_id",
                "parameter",
                "time",
                "value",
                "threshold",
                "message",
            ],
        )
        frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
        return frame

    def parameters(self, layer: str) -> list[str]:
        """The parameters a layer's sensors have reported (from the latest table)."""
        rows = self.db.execute(
            "SELECT DISTINCT parameter FROM latest WHERE layer=? ORDER BY parameter", (layer,)
        )
        return [r[0] for r in rows]

    def last_time(self, layer: str) -> pd.Timestamp | None:
        """Time of the newest reading of a layer, from the small latest table."""
        row = self.db.execute("SELECT max(time) FROM latest WHERE layer=?", (layer,)).fetchone()
        return _ts(row[0])

    def extent(self, layer: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None, int]:
        """First and last reading time of a layer, and the number of readings."""
        first, last, count = self.db.execute(
            "SELECT min(time), max(time), count(*) FROM readings WHERE layer=?", (layer,)
        ).fetchone()
        return _ts(first), _ts(last), count


def _where(
    layer: str,
    sensors: list[str] | None = None,
    parameters: list[str] | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (and its arguments) shared by the store's queries."""
    clauses, args = ["layer=?"], [layer]
    for column, values in (("sensor", sensors), ("parameter", parameters)):
        if values is not None:
            clauses.append(f"{column} IN ({','.join('?' * len(values))})")
            args += list(values)
    if start is not None:
        clauses.append("time >= ?")
        args.append(_ms(start))
    if end is not None:
        clauses.append("time <= ?")
        args.append(_ms(end))
    return " AND ".join(clauses), args


def _ts(ms: int | None) -> pd.Timestamp | None:
    return None if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC")


def _ms(value: pd.Timestamp | str) -> int:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def _frame(cursor: sqlite3.Cursor) -> pd.DataFrame:
    frame = pd.DataFrame(cursor.fetchall(), columns=["sensor_id", "parameter", "time", "value"])
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
    return frame


def factorize_names(column: pd.Series, name: Callable[[Any], str]) -> tuple[np.ndarray, list[str]]:
    """(code per row, distinct names) with ``name`` applied once per distinct value, not
    per row (a batch holds few sensors); values that map to the same name share a code."""
    codes, distinct = pd.factorize(column.to_numpy(dtype=object), use_na_sentinel=False)
    names = [name(v) for v in distinct]
    unique_names = list(dict.fromkeys(names))
    if len(unique_names) == len(names):
        return codes, names
    position = {n: i for i, n in enumerate(unique_names)}
    return np.array([position[n] for n in names], np.intp)[codes], unique_names


def _replace_readings_view(db: sqlite3.Connection) -> None:
    """Create the ``readings`` view, replacing one from before ``recent`` existed."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE name='readings'").fetchone()
    if row is not None and "recent" not in row[0]:
        db.execute("DROP VIEW readings")
    db.executescript(_READINGS_VIEW)


def _in_key_order(
    per_pair: list[int], pair_of: np.ndarray, t_ms: np.ndarray, vals: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Series id, time and value of a batch's readings, the first of each repeated
    (series, time) only, in key order: each insert then lands next to the one before it
    in the tree. Also the positions kept (``first``)."""
    sid = np.array(per_pair, np.int64)[pair_of]
    key = sid * 2**42 + t_ms  # epoch ms stays below 2**42 until the year 2109
    _, first = np.unique(key, return_index=True)
    return sid[first], t_ms[first], vals[first], first


def _migrate_latest_table(db: sqlite3.Connection) -> None:
    """Turn a text-keyed ``latest`` table (stores before ``latest_values``) into rows of
    ``latest_values`` and the ``latest`` view, in one transaction; another process
    opening the store at the same time finds the work done and leaves it."""
    with immediate_transaction(db):
        row = db.execute("SELECT type FROM sqlite_master WHERE name='latest'").fetchone()
        if row is not None and row[0] == "table":
            db.execute(
                "INSERT OR REPLACE INTO latest_values SELECT s.id, l.time, l.value FROM latest l "
                "JOIN series s ON s.layer = l.layer AND s.sensor = l.sensor "
                "AND s.parameter = l.parameter"
            )
            db.execute("DROP TABLE latest")
        db.execute(_LATEST_VIEW)


def _migrate_readings_table(db: sqlite3.Connection) -> None:
    """Move a store of the first layout (one ``readings`` table keyed by layer, sensor,
    parameter and time) to series + points, in one transaction: integer series ids make
    a reading about a third of the size and an ingest batch touch fewer pages."""
    row = db.execute("SELECT type FROM sqlite_master WHERE name='readings'").fetchone()
    if row is None or row[0] != "table":
        return
    with immediate_transaction(db):
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
