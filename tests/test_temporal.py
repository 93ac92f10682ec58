"""The one datetime parser: both modes, against hand-computed instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from shikong.spatial.errors import InputError
from shikong.spatial.temporal import TimeWindow, parse_datetime

T = datetime(2021, 6, 30, 0, 0, tzinfo=UTC)
DAY_END = datetime(2021, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2021-06-30T00:00:00Z", T, T),
        ("2021-06-30T08:00:00+08:00", T, T),
        ("2021-06-29T19:00:00-05:00", T, T),
        ("2021-06-30T00:00:00.5Z", T + timedelta(microseconds=500000), None),
        ("2021-06-30T00:00:00Z/..", T, None),
        ("../2021-06-30T00:00:00Z", None, T),
        ("/2021-06-30T00:00:00Z", None, T),
        ("2021-06-30T00:00:00Z/", T, None),
        ("2021-06-01T00:00:00Z/2021-06-30T00:00:00Z", T - timedelta(days=29), T),
    ],
)
def test_rfc3339_values_mean_the_same_in_both_modes(text, start, end):
    for strict in (True, False):
        window = parse_datetime(text, strict=strict)
        assert window.start == start
        assert window.end == (end if end is not None or "/" in text else start)


def test_a_bare_date_is_the_whole_utc_day_as_instant_and_as_an_interval_end():
    assert parse_datetime("2021-06-30") == TimeWindow(T, DAY_END)
    window = parse_datetime("2021-01-01/2021-06-30")
    assert window.start == datetime(2021, 1, 1, tzinfo=UTC) and window.end == DAY_END
    assert parse_datetime(date(2021, 6, 30)) == TimeWindow(T, DAY_END)
    assert parse_datetime("2021-06-30").contains(datetime(2021, 6, 30, 23, 0, tzinfo=UTC))
    assert not parse_datetime("2021-06-30").contains(datetime(2021, 7, 1, tzinfo=UTC))


def test_lenient_reads_a_time_without_offset_as_utc_and_allows_all_of_time():
    assert parse_datetime("2021-06-30T00:00:00") == TimeWindow(T, T)
    assert parse_datetime("2021-06-30 00:00") == TimeWindow(T, T)
    assert parse_datetime("../..") == TimeWindow(None, None)


@pytest.mark.parametrize(
    "text",
    [
        "/",
        "../..",
        "/..",
        "../",
        "1985-04-12T23:20:50.Z",
        "1985-04-12T23:20:50,52Z",
        "1937-01-01T12:00:27.87+0100",
        "1985-04-12T23:20:50",
        "1985-04-12",
        "2021-06-30T00:00Z",
        "yesterday",
        "",
        "2021-02-30T00:00:00Z",
        "2021-06-30T25:00:00Z",
        "2021-07-01T00:00:00Z/2021-06-30T00:00:00Z",
        "2021-06-30T00:00:00Z/2021-07-01T00:00:00Z/2021-07-02T00:00:00Z",
    ],
)
def test_strict_mode_refuses_what_stac_search_must_refuse_naming_the_value(text):
    with pytest.raises(InputError) as caught:
        parse_datetime(text, strict=True)
    assert "datetime" in str(caught.value)


@pytest.mark.parametrize(
    "text", ["yesterday", "2021-13-01", "2021-06-30T00:00:00+24:00", "a/b/c", "", 5]
)
def test_lenient_mode_refuses_what_is_not_a_date(text):
    with pytest.raises(InputError):
        parse_datetime(text)


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_any_offset_gives_the_same_instant(moment, minutes):
    local = moment.astimezone(timezone(timedelta(minutes=minutes))).isoformat()
    assert parse_datetime(local, strict=True).start == moment


@pytest.mark.parametrize("day", ["2020-12-31", "2021-06-30", "2023-12-31", "2019-01-01"])
def test_a_bare_date_means_its_whole_day_in_features_and_in_search(demo_data, day):
    from shikong.catalog import Catalog
    from shikong.server.app import create_app
    from shikong.server.identity import KeyStore
    from starlette.testclient import TestClient

    whole_day = f"{day}T00:00:00Z/{day}T23:59:59.999999Z"
    cat = Catalog.open(demo_data)
    by_date = cat.search(datetime=day, collections=["nrp-landuse"], limit=100)
    by_interval = cat.search(datetime=whole_day, collections=["nrp-landuse"], limit=100)
    assert [i["id"] for i in by_date.items] == [i["id"] for i in by_interval.items]
    key, _ = KeyStore(demo_data).create("nrp", "temporal")
    with TestClient(create_app(demo_data, "http://t", watch=False)) as client:
        answers = [
            client.get(
                "/collections/nrp-landuse/items",
                params={"f": "json", "datetime": when, "limit": 5, "skipGeometry": "true"},
                headers={"X-API-Key": key},
            )
            for when in (day, whole_day)
        ]
    assert answers[0].status_code == answers[1].status_code
    if answers[0].status_code == 200:
        assert answers[0].json()["numberMatched"] == answers[1].json()["numberMatched"]
        assert answers[0].json()["features"] == answers[1].json()["features"]
