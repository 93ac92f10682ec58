"""Alert rules evaluated on arrival, inside the same transaction as the readings.

An alert fires exactly once per upward crossing: each (rule, sensor, parameter) keeps an
"above" state, so a sensor that stays above its threshold does not fire again until it
has fallen back below. Readings older than the last evaluated one (late arrivals,
duplicates) do not move the state.

The rules are the same on every backend; where the state and the fired alerts are kept is
an ``AlertBook`` (``SqliteAlertBook`` here; the PostgreSQL observation store has its own).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

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
    and written inside the transaction that stores the readings)."""

    def state(self, key: tuple[str, str, str, str]) -> tuple[bool, int] | None:
        """(above, last evaluated time in ms) of (rule, layer, sensor, parameter)."""

    def value_before(
        self, layer: str, sensor: str, parameter: str, time_ms: int
    ) -> tuple[int, float] | None:
        """The newest stored reading (time in ms, value) at or before ``time_ms``."""

    def set_state(self, key: tuple[str, str, str, str], above: bool, last: int) -> None: ...

    def record(self, fired: list[Alert]) -> None:
        """Store fired alerts (in the order given)."""


class SqliteAlertBook:
    """The alert tables of the observation store's live file (``SCHEMA``)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def state(self, key: tuple[str, str, str, str]) -> tuple[bool, int] | None:
        row = self.db.execute(
            "SELECT above, last_time FROM alert_state WHERE rule=? AND "
            "layer=? AND sensor=? AND parameter=?",
            key,
        ).fetchone()
        return (bool(row[0]), int(row[1])) if row else None

    def value_before(
        self, layer: str, sensor: str, parameter: str, time_ms: int
    ) -> tuple[int, float] | None:
        return self.db.execute(
            "SELECT time, value FROM readings WHERE layer=? AND sensor=? AND parameter=? AND "
            "time <= ? ORDER BY time DESC LIMIT 1",
            (layer, sensor, parameter, time_ms),
        ).fetchone()

    def set_state(self, key: tuple[str, str, str, str], above: bool, last: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO alert_state VALUES (?,?,?,?,?,?)", (*key, int(above), last)
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
    """Alerts fired by newly stored readings (sensor, parameter, time ms, value)."""
    fired: list[Alert] = []
    for rule in rules_for(layer, rules):
        rows = good[good["parameter"] == rule.get("parameter", "value")]
        if rows.empty:
            continue
        for sensor, series in rows.sort_values("time").groupby("sensor"):
            threshold = _threshold(rule, attributes.get(sensor, {}))
            if threshold is None:
                continue
            key = (rule["id"], layer, sensor, rule.get("parameter", "value"))
            above, last = book.state(key) or (False, -1)
            for t, v in zip(series["time"], series["value"], strict=True):
                if t <= last:
                    continue
                measure = v
                if rule["kind"] == "rate":
                    window = int(rule.get("window_hours", 24) * 3_600_000)
                    before = book.value_before(layer, sensor, key[3], int(t) - window)
                    if before is None:
                        last = t
                        continue
                    days = (int(t) - before[0]) / 86_400_000
                    measure = (v - before[1]) / days if days > 0 else 0.0
                now_above = measure > threshold
                if now_above and not above:
                    fired.append(
                        Alert(
                            rule["id"],
                            layer,
                            sensor,
                            key[3],
                            pd.Timestamp(int(t), unit="ms", tz="UTC"),
                            float(measure),
                            threshold,
                            rule.get("message", rule["id"]),
                        )
                    )
                above, last = now_above, t
            book.set_state(key, above, int(last))
    if fired:
        book.record(fired)
    return fired
