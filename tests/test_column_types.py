"""CSV columns keep their types: inferred, or from a GDAL .csvt sidecar (issue 16, item 9)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from shikong.spatial.errors import FormatError
from shikong.spatial.readers import read

COLUMNS = "sensor_id 经度 纬度 warning_level min_valid DLBM id_number county_code online"
HEADER = ",".join([*COLUMNS.split(), "installed", "seen", "note"])
CSV = (
    HEADER
    + """
WL-1,113.2,33.7,152.07,100,0101,410402199001013075,410402,true,2020-05-01,2026-11-25T08:00:00+08:00,a
WL-2,113.3,33.8,98,90,0102,41040219900101307X,410403,FALSE,2021-06-30,2026-11-25T09:30:00+08:00,
"""
)


@pytest.fixture
def sensors_csv(tmp_path):
    path = tmp_path / "sensors.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_numbers_dates_and_booleans_are_inferred_identifiers_stay_text(sensors_csv):
    frame, report = read(sensors_csv)
    assert frame["经度"].tolist() == [113.2, 113.3]
    assert frame["warning_level"].tolist() == [152.07, 98.0]
    assert frame["min_valid"].tolist() == [100, 90]
    assert pd.api.types.is_integer_dtype(frame["min_valid"])
    assert frame["DLBM"].tolist() == ["0101", "0102"]  # a leading zero: a code
    assert frame["id_number"].tolist() == ["410402199001013075", "41040219900101307X"]
    assert frame["county_code"].tolist() == ["410402", "410403"]  # named a code: text
    assert frame["online"].tolist() == [True, False]
    assert frame["installed"].tolist() == [dt.date(2020, 5, 1), dt.date(2021, 6, 30)]
    seen = frame["seen"].tolist()
    assert seen[0] == pd.Timestamp("2026-11-25T00:00:00Z")  # 08:00+08:00 in UTC
    assert frame["note"].tolist()[0] == "a" and pd.isna(frame["note"].tolist()[1])
    assert any("column types (inferred)" in a for a in report.actions)


def test_a_csvt_sidecar_decides_the_types(sensors_csv):
    sensors_csv.with_suffix(".csvt").write_text(
        '"String","Real","Real","Real","String","String","String","Integer","String",'
        '"Date","String","String"\n'
    )
    frame, report = read(sensors_csv)
    assert frame["min_valid"].tolist() == ["100", "90"]  # declared String
    assert frame["county_code"].tolist() == [410402, 410403]  # declared Integer
    assert frame["online"].tolist() == ["true", "FALSE"]
    assert any("sensors.csvt" in a for a in report.actions)


def test_a_csvt_that_does_not_fit_is_refused_naming_the_column(sensors_csv):
    sensors_csv.with_suffix(".csvt").write_text(
        '"String","Real","Real","Real","Integer","Integer","String","Integer","String",'
        '"Date","String","String"\n'
    )
    frame, _ = read(sensors_csv)  # DLBM "0101" is a valid integer when declared so
    assert frame["DLBM"].tolist() == [101, 102]
    sensors_csv.with_suffix(".csvt").write_text('"String","Real"\n')
    with pytest.raises(FormatError, match="2 types for 12 columns"):
        read(sensors_csv)
    sensors_csv.with_suffix(".csvt").write_text(
        '"Real","Real","Real","Real","String","String","String","Integer","String",'
        '"Date","String","String"\n'
    )
    with pytest.raises(FormatError, match="sensor_id"):
        read(sensors_csv)
