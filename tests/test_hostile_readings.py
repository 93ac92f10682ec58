"""Good readings survive bad neighbours (issue 17, class 1 and parts of class 7).

Mixed batches are generated with hypothesis: good readings of real demo sensors
interleaved with garbage of one known defect each. Whatever the channel (the library,
``POST /readings`` as JSON, NDJSON or CSV against a real ``shikong serve``, MQTT through a
real Mosquitto), every good reading is stored exactly as sent, every bad one is counted
under its reason and none is stored, and the server log holds no traceback.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pandas as pd
import pytest
from conftest import RunningServer, free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shikong.catalog import Catalog
from shikong.catalog.live import LiveIngest, parse_batch
from shikong.server.identity import KeyStore

WAT = "wat-water_level_sensors"
NOW = "@now"  # stands for a fresh, unique, valid time, put in after the draw
FUTURE = "@future"
SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# reasons, as the answers and /readings/stats name them
NOT_OBJECT = "not a reading object"
SENSOR_TYPE, SENSOR_MISSING = "sensor_id is not a string", "sensor_id missing or null"
UNKNOWN = "unknown sensor"
PARAMETER_TYPE, PARAMETER_LONG = "parameter is not a string", "parameter over 200 characters"
TIME_TYPE, TIME_MISSING = "time is not a string", "time missing or null"
TIME_BAD, TIME_FUTURE = "unparseable time", "time in the future"
VALUE_BAD, VALUE_MISSING = "value is not a number", "value missing or null"
VALUE_RANGE = "value outside the sensor's valid range"
LINE_NOT_JSON = "line is not JSON"
EMPTY_LEVEL = "rejected: topic has an empty level"
MISMATCH = "rejected: topic does not match the sensor"


# -- truth: the demo sensors as their layers' attribute tables say --------------------
def demo_sensors(data: Path) -> list[dict]:
    """sensor_id, layer, department, kind and valid range of every demo sensor."""
    out = []
    for layer in Catalog.open(data).collections(kind="sensors"):
        frame = layer.to_geodataframe()
        for row in frame.itertuples():
            out.append(
                {
                    "sensor_id": row.sensor_id,
                    "layer": layer.id,
                    "department": layer.department,
                    "kind": row.kind,
                    "lo": float(row.min_valid),
                    "hi": float(row.max_valid),
                }
            )
    return sorted(out, key=lambda s: s["sensor_id"])


_CLOCK = itertools.count()
_T0 = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(hours=3)


def fresh_time() -> pd.Timestamp:
    """A time no other reading of this module uses (ms steps from three hours ago)."""
    return _T0 + pd.Timedelta(milliseconds=next(_CLOCK))


def iso(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- strategies ----------------------------------------------------------------------
JUNK = st.one_of(
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
NOT_NUMERIC = st.one_of(
    st.sampled_from(["abc", "NaN", "inf", "-Infinity", "12,5", "1.2.3", "一百", ""]),
    st.text(alphabet="xyz水位#", min_size=1, max_size=30),
)
UNPARSEABLE = st.one_of(
    st.sampled_from(
        ["yesterday", "now", "today", "", "2026-13-45T00:00:00Z", "T", "--", "x" * 5000]
    ),
    st.text(alphabet="水位时间#@!", min_size=1, max_size=30),
)


@st.composite
def good_reading(draw, sensors: list[dict]) -> tuple[dict, str | None]:
    sensor = draw(st.sampled_from(sensors))
    f = draw(st.floats(0, 1))
    value: Any = round(sensor["lo"] + f * (sensor["hi"] - sensor["lo"]), 3)
    value = draw(st.sampled_from([value, repr(value)]))  # a number, or numeric text
    reading: dict[str, Any] = {"sensor_id": sensor["sensor_id"], "time": NOW, "value": value}
    extra = draw(st.sampled_from(["none", "null parameter", "parameter", "junk keys"]))
    if extra == "null parameter":
        reading["parameter"] = None
    elif extra == "parameter":
        reading["parameter"] = "level"
    elif extra == "junk keys":
        reading["note"] = {"nested": [1, {"deeper": ["x"]}]}
        reading["blob"] = "长" * 2000
    return reading, None


@st.composite
def bad_reading(draw, sensors: list[dict], mqtt: bool = False) -> tuple[Any, str]:
    """Garbage with exactly one defect, and the reason it must be counted under."""
    reading, _ = draw(good_reading(sensors))
    sensor = next(s for s in sensors if s["sensor_id"] == reading["sensor_id"])
    defect = draw(
        st.sampled_from(
            [
                "not an object",
                "sensor type",
                "sensor null",
                "sensor absent",
                "unknown sensor",
                "huge sensor",
                "parameter type",
                "parameter long",
                "parameter surrogate",
                "time type",
                "time absent",
                "time unparseable",
                "time future",
                "value type",
                "value text",
                "value nan",
                "value huge",
                "value absent",
                "value range",
                "nested",
            ]
        )
    )
    if defect == "not an object":
        non_object = JUNK.filter(lambda v: not isinstance(v, dict))
        return draw(st.one_of(st.none(), st.text(max_size=10), non_object)), NOT_OBJECT
    if defect == "sensor type":
        return {**reading, "sensor_id": draw(JUNK)}, SENSOR_TYPE
    if defect == "sensor null" or (defect == "sensor absent" and mqtt):
        return {**reading, "sensor_id": None}, SENSOR_MISSING
    if defect == "sensor absent":  # over MQTT the topic names the sensor: not a defect
        return {k: v for k, v in reading.items() if k != "sensor_id"}, SENSOR_MISSING
    if defect == "unknown sensor":
        return {**reading, "sensor_id": "NO-" + draw(st.text(max_size=20))}, UNKNOWN
    if defect == "huge sensor":
        return {**reading, "sensor_id": sensor["sensor_id"] * 20_000}, UNKNOWN
    if defect == "parameter type":
        return {**reading, "parameter": draw(JUNK)}, PARAMETER_TYPE
    if defect == "parameter long":
        return {**reading, "parameter": "p" * draw(st.integers(201, 20_000))}, PARAMETER_LONG
    if defect == "parameter surrogate":  # json.dumps writes it as an escape, \ud800
        return {**reading, "parameter": "level\ud800"}, PARAMETER_TYPE
    if defect == "time type":
        return {**reading, "time": draw(JUNK)}, TIME_TYPE
    if defect == "time absent":
        return draw(st.sampled_from([{**reading, "time": None}, _without(reading, "time")])), (
            TIME_MISSING
        )
    if defect == "time unparseable":
        return {**reading, "time": draw(UNPARSEABLE)}, TIME_BAD
    if defect == "time future":
        return {**reading, "time": FUTURE}, TIME_FUTURE
    if defect == "value type":
        junk = draw(
            st.one_of(
                st.booleans(),
                st.lists(st.floats(), max_size=2),
                st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
            )
        )
        return {**reading, "value": junk}, VALUE_BAD
    if defect == "value text":
        return {**reading, "value": draw(NOT_NUMERIC)}, VALUE_BAD
    if defect == "value nan":  # json.dumps writes NaN / Infinity, which JSON lacks
        return {**reading, "value": draw(st.sampled_from([float("nan"), float("inf")]))}, (
            VALUE_BAD
        )
    if defect == "value huge":
        return {**reading, "value": 10**400}, VALUE_BAD
    if defect == "value absent":
        return draw(st.sampled_from([{**reading, "value": None}, _without(reading, "value")])), (
            VALUE_MISSING
        )
    if defect == "value range":
        beyond = draw(st.floats(0.01, 1e6))
        value = draw(st.sampled_from([sensor["hi"] + beyond, sensor["lo"] - beyond]))
        return {**reading, "value": value}, VALUE_RANGE
    # nested: a reading wrapped in another object
    return {"reading": reading}, (TIME_MISSING if mqtt else SENSOR_MISSING)


def _without(reading: dict, key: str) -> dict:
    return {k: v for k, v in reading.items() if k != key}


def mixed_batch(sensors: list[dict], mqtt: bool = False, max_size: int = 30):
    """A shuffled list of (reading, reason): reason None for a good one."""
    item = st.one_of(good_reading(sensors), bad_reading(sensors, mqtt))
    return st.lists(item, min_size=1, max_size=max_size)


def realise(batch: list[tuple[Any, str | None]]) -> tuple[list[Any], list[tuple], Counter]:
    """Readings with fresh times put in; the (sensor, parameter, ms, value) of the good
    ones, and the refusals expected by reason."""
    readings, good, reasons = [], [], Counter()
    for reading, reason in batch:
        if isinstance(reading, dict):
            reading = _with_times(reading)
        readings.append(reading)
        if reason is None:
            t = pd.Timestamp(reading["time"])
            good.append(
                (
                    reading["sensor_id"],
                    reading.get("parameter") or "value",
                    t.value // 1_000_000,
                    float(reading["value"]),
                )
            )
        else:
            reasons[reason] += 1
    return readings, good, reasons


def _with_times(reading: dict) -> dict:
    out = dict(reading)
    if out.get("time") == NOW:
        out["time"] = iso(fresh_time())
    elif out.get("time") == FUTURE:
        out["time"] = iso(pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=2))
    if isinstance(out.get("reading"), dict):
        out["reading"] = _with_times(out["reading"])
    return out


class Span:
    """The times a test issues from here on: a batch's readings are alone in them."""

    def __enter__(self) -> Span:
        self.first = _T0 + pd.Timedelta(milliseconds=next(_CLOCK))
        return self

    def __exit__(self, *exc: object) -> None:
        self.last = _T0 + pd.Timedelta(milliseconds=next(_CLOCK))

    def stored(self, data: Path) -> set[tuple]:
        """(sensor, parameter, ms, value) of every reading stored in the span."""
        store = Catalog.open(data).observations
        out = set()
        for layer in {s["layer"] for s in demo_sensors_cache(data)}:
            frame = store.window(layer, start=self.first, end=self.last)
            for row in frame.itertuples():
                out.add((row.sensor_id, row.parameter, row.time.value // 1_000_000, row.value))
        return out


_SENSOR_CACHE: dict[Path, list[dict]] = {}


def demo_sensors_cache(data: Path) -> list[dict]:
    if data not in _SENSOR_CACHE:
        _SENSOR_CACHE[data] = demo_sensors(data)
    return _SENSOR_CACHE[data]


def ndjson(readings: list[Any], broken: int = 0) -> bytes:
    lines = [json.dumps(r) for r in readings] + ["{broken", "[1,"][:broken]
    return "\n".join(lines).encode()


def no_traceback(server: RunningServer) -> None:
    server.log.flush()
    log = Path(server.log.name).read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


# -- the library: parse_batch + LiveIngest, the path both servers take ---------------
@pytest.fixture(scope="module")
def library(demo_data, tmp_path_factory):
    data = tmp_path_factory.mktemp("hostile-lib") / "data"
    shutil.copytree(demo_data, data)
    cat = Catalog.open(data)
    return LiveIngest(cat.store, cat.observations), data


@pytest.fixture(scope="module")
def sensors(demo_data) -> list[dict]:
    return demo_sensors(demo_data)


@SETTINGS
@given(st.data())
def test_library_mixed_batches(library, sensors, data):
    live, root = library
    batch = data.draw(mixed_batch(sensors, max_size=40))
    with Span() as span:
        readings, good, reasons = realise(batch)
    form = data.draw(st.sampled_from(["array", "object", "ndjson"]))
    if form == "ndjson":
        broken = data.draw(st.integers(0, 2))
        frame = parse_batch(ndjson(readings, broken), "application/x-ndjson")
        reasons[LINE_NOT_JSON] += broken
    else:
        body = readings if form == "array" else {"readings": readings}
        frame = parse_batch(json.dumps(body).encode(), "application/json")
    result = live.ingest(frame)
    assert result.accepted == len(good)
    assert dict(result.rejected) == dict(+reasons)
    assert span.stored(root) == set(good)


@pytest.mark.parametrize(
    ("body", "content_type", "problem"),
    [
        (b"[{oops", "application/json", "not application/json"),
        (b"[" * 5000 + b"]" * 5000, "application/json", "not application/json"),
        (b'"a string"', "application/json", "list of readings"),
        (b'{"readings": 5}', "application/json", "list of readings"),
        (b"   \n", "application/json", "empty batch"),
        ('[{"sensor_id": "传感器"}]'.encode("gbk"), "application/json", "UTF-8"),
        (b"sensor_id,time,value\n\xff\xfe\xfa,1,2\n", "text/csv", "GBK"),
        (b"sensor_id,time,value\n", "text/csv; charset=klingon", "klingon"),
    ],
    ids=["broken", "deep", "string", "readings-not-list", "blank", "gbk-json", "bad-csv", "cs"],
)
def test_library_refuses_an_unreadable_body_by_name(body, content_type, problem):
    from shikong.spatial.errors import ShikongError

    with pytest.raises(ShikongError, match=problem):
        parse_batch(body, content_type)


# -- HTTP: a real `shikong serve` and a gateway key -----------------------------------
@pytest.fixture(scope="module")
def http_server(demo_data, tmp_path_factory):
    data = tmp_path_factory.mktemp("hostile-http") / "data"
    shutil.copytree(demo_data, data)
    key, _ = KeyStore(data).create("wat", "gw", role="gateway")
    server = RunningServer(data, free_port())
    yield server, data, {"X-API-Key": key}
    server.stop()


@settings(SETTINGS, max_examples=40)
@given(st.data())
def test_http_mixed_batches(http_server, sensors, data):
    server, root, key = http_server
    batch = data.draw(mixed_batch(sensors, max_size=25))
    with Span() as span:
        readings, good, reasons = realise(batch)
    form = data.draw(st.sampled_from(["json", "ndjson"]))
    if form == "json":
        body, content_type = json.dumps(readings).encode(), "application/json"
    else:
        broken = data.draw(st.integers(0, 2))
        body, content_type = ndjson(readings, broken), "application/x-ndjson"
        reasons[LINE_NOT_JSON] += broken
    r = httpx.post(
        f"{server.url}/readings",
        content=body,
        headers={**key, "Content-Type": content_type},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["accepted"] == len(good)
    assert answer["rejected"] == dict(+reasons)
    assert answer["rejected_total"] == sum(reasons.values())
    assert span.stored(root) == set(good)


def csv_reason(reading: dict, reason: str | None) -> str | None:
    """The reason a reading is refused when it comes as a CSV row: a field over the csv
    module's limit (131,072 characters) makes the row unreadable as CSV."""
    if any(len(str(v)) > 131_072 for v in reading.values()):
        return "row is not CSV"
    return reason


def csv_cell(value: Any) -> str:
    return "" if value is None else str(value).replace(",", ";").replace("\n", " ")


@settings(SETTINGS, max_examples=20)
@given(st.data())
def test_http_mixed_csv_batches_in_utf8_and_gbk(http_server, sensors, data):
    """CSV can only hold text: garbage is unknown or empty sensors, bad times, values
    that are not numbers or out of range, short rows. GBK bodies are detected."""
    server, root, key = http_server
    items = data.draw(
        st.lists(
            st.one_of(
                good_reading(sensors),
                bad_reading(sensors).filter(
                    lambda b: (
                        b[1] in (UNKNOWN, TIME_BAD, TIME_FUTURE, VALUE_RANGE)
                        and isinstance(b[0], dict)
                        and not set('\n\r",') & set(str(b[0].get("sensor_id")))
                    )
                ),
            ),
            min_size=1,
            max_size=20,
        )
    )
    items = [(_without(r, "parameter"), csv_reason(r, why)) for r, why in items]
    with Span() as span:
        readings, good, reasons = realise(items)
    lines = ["sensor_id,time,value,备注"]
    for r in readings:
        lines.append(",".join(csv_cell(r.get(k)) for k in ("sensor_id", "time", "value")) + ",水位")
    short = data.draw(st.integers(0, 2))  # rows cut after the sensor: no time, no value
    lines += [f"{sensors[0]['sensor_id']}"] * short
    reasons[TIME_MISSING] += short
    encoding = data.draw(st.sampled_from(["utf-8", "gbk"]))
    body = "\n".join(lines).encode(encoding, errors="replace")
    r = httpx.post(
        f"{server.url}/readings", content=body, headers={**key, "Content-Type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(good)
    assert r.json()["rejected"] == dict(+reasons)
    assert span.stored(root) == set(good)


HOSTILE_BODIES = [
    # (id, body, content type, status, rejected by reason when 200)
    ("list-sensor", [{"sensor_id": ["WAT-WL-001"], "time": NOW, "value": 150}], "json", 200,
     {SENSOR_TYPE: 1}),
    ("object-sensor", [{"sensor_id": {"id": "WAT-WL-001"}, "time": NOW, "value": 150}], "json",
     200, {SENSOR_TYPE: 1}),
    ("number-sensor", [{"sensor_id": 1, "time": NOW, "value": 150}], "json", 200,
     {SENSOR_TYPE: 1}),
    ("null-sensor", [{"sensor_id": None, "time": NOW, "value": 150}], "json", 200,
     {SENSOR_MISSING: 1}),
    ("list-parameter", [{"sensor_id": "WAT-WL-001", "parameter": ["a"], "time": NOW,
                         "value": 150}], "json", 200, {PARAMETER_TYPE: 1}),
    ("object-time", [{"sensor_id": "WAT-WL-001", "time": {"t": 1}, "value": 150}], "json", 200,
     {TIME_TYPE: 1}),
    ("epoch-time", [{"sensor_id": "WAT-WL-001", "time": 1764000000, "value": 150}], "json", 200,
     {TIME_TYPE: 1}),
    ("bool-value", [{"sensor_id": "WAT-WL-001", "time": NOW, "value": True}], "json", 200,
     {VALUE_BAD: 1}),
    ("huge-int", [{"sensor_id": "WAT-WL-001", "time": NOW, "value": 10**400}], "json", 200,
     {VALUE_BAD: 1}),
    ("nan", [{"sensor_id": "WAT-WL-001", "time": NOW, "value": float("nan")}], "json", 200,
     {VALUE_BAD: 1}),
    ("empty-object", [{}], "json", 200, {SENSOR_MISSING: 1}),
    ("nulls", [None, None], "json", 200, {NOT_OBJECT: 2}),
    ("nested-list", [[{"sensor_id": "WAT-WL-001", "time": NOW, "value": 150}]], "json", 200,
     {NOT_OBJECT: 1}),
    ("huge-time", [{"sensor_id": "WAT-WL-001", "time": "2" * 1_000_000, "value": 150}], "json",
     200, {TIME_BAD: 1}),
    ("broken-json", b'[{"sensor_id": "WAT-WL-001",', "json", 400, None),
    ("deep-json", b"[" * 100_000 + b"]" * 100_000, "json", 400, None),
    ("gbk-json", '[{"sensor_id": "传感器"}]'.encode("gbk"), "json", 400, None),
    ("not-a-list", b'{"readings": {"sensor_id": "WAT-WL-001"}}', "json", 400, None),
    ("latin-1-csv", "sensor_id,time,value\nWAT-WL-001,x,ÿÿ\x80\n".encode("latin-1"), "csv",
     400, None),
    ("binary", bytes(range(256)) * 8, "csv", 400, None),
    ("unknown-charset", b"sensor_id,time,value\n", "text/csv; charset=x-nope", 400, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "content_type", "status", "rejected"),
    [case[1:] for case in HOSTILE_BODIES],
    ids=[case[0] for case in HOSTILE_BODIES],
)
def test_http_hostile_bodies_beside_a_good_reading(
    http_server, body, content_type, status, rejected
):
    """Each hostile body, with one good reading beside it when it is a list: a 200 that
    stores the good one and counts the bad, or a 400 naming the problem; never a 500."""
    server, root, key = http_server
    types = {"json": "application/json", "csv": "text/csv"}
    good = {"sensor_id": "WAT-WL-001", "time": iso(fresh_time()), "value": 150.5}
    if isinstance(body, list):
        body = json.dumps([good, *(_with_times(b) if isinstance(b, dict) else b for b in body)])
        body = body.encode()
    r = httpx.post(
        f"{server.url}/readings",
        content=body,
        headers={**key, "Content-Type": types.get(content_type, content_type)},
        timeout=60,
    )
    assert r.status_code == status, r.text
    answer = r.json()
    if status == 200:
        assert answer["accepted"] == 1 and answer["rejected"] == rejected
        stored = Catalog.open(root).observations.window(
            WAT, ["WAT-WL-001"], pd.Timestamp(good["time"]), pd.Timestamp(good["time"])
        )
        assert stored["value"].tolist() == [150.5]
    else:
        assert answer["code"] == "InvalidParameterValue" and answer["description"]


def test_http_gbk_csv_is_decoded(http_server):
    """A department's CSV export in GBK (Chinese header and notes) is read as such."""
    server, root, key = http_server
    t1, t2 = iso(fresh_time()), iso(fresh_time())
    text = (
        f"sensor_id,time,value,备注\nWAT-WL-001,{t1},151.25,龙河水位\n"
        f"水位站-9,{t2},150,未知\nWAT-WL-001,{t2},151.5,正常\n"
    )
    for body, content_type in [
        (text.encode("gbk"), "text/csv"),
        (text.encode("gb18030"), "text/csv; charset=GB18030"),
    ]:
        r = httpx.post(
            f"{server.url}/readings", content=body, headers={**key, "Content-Type": content_type}
        )
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["rejected"] == {UNKNOWN: 1}
        assert answer["accepted"] + answer["duplicates"] == 2
    stored = Catalog.open(root).observations.window(
        WAT, ["WAT-WL-001"], pd.Timestamp(t1), pd.Timestamp(t2)
    )
    assert stored["value"].tolist() == [151.25, 151.5]


def test_http_undecodable_csv_names_the_encoding(http_server):
    server, _, key = http_server
    r = httpx.post(
        f"{server.url}/readings",
        content=b"sensor_id,time,value\n\x80\xff\xfe,1,2\n",
        headers={**key, "Content-Type": "text/csv"},
    )
    assert r.status_code == 400
    assert "GBK" in r.json()["description"] and "UTF-8" in r.json()["description"]


@pytest.mark.parametrize("within", ["-5", "0", "-0.001", "nan", "inf", "-inf", "1e308"])
def test_edr_radius_needs_a_positive_within(http_server, within):
    server, _, key = http_server
    r = httpx.get(
        f"{server.url}/collections/{WAT}/radius",
        params={"coords": "POINT(113.06805 33.706704)", "within": within, "within-units": "km"},
        headers=key,
    )
    assert r.status_code == 400, r.text
    assert "within" in r.json()["description"]


def test_edr_radius_with_a_positive_within_finds_the_sensor(http_server):
    server, _, key = http_server
    httpx.post(
        f"{server.url}/readings",
        json=[{"sensor_id": "WAT-WL-001", "time": iso(fresh_time()), "value": 150.0}],
        headers=key,
    )
    r = httpx.get(
        f"{server.url}/collections/{WAT}/radius",
        params={"coords": "POINT(113.06805 33.706704)", "within": "0.5", "within-units": "km"},
        headers=key,
    )
    assert r.status_code == 200, r.text


def test_http_server_log_has_no_traceback(http_server):
    """Runs after the HTTP tests of this module (pytest keeps file order)."""
    no_traceback(http_server[0])


# -- MQTT: a real Mosquitto and `serve --mqtt` ----------------------------------------
@pytest.fixture(scope="module")
def mqtt_server(demo_data, tmp_path_factory, mosquitto):
    data = tmp_path_factory.mktemp("hostile-mqtt") / "data"
    shutil.copytree(demo_data, data)
    key, _ = KeyStore(data).create("wat", "gw", role="gateway")
    server = RunningServer(data, free_port(), mqtt=mosquitto)
    server.key = {"X-API-Key": key}
    host, port = mosquitto.removeprefix("mqtt://").split(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(host, int(port))
    client.loop_start()
    time.sleep(0.5)  # let the server's subscriber connect
    yield server, data, client
    client.loop_stop()
    client.disconnect()
    server.stop()


def mqtt_stats(server: RunningServer) -> Counter:
    answer = httpx.get(f"{server.url}/readings/stats", headers=server.key)
    return Counter(answer.json()["mqtt"] or {})


def publish_and_count(
    server: RunningServer, client: mqtt.Client, messages: list[tuple[str, bytes]]
) -> Counter:
    """Publish, wait until the server has counted every message, return the new counts."""
    before = mqtt_stats(server)
    for topic, payload in messages:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        delta = mqtt_stats(server) - before
        if delta["messages"] >= len(messages):
            return delta
        time.sleep(0.05)
    raise AssertionError(f"the server counted {delta} of {len(messages)} messages")


@settings(SETTINGS, max_examples=20)
@given(st.data())
def test_mqtt_mixed_messages(mqtt_server, sensors, data):
    server, root, client = mqtt_server
    wat = [s for s in sensors if s["layer"] == WAT]
    topic_sensor = data.draw(st.sampled_from(wat))["sensor_id"]
    topic = f"shikong/wat/water_level/{topic_sensor}"
    batch = data.draw(mixed_batch(wat, mqtt=True, max_size=20))
    form = data.draw(st.sampled_from(["list", "object"]))
    other = data.draw(st.sampled_from([s for s in sensors if s["layer"] != WAT]))
    extra = data.draw(
        st.lists(st.sampled_from(["not json", "binary", "empty level", "other dept"]), max_size=3)
    )
    with Span() as span:  # every reading sent, refused ones too, has its time in the span
        readings, good, reasons = realise(batch)
        body = readings if form == "list" else {"readings": readings}
        messages = [(topic, json.dumps(body).encode())]
        expected = Counter({f"rejected: {k}": v for k, v in reasons.items()})
        for kind in extra:
            if kind == "not json":
                messages.append((topic, b"{not json"))
                expected["rejected: payload is not JSON"] += 1
            elif kind == "binary":
                messages.append((topic, bytes([0xFF, 0xFE, 0x00, 0x80]) * 10))
                expected["rejected: payload is not JSON"] += 1
            elif kind == "empty level":  # a good reading, but on a topic with a hole
                one = {"time": iso(fresh_time()), "value": 150.0}
                messages.append((f"shikong//water_level/{topic_sensor}", json.dumps(one).encode()))
                expected[EMPTY_LEVEL] += 1
            else:  # a water-level topic, a reading of a sensor of another department
                one = {"sensor_id": other["sensor_id"], "time": iso(fresh_time()), "value": 1}
                messages.append((topic, json.dumps(one).encode()))
                expected[MISMATCH] += 1
    delta = publish_and_count(server, client, messages)
    assert delta["messages"] == len(messages)
    assert delta["accepted"] == len(good)
    assert {k: v for k, v in delta.items() if k.startswith("rejected")} == dict(+expected)
    assert span.stored(root) == set(good)


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("shikong//water_level/WAT-WL-001", EMPTY_LEVEL),
        ("shikong/wat/water_level/", EMPTY_LEVEL),
        ("shikong///", EMPTY_LEVEL),
        ("shikong//water_level/", EMPTY_LEVEL),
        ("shikong/wat//WAT-WL-001", EMPTY_LEVEL),
    ],
)
def test_mqtt_topic_with_an_empty_level_is_refused_and_counted(mqtt_server, topic, reason):
    server, root, client = mqtt_server
    t = iso(fresh_time())
    payload = json.dumps({"sensor_id": "WAT-WL-001", "time": t, "value": 150.0}).encode()
    delta = publish_and_count(server, client, [(topic, payload)])
    assert delta[reason] == 1 and not delta["accepted"]
    stored = Catalog.open(root).observations.window(
        WAT, ["WAT-WL-001"], pd.Timestamp(t), pd.Timestamp(t)
    )
    assert stored.empty


def test_mqtt_server_log_has_no_traceback(mqtt_server):
    no_traceback(mqtt_server[0])
