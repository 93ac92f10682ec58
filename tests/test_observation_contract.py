"""The observation store's contract (catalog/observation_store.py), for every backend in
``STORES``: SQLite files (the embedded default) and PostgreSQL (tests/pg_cluster.py).

Every expected answer is computed here, with pandas, from the readings the test wrote:
which readings a batch may keep (known sensor, parseable time, not in the future, a
finite value inside the sensor's range), that the first reading of a (sensor, parameter,
time) is the one stored, the windows, buckets, newest values and extents, and where an
alert rule crosses its threshold. Nothing is read back from the stores' own helpers.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pg_cluster import pg_cluster, pg_database  # noqa: F401  (fixtures of the postgres store)
from shikong.catalog.observation_store import ReadingStore
from shikong.catalog.observations import ObservationStore, SensorSpec
from shikong.catalog.observations_pg import PostgresObservationStore

# each store opened on a data directory and, for a server, the DSN of a fresh database
STORES: dict[str, Callable[[Path, str | None], ReadingStore]] = {
    "sqlite": lambda root, dsn: ObservationStore(root / "observations.sqlite"),
    "postgres": lambda root, dsn: PostgresObservationStore(str(dsn)),
}
SERVICES = {"postgres": "pg_database"}  # the fixture that gives a store its database

NOW = pd.Timestamp("2026-06-15T12:00:00Z")
LAYER = "wat-gauges"
SENSORS = {f"G{i:02d}": SensorSpec(f"G{i:02d}", -50.0, 50.0) for i in range(12)}
TOLERANCE = pd.Timedelta(minutes=10)  # how far ahead of ``now`` a reading may be


@dataclass(frozen=True)
class Spec:
    """Which store and where (picklable: another process opens the same store)."""

    kind: str
    root: Path
    dsn: str | None = None

    def open(self) -> ReadingStore:
        return STORES[self.kind](self.root, self.dsn)


@pytest.fixture(params=sorted(STORES))
def spec(request, tmp_path) -> Spec:
    service = SERVICES.get(request.param)
    dsn = request.getfixturevalue(service) if service else None
    return Spec(request.param, tmp_path / "data", dsn)


@pytest.fixture
def open_store(spec) -> Iterator[Callable[[], ReadingStore]]:
    """Opens the store (again: a second handle, as another process would)."""
    opened: list[ReadingStore] = []

    def open_() -> ReadingStore:
        opened.append(spec.open())
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


# -- the truth, computed from what was sent -----------------------------------------------
def kept(frame: pd.DataFrame, sensors: dict[str, SensorSpec], now: pd.Timestamp) -> pd.DataFrame:
    """The readings of a batch a store may keep, as (sensor_id, parameter, time, value)."""
    out = frame.copy()
    if "parameter" not in out:
        out["parameter"] = None
    out["parameter"] = out["parameter"].where(out["parameter"].notna(), "value")
    out["time"] = pd.to_datetime(out["time"], utc=True, errors="coerce", format="ISO8601")
    out["value"] = pd.to_numeric(out["value"], errors="coerce")
    known = out["sensor_id"].isin(list(sensors))
    lo = out["sensor_id"].map(lambda s: sensors[s].min_valid if s in sensors else np.nan)
    hi = out["sensor_id"].map(lambda s: sensors[s].max_valid if s in sensors else np.nan)
    ok = (
        known
        & out["time"].notna()
        & (out["time"] <= now + TOLERANCE)
        & np.isfinite(out["value"])
        & (out["value"] >= lo)
        & (out["value"] <= hi)
    )
    out = out[ok.fillna(False).astype(bool)]
    out["time"] = out["time"].dt.floor("ms")
    return out[["sensor_id", "parameter", "time", "value"]]


class Truth:
    """What a store must hold after the batches sent so far: the first reading of each
    (sensor, parameter, time)."""

    def __init__(self) -> None:
        self.rows = pd.DataFrame(columns=["sensor_id", "parameter", "time", "value"])

    def send(self, frame: pd.DataFrame, sensors=SENSORS, now=NOW) -> tuple[int, int, int]:
        """Expected (accepted, duplicates, refused) of sending ``frame``."""
        good = kept(frame, sensors, now)
        before = len(self.rows)
        both = pd.concat([self.rows, good], ignore_index=True) if before else good
        self.rows = both.drop_duplicates(["sensor_id", "parameter", "time"], keep="first")
        accepted = len(self.rows) - before
        return accepted, len(good) - accepted, len(frame) - len(good)

    def window(self, sensors=None, start=None, end=None, parameters=None) -> pd.DataFrame:
        rows = self.rows
        if sensors is not None:
            rows = rows[rows.sensor_id.isin(sensors)]
        if parameters is not None:
            rows = rows[rows.parameter.isin(parameters)]
        if start is not None:
            rows = rows[rows.time >= pd.Timestamp(start)]
        if end is not None:
            rows = rows[rows.time <= pd.Timestamp(end)]
        return rows.sort_values(["sensor_id", "parameter", "time"], ignore_index=True)


def readings(rng, n: int, start: str, span: str, sensors=None, parameters=None) -> pd.DataFrame:
    """``n`` readings at whole milliseconds in [start, start + span) of some sensors."""
    sensors = sensors or list(SENSORS)
    t0, width = pd.Timestamp(start), pd.Timedelta(span)
    ms = rng.integers(0, int(width / pd.Timedelta(milliseconds=1)), n)
    frame = pd.DataFrame(
        {
            "sensor_id": rng.choice(sensors, n),
            "time": [(t0 + pd.Timedelta(milliseconds=int(m))).isoformat() for m in ms],
            "value": rng.normal(5, 10, n).round(3),
        }
    )
    if parameters:
        frame["parameter"] = rng.choice(parameters, n)
    return frame


def parts(frame: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    """``frame`` in ``n`` consecutive batches."""
    return [frame.iloc[idx] for idx in np.array_split(np.arange(len(frame)), n)]


def same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
    )


# -- the cases --------------------------------------------------------------------------
def test_batches_keep_the_first_of_each_reading_and_count_the_rest(open_store):
    store, truth, rng = open_store(), Truth(), np.random.default_rng(1)
    batch = readings(rng, 400, "2026-03-01", "2D")
    batch = pd.concat([batch, batch.iloc[:50].assign(value=99.0)])  # repeats in the batch
    bad = pd.DataFrame(
        {
            "sensor_id": ["nope", "G01", "G02", "G03", "G04", "G05"],
            "time": [
                "2026-03-01T00:00:00Z",
                "not a time",
                "2026-06-16T00:00:00Z",  # the future, past the tolerance
                "2026-03-01T00:00:01Z",
                "2026-03-01T00:00:02Z",
                "2026-06-15T12:05:00Z",  # ahead of now, within the tolerance
            ],
            "value": [1.0, 1.0, 1.0, np.nan, 51.0, 7.0],  # NaN; outside G04's range
        }
    )
    for frame in (
        pd.concat([batch, bad]),
        batch.iloc[100:300],
        readings(rng, 300, "2026-03-02", "1D"),
    ):
        accepted, duplicates, refused = truth.send(frame)
        result = store.append(LAYER, frame, SENSORS, now=NOW)
        assert (result.accepted, result.duplicates, result.rejected_total) == (
            accepted,
            duplicates,
            refused,
        )
    assert result.rejected_total == 0
    first = store.append(LAYER, bad, SENSORS, now=NOW).rejected
    assert dict(first) == {
        "unknown sensor": 1,
        "unparseable time": 1,
        "time in the future": 1,
        "value is not a number": 1,
        "value outside the sensor's valid range": 1,
    }
    same(store.window(LAYER), truth.window())
    same(open_store().window(LAYER), truth.window())  # another handle reads the same


def test_windows_by_sensor_parameter_and_inclusive_time(open_store):
    store, truth, rng = open_store(), Truth(), np.random.default_rng(2)
    for k in range(4):
        frame = readings(rng, 500, f"2026-0{k + 1}-20", "20D", parameters=["level", "flow"])
        truth.send(frame)
        store.append(LAYER, frame, SENSORS, now=NOW)
    some = ["G03", "G07", "G11"]
    edge = truth.rows.time.sort_values().iloc[[100, 900]].tolist()  # ends on readings
    cases = [
        {},
        {"sensors": some},
        {"parameters": ["flow"]},
        {"sensors": some, "parameters": ["level"], "start": edge[0], "end": edge[1]},
        {"start": edge[0]},
        {"end": edge[1]},
        {"sensors": ["nobody"]},
        {"start": pd.Timestamp("2030-01-01", tz="UTC")},
    ]
    for case in cases:
        got = store.window(LAYER, **case)
        same(got, truth.window(**case))
    assert store.window("other-layer").empty
    naive = edge[0].tz_localize(None)  # a naive time is UTC
    same(store.window(LAYER, start=naive), truth.window(start=edge[0]))


@pytest.mark.parametrize("how", ["mean", "max", "min", "sum", "count"])
@pytest.mark.parametrize("freq", ["1h", "1D", "15min"])
def test_buckets_count_from_1970_in_utc(open_store, freq, how):
    store, truth, rng = open_store(), Truth(), np.random.default_rng(3)
    frame = readings(rng, 2000, "2026-05-30", "4D", sensors=["G01", "G02", "G09"])
    truth.send(frame)
    store.append(LAYER, frame, SENSORS, now=NOW)
    start, end = pd.Timestamp("2026-05-31T06:30Z"), pd.Timestamp("2026-06-02T18:00Z")
    rows = truth.window(start=start, end=end)
    groups = rows.groupby(["sensor_id", "parameter", rows.time.dt.floor(freq)])["value"]
    expected = pd.DataFrame({how: groups.agg(how), "n": groups.size()}).reset_index()
    got = store.resample(LAYER, start=start, end=end, freq=freq, how=how)
    assert list(got.columns) == ["sensor_id", "parameter", "time", how, "n"]
    same(
        got[["sensor_id", "parameter", "time", "n"]],
        expected[["sensor_id", "parameter", "time", "n"]],
    )
    assert np.allclose(got[how].to_numpy(float), expected[how].to_numpy(float))
    with pytest.raises(ValueError):
        store.resample(LAYER, how="median")


def test_latest_extent_parameters_follow_every_batch(open_store):
    store, truth, rng = open_store(), Truth(), np.random.default_rng(4)
    assert store.latest(LAYER).empty and store.parameters(LAYER) == []
    assert store.last_time(LAYER) is None and store.extent(LAYER) == (None, None, 0)
    # months apart (PostgreSQL: several partitions), late readings, readings before 2000
    spans = [
        ("2026-04-01", "3D"),
        ("2026-01-10", "40D"),
        ("1998-12-25", "20D"),
        ("2026-06-14", "1D"),
    ]
    for start, span in spans:
        frame = readings(rng, 300, start, span, parameters=["pm25", "pm10", "no2"])
        truth.send(frame)
        store.append(LAYER, frame, SENSORS, now=NOW)
        rows = truth.window()
        newest = rows.loc[rows.groupby(["sensor_id", "parameter"]).time.idxmax()]
        same(store.latest(LAYER), newest.sort_values(["sensor_id", "parameter"]))
        assert store.last_time(LAYER) == rows.time.max()
        assert store.extent(LAYER) == (rows.time.min(), rows.time.max(), len(rows))
    assert store.parameters(LAYER) == ["no2", "pm10", "pm25"]
    picked = store.latest(LAYER, ["G02", "G05"])
    assert set(picked.sensor_id) == {"G02", "G05"}
    same(
        store.window(LAYER, end="1999-12-31T23:59:59.999Z"),
        truth.window(end="1999-12-31T23:59:59.999Z"),
    )


def test_sensor_names_sort_by_code_point(open_store):
    store, truth = open_store(), Truth()
    names = ["b", "B", "a", "Z", "水位站", "ä", "_x", "a b"]
    sensors = {n: SensorSpec(n) for n in names}
    frame = pd.DataFrame(
        {"sensor_id": names, "time": ["2026-02-01T00:00:00Z"] * len(names), "value": 1.0}
    )
    truth.send(frame, sensors)
    store.append(LAYER, frame, sensors, now=NOW)
    assert store.window(LAYER).sensor_id.tolist() == sorted(names)
    assert store.latest(LAYER).sensor_id.tolist() == sorted(names)


def test_channel_counters_add_up_across_handles(open_store):
    first, second = open_store(), open_store()
    first.add_counts("mqtt", {"accepted": 3, "bad json": 1})
    second.add_counts("mqtt", {"accepted": 4})
    second.add_counts("http", {"accepted": 1})
    first.add_counts("mqtt", {})
    assert first.counts("mqtt") == {"accepted": 7, "bad json": 1}
    assert second.counts("http") == {"accepted": 1} and first.counts("none") == {}


# the shipped alert rules (config/alert_rules.yaml): a threshold on wat-water_level_sensors'
# value (the sensor's warning_level), and on ema-subsidence_points a rate per day over 24 h
WATER, SUBSIDENCE = "wat-water_level_sensors", "ema-subsidence_points"


def crossings(rows: pd.DataFrame, thresholds: dict[str, float]) -> list[tuple[str, pd.Timestamp]]:
    """(sensor, time) where a series goes above its threshold from at or below it."""
    out = []
    for sensor, series in rows.sort_values("time").groupby("sensor_id"):
        above = series.value.to_numpy() > thresholds[sensor]
        start = above & ~np.r_[False, above[:-1]]
        out += [(sensor, t) for t in series.time[start]]
    return sorted(out)


def test_a_threshold_alert_fires_once_per_crossing(open_store):
    store = open_store()
    sensors = {s: SensorSpec(s) for s in ("W1", "W2")}
    attributes = {"W1": {"warning_level": 3.0}, "W2": {"warning_level": 5.0}}
    rng = np.random.default_rng(5)
    times = pd.date_range("2026-06-01", periods=120, freq="10min", tz="UTC")
    frame = pd.DataFrame(
        {
            "sensor_id": np.repeat(["W1", "W2"], len(times)),
            "time": np.tile(times.strftime("%Y-%m-%dT%H:%M:%SZ"), 2),
            "value": rng.normal(4, 1.5, 2 * len(times)).round(2),
        }
    )
    fired = []
    for part in parts(frame.sort_values("time", kind="stable"), 4):
        fired += store.append(WATER, part, sensors, now=NOW, attributes=attributes).alerts
    late = frame.iloc[[3]].assign(time="2026-05-31T00:00:00Z", value=99.0)  # older: no alert
    assert store.append(WATER, late, sensors, now=NOW, attributes=attributes).alerts == []
    again = store.append(WATER, frame.iloc[:30], sensors, now=NOW, attributes=attributes)
    assert again.alerts == [] and again.duplicates == 30
    rows = kept(frame, sensors, NOW)
    expected = crossings(rows, {"W1": 3.0, "W2": 5.0})
    assert sorted((a.sensor, a.time) for a in fired) == expected
    stored = store.alerts(WATER)
    assert sorted(zip(stored.sensor_id, stored.time, strict=True)) == expected
    assert stored.time.is_monotonic_decreasing and set(stored.rule) == {"above-warning-level"}
    last = max(t for _, t in expected)
    assert len(store.alerts(WATER, since=last)) == sum(t == last for _, t in expected)
    assert len(store.alerts(limit=2)) == min(2, len(expected))
    assert store.alerts("other").empty


def test_a_rate_alert_compares_with_the_reading_a_window_before(open_store):
    store = open_store()
    sensors = {"P1": SensorSpec("P1")}
    attributes = {"P1": {"warning_level": 1e9, "warning_rate_mm_per_day": 2.0}}
    times = pd.date_range("2026-06-01", periods=96, freq="1h", tz="UTC")
    sinking = np.r_[np.zeros(30), -np.arange(1, 31) * 0.05, np.full(36, -1.5)]
    value = np.cumsum(np.abs(sinking)).round(3)  # mm sunk so far: fast in the middle
    frame = pd.DataFrame(
        {"sensor_id": "P1", "time": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": value}
    )
    fired = []
    for part in parts(frame, 6):
        fired += store.append(SUBSIDENCE, part, sensors, now=NOW, attributes=attributes).alerts
    # truth: the rate per day against the newest reading at or before t - 24 h
    rows = frame.assign(time=pd.to_datetime(frame.time, utc=True))
    before = pd.merge_asof(
        rows.assign(at=rows.time - pd.Timedelta("24h")).sort_values("at"),
        rows.rename(columns={"time": "t0", "value": "v0"})[["t0", "v0"]],
        left_on="at",
        right_on="t0",
    ).dropna(subset=["t0"])
    before["rate"] = (before.value - before.v0) / ((before.time - before.t0) / pd.Timedelta("1D"))
    above = before.rate.to_numpy() > 2.0
    starts = before.time[above & ~np.r_[False, above[:-1]]].tolist()
    rate_alerts = [a for a in fired if a.rule == "subsidence-rate"]
    assert [a.time for a in rate_alerts] == starts and starts
    assert np.allclose([a.value for a in rate_alerts], before.rate[before.time.isin(starts)])


# -- two processes on one store -----------------------------------------------------------
def _post(spec: Spec, seed: int, batches: list[pd.DataFrame], out) -> None:
    store = spec.open()
    accepted = duplicates = 0
    for frame in batches:
        result = store.append(LAYER, frame, SENSORS, now=NOW)
        accepted, duplicates = accepted + result.accepted, duplicates + result.duplicates
    store.close()
    out.put((seed, accepted, duplicates))


def test_two_processes_posting_overlapping_batches_store_each_reading_once(spec):
    rng = np.random.default_rng(6)
    shared = [readings(rng, 3000, "2026-05-01", "3D") for _ in range(6)]
    own = [[readings(rng, 1000, "2026-05-02", "1D") for _ in range(6)] for _ in range(2)]
    # both send every shared batch (in opposite orders), each with its own readings too
    plans = [
        [pd.concat([s, o]) for s, o in zip(shared, own[0], strict=True)],
        [pd.concat([s, o]) for s, o in zip(shared[::-1], own[1], strict=True)],
    ]
    spec.open().close()  # the schema or files exist before the race
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_post, args=(spec, k, plans[k], out)) for k in range(2)]
    for w in workers:
        w.start()
    results = [out.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    sent = pd.concat([f for plan in plans for f in plan])
    distinct = kept(sent, SENSORS, NOW).drop_duplicates(["sensor_id", "parameter", "time"])
    assert sum(r[1] for r in results) == len(distinct)
    assert sum(r[1] + r[2] for r in results) == len(sent)
    store = spec.open()
    got = store.window(LAYER)
    assert len(got) == len(distinct) and not got.duplicated(["sensor_id", "time"]).any()
    # each stored value is one that was sent for its key (the first to commit won)
    sent_values = kept(sent, SENSORS, NOW).groupby(["sensor_id", "time"]).value.agg(set)
    joined = got.set_index(["sensor_id", "time"]).value
    assert all(v in sent_values[k] for k, v in joined.items())
    store.close()


def test_both_backends_answer_with_the_same_frame_types(tmp_path, request):
    dsn = request.getfixturevalue("pg_database")
    frame = readings(np.random.default_rng(7), 50, "2026-02-01", "1D")
    answers = []
    for kind in sorted(STORES):
        store = STORES[kind](tmp_path / kind, dsn)
        store.append(LAYER, frame, SENSORS, now=NOW)
        answers.append(
            [
                store.window(LAYER),
                store.latest(LAYER),
                store.resample(LAYER, freq="1h"),
                store.alerts(),
                store.window("nothing"),
                store.resample("nothing"),
            ]
        )
        store.close()
    for ours, theirs in zip(*answers, strict=True):
        assert ours.dtypes.to_dict() == theirs.dtypes.to_dict()
        pd.testing.assert_frame_equal(ours, theirs)


def _post_with_alerts(spec: Spec, batches: list[pd.DataFrame], out) -> None:
    store = spec.open()
    sensors = {s: SensorSpec(s) for s in ("W1", "W2")}
    attributes = {"W1": {"warning_level": 3.0}, "W2": {"warning_level": 5.0}}
    fired = []
    for frame in batches:
        result = store.append(WATER, frame, sensors, now=NOW, attributes=attributes)
        fired += [(a.sensor, a.time.isoformat()) for a in result.alerts]
    store.close()
    out.put(fired)


def test_two_processes_sending_the_same_readings_fire_each_alert_once(spec):
    rng = np.random.default_rng(8)
    times = pd.date_range("2026-06-01", periods=300, freq="5min", tz="UTC")
    frame = pd.DataFrame(
        {
            "sensor_id": np.repeat(["W1", "W2"], len(times)),
            "time": np.tile(times.strftime("%Y-%m-%dT%H:%M:%SZ"), 2),
            "value": rng.normal(4, 1.5, 2 * len(times)).round(2),
        }
    ).sort_values("time", kind="stable")
    batches = parts(frame, 30)  # both send the same batches, in time order
    spec.open().close()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_post_with_alerts, args=(spec, batches, out)) for _ in range(2)]
    for w in workers:
        w.start()
    fired = [out.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    expected = crossings(
        kept(frame, {"W1": SensorSpec("W1"), "W2": SensorSpec("W2")}, NOW), {"W1": 3.0, "W2": 5.0}
    )
    got = sorted((s, pd.Timestamp(t)) for s, t in fired[0] + fired[1])
    assert got == expected and expected  # each crossing fired once, by one of them
    store = spec.open()
    stored = store.alerts(WATER, limit=10_000)
    assert sorted(zip(stored.sensor_id, stored.time, strict=True)) == expected
    store.close()
