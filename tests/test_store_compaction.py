"""The observation store's two levels (``recent`` → ``points``): duplicates stay exact and
queries answer the same across compactions, late readings and a second writer."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from shikong.catalog import observations
from shikong.catalog.observations import ObservationStore, SensorSpec

T0 = pd.Timestamp("2026-03-01", tz="UTC")
SENSORS = {f"S{i}": SensorSpec(f"S{i}", -1e9, 1e9) for i in range(7)}


def batch(rng, minutes: np.ndarray) -> pd.DataFrame:
    sensors = rng.choice(list(SENSORS), minutes.size)
    return pd.DataFrame(
        {
            "sensor_id": sensors,
            "time": [(T0 + pd.Timedelta(minutes=int(m))).isoformat() for m in minutes],
            "value": rng.normal(10, 3, minutes.size).round(3),
        }
    )


@pytest.fixture
def small_level(monkeypatch):
    monkeypatch.setattr(observations, "COMPACT_ROWS", 40)  # compact every few batches


def test_duplicates_and_queries_are_exact_across_compactions(tmp_path, small_level):
    rng = np.random.default_rng(3)
    store = ObservationStore(tmp_path / "o.sqlite")
    truth: dict[tuple[str, int], float] = {}  # (sensor, minute) -> first value stored
    accepted = duplicates = 0
    sent: list[pd.DataFrame] = []
    for step in range(30):
        fresh = batch(rng, rng.integers(step * 20, step * 20 + 40, 25))  # overlapping windows
        if sent and step % 3 == 0:  # resend part of an earlier batch, long compacted
            fresh = pd.concat([fresh, sent[rng.integers(len(sent))].iloc[:10]])
        if step % 5 == 4:  # late readings: older than everything compacted, some new
            fresh = pd.concat([fresh, batch(rng, rng.integers(0, step * 20, 15))])
        sent.append(fresh)
        result = store.append("wat-g", fresh, SENSORS)
        accepted += result.accepted
        duplicates += result.duplicates
        for s, t, v in zip(fresh.sensor_id, fresh.time, fresh.value, strict=True):
            minute = int((pd.Timestamp(t) - T0) / pd.Timedelta(minutes=1))
            truth.setdefault((s, minute), v)
    total = sum(len(f) for f in sent)
    assert accepted == len(truth) and duplicates == total - len(truth)
    assert store.db.execute("SELECT count(*) FROM points").fetchone()[0] > 0  # it compacted
    assert store.db.execute("SELECT count(*) FROM recent").fetchone()[0] < 40 + 60
    expect = pd.DataFrame(
        [(s, T0 + pd.Timedelta(minutes=m), v) for (s, m), v in truth.items()],
        columns=["sensor_id", "time", "value"],
    ).sort_values(["sensor_id", "time"], ignore_index=True)
    got = store.window("wat-g")[["sensor_id", "time", "value"]]
    pd.testing.assert_frame_equal(got, expect, check_dtype=False)
    hourly = store.resample("wat-g", freq="1h", how="mean")
    truth_hourly = expect.groupby(["sensor_id", expect.time.dt.floor("1h")])["value"].mean()
    assert np.allclose(hourly.set_index(["sensor_id", "time"])["mean"], truth_hourly)
    latest = store.latest("wat-g").set_index("sensor_id")["time"]
    assert latest.to_dict() == expect.groupby("sensor_id")["time"].max().to_dict()
    assert store.extent("wat-g")[2] == len(truth)


def test_a_second_writer_sees_the_first_ones_compaction(tmp_path, small_level):
    rng = np.random.default_rng(4)
    path = tmp_path / "o.sqlite"
    first, second = ObservationStore(path), ObservationStore(path)
    readings = batch(rng, np.arange(30))
    assert second.append("wat-g", readings.iloc[:5], SENSORS).accepted == 5  # caches horizons
    assert first.append("wat-g", readings, SENSORS).accepted == 25
    assert first.compact() == 30
    again = second.append("wat-g", readings, SENSORS)  # all in points now, second must know
    assert (again.accepted, again.duplicates) == (0, 30)
    assert len(second.window("wat-g")) == 30


def test_a_store_with_the_view_of_one_level_opens_with_both(tmp_path):
    path = tmp_path / "o.sqlite"
    ObservationStore(path).db.close()
    db = sqlite3.connect(path)
    db.executescript(
        "DROP VIEW readings; CREATE VIEW readings AS SELECT s.layer AS layer, s.sensor AS "
        "sensor, s.parameter AS parameter, p.time AS time, p.value AS value FROM series s "
        "JOIN points p ON p.series = s.id;"
    )
    db.close()
    store = ObservationStore(path)
    readings = batch(np.random.default_rng(5), np.arange(10))
    assert store.append("wat-g", readings, SENSORS).accepted == 10
    assert len(store.window("wat-g")) == 10  # served from ``recent`` through the new view
