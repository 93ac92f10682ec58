"""A store of the first layout (one readings table keyed by text) opens as series + points
with every reading kept, and the same queries answer the same."""

from __future__ import annotations

import sqlite3

import pandas as pd
from shikong.catalog.observations import ObservationStore

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
    kinds = store.db.execute("SELECT type FROM sqlite_master WHERE name='readings'").fetchone()
    assert kinds == ("view",)
    assert store.db.execute("SELECT count(*) FROM points").fetchone() == (600,)
    assert store.db.execute("SELECT count(*) FROM series").fetchone() == (6,)
    window = store.window("wat-g", ["S1"], parameters=["value"])
    expect = sorted(r[4] for r in rows if r[1] == "S1" and r[2] == "value")
    assert sorted(window["value"]) == expect
    again = ObservationStore(path)  # opening a migrated store changes nothing
    assert again.db.execute("SELECT count(*) FROM points").fetchone() == (600,)


def test_a_batch_of_only_refused_or_repeated_readings(tmp_path):
    from shikong.catalog.observations import SensorSpec

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
    store = ObservationStore(path)
    ids = store.register_series({("wat-g", f"S{i}", "value") for i in range(4)})
    store.db.close()
    db = sqlite3.connect(path)
    db.executescript(
        "DROP VIEW latest; DROP TABLE latest_values; CREATE TABLE latest (layer TEXT NOT NULL,"
        " sensor TEXT NOT NULL, parameter TEXT NOT NULL, time INTEGER NOT NULL,"
        " value REAL NOT NULL, PRIMARY KEY (layer, sensor, parameter)) WITHOUT ROWID;"
    )
    old = [("wat-g", f"S{i}", "value", 1_767_225_600_000 + i, float(i) + 0.5) for i in range(4)]
    db.executemany("INSERT INTO latest VALUES (?,?,?,?,?)", old)
    db.commit()
    db.close()
    again = ObservationStore(path)
    kind = again.db.execute("SELECT type FROM sqlite_master WHERE name='latest'").fetchone()
    assert kind == ("view",)
    rows = again.db.execute("SELECT series, time, value FROM latest_values ORDER BY series")
    assert sorted(rows) == sorted((ids[r[:3]], r[3], r[4]) for r in old)
    frame = again.latest("wat-g")
    assert list(frame["value"]) == [r[4] for r in old]
