"""Alert rules evaluated on arrival, inside the same transaction as the readings.

An alert fires exactly once per upward crossing: each (rule, sensor, parameter) keeps an
"above" state, so a sensor that stays above its threshold does not fire again until it
has fallen back below. Readings older than the last evaluated one (late arrivals,
duplicates) do not move the state.

The rules are the same on every backend; where the state and the fired alerts are kept is
an ``AlertBook`` (``SqliteAlertBook`` here; the PostgreSQL observation store has its own).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from shikong.config import load as load_config

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_state (
    rule TEXT NOT NULL, layer TEXT NOT NULL, sensor TEXT NOT NULL, parameter TEXT NOT NULL,
    above INTEGER NOT NULL, last_time INTEGER NOT NULL,
    PRIMARY KEY (rule, layer, sensor, parameter)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, rule TEXT NOT NULL, layer TEXT NOT NULL, sensor TEXT NOT NULL,
    parameter TEXT NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL,
    threshold REAL NOT NULL, message TEXT
);
CREATE INDEX IF NOT EXISTS alerts_time ON alerts (time);
"""


@dataclass(frozen=True)
class Alert:
    rule: str
    layer: str
    sensor: str
    parameter: str
    time: pd.Timestamp
    value: float
    threshold: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "layer": self.layer,
            "sensor_id": self.sensor,
            "parameter": self.parameter,
            "time": self.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
        }


def rules_for(layer: str, rules: list[dict] | None = None) -> list[dict]:
    rules = rules if rules is not None else load_config("alert_rules")["rules"]
    return [r for r in rules if layer in r.get("layers", [])]


def _threshold(rule: dict, attrs: dict[str, Any]) -> float | None:
    if "threshold" in rule:
        return float(rule["threshold"])
    value = attrs.get(rule.get("threshold_field", ""))
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class AlertBook(Protocol):
    """Where a backend keeps the alert state and the fired alerts (its own tables, read
    and written inside the transaction that stores the readings). States are read and
    written for every sensor of a batch at once: a batch holds thousands of sensors, and
    a round trip per sensor cost more than storing the readings."""

    def states(
        self, rule: str, layer: str, parameter: str, sensors: list[str]
    ) -> dict[str, tuple[bool, int]]:
        """(above, last evaluated time in ms) of the sensors that have a state."""

    def value_before(
        self, layer: str, sensor: str, parameter: str, time_ms: int
    ) -> tuple[int, float] | None:
        """The newest stored reading (time in ms, value) at or before ``time_ms``."""

    def set_states(
        self, rule: str, layer: str, parameter: str, rows: list[tuple[str, bool, int]]
    ) -> None:
        """Replace the states of these sensors: (sensor, above, last time in ms)."""

    def record(self, fired: list[Alert]) -> None:
        """Store fired alerts (in the order given)."""


class SqliteAlertBook:
    """The alert tables of the observation store's live file (``SCHEMA``)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def states(
        self, rule: str, layer: str, parameter: str, sensors: list[str]
    ) -> dict[str, tuple[bool, int]]:
        rows = self.db.execute(
            "SELECT sensor, above, last_time FROM alert_state WHERE rule=? AND layer=? AND "
            "parameter=? AND sensor IN (SELECT value FROM json_each(?))",
            (rule, layer, parameter, json.dumps(sensors)),
        )
        return {sensor: (bool(above), int(last)) for sensor, above, last in rows}

    def value_before(
        self, layer: str, sensor: str, parameter: str, time_ms: int
    ) -> tuple[int, float] | None:
        return self.db.execute(
            "SELECT time, value FROM readings WHERE layer=? AND sensor=? AND parameter=? AND "
            "time <= ? ORDER BY time DESC LIMIT 1",
            (layer, sensor, parameter, time_ms),
        ).fetchone()

    def set_states(
        self, rule: str, layer: str, parameter: str, rows: list[tuple[str, bool, int]]
    ) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO alert_state VALUES (?,?,?,?,?,?)",
            [(rule, layer, sensor, parameter, int(above), last) for sensor, above, last in rows],
        )

    def record(self, fired: list[Alert]) -> None:
        self.db.executemany(
            "INSERT INTO alerts (rule, layer, sensor, parameter, time, value, threshold, "
            "message) VALUES (?,?,?,?,?,?,?,?)",
            [alert_row(a) for a in fired],
        )


def alert_row(a: Alert) -> tuple[str, str, str, str, int, float, float, str]:
    """An alert as the alert tables hold it (time in epoch ms)."""
    time_ms = int(a.time.value // 1_000_000)
    return (a.rule, a.layer, a.sensor, a.parameter, time_ms, a.value, a.threshold, a.message)


def evaluate(
    book: AlertBook,
    layer: str,
    good: pd.DataFrame,
    attributes: dict[str, dict[str, Any]],
    rules: list[dict] | None = None,
) -> list[Alert]:
    """Alerts fired by newly stored readings (sensor, parameter, time ms, value; one per
    sensor and time), in rule, sensor and time order.

    Each sensor's readings are taken in time order from its state: those no newer than
    its last evaluated one are skipped, and a reading fires when it is above the
    threshold and the one before it (or the state) was not. A threshold rule does this
    for every sensor of the batch at once in numpy; a rate rule reading by reading, since
    each reading needs the stored one a window before it.
    """
    fired: list[Alert] = []
    for rule in rules_for(layer, rules):
        parameter = rule.get("parameter", "value")
        rows = good[good["parameter"] == parameter]
        if rows.empty:
            continue
        codes, sensors = pd.factorize(rows["sensor"].to_numpy(dtype=object), sort=True)
        found = [_threshold(rule, attributes.get(s, {})) for s in sensors]
        has = np.array([f is not None for f in found], bool)
        keep = has[codes]  # a sensor without a threshold has no state either
        if not keep.any():
            continue
        thresholds = np.array([np.nan if f is None else f for f in found], float)
        codes = codes[keep]
        t = rows["time"].to_numpy(np.int64)[keep]
        v = rows["value"].to_numpy(float)[keep]
        order = np.lexsort((t, codes))
        codes, t, v = codes[order], t[order], v[order]
        present = np.flatnonzero(has)
        known = book.states(rule["id"], layer, parameter, [sensors[c] for c in present])
        above = np.zeros(len(sensors), bool)
        last = np.full(len(sensors), -1, np.int64)
        for c in present:
            if sensors[c] in known:
                above[c], last[c] = known[sensors[c]]
        if rule["kind"] == "rate":
            hits, measures = _rate(book, rule, layer, sensors, codes, t, v, thresholds, above, last)
        else:
            hits, measures = _crossings(codes, t, v, thresholds, above, last)
        fired += [
            Alert(
                rule["id"],
                layer,
                sensors[codes[i]],
                parameter,
                pd.Timestamp(int(t[i]), unit="ms", tz="UTC"),
                float(measures[i]),
                float(thresholds[codes[i]]),
                rule.get("message", rule["id"]),
            )
            for i in hits
        ]
        book.set_states(
            rule["id"],
            layer,
            parameter,
            [(sensors[c], bool(above[c]), int(last[c])) for c in present],
        )
    if fired:
        book.record(fired)
    return fired


def _crossings(
    codes: np.ndarray,
    t: np.ndarray,
    v: np.ndarray,
    thresholds: np.ndarray,
    above: np.ndarray,
    last: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Upward crossings of a threshold rule (positions in the sorted readings, and the
    measures: the values); ``above`` and ``last`` move to each sensor's newest reading.
    Readings are sorted by sensor, then time (distinct per sensor)."""
    live = t > last[codes]  # later ones of a sensor are newer still
    at = np.flatnonzero(live)
    c = codes[at]
    now = v[at] > thresholds[c]
    first = np.r_[True, c[1:] != c[:-1]] if len(c) else np.zeros(0, bool)
    before = np.empty_like(now)
    before[1:] = now[:-1]
    before[first] = above[c[first]]
    newest = np.r_[c[1:] != c[:-1], True] if len(c) else np.zeros(0, bool)
    above[c[newest]] = now[newest]
    last[c[newest]] = t[at][newest]
    return at[now & ~before], v


def _rate(
    book: AlertBook,
    rule: dict,
    layer: str,
    sensors: np.ndarray,
    codes: np.ndarray,
    t: np.ndarray,
    v: np.ndarray,
    thresholds: np.ndarray,
    above: np.ndarray,
    last: np.ndarray,
) -> tuple[list[int], np.ndarray]:
    """Upward crossings of a rate rule: the change per day since the stored reading a
    window before each reading; a reading with none that old moves only ``last``."""
    window = int(rule.get("window_hours", 24) * 3_600_000)
    parameter = rule.get("parameter", "value")
    measures = np.zeros(len(t))
    hits = []
    for i in range(len(t)):
        c = codes[i]
        if t[i] <= last[c]:
            continue
        before = book.value_before(layer, sensors[c], parameter, int(t[i]) - window)
        if before is None:
            last[c] = t[i]
            continue
        days = (int(t[i]) - before[0]) / 86_400_000
        measures[i] = (v[i] - before[1]) / days if days > 0 else 0.0
        now_above = bool(measures[i] > thresholds[c])
        if now_above and not above[c]:
            hits.append(i)
        above[c], last[c] = now_above, t[i]
    return hits, measures
