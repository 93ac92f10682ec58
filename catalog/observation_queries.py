"""What the observation store answers: windows, buckets, latest values, alerts, extents.

Read-only functions over one connection of the store (its live file with the archive
attached). They read the TEMP views ``readings`` and ``latest`` (see
``observation_files``), which span ``points``, the runs not yet compacted and the newest
value per series, so nothing here needs to know where a reading currently lies. Times
go in as timestamps (naive ones are taken as UTC) and come out as UTC timestamps; the
files hold epoch milliseconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pandas as pd

from .storage import transaction

AGGREGATES = {"mean": "avg", "max": "max", "min": "min", "sum": "sum", "count": "count"}
_ALERT_COLUMNS = [
    "id",
    "rule",
    "layer",
    "sensor_id",
    "parameter",
    "time",
    "value",
    "threshold",
    "message",
]


def window(
    db: sqlite3.Connection,
    layer: str,
    sensors: list[str] | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    parameters: list[str] | None = None,
) -> pd.DataFrame:
    """Readings in a time window (inclusive), as sensor_id, parameter, time, value."""
    where, args = _where(layer, sensors, parameters, start, end)
    sql = f"SELECT sensor, parameter, time, value FROM readings WHERE {where}"
    return as_frame(db.execute(sql + " ORDER BY sensor, parameter, time", args))


def resample(
    db: sqlite3.Connection,
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
    bucket = bucket_ms(freq, how)
    where, args = _where(layer, sensors, parameters, start, end)
    sql = (
        f"SELECT sensor, parameter, (time / {bucket}) * {bucket} AS bucket, "
        f"{AGGREGATES[how]}(value), count(*) FROM readings WHERE {where}"
    )
    sql += " GROUP BY sensor, parameter, bucket ORDER BY sensor, parameter, bucket"
    return buckets_frame(db.execute(sql, args).fetchall(), how)


def buckets_frame(rows: list[tuple], how: str) -> pd.DataFrame:
    """Aggregates (sensor, parameter, bucket start ms, aggregate, count) as a frame."""
    frame = pd.DataFrame(rows, columns=["sensor_id", "parameter", "time", how, "n"])
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
    return frame


def bucket_ms(freq: str, how: str) -> int:
    """A resample's bucket in milliseconds, once ``freq`` and ``how`` are checked."""
    if how not in AGGREGATES:
        raise ValueError(f"how={how!r}: one of {', '.join(AGGREGATES)}")
    bucket = int(pd.Timedelta(freq).total_seconds() * 1000)
    if bucket <= 0:
        raise ValueError(f"freq={freq!r} is not a positive duration")
    return bucket


def latest(db: sqlite3.Connection, layer: str, sensors: list[str] | None = None) -> pd.DataFrame:
    """The newest reading of each sensor and parameter (the ``latest`` view: one row per
    series, never a scan of history)."""
    where, args = _where(layer, sensors)
    sql = f"SELECT sensor, parameter, time, value FROM latest WHERE {where}"
    return as_frame(db.execute(sql + " ORDER BY sensor, parameter", args))


def alerts(
    db: sqlite3.Connection,
    layer: str | None = None,
    since: pd.Timestamp | None = None,
    limit: int = 1000,
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
        sql, args = sql + " AND time >= ?", [*args, epoch_ms(since)]
    rows = db.execute(sql + " ORDER BY time DESC, id DESC LIMIT ?", [*args, limit])
    return alerts_frame(rows.fetchall())


def alerts_frame(rows: list[tuple]) -> pd.DataFrame:
    """Fired alerts (id, rule, layer, sensor, parameter, time ms, value, threshold,
    message) as the store answers them."""
    frame = pd.DataFrame(rows, columns=_ALERT_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
    return frame


def layers(db: sqlite3.Connection) -> list[str]:
    """The layers with a newest reading (one row per series in ``latest``)."""
    return [r[0] for r in db.execute("SELECT DISTINCT layer FROM latest ORDER BY layer")]


def parameters(db: sqlite3.Connection, layer: str) -> list[str]:
    """The parameters a layer's sensors have reported (from the latest table)."""
    rows = db.execute(
        "SELECT DISTINCT parameter FROM latest WHERE layer=? ORDER BY parameter", (layer,)
    )
    return [r[0] for r in rows]


def last_time(db: sqlite3.Connection, layer: str) -> pd.Timestamp | None:
    """Time of the newest reading of a layer, from the small latest table."""
    row = db.execute("SELECT max(time) FROM latest WHERE layer=?", (layer,)).fetchone()
    return as_timestamp(row[0])


def extent(
    db: sqlite3.Connection, layer: str
) -> tuple[pd.Timestamp | None, pd.Timestamp | None, int]:
    """First and last reading time of a layer, and the number of readings."""
    first, last, count = db.execute(
        "SELECT min(time), max(time), count(*) FROM readings WHERE layer=?", (layer,)
    ).fetchone()
    return as_timestamp(first), as_timestamp(last), count


def dump(db: sqlite3.Connection, chunk: int) -> Iterator[tuple[str, pd.DataFrame]]:
    """Every reading, layer by layer, in frames of at most ``chunk`` (sensor_id,
    parameter, time as epoch ms, value), read series by series from one snapshot."""
    columns = ["sensor_id", "parameter", "time", "value"]
    with transaction(db):  # one snapshot, whatever a compaction moves meanwhile
        layers = [r[0] for r in db.execute("SELECT DISTINCT layer FROM archive.series")]
        for layer in sorted(layers):
            cursor = db.execute(
                "SELECT sensor, parameter, time, value FROM readings WHERE layer=?", (layer,)
            )
            while rows := cursor.fetchmany(chunk):
                yield layer, pd.DataFrame(rows, columns=columns)


def alert_tables(db: sqlite3.Connection) -> tuple[list[tuple], list[tuple]]:
    """Fired alerts in the order they fired, and the alert states (see the store)."""
    fired = db.execute(
        "SELECT rule, layer, sensor, parameter, time, value, threshold, message FROM alerts "
        "ORDER BY id"
    ).fetchall()
    states = db.execute(
        "SELECT rule, layer, sensor, parameter, above, last_time FROM alert_state"
    ).fetchall()
    return fired, states


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
        args.append(epoch_ms(start))
    if end is not None:
        clauses.append("time <= ?")
        args.append(epoch_ms(end))
    return " AND ".join(clauses), args


def as_timestamp(ms: int | None) -> pd.Timestamp | None:
    return None if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC")


def epoch_ms(value: pd.Timestamp | str) -> int:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def as_frame(cursor: Any) -> pd.DataFrame:
    """Readings (sensor, parameter, time ms, value) of a cursor (SQLite's or psycopg's)."""
    frame = pd.DataFrame(cursor.fetchall(), columns=["sensor_id", "parameter", "time", "value"])
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
    return frame
