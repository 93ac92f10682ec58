"""The observation store's levels (runs in the live file → ``points`` in the archive):
duplicates stay exact and queries answer the same across runs, background compactions,
late readings, a second writer and a compaction cut off between its two commits."""

from __future__ import annotations

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
    monkeypatch.setattr(observations, "RUN_ROWS", 15)  # a new run every batch or so
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
    store.wait_for_compaction()
    assert store.db.execute("SELECT count(*) FROM points").fetchone()[0] > 0  # it compacted
    assert store.db.execute("SELECT value FROM store_meta WHERE key='run'").fetchone()[0] > 9
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


def test_a_compaction_cut_off_between_its_commits_counts_each_reading_once(
    tmp_path, small_level, monkeypatch
):
    rng = np.random.default_rng(5)
    store = ObservationStore(tmp_path / "o.sqlite")
    monkeypatch.setattr(store, "_compact_in_background", lambda: None)  # by hand below
    readings = batch(rng, np.arange(60))
    assert store.append("wat-g", readings, SENSORS).accepted == 60
    expect = store.window("wat-g")
    real = store._transaction

    def cut_off():  # the archive committed; the process dies before the live file does
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_transaction", cut_off)
    with pytest.raises(KeyboardInterrupt):
        store._move_closed_runs(wait=True)
    monkeypatch.setattr(store, "_transaction", real)
    in_points = store.db.execute("SELECT count(*) FROM points").fetchone()[0]
    in_runs = store.db.execute("SELECT count(*) FROM recent_runs").fetchone()[0]
    assert in_points > 0 and in_points + in_runs > 60  # moved rows are in both files now
    pd.testing.assert_frame_equal(store.window("wat-g"), expect)  # each counted once
    again = ObservationStore(tmp_path / "o.sqlite")  # another process: the same answers
    pd.testing.assert_frame_equal(again.window("wat-g"), expect)
    assert again.append("wat-g", readings, SENSORS).duplicates == 60
    assert again.compact() == 60 - in_points  # the rest; the moved runs are dropped
    assert again.db.execute("SELECT count(*) FROM recent_runs").fetchone()[0] == 0
    pd.testing.assert_frame_equal(again.window("wat-g"), expect)


def test_ingest_outrunning_compaction_waits_for_it(tmp_path, small_level, monkeypatch):
    """With the background compaction held off, an append that finds more than
    MAX_WAITING readings in closed runs moves them itself: the backlog stays bounded."""
    monkeypatch.setattr(observations, "MAX_WAITING", 100)
    rng = np.random.default_rng(6)
    store = ObservationStore(tmp_path / "o.sqlite")
    monkeypatch.setattr(store, "_compact_in_background", lambda: None)
    for step in range(20):
        store.append("wat-g", batch(rng, np.arange(step * 25, step * 25 + 25)), SENSORS)
        waiting = store.db.execute(
            "SELECT coalesce(sum(rows), 0) FROM recent_run_ids WHERE rows IS NOT NULL "
            "AND run > (SELECT coalesce(max(value), 0) FROM archive.archive_meta)"
        ).fetchone()[0]
        assert waiting < 100 + 25
    assert store.db.execute("SELECT count(*) FROM points").fetchone()[0] > 0
