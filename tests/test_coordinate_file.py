"""坐标报盘 reader and writer, checked against coordinates and areas worked out by hand.

The files are typed here line by line (not produced by the writer), so the reader is
tested against the format, not against itself. Truth for positions comes from pyproj
transforms built independently of the reader's CRS choice.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon, box
from shikong.spatial.errors import (
    CoordinateFileError,
    CRSError,
    EncodingError,
    InputError,
    ShikongError,
)
from shikong.spatial.readers.coordinate_file import (
    parse_coordinate_text,
    read_coordinate_file,
    write_coordinate_file,
)

HEADER = [
    "[属性描述]",
    "格式版本号=1.01版本",
    "数据产生单位=武汉市测绘研究院",
    "数据产生日期=2024-05-01",
    "坐标系=2000国家大地坐标系",
    "几度分带=3",
    "投影类型=高斯克吕格",
    "计量单位=米",
    "带号=38",
    "精度=0.001",
    "转换参数=,,,,,,",
    "[地块坐标]",
]
# D01: 100 m (east) x 200 m (north) rectangle = 20,000 m² = 2 ha.
PARCEL_A = [
    "5,2.0000,D01,东湖工业园地块,面,,工业用地,,@",
    "J1,1,3737000.000,38500000.000",
    "J2,1,3737000.000,38500100.000",
    "J3,1,3737200.000,38500100.000",
    "J4,1,3737200.000,38500000.000",
    "J1,1,3737000.000,38500000.000",
]
# D02: 300 m square with a 100 m square hole = 90,000 - 10,000 = 80,000 m² = 8 ha.
PARCEL_B = [
    "10,8.0000,D02,光谷居住区地块,面,H50G001001,城镇住宅用地,0701,@",
    "J1,1,3738000.000,38501000.000",
    "J2,1,3738000.000,38501300.000",
    "J3,1,3738300.000,38501300.000",
    "J4,1,3738300.000,38501000.000",
    "J1,1,3738000.000,38501000.000",
    "J5,2,3738100.000,38501100.000",
    "J6,2,3738100.000,38501200.000",
    "J7,2,3738200.000,38501200.000",
    "J8,2,3738200.000,38501100.000",
    "J5,2,3738100.000,38501100.000",
]
LINES = HEADER + PARCEL_A + PARCEL_B
TRUE_AREAS = [20_000.0, 80_000.0]
# (easting without the zone-38 prefix, northing) of D01's corners.
CORNERS_A = [(500_000.0, 3_737_000.0), (500_100.0, 3_737_000.0), (500_100.0, 3_737_200.0)]
GK38 = 4547  # CGCS2000 3° GK, CM 114°E, no prefix
GK6_20 = 4509  # CGCS2000 6° GK zone 20, CM 117°E, no prefix


def text_of(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def line_no(lines: list[str], text: str) -> int:
    """1-based number of the line holding exactly ``text``."""
    return lines.index(text) + 1


def replaced(lines: list[str], old: str, new: str | list[str]) -> list[str]:
    i = lines.index(old)
    return lines[:i] + ([new] if isinstance(new, str) else new) + lines[i + 1 :]


def parse_error(lines: list[str]) -> CoordinateFileError:
    with pytest.raises(CoordinateFileError) as info:
        parse_coordinate_text(text_of(lines), source="test.txt")
    return info.value


def nearest_vertex_distance(geom: Polygon, lon: float, lat: float) -> float:
    coords = shapely.get_coordinates(geom)
    return float(np.abs(coords - [lon, lat]).max(axis=1).min())


@pytest.fixture
def gbk_file(tmp_path: Path) -> Path:
    path = tmp_path / "报盘.txt"
    path.write_bytes(text_of(LINES).encode("gbk"))
    return path


def test_reads_gbk_file(gbk_file: Path) -> None:
    frame, report = read_coordinate_file(gbk_file)
    assert len(frame) == 2
    assert frame.crs.to_epsg() == 4490
    assert report.format == "坐标报盘"
    assert report.encoding == "gbk"
    assert report.crs == "EPSG:4526"  # 3° zone 38 with the zone prefix
    assert list(frame["parcel_id"]) == ["D01", "D02"]
    assert list(frame["name"]) == ["东湖工业园地块", "光谷居住区地块"]
    assert list(frame["use"]) == ["工业用地", "城镇住宅用地"]
    assert list(frame["sheet"]) == ["", "H50G001001"]
    assert list(frame["class_code"]) == ["", "0701"]
    assert list(frame["shape_type"]) == ["面", "面"]
    assert list(frame["declared_area_ha"]) == [2.0, 8.0]
    assert list(frame["point_count"]) == [5, 10]
    a, b = frame.geometry
    assert len(a.interiors) == 0
    assert len(b.interiors) == 1
    np.testing.assert_allclose(frame.to_crs(GK38).area, TRUE_AREAS, rtol=0, atol=0.01)
    assert any(
        "带号=38" in action and "坐标系=2000国家大地坐标系" in action for action in report.actions
    )


def test_vertices_match_an_independent_transform(gbk_file: Path) -> None:
    frame, _ = read_coordinate_file(gbk_file)
    to_geo = Transformer.from_crs(GK38, 4490, always_xy=True)
    for easting, northing in CORNERS_A:
        lon, lat = to_geo.transform(easting, northing)
        assert nearest_vertex_distance(frame.geometry[0], lon, lat) < 1e-9
    # The hole's corner (501100, 3738100) must be a vertex of D02's interior ring.
    lon, lat = to_geo.transform(501_100.0, 3_738_100.0)
    assert nearest_vertex_distance(Polygon(frame.geometry[1].interiors[0]), lon, lat) < 1e-9


def test_utf8_bom_crlf_reads_the_same(gbk_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "utf8.txt"
    path.write_bytes(text_of(LINES).replace("\n", "\r\n").encode("utf-8-sig"))
    frame, report = read_coordinate_file(path)
    expected, _ = read_coordinate_file(gbk_file)
    assert report.encoding == "utf-8"
    assert list(frame["name"]) == list(expected["name"])
    assert frame.geometry.geom_equals_exact(expected.geometry, tolerance=0).all()


def test_parse_text_and_declared_encoding(gbk_file: Path) -> None:
    frame, report = parse_coordinate_text(text_of(LINES), source="upload.txt")
    assert report.source == "upload.txt"
    assert list(frame["parcel_id"]) == ["D01", "D02"]
    frame2, _ = read_coordinate_file(gbk_file, encoding="gb18030")
    assert list(frame2["name"]) == list(frame["name"])
    with pytest.raises(EncodingError):
        read_coordinate_file(gbk_file, encoding="utf-8")
    with pytest.raises(EncodingError):
        read_coordinate_file(gbk_file, encoding="no-such-codec")


def test_unprefixed_eastings_use_the_header_zone() -> None:
    lines = [line.replace(",38500", ",500").replace(",38501", ",501") for line in LINES]
    frame, report = parse_coordinate_text(text_of(lines))
    assert report.crs == f"EPSG:{GK38}"
    expected, _ = parse_coordinate_text(text_of(LINES))
    assert (
        np.abs(
            shapely.get_coordinates(frame.geometry.values)
            - shapely.get_coordinates(expected.geometry.values)
        ).max()
        < 1e-9
    )


def test_six_degree_zone() -> None:
    lines = replaced(replaced(LINES, "几度分带=3", "几度分带=6"), "带号=38", "带号=20")
    lines = [line.replace(",385", ",205") for line in lines]  # 6° zone 20: CM 117°E
    frame, report = parse_coordinate_text(text_of(lines))
    assert report.crs == "EPSG:4498"
    # Truth from a PROJ string, not from the EPSG table the reader uses.
    tm = CRS.from_proj4("+proj=tmerc +lon_0=117 +k=1 +x_0=20500000 +y_0=0 +ellps=GRS80 +units=m")
    lon, lat = Transformer.from_crs(tm, tm.geodetic_crs, always_xy=True).transform(
        20_500_100.0, 3_737_200.0
    )
    assert nearest_vertex_distance(frame.geometry[0], lon, lat) < 1e-9


# --- bad input ------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(CoordinateFileError, match="empty"):
        read_coordinate_file(path)
    with pytest.raises(CoordinateFileError, match="empty"):
        parse_coordinate_text(" \r\n\n")


def test_missing_parcel_section() -> None:
    err = parse_error(HEADER[:-1])
    assert "[地块坐标]" in str(err)
    assert err.where == f"line {len(HEADER) - 1}"


def test_non_numeric_point_count() -> None:
    bad = "五,2.0000,D01,东湖工业园地块,面,,工业用地,,@"
    lines = replaced(LINES, PARCEL_A[0], bad)
    err = parse_error(lines)
    assert "point count" in str(err) and "'五'" in str(err)
    assert err.where == f"line {line_no(lines, bad)}"


@pytest.mark.parametrize("declared", [6, 4])
def test_point_count_disagrees_with_point_lines(declared: int) -> None:
    bad = PARCEL_A[0].replace("5,", f"{declared},", 1)
    lines = replaced(LINES, PARCEL_A[0], bad)
    err = parse_error(lines)
    message = str(err)
    assert "point count" in message and str(declared) in message and "5 point lines" in message
    assert "D01" in message
    assert err.where == f"line {line_no(lines, bad)}"


def test_unclosed_ring() -> None:
    lines = LINES[:]
    closing = len(HEADER) + len(PARCEL_A) + 6  # D02's outer closing point, 1-based line
    assert lines[closing - 1] == "J1,1,3738000.000,38501000.000"
    lines[closing - 1] = "J9,1,3738000.000,38501010.000"
    err = parse_error(lines)
    assert "not closed" in str(err) and "ring 1" in str(err) and "D02" in str(err)
    assert err.where == f"line {closing}"


def test_unclosed_hole() -> None:
    lines = replaced(LINES, PARCEL_B[-1], "J9,2,3738100.000,38501150.000")
    err = parse_error(lines)
    assert "not closed" in str(err) and "ring 2" in str(err) and "D02" in str(err)
    assert err.where == f"line {len(lines)}"


def test_non_numeric_coordinate() -> None:
    bad = "J2,1,3737000.000,38500l00.000"  # letter l typed for digit 1
    lines = replaced(LINES, PARCEL_A[2], bad)
    err = parse_error(lines)
    assert "not a number" in str(err) and "38500l00.000" in str(err)
    assert err.where == f"line {line_no(lines, bad)}"


def test_ring_with_too_few_points() -> None:
    triangle = [
        "3,0.0000,D03,线状地块,面,,,,@",
        "J1,1,3739000.000,38500000.000",
        "J2,1,3739000.000,38500050.000",
        "J1,1,3739000.000,38500000.000",
    ]
    lines = LINES + triangle
    err = parse_error(lines)
    assert "at least 4" in str(err) and "D03" in str(err)
    assert err.where == f"line {len(LINES) + 2}"


def test_ring_on_one_line() -> None:
    flat = [
        "4,0.0000,D03,线状地块,面,,,,@",
        "J1,1,3739000.000,38500000.000",
        "J2,1,3739000.000,38500050.000",
        "J3,1,3739000.000,38500100.000",
        "J1,1,3739000.000,38500000.000",
    ]
    err = parse_error(LINES + flat)
    assert "no area" in str(err) and "D03" in str(err)
    assert err.where == f"line {len(LINES) + 2}"


def test_wrong_number_of_fields() -> None:
    bad = "J2,1,3737000.000"
    lines = replaced(LINES, PARCEL_A[2], bad)
    err = parse_error(lines)
    assert "4 fields" in str(err) and "found 3" in str(err)
    assert err.where == f"line {line_no(lines, bad)}"


@pytest.mark.parametrize("datum", ["1980西安坐标系", "1954北京坐标系", "WGS84"])
def test_other_datums_are_refused(datum: str) -> None:
    bad = f"坐标系={datum}"
    lines = replaced(LINES, "坐标系=2000国家大地坐标系", bad)
    err = parse_error(lines)
    assert datum in str(err) and "CGCS2000" in str(err)
    assert err.where == f"line {line_no(lines, bad)}"


def test_prefix_contradicts_header_zone() -> None:
    lines = replaced(LINES, "带号=38", "带号=39")
    err = parse_error(lines)
    assert "zone 38" in str(err) and "带号=39" in str(err)
    assert err.where == f"line {line_no(LINES, PARCEL_A[1])}"


def test_mixed_prefixes() -> None:
    bad = "J2,1,3737000.000,500100.000"
    lines = replaced(LINES, PARCEL_A[2], bad)
    err = parse_error(lines)
    assert "no zone prefix" in str(err)
    assert err.where == f"line {line_no(lines, bad)}"


def test_swapped_axes() -> None:
    lines = [
        line if line.count(",") != 3 else ",".join(line.split(",")[i] for i in (0, 1, 3, 2))
        for line in LINES
    ]
    err = parse_error(lines)
    assert "swapped" in str(err)
    assert err.where == f"line {len(HEADER) + 2}"


def test_hole_outside_the_outer_ring() -> None:
    outside = [
        "J5,2,3739100.000,38501100.000",
        "J6,2,3739100.000,38501200.000",
        "J7,2,3739200.000,38501200.000",
        "J8,2,3739200.000,38501100.000",
        "J5,2,3739100.000,38501100.000",
    ]
    lines = LINES[: -len(outside)] + outside
    err = parse_error(lines)
    assert "not inside" in str(err) and "ring 2" in str(err) and "D02" in str(err)
    assert err.where == f"line {len(lines) - 4}"


def test_no_zone_information() -> None:
    lines = [line.replace(",38500", ",500").replace(",38501", ",501") for line in LINES]
    lines.remove("带号=38")
    err = parse_error(lines)
    assert "带号" in str(err)


def test_damaged_files_raise_only_shikong_errors() -> None:
    """Dropping or truncating any one line either still reads or names the problem."""
    variants = [LINES[:i] + LINES[i + 1 :] for i in range(len(LINES))]
    for i, line in enumerate(LINES):
        for cut in (1, len(line) // 2, len(line) - 1):
            variants.append([*LINES[:i], line[:cut], *LINES[i + 1 :]])
    for lines in variants:
        with contextlib.suppress(ShikongError):  # anything else fails the test
            parse_coordinate_text(text_of(lines))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_coordinate_file(tmp_path / "none.txt")


# --- writer -------------------------------------------------------------------------------


def _frame_in_gk(epsg: int = GK38) -> gpd.GeoDataFrame:
    """Parcels with whole-metre corners in an unprefixed GK CRS: the mm rounding of the
    writer leaves them exact when written in the same zone."""
    rect = box(500_000, 3_737_000, 500_100, 3_737_200)
    holed = Polygon(
        box(501_000, 3_738_000, 501_300, 3_738_300).exterior.coords,
        [box(501_100, 3_738_100, 501_200, 3_738_200).exterior.coords],
    )
    oblique = Polygon([(502_000, 3_737_000), (502_150, 3_737_040), (502_060, 3_737_210)])
    return gpd.GeoDataFrame(
        {
            "parcel_id": ["D01", "D02", "D03"],
            "name": ["东湖工业园地块", "光谷居住区地块", "斜地块"],
            "use": ["工业用地", "城镇住宅用地", None],
        },
        geometry=[rect, holed, oblique],
        crs=epsg,
    )


@pytest.mark.parametrize(
    ("home", "zone_width", "prefixed", "encoding", "epsg"),
    [
        (GK38, 3, True, "gbk", 4526),
        (GK38, 3, False, "utf-8", GK38),
        (GK6_20, 6, True, "gb18030", 4498),
    ],
)
def test_round_trip(
    tmp_path: Path, home: int, zone_width: int, prefixed: bool, encoding: str, epsg: int
) -> None:
    original = _frame_in_gk(home)
    truth = original.area.to_numpy()
    path = tmp_path / "out.txt"
    write_coordinate_file(
        original.to_crs(4490), path, zone_width=zone_width, prefixed=prefixed, encoding=encoding
    )
    assert b"\r\n" in path.read_bytes()
    frame, report = read_coordinate_file(path)
    assert report.crs == f"EPSG:{epsg}"
    assert list(frame["parcel_id"]) == ["D01", "D02", "D03"]
    assert list(frame["name"]) == list(original["name"])
    assert list(frame["use"]) == ["工业用地", "城镇住宅用地", ""]
    np.testing.assert_allclose(frame.to_crs(home).area, truth, rtol=0, atol=0.01)
    np.testing.assert_allclose(frame["declared_area_ha"], np.round(truth / 1e4, 4), atol=1e-9)
    back = frame.to_crs(home).geometry
    for got, want in zip(back, original.geometry, strict=True):
        assert len(got.interiors) == len(want.interiors)
        assert shapely.hausdorff_distance(got, want) < 0.002  # within the 1 mm of 精度=0.001


def test_written_text_follows_the_format(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    write_coordinate_file(_frame_in_gk().to_crs(4490), path, header={"数据产生单位": "测试"})
    lines = path.read_bytes().decode("gbk").split("\r\n")
    assert lines[0] == "[属性描述]"
    assert "带号=38" in lines and "几度分带=3" in lines and "数据产生单位=测试" in lines
    start = lines.index("[地块坐标]") + 1
    assert lines[start] == "5,2.0000,D01,东湖工业园地块,面,,工业用地,,@"
    assert lines[start + 1] == "J1,1,3737000.000,38500100.000"  # X northing, Y easting
    assert lines[start + 5] == lines[start + 1]  # the ring closes on J1


def test_writer_refuses_what_the_format_cannot_hold(tmp_path: Path) -> None:
    frame = _frame_in_gk()
    two_parts = MultiPolygon(
        [box(500_000, 3_737_000, 500_010, 3_737_010), box(500_100, 3_737_000, 500_110, 3_737_010)]
    )
    multi = frame.set_geometry([two_parts, *frame.geometry[1:]], crs=GK38)
    with pytest.raises(InputError, match="MultiPolygon"):
        write_coordinate_file(multi.to_crs(4490), tmp_path / "x.txt")
    with pytest.raises(CRSError, match="带号"):
        write_coordinate_file(frame.to_crs(4490), tmp_path / "x.txt", header={"带号": "39"})
    named = frame.assign(name=["甲,乙", "b", "c"])
    with pytest.raises(InputError, match="comma"):
        write_coordinate_file(named.to_crs(4490), tmp_path / "x.txt")
    with pytest.raises(EncodingError):
        write_coordinate_file(frame.assign(name=["𠀀", "b", "c"]).to_crs(4490), tmp_path / "x.txt")


def test_writer_drops_heights(tmp_path: Path) -> None:
    triangle = Polygon(
        [(500_000, 3_737_000, 12.5), (500_050, 3_737_000, 13.0), (500_050, 3_737_050, 12.0)]
    )
    frame = gpd.GeoDataFrame({"parcel_id": ["Z1"]}, geometry=[triangle], crs=GK38)
    path = tmp_path / "z.txt"
    write_coordinate_file(frame.to_crs(4490), path)
    result, _ = read_coordinate_file(path)
    np.testing.assert_allclose(result.to_crs(GK38).area, [1250.0], rtol=0, atol=0.01)
