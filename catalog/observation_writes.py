"""The observation store's append path: validating readings and committing them to the
open run of the live file, exactly once each.

A batch is validated in numpy (per distinct sensor and parameter, not per reading),
given series ids (new series in a commit of the archive of their own), put in key order
and inserted into the open run under the live file's writer lock. Duplicates are checked
against the horizons (see ``observations``): a reading newer than ``newest`` can only
repeat one of the open run, whose key rejects it; older ones are checked in SQL against
the closed runs whose time span holds them and against ``points``. The horizons are
cached per process and reloaded when the store's generation changes. When the open run
is full it closes here (``observation_compaction.close_run``); moving closed runs into
``points`` is the compaction's job.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import alerts
from .observation_compaction import NO_HORIZON, close_run, horizons_from_points, meta, set_meta
from .storage import exclusive_lock, insert_rows, transaction

FUTURE_TOLERANCE = pd.Timedelta(minutes=10)  # clocks drift; a reading from next week is wrong
_UNKNOWN = (np.nan, np.nan)  # the valid range of a sensor the layer does not have


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


@dataclass
class Valid:
    """The readings of a batch that passed validation."""

    pairs: list[tuple[str, str]]  # distinct (sensor, parameter)
    pair_of: np.ndarray  # per reading, its index in ``pairs``
    t_ms: np.ndarray  # epoch milliseconds
    vals: np.ndarray


class ObservationWriter:
    """Appends readings to one store's live file; caches series ids and horizons."""

    def __init__(self, connection: Callable[[], sqlite3.Connection], writer_lock: Path) -> None:
        self._db = connection  # this thread's connection to the live file and the archive
        self._writer_lock = writer_lock  # held by whoever writes the live file, any process
        # committed series ids: layer -> (sensor, parameter) -> id
        self._series_of: dict[str, dict[tuple[str, str], int]] = {}
        # cached per series id (see _horizons), valid while the store's generation holds
        self._settled = self._newest = np.full(0, NO_HORIZON)
        self._last_run = 0
        self._generation: int | None = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A transaction on the live file, with its writers queued on a file lock.

        Threads and worker processes then take turns as soon as one commits; left to
        SQLite, a writer finding the file locked sleeps between retries (up to 100 ms
        each), far longer than a batch's transaction takes. BEGIN, not BEGIN IMMEDIATE:
        that would take the archive's write lock too and wait for a compaction; with the
        file lock held no other writer of the live file can commit before this one's
        first write, so that write cannot find its snapshot stale.
        """
        try:
            with exclusive_lock(self._writer_lock), transaction(self._db()) as db:
                yield db
        except BaseException:
            self._generation = None  # horizons cached in a rolled-back transaction: reload
            raise

    @staticmethod
    def open_first_run(db: sqlite3.Connection) -> None:
        """Open run 1 of a new live file, and take horizons from the archive's points
        (a store of the one-file layout, or a bulk-loaded archive)."""
        if db.execute("SELECT 1 FROM recent_run_ids").fetchone() is not None:
            return
        db.execute("INSERT INTO recent_run_ids (run) VALUES (1)")
        set_meta(db, run=1, run_rows=0)
        horizons_from_points(db)

    def register_series(self, keys: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
        """Ids of (layer, sensor, parameter) series, created if new, in a commit of the
        archive of their own (bulk loaders write ``points`` rows with them)."""
        found = {k: i for k in keys if (i := self._series_of.get(k[0], {}).get(k[1:])) is not None}
        missing = [k for k in keys if k not in found]
        if missing:
            with transaction(self._db()) as db:  # takes the archive's lock, not the live one
                db.executemany(
                    "INSERT OR IGNORE INTO archive.series (layer, sensor, parameter) "
                    "VALUES (?,?,?)",
                    missing,
                )
                for layer in {k[0] for k in missing}:
                    for sid, sensor, parameter in db.execute(
                        "SELECT id, sensor, parameter FROM archive.series WHERE layer=?", (layer,)
                    ):
                        found.setdefault((layer, sensor, parameter), sid)
        for (layer, sensor, parameter), sid in found.items():
            self._series_of.setdefault(layer, {})[(sensor, parameter)] = sid
        return found

    def append(
        self,
        layer: str,
        frame: pd.DataFrame,
        sensors: dict[str, SensorSpec],
        now: pd.Timestamp | None,
        attributes: dict[str, dict] | None,
        run_rows: int,
    ) -> tuple[AppendResult, int]:
        """Validate readings and commit the good ones to the open run, closing it once it
        holds ``run_rows``; returns the result and how many readings then wait in closed
        runs for compaction (0 when no run closed)."""
        result = AppendResult()
        valid = validate(frame, sensors, now, result)
        if valid is None:
            return result, 0
        pairs, pair_of = valid.pairs, valid.pair_of
        # series ids (new ones in a commit of the archive of their own) and the batch's
        # order are settled before the writer lock: other writers wait only for the SQL
        known_ids = self._series_of.setdefault(layer, {})
        per_pair = [known_ids.get(pair) for pair in pairs]
        if None in per_pair:
            self.register_series({(layer, *pair) for pair in pairs})
            per_pair = [known_ids[pair] for pair in pairs]
        keyed = in_key_order(per_pair, pair_of, valid.t_ms, valid.vals)
        sid, t_ms, vals, first = keyed
        result.duplicates += len(pair_of) - len(first)  # repeated within the batch
        with self.transaction() as db:
            run, in_run = meta(db, "run", "run_rows")
            settled, newest, last_run = self._horizons(db, int(sid.max()))
            old = t_ms <= settled[sid]  # may repeat a reading of any run or of points
            near = ~old & (t_ms <= newest[sid])  # of the last closed run (or points)
            before = db.total_changes
            plain = ~(old | near)
            insert_rows(
                db,
                "INSERT OR IGNORE INTO recent_runs",
                [sid[plain].tolist(), t_ms[plain].tolist(), vals[plain].tolist()],
                row=f"({int(run)},?,?,?)",
            )
            if near.any() or old.any():
                _insert_unless_stored(db, run, last_run, sid, t_ms, vals, near, old)
            inserted = db.total_changes - before
            if attributes is not None and alerts.rules_for(layer):  # seen in the same commit
                good = alert_frame(pairs, pair_of[first], t_ms, vals)
                result.alerts = alerts.evaluate(alerts.SqliteAlertBook(db), layer, good, attributes)
            set_meta(db, run_rows=in_run + inserted)
            waiting = close_run(db, run) if in_run + inserted >= run_rows else 0
        result.accepted = inserted
        result.duplicates += len(keyed[0]) - inserted  # already stored before this batch
        return result, waiting

    def add_counts(self, channel: str, counts: dict[str, int]) -> None:
        """Add to an ingest channel's counters (messages, accepted, refusals by reason),
        kept here so that every worker process of a server adds to the same ones."""
        if counts:
            with self.transaction() as db:
                db.executemany(
                    "INSERT INTO channel_counts VALUES (?,?,?) "
                    "ON CONFLICT DO UPDATE SET n = n + excluded.n",
                    [(channel, reason, int(n)) for reason, n in counts.items()],
                )

    def counts(self, channel: str) -> dict[str, int]:
        """An ingest channel's counters, summed over every process that added to them."""
        rows = self._db().execute(
            "SELECT reason, n FROM channel_counts WHERE channel=? ORDER BY reason", (channel,)
        )
        return dict(rows.fetchall())

    def _horizons(
        self, db: sqlite3.Connection, max_series: int
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Per series id the settled and newest horizons (see the module's docstring), and
        the last closed run (call inside a transaction); reloaded when a run closed or a
        compaction raised them in another process."""
        run, generation = meta(db, "run", "generation")
        if generation != self._generation:
            rows = db.execute("SELECT series, settled, newest FROM horizons").fetchall()
            size = max((r[0] for r in rows), default=-1) + 1
            self._settled = np.full(size, NO_HORIZON)
            self._newest = np.full(size, NO_HORIZON)
            if rows:
                sids, settled, newest = (np.array(c, np.int64) for c in zip(*rows, strict=True))
                self._settled[sids], self._newest[sids] = settled, newest
            self._last_run, self._generation = run - 1, generation
        if max_series >= len(self._settled):  # series newer than the cache: none closed
            grow = np.full(max_series + 1 - len(self._settled), NO_HORIZON)
            self._settled, self._newest = np.r_[self._settled, grow], np.r_[self._newest, grow]
        return self._settled, self._newest, self._last_run


def validate(
    frame: pd.DataFrame,
    sensors: dict[str, SensorSpec],
    now: pd.Timestamp | None,
    result: AppendResult,
) -> Valid | None:
    """The readings (sensor_id, time, value[, parameter]) fit to store; the others are
    counted as refused in ``result``. None when none is left."""
    if frame.empty:
        return None
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
    times = pd.to_datetime(frame["time"], errors="coerce", utc=True, format="ISO8601", cache=False)
    values = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    # valid range per distinct sensor (NaN: unknown sensor), one pass over them
    bounds = np.array(
        [(sp.min_valid, sp.max_valid) if (sp := sensors.get(s_)) else _UNKNOWN for s_ in sensor],
        float,
    ).reshape(-1, 2)
    known = ~np.isnan(bounds[:, 0])[s_code]
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
    lo, hi = bounds[s_code, 0], bounds[s_code, 1]
    with np.errstate(invalid="ignore"):
        out_of_range = ok & ((values < lo) | (values > hi))
    result.refuse(out_of_range, "value outside the sensor's valid range", frame)
    ok &= ~out_of_range
    keep = np.flatnonzero(ok)
    if keep.size == 0:  # every reading refused: nothing to commit
        return None
    ms = times.dt.as_unit("ms").to_numpy(dtype="int64", na_value=0)
    pair_code = s_code[keep] * len(parameter) + p_code[keep]
    distinct, pair_of = np.unique(pair_code, return_inverse=True)
    n_par = len(parameter)
    pairs = list(
        zip(
            _objects(sensor)[distinct // n_par],
            _objects(parameter)[distinct % n_par],
            strict=True,
        )
    )
    return Valid(pairs, pair_of, ms[keep], values[keep])


def _insert_unless_stored(
    db: sqlite3.Connection,
    run: int,
    last_run: int,
    sid: np.ndarray,
    t_ms: np.ndarray,
    vals: np.ndarray,
    near: np.ndarray,
    old: np.ndarray,
) -> None:
    """Insert the readings that may repeat a stored one into the open run unless
    their (series, time) is stored: in a closed run whose time span holds theirs (a
    ``near`` one only in the last closed run), or in ``points`` (an ``old`` one; a
    near one once the last closed run was compacted and left this file). Checked in
    SQL, 100 readings per statement (``insert_rows``); a gateway's backfill of last
    week then costs one seek in ``points`` per reading, not one per run."""
    closed = db.execute(
        "SELECT run, first_time, last_time FROM recent_run_ids WHERE rows IS NOT NULL"
    ).fetchall()
    spans = np.array([c[1:] for c in closed], np.int64).reshape(-1, 2)
    runs = np.array([c[0] for c in closed], np.int64)
    for rows, in_points in ((near, last_run not in runs), (old, True)):
        if not rows.any():
            continue
        t = t_ms[rows]
        overlap = (t[:, None] >= spans[:, 0]) & (t[:, None] <= spans[:, 1])
        candidates = runs[overlap.any(axis=0)]
        if rows is near:
            candidates = candidates[candidates == last_run]
        unless = []
        if candidates.size:
            unless.append(
                f"NOT EXISTS (SELECT 1 FROM recent_runs WHERE run IN "
                f"({','.join(map(str, candidates.tolist()))}) AND series = c.s AND time = c.t)"
            )
        if in_points:
            unless.append(
                "NOT EXISTS (SELECT 1 FROM archive.points WHERE series = c.s AND time = c.t)"
            )
        where = " AND ".join(unless) or "1"
        insert_rows(
            db,
            "WITH c(s, t, v) AS (",
            [sid[rows].tolist(), t.tolist(), vals[rows].tolist()],
            f") INSERT OR IGNORE INTO recent_runs SELECT {int(run)}, s, t, v FROM c WHERE {where}",
        )


def alert_frame(
    pairs: list[tuple[str, str]], which: np.ndarray, t_ms: np.ndarray, vals: np.ndarray
) -> pd.DataFrame:
    """A batch's readings (one per series and time) as the alert rules read them."""
    sensors = _objects([p[0] for p in pairs])  # per pair, then taken per reading at once
    parameters = _objects([p[1] for p in pairs])
    return pd.DataFrame(
        {
            "sensor": pd.array(sensors[which], dtype=object),
            "parameter": pd.array(parameters[which], dtype=object),
            "time": t_ms,
            "value": vals,
        }
    )


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


def _objects(names: list[str]) -> np.ndarray:
    """Names as an object array (fancy indexing keeps them Python strings)."""
    array = np.empty(len(names), object)
    array[:] = names
    return array


def in_key_order(
    per_pair: list[int], pair_of: np.ndarray, t_ms: np.ndarray, vals: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Series id, time and value of a batch's readings, the first of each repeated
    (series, time) only, in key order: each insert then lands next to the one before it
    in the tree. Also the positions kept (``first``)."""
    sid = np.array(per_pair, np.int64)[pair_of]
    key = sid * 2**42 + t_ms  # epoch ms stays below 2**42 until the year 2109
    _, first = np.unique(key, return_index=True)
    return sid[first], t_ms[first], vals[first], first
