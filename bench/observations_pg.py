"""Readings into PostgreSQL: the observation store's ingest beside plain ``COPY`` (issue 21).

In one run, on one throwaway PostgreSQL 15 cluster (bench/tiles.py's, a free loopback
port; fsync and synchronous_commit off, as there), the same readings in the same batches,
the three sides taking turns batch by batch (so that a shared machine's load falls on
each alike):

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


class Sides:
    """The three ways in, each into its own tables of the one cluster; ``send`` times
    one batch on each, so that all three see the machine's load alike."""

    def __init__(self, dsn: str, specs: dict) -> None:
        import psycopg
        from shikong.catalog.observations_pg import PostgresObservationStore

        self.specs = specs
        self.store = PostgresObservationStore(dsn, "bench_store")
        self.loader = PostgresObservationStore(dsn, "bench_load")
        self.db = psycopg.connect(dsn, autocommit=True)
        self.db.execute("DROP TABLE IF EXISTS plain_readings")
        self.db.execute(
            "CREATE TABLE plain_readings (sensor text, parameter text, time timestamptz, "
            "value double precision, PRIMARY KEY (sensor, parameter, time))"
        )
        self.seconds = {"store": 0.0, "load": 0.0, "copy": 0.0}

    def send(self, k: int, frame: pd.DataFrame, ms: pd.DataFrame) -> None:
        order = ["store", "load", "copy"]
        for side in order[k % 3 :] + order[: k % 3]:  # each goes first in turn
            t0 = time.perf_counter()
            if side == "store":
                result = self.store.append(LAYER, frame, self.specs, now=NOW)
                assert result.accepted == len(frame), result
            elif side == "load":
                assert self.loader.load(LAYER, ms) == len(frame)
            else:
                self.copy(frame)
            self.seconds[side] += time.perf_counter() - t0

    def copy(self, frame: pd.DataFrame) -> None:
        """Plain COPY of the readings as they are (text rows), as bench/iot.py does."""
        buffer = io.StringIO()
        frame.assign(parameter="value")[["sensor_id", "parameter", "time", "value"]].to_csv(
            buffer, index=False, header=False
        )
        with self.db.cursor().copy("COPY plain_readings FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buffer.getvalue())

    def check(self, total: int) -> None:
        """Every side holds every reading."""
        (n,) = self.db.execute("SELECT count(*) FROM plain_readings").fetchone()
        assert n == total == self.store.extent(LAYER)[2] == self.loader.extent(LAYER)[2]
        self.store.close()
        self.loader.close()
        self.db.close()


def as_ms(frame: pd.DataFrame) -> pd.DataFrame:
    """A batch as ``load`` takes it (times as epoch milliseconds)."""
    return pd.DataFrame(
        {
            "sensor_id": frame["sensor_id"],
            "parameter": "value",
            "time": pd.to_datetime(frame["time"], utc=True).dt.as_unit("ms").astype("int64"),
            "value": frame["value"],
        }
    )


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
    ready = [as_ms(f) for f in parts]
    pg = PostGIS()
    try:
        sides = Sides(pg.dsn, specs)
        for k, (frame, ms) in enumerate(zip(parts, ready, strict=True)):
            sides.send(k, frame, ms)
        sides.check(total)
    finally:
        pg.stop()
    ours, loaded, plain = (total / sides.seconds[s] for s in ("store", "load", "copy"))
    print(
        f"--- {total:,} readings of {args.sensors:,} sensors in batches of {args.batch:,}, "
        "PostgreSQL 15 on this machine; the three sides take turns batch by batch ---"
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
