"""Stores of earlier layouts open in today's (an archive of series + points, a live file
beside it) with every reading, newest value, counter and alert kept, and the same
queries answer the same."""

from __future__ import annotations

import sqlite3

import pandas as pd
from shikong.catalog.observations import ObservationStore, SensorSpec

OLD = """
CREATE TABLE readings (
    layer TEXT NOT NULL, sensor TEXT NOT NULL, parameter TEXT NOT NULL,
    time INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (layer, sensor, parameter, time)
) WITHOUT ROWID;
"""


def test_old_readings_table_is_migrated(tmp_path):
    path = tmp_path / "observations.sqlite"
    db = sqlite3.connect(path)
    db.executescript(OLD)
    t0 = pd.Timestamp("2026-01-01", tz="UTC").value // 1_000_000
    rows = [
        ("wat-g", f"S{i % 3}", "value" if i % 2 else "pm25", t0 + i * 60_000, float(i))
        for i in range(600)
    ]
    db.executemany("INSERT INTO readings VALUES (?,?,?,?,?)", rows)
    db.commit()
    db.close()
    store = ObservationStore(path)
    assert (
        store.db.execute("SELECT 1 FROM archive.sqlite_master WHERE name='readings'").fetchone()
        is None
    )
    assert store.db.execute("SELECT count(*) FROM points").fetchone() == (600,)
    assert store.db.execute("SELECT count(*) FROM series").fetchone() == (6,)
    window = store.window("wat-g", ["S1"], parameters=["value"])
    expect = sorted(r[4] for r in rows if r[1] == "S1" and r[2] == "value")
    assert sorted(window["value"]) == expect
    again = ObservationStore(path)  # opening a migrated store changes nothing
    assert again.db.execute("SELECT count(*) FROM points").fetchone() == (600,)


def test_a_batch_of_only_refused_or_repeated_readings(tmp_path):
    store = ObservationStore(tmp_path / "o.sqlite")
    specs = {"A": SensorSpec("A", 0, 10)}
    bad = pd.DataFrame(
        {"sensor_id": ["B", "A"], "time": ["2026-01-01T00:00:00Z", "x"], "value": [1, 2]}
    )
    result = store.append("l", bad, specs)
    assert result.accepted == 0 and result.rejected_total == 2
    twice = pd.DataFrame(
        {
            "sensor_id": ["A", "A", "A"],
            "time": ["2026-01-01T00:00:00Z"] * 2 + ["2026-01-01T00:01:00Z"],
            "value": [1, 1, 3],
        }
    )
    result = store.append("l", twice, specs)
    assert (result.accepted, result.duplicates) == (2, 1)
    again = store.append("l", twice, specs)
    assert (again.accepted, again.duplicates) == (0, 3)
    latest = store.latest("l")
    assert latest["value"].tolist() == [3.0]


def test_text_keyed_latest_table_becomes_the_latest_view(tmp_path):
    """A store whose ``latest`` was a table keyed by text keeps every newest reading."""
    path = tmp_path / "observations.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE series (id INTEGER PRIMARY KEY, layer TEXT NOT NULL, sensor TEXT NOT "
        "NULL, parameter TEXT NOT NULL, UNIQUE (layer, sensor, parameter));"
        "CREATE TABLE points (series INTEGER NOT NULL, time INTEGER NOT NULL, value REAL "
        "NOT NULL, PRIMARY KEY (series, time)) WITHOUT ROWID;"
        "CREATE TABLE latest (layer TEXT NOT NULL, sensor TEXT NOT NULL, parameter TEXT NOT "
        "NULL, time INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (layer, sensor, "
        "parameter)) WITHOUT ROWID;"
    )
    old = [("wat-g", f"S{i}", "value", 1_767_225_600_000 + i, float(i) + 0.5) for i in range(4)]
    db.executemany(
        "INSERT INTO series (layer, sensor, parameter) VALUES (?,?,?)", [r[:3] for r in old]
    )
    db.executemany(
        "INSERT INTO points VALUES (?,?,?)", [(i + 1, r[3], r[4]) for i, r in enumerate(old)]
    )
    db.executemany("INSERT INTO latest VALUES (?,?,?,?,?)", old)
    db.commit()
    db.close()
    again = ObservationStore(path)
    gone = again.db.execute("SELECT 1 FROM archive.sqlite_master WHERE name='latest'")
    assert gone.fetchone() is None
    rows = again.db.execute("SELECT series, time, value FROM latest_values ORDER BY series")
    assert rows.fetchall() == [(i + 1, r[3], r[4]) for i, r in enumerate(old)]
    frame = again.latest("wat-g")
    assert list(frame["value"]) == [r[4] for r in old]


# the one-file layout of 2026-11-25: readings in points and recent, everything else beside
ONE_FILE = """
CREATE TABLE series (id INTEGER PRIMARY KEY, layer TEXT NOT NULL, sensor TEXT NOT NULL,
    parameter TEXT NOT NULL, UNIQUE (layer, sensor, parameter));
CREATE TABLE points (series INTEGER NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (series, time)) WITHOUT ROWID;
CREATE TABLE recent (series INTEGER NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (series, time)) WITHOUT ROWID;
CREATE TABLE store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE channel_counts (channel TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (channel, reason)) WITHOUT ROWID;
CREATE TABLE latest_values (series INTEGER PRIMARY KEY, time INTEGER NOT NULL,
    value REAL NOT NULL);
CREATE TABLE alert_state (rule TEXT NOT NULL, layer TEXT NOT NULL, sensor TEXT NOT NULL,
    parameter TEXT NOT NULL, above INTEGER NOT NULL, last_time INTEGER NOT NULL,
    PRIMARY KEY (rule, layer, sensor, parameter)) WITHOUT ROWID;
CREATE TABLE alerts (id INTEGER PRIMARY KEY, rule TEXT NOT NULL, layer TEXT NOT NULL,
    sensor TEXT NOT NULL, parameter TEXT NOT NULL, time INTEGER NOT NULL,
    value REAL NOT NULL, threshold REAL NOT NULL, message TEXT);
CREATE VIEW latest AS SELECT s.layer AS layer, s.sensor AS sensor, s.parameter AS parameter,
    l.time AS time, l.value AS value FROM series s JOIN latest_values l ON l.series = s.id;
CREATE VIEW readings AS SELECT s.layer AS layer, s.sensor AS sensor, s.parameter AS
    parameter, p.time AS time, p.value AS value FROM series s JOIN points p
    ON p.series = s.id UNION ALL SELECT s.layer, s.sensor, s.parameter, r.time, r.value
    FROM series s JOIN recent r ON r.series = s.id;
"""


def test_one_file_store_moves_what_ingest_writes_to_the_live_file(tmp_path):
    path = tmp_path / "observations.sqlite"
    db = sqlite3.connect(path)
    db.executescript(ONE_FILE)
    t0 = 1_767_225_600_000
    db.executemany(
        "INSERT INTO series (layer, sensor, parameter) VALUES (?,?,?)",
        [("wat-g", "A", "value"), ("wat-g", "B", "value")],
    )
    compacted = [(1, t0 + i, float(i)) for i in range(50)] + [(2, t0 + i, -1.0) for i in range(5)]
    recent = [(1, t0 + 50 + i, 100.0 + i) for i in range(7)]
    db.executemany("INSERT INTO points VALUES (?,?,?)", compacted)
    db.executemany("INSERT INTO recent VALUES (?,?,?)", recent)
    db.executemany(
        "INSERT INTO latest_values VALUES (?,?,?)", [(1, t0 + 56, 106.0), (2, t0 + 4, -1.0)]
    )
    db.executemany(
        "INSERT INTO channel_counts VALUES (?,?,?)",
        [("mqtt", "messages", 9), ("mqtt", "accepted", 8)],
    )
    db.execute("INSERT INTO alert_state VALUES ('high','wat-g','A','value',1,?)", (t0 + 56,))
    db.execute(
        "INSERT INTO alerts (rule, layer, sensor, parameter, time, value, threshold, message) "
        "VALUES ('high','wat-g','A','value',?,106.0,100.0,'high water')",
        (t0 + 56,),
    )
    db.execute("INSERT INTO store_meta VALUES ('generation', 3)")
    db.commit()
    db.close()

    store = ObservationStore(path)
    window = store.window("wat-g")
    assert len(window) == 62
    assert sorted(window["value"]) == sorted(v for *_, v in compacted + recent)
    assert store.latest("wat-g")["value"].tolist() == [106.0, -1.0]
    assert store.counts("mqtt") == {"accepted": 8, "messages": 9}
    assert store.alerts()["message"].tolist() == ["high water"]
    left = {r[0] for r in store.db.execute("SELECT name FROM archive.sqlite_master")}
    assert not left & {
        "recent",
        "store_meta",
        "channel_counts",
        "alerts",
        "latest_values",
        "readings",
    }
    specs = {"A": SensorSpec("A", -1e9, 1e9), "B": SensorSpec("B", -1e9, 1e9)}
    resent = pd.DataFrame(
        {
            "sensor_id": ["A", "A", "B"],
            "time": pd.to_datetime([t0 + 3, t0 + 52, t0 + 2], unit="ms", utc=True).map(str),
            "value": [0.0, 0.0, 0.0],
        }
    )
    assert store.append("wat-g", resent, specs).duplicates == 3  # old points and old recent
    again = ObservationStore(path)  # opening a migrated store changes nothing
    pd.testing.assert_frame_equal(again.window("wat-g"), window)
    assert again.counts("mqtt") == {"accepted": 8, "messages": 9}
