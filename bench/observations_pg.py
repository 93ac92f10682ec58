"""Readings into PostgreSQL: the observation store's ingest beside plain ``COPY`` (issue 21).

In one run, on one throwaway PostgreSQL 15 cluster (bench/tiles.py's, a free loopback
port; fsync and synchronous_commit off, as there), the same readings in the same batches:

- **the store** (``PostgresObservationStore.append``: validation as for every channel,
  series ids, binary COPY into the connection's temporary table, ``INSERT … ON CONFLICT
  DO NOTHING`` into the monthly partitions and the newest-value upsert, one transaction
  a batch), into a fresh schema;
- the store's COPY path alone (``load``: the same without validation, what
  ``shikong migrate`` uses), into another fresh schema;
- **plain COPY** of the same rows (sensor, parameter, time, value as CSV, each batch its
  own COPY) into a table keyed (sensor, parameter, time), as bench/iot.py's baseline.

Batches are prepared before the clocks start (readings as the HTTP path hands them to
the store: ISO time strings). The load average is printed at the start and the end.
``--smoke``: 50,000 readings of 100 sensors, to show it runs.

    .venv/bin/python bench/observations_pg.py [--readings 2000000] [--sensors 5000]
        [--batch 10000] [--smoke]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from tiles import PostGIS  # noqa: E402  (the throwaway cluster)

LAYER = "wat-gauges"
START = pd.Timestamp("2026-03-01", tz="UTC")
NOW = pd.Timestamp("2026-12-01", tz="UTC")


def batches(readings: int, sensors: int, size: int) -> list[pd.DataFrame]:
    """Every sensor reporting once a minute, cut into batches of ``size`` readings."""
    names = np.array([f"G{i:05d}" for i in range(sensors)], dtype=object)
    minutes = readings // sensors
    t = START + pd.to_timedelta(np.repeat(np.arange(minutes), sensors), "min")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "sensor_id": np.tile(names, minutes),
            "time": pd.Series(t.strftime("%Y-%m-%dT%H:%M:%S.000Z"), dtype=object),
            "value": rng.normal(10, 2, len(t)).round(3),
        }
    )
    return [frame.iloc[i : i + size].reset_index(drop=True) for i in range(0, len(frame), size)]


def store_rate(dsn: str, schema: str, parts: list[pd.DataFrame], specs: dict) -> float:
    from shikong.catalog.observations_pg import PostgresObservationStore

    store = PostgresObservationStore(dsn, schema)
    t0 = time.perf_counter()
    n = 0
    for frame in parts:
        result = store.append(LAYER, frame, specs, now=NOW)
        assert result.accepted == len(frame), result
        n += result.accepted
    rate = n / (time.perf_counter() - t0)
    assert store.extent(LAYER)[2] == n
    store.close()
    return rate


def load_rate(dsn: str, schema: str, parts: list[pd.DataFrame]) -> float:
    from shikong.catalog.observations_pg import PostgresObservationStore

    store = PostgresObservationStore(dsn, schema)
    ready = [
        pd.DataFrame(
            {
                "sensor_id": f["sensor_id"],
                "parameter": "value",
                "time": pd.to_datetime(f["time"], utc=True).dt.as_unit("ms").astype("int64"),
                "value": f["value"],
            }
        )
        for f in parts
    ]
    t0 = time.perf_counter()
    n = sum(store.load(LAYER, f) for f in ready)
    rate = n / (time.perf_counter() - t0)
    assert n == sum(len(f) for f in parts)
    store.close()
    return rate


def copy_rate(dsn: str, parts: list[pd.DataFrame]) -> float:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS plain_readings")
        db.execute(
            "CREATE TABLE plain_readings (sensor text, parameter text, time timestamptz, "
            "value double precision, PRIMARY KEY (sensor, parameter, time))"
        )
        t0 = time.perf_counter()
        for frame in parts:
            buffer = io.StringIO()
            frame.assign(parameter="value")[["sensor_id", "parameter", "time", "value"]].to_csv(
                buffer, index=False, header=False
            )
            with db.cursor().copy("COPY plain_readings FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buffer.getvalue())
        rate = sum(len(f) for f in parts) / (time.perf_counter() - t0)
        (n,) = db.execute("SELECT count(*) FROM plain_readings").fetchone()
        assert n == sum(len(f) for f in parts)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=int, default=2_000_000)
    parser.add_argument("--sensors", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.readings, args.sensors, args.batch = 50_000, 100, 5000
    from shikong.catalog.observations import SensorSpec

    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    parts = batches(args.readings, args.sensors, args.batch)
    specs = {s: SensorSpec(s, -1e6, 1e6) for s in parts[0]["sensor_id"].unique()}
    specs |= {s: SensorSpec(s, -1e6, 1e6) for f in parts for s in f["sensor_id"].unique()}
    total = sum(len(f) for f in parts)
    pg = PostGIS()
    try:
        ours = store_rate(pg.dsn, "bench_store", parts, specs)
        plain = copy_rate(pg.dsn, parts)
        loaded = load_rate(pg.dsn, "bench_load", parts)
    finally:
        pg.stop()
    print(
        f"--- {total:,} readings of {args.sensors:,} sensors in batches of {args.batch:,}, "
        "PostgreSQL 15 on this machine ---"
    )
    print(f"the store (append: validation, COPY, newest values): {ours:,.0f} readings/s")
    print(f"the store's COPY path alone (load, no validation): {loaded:,.0f} readings/s")
    print(
        f"plain COPY of the same rows into a keyed table: {plain:,.0f} rows/s; "
        f"ratio store/COPY {ours / plain:.2f}, COPY path/COPY {loaded / plain:.2f}"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
