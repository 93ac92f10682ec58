"""坐标报盘: the parcel coordinate text files Chinese surveyors hand in (建设用地报盘 format).

A file has a ``[属性描述]`` section of ``key=value`` lines (坐标系, 几度分带, 带号, ...) and a
``[地块坐标]`` section: per parcel a header line ending in ``@`` (point count, area in 公顷,
parcel id, name, shape type, sheet, use, class code) followed by exactly ``point count``
point lines ``name,ring,X,Y``. X is the NORTHING and Y the EASTING (survey order), often
with the zone number prefixed (38500000.000 = zone 38). Ring 1 is the outer ring, rings
2, 3, ... are holes; every ring repeats its first point to close.

Files are typed by hand or exported by survey software, so every way they break is an
error that names the line: a silently wrong parcel is worse than a refused file.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from os import PathLike
from pathlib import Path
from typing import cast

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon

from ..crs import (
    STORAGE_CRS,
    GKZone,
    ZoneWidth,
    gk_epsg,
    gk_zone,
    survey_to_xy,
    zone_from_prefixed_easting,
)
from ..errors import CoordinateFileError, CRSError, EncodingError, InputError
from ..units import m2_to_hectares
from .encoding import decode_text
from .finish import to_storage
from .integrity import regular_file
from .report import ReadReport, ReadResult

FORMAT = "坐标报盘"
HEADER_SECTION = "属性描述"
PARCEL_SECTION = "地块坐标"
COLUMNS = (
    "parcel_id",
    "name",
    "shape_type",
    "sheet",
    "use",
    "class_code",
    "declared_area_ha",
    "point_count",
)
_TEXT_COLUMNS = ("parcel_id", "name", "shape_type", "sheet", "use", "class_code")
POLYGON_SHAPE = "面"
POINT_FIELDS = 4  # point name, ring number, X (northing), Y (easting)
# No northing in China reaches 10,000 km: an X that large is a (prefixed) easting.
_MAX_NORTHING = 10_000_000.0
_SECTION = re.compile(r"^[\[【]\s*(.*?)\s*[\]】]$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_METRE_UNITS = {"米", "m", "metre", "meter", "公尺"}


@dataclass(frozen=True)
class _Point:
    """One point line, already in GIS order (x=easting, y=northing)."""

    name: str
    ring: int
    x: float
    y: float
    line: int


@dataclass
class _Parcel:
    """A parcel header line and the point lines that follow it."""

    line: int
    point_count: int
    area_ha: float
    texts: tuple[str, ...]  # the _TEXT_COLUMNS values
    points: list[_Point] = field(default_factory=list)

    @property
    def label(self) -> str:
        """How messages name the parcel: its id, or its line when the id is empty."""
        return self.texts[0] or f"(no id, header on line {self.line})"


@dataclass(frozen=True)
class _Entry:
    """A ``key=value`` line of the ``[属性描述]`` section."""

    value: str
    line: int


def _where(line: int) -> str:
    return f"line {line}"


def _error(source: str, line: int, problem: str) -> CoordinateFileError:
    return CoordinateFileError(source, problem, where=_where(line))


def _number(text: str) -> float | None:
    """A finite float, or None: float() also accepts 'nan' and 'inf', which are no coordinates."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _whole(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


# --- decoding and sections -------------------------------------------------------------


def _decode(data: bytes, source: str, encoding: str | None) -> tuple[str, str]:
    """Text and the encoding to report; GB18030 bytes that are plain GBK are reported as gbk."""
    if encoding is not None:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError as exc:
            raise EncodingError(source, f"unknown encoding {encoding!r}") from exc
    try:
        text, codec = decode_text(data, source, encoding)
    except UnicodeDecodeError as exc:  # a UTF-8 BOM followed by bytes that are not UTF-8
        line = data.count(b"\n", 0, exc.start + 3) + 1
        raise EncodingError(
            source, f"starts with a UTF-8 BOM but is not UTF-8: {exc.reason}", where=_where(line)
        ) from exc
    if codec in ("utf-8-sig", "utf_8", "utf8"):
        codec = "utf-8"
    if codec == "gb18030":
        try:
            if data.decode("gbk") == text:
                codec = "gbk"
        except UnicodeDecodeError:
            pass
    return text, codec


def _split_sections(
    lines: list[str], source: str, report: ReadReport
) -> tuple[dict[str, _Entry], int, list[tuple[int, str]]]:
    """The header entries, the line of [地块坐标] and the numbered lines of that section."""
    header: dict[str, _Entry] = {}
    rows: list[tuple[int, str]] = []
    section: str | None = None
    section_line = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        match = _SECTION.match(line)
        if match:
            section = match.group(1)
            if section == PARCEL_SECTION:
                section_line = section_line or number
            elif section != HEADER_SECTION:
                report.warnings.append(f"line {number}: unknown section [{section}] skipped")
            continue
        if section is None:
            raise _error(
                source,
                number,
                f"text before the first section: expected [{HEADER_SECTION}] or "
                f"[{PARCEL_SECTION}], found {line[:40]!r}",
            )
        if section == PARCEL_SECTION:
            rows.append((number, line))
        elif section == HEADER_SECTION:
            key, sep, value = line.replace("＝", "=").partition("=")
            if not sep:
                report.warnings.append(f"line {number}: {line[:40]!r} is not key=value, skipped")
                continue
            key = key.strip()
            if key in header:
                report.warnings.append(
                    f"line {number}: {key} given again (first on line {header[key].line}); "
                    "the later value is used"
                )
            header[key] = _Entry(value.strip(), number)
    if not section_line:
        last = max((i for i, text in enumerate(lines, start=1) if text.strip()), default=1)
        raise _error(source, last, f"no [{PARCEL_SECTION}] section: the file holds no parcels")
    return header, section_line, rows


# --- header facts --------------------------------------------------------------------------


def _is_cgcs2000(value: str) -> bool:
    return "2000" in value.replace(" ", "")


def _check_header(header: dict[str, _Entry], source: str, report: ReadReport) -> None:
    """Refuse what this reader cannot turn into CGCS2000 Gauss-Krüger coordinates."""
    datum = header.get("坐标系")
    if datum is None or not datum.value:
        report.warnings.append("the header names no 坐标系: CGCS2000 assumed")
    elif not _is_cgcs2000(datum.value):
        raise _error(
            source,
            datum.line,
            f"坐标系={datum.value} is not supported: only CGCS2000 (2000国家大地坐标系) "
            "coordinates can be read; convert them to CGCS2000 first",
        )
    projection = header.get("投影类型")
    if projection is not None and projection.value:
        text = projection.value.lower()
        if "高斯" not in text and "gauss" not in text:
            raise _error(
                source,
                projection.line,
                f"投影类型={projection.value} is not supported: only 高斯克吕格 (Gauss-Krüger)",
            )
    unit = header.get("计量单位")
    if unit is not None and unit.value and unit.value.lower() not in _METRE_UNITS:
        raise _error(
            source, unit.line, f"计量单位={unit.value} is not supported: coordinates must be 米"
        )
    params = header.get("转换参数")
    if params is not None and params.value.replace(",", "").replace("，", "").strip():
        report.warnings.append(
            f"转换参数={params.value} ignored: coordinates are read as CGCS2000 as declared"
        )
    facts = [f"{k}={e.value}" for k, e in header.items() if e.value.strip(",， ")]
    if facts:
        report.actions.append("header: " + ", ".join(facts))


def _header_int(header: dict[str, _Entry], key: str, source: str) -> tuple[int, int] | None:
    """(value, line) of a whole-number header entry, None when absent or empty."""
    entry = header.get(key)
    if entry is None or not entry.value:
        return None
    value = _whole(entry.value)
    if value is None:
        raise _error(source, entry.line, f"{key}={entry.value!r} is not a whole number")
    return value, entry.line


# --- parcel section -------------------------------------------------------------------


def _fields(line: str) -> tuple[list[str], bool]:
    """Comma-separated fields and whether the line is a parcel header (ends with '@')."""
    fields = [f.strip() for f in line.split(",")]
    trimmed = list(fields)
    while trimmed and not trimmed[-1]:
        trimmed.pop()
    if trimmed and trimmed[-1] == "@":
        return trimmed[:-1], True
    return fields, False


def _parse_parcel_header(values: list[str], line: int, source: str, report: ReadReport) -> _Parcel:
    if len(values) < 3:
        raise _error(
            source,
            line,
            "a parcel header needs at least point count, area and parcel id before '@', "
            f"found {len(values)} fields",
        )
    if len(values) > len(_TEXT_COLUMNS) + 2:
        report.warnings.append(
            f"line {line}: {len(values) - len(_TEXT_COLUMNS) - 2} extra parcel header fields "
            "ignored"
        )
    values = values + [""] * (len(_TEXT_COLUMNS) + 2 - len(values))
    count_text, area_text = values[0], values[1]
    count = _whole(count_text)
    if count is None or count < 0:
        raise _error(source, line, f"point count {count_text!r} is not a whole number")
    area = math.nan if not area_text else _number(area_text)
    if area is None:
        raise _error(source, line, f"area {area_text!r} is not a number (公顷)")
    texts = tuple(values[2 : 2 + len(_TEXT_COLUMNS)])
    shape = texts[2]
    if shape and shape != POLYGON_SHAPE:
        raise _error(
            source,
            line,
            f"shape type {shape!r} is not supported: only {POLYGON_SHAPE} (polygon) parcels",
        )
    return _Parcel(line, count, area, texts)


def _parse_point(fields: list[str], line: int, source: str) -> _Point:
    if len(fields) != POINT_FIELDS:
        raise _error(
            source,
            line,
            f"a point line has {POINT_FIELDS} fields (point name, ring number, X, Y), "
            f"found {len(fields)}; a parcel header line must end with ',@'",
        )
    name, ring_text, x_text, y_text = fields
    ring = _whole(ring_text)
    if ring is None or ring < 1:
        raise _error(source, line, f"ring number {ring_text!r} is not a whole number from 1")
    north = _number(x_text)
    if north is None:
        raise _error(source, line, f"X (northing) {x_text!r} is not a number")
    east = _number(y_text)
    if east is None:
        raise _error(source, line, f"Y (easting) {y_text!r} is not a number")
    x, y = survey_to_xy(north, east)
    return _Point(name, ring, float(x), float(y), line)


def _parse_parcels(
    rows: list[tuple[int, str]], section_line: int, source: str, report: ReadReport
) -> list[_Parcel]:
    parcels: list[_Parcel] = []
    for line, text in rows:
        fields, is_header = _fields(text)
        if is_header:
            parcels.append(_parse_parcel_header(fields, line, source, report))
        elif not parcels:
            raise _error(source, line, "point line before any parcel header (ending with '@')")
        else:
            parcels[-1].points.append(_parse_point(fields, line, source))
    if not parcels:
        raise _error(source, section_line, f"the [{PARCEL_SECTION}] section holds no parcels")
    ids: dict[str, int] = {}
    for parcel in parcels:
        if len(parcel.points) != parcel.point_count:
            raise _error(
                source,
                parcel.line,
                f"parcel {parcel.label} declares point count {parcel.point_count} but "
                f"{len(parcel.points)} point lines follow",
            )
        pid = parcel.texts[0]
        if pid and pid in ids:
            report.warnings.append(
                f"line {parcel.line}: parcel id {pid} repeats the parcel on line {ids[pid]}"
            )
        ids.setdefault(pid, parcel.line)
    return parcels


def _rings(parcel: _Parcel, source: str) -> list[list[_Point]]:
    """The parcel's points grouped into closed rings, outer ring first."""
    if not parcel.points:
        raise _error(source, parcel.line, f"parcel {parcel.label} has no points")
    rings: list[list[_Point]] = []
    for point in parcel.points:
        if rings and rings[-1][0].ring == point.ring:
            rings[-1].append(point)
            continue
        if any(ring[0].ring == point.ring for ring in rings):
            raise _error(
                source,
                point.line,
                f"ring {point.ring} of parcel {parcel.label} continues after ring "
                f"{rings[-1][0].ring}: the points of a ring must be consecutive",
            )
        rings.append([point])
    if rings[0][0].ring != 1:
        raise _error(
            source,
            rings[0][0].line,
            f"parcel {parcel.label} starts with ring {rings[0][0].ring}: the outer ring is ring 1",
        )
    for ring in rings:
        first, last = ring[0], ring[-1]
        if len(ring) > 1 and (first.x, first.y) != (last.x, last.y):
            raise _error(
                source,
                last.line,
                f"ring {first.ring} of parcel {parcel.label} is not closed: its last point "
                f"{last.name} does not repeat its first point {first.name} (line {first.line})",
            )
        if len(ring) < 4:
            raise _error(
                source,
                first.line,
                f"ring {first.ring} of parcel {parcel.label} has {len(ring)} points; a ring "
                "needs at least 4 (3 corners and the repeated first point)",
            )
    return rings


def _polygon(parcel: _Parcel, source: str) -> Polygon:
    """Ring 1 as the shell, rings 2+ as holes that must lie inside it."""
    rings = _rings(parcel, source)
    for ring in rings:
        # Repair would turn a ring on one line into a line string: refuse it here instead.
        if Polygon([(p.x, p.y) for p in ring]).area == 0:
            raise _error(
                source,
                ring[0].line,
                f"ring {ring[0].ring} of parcel {parcel.label} encloses no area: "
                "its points lie on one line",
            )
    shell = [(p.x, p.y) for p in rings[0]]
    outer = Polygon(shell)
    holes = []
    for ring in rings[1:]:
        coords = [(p.x, p.y) for p in ring]
        hole = Polygon(coords)
        # An invalid shell (bow-tie) gets repaired later; containment is undefined for it.
        if outer.is_valid and hole.is_valid and not outer.covers(hole):
            raise _error(
                source,
                ring[0].line,
                f"ring {ring[0].ring} of parcel {parcel.label} is not inside its outer ring 1: "
                "rings 2, 3, ... are read as holes",
            )
        holes.append(coords)
    return Polygon(shell, holes)


# --- CRS ----------------------------------------------------------------------------------


def _describe(zone: GKZone | None) -> str:
    return f"carries the zone-{zone.number} prefix" if zone else "has no zone prefix"


def _settle_crs(
    header: dict[str, _Entry], parcels: list[_Parcel], source: str, report: ReadReport
) -> int:
    """The EPSG code of the file's GK zone, from the easting prefix checked against the header."""
    first: _Point | None = None
    first_zone: GKZone | None = None
    for parcel in parcels:
        for point in parcel.points:
            if point.y >= _MAX_NORTHING:
                raise _error(
                    source,
                    point.line,
                    f"X {point.y:.3f} is no northing (X is the northing in {FORMAT}, Y the "
                    "easting): are X and Y swapped?",
                )
            try:
                zone = zone_from_prefixed_easting(point.x)
            except CRSError:
                zone = None
            if zone is None and point.x >= 1_000_000:
                raise _error(
                    source,
                    point.line,
                    f"Y (easting) {point.x:.3f} has no valid zone prefix "
                    "(3° zones 25-45, 6° zones 13-23)",
                )
            if first is None:
                first, first_zone = point, zone
            elif zone != first_zone:
                raise _error(
                    source,
                    point.line,
                    f"the easting {point.x:.3f} {_describe(zone)} but the easting on line "
                    f"{first.line} {_describe(first_zone)}: all points must be in one zone",
                )
    if first is None:
        raise CoordinateFileError(source, "the parcels hold no points")
    width = _header_int(header, "几度分带", source)
    number = _header_int(header, "带号", source)
    if width is not None and width[0] not in (3, 6):
        raise _error(source, width[1], f"几度分带={width[0]}: zones are 3 or 6 degrees wide")
    if first_zone is not None:
        if width is not None and width[0] != first_zone.width:
            raise _error(
                source,
                first.line,
                f"the eastings carry the prefix of {first_zone.width}° zone {first_zone.number} "
                f"but the header says 几度分带={width[0]} (line {width[1]})",
            )
        if number is not None and number[0] != first_zone.number:
            raise _error(
                source,
                first.line,
                f"the eastings carry the prefix of zone {first_zone.number} but the header says "
                f"带号={number[0]} (line {number[1]})",
            )
        epsg = first_zone.epsg(prefixed=True)
        report.crs_origin = (
            f"{FORMAT} header 带号={number[0]}, eastings with the zone prefix"
            if number
            else f"detected: zone-{first_zone.number} prefix on the eastings"
        )
        return epsg
    if number is None:
        raise _error(
            source,
            first.line,
            "the eastings carry no zone prefix and the header has no 带号: "
            "the Gauss-Krüger zone is unknown",
        )
    if width is None:
        inferred: ZoneWidth | None = (
            3 if 25 <= number[0] <= 45 else 6 if 13 <= number[0] <= 23 else None
        )
        if inferred is None:
            raise _error(
                source, number[1], f"带号={number[0]} with no 几度分带 names no CGCS2000 zone"
            )
        report.actions.append(f"no 几度分带 in the header: 带号={number[0]} is a {inferred}° zone")
        zone = GKZone(inferred, number[0])
    else:
        zone = GKZone(cast(ZoneWidth, width[0]), number[0])
    try:
        epsg = gk_epsg(zone, prefixed=False)
    except CRSError as exc:
        raise _error(
            source,
            number[1],
            f"带号={number[0]} is no CGCS2000 {zone.width}° zone "
            f"({'25-45' if zone.width == 3 else '13-23'})",
        ) from exc
    report.crs_origin = f"{FORMAT} header 带号={zone.number}, 几度分带={zone.width}"
    return epsg


# --- public API -----------------------------------------------------------------------------


def _read(text: str, report: ReadReport) -> ReadResult:
    source = report.source
    lines = _LINE_BREAK.split(text.lstrip("\ufeff").rstrip("\x1a"))
    if not any(line.strip() for line in lines):
        raise CoordinateFileError(source, "the file is empty", where=_where(1))
    header, section_line, rows = _split_sections(lines, source, report)
    _check_header(header, source, report)
    parcels = _parse_parcels(rows, section_line, source, report)
    geoms = [_polygon(parcel, source) for parcel in parcels]
    epsg = _settle_crs(header, parcels, source, report)
    data: dict[str, list] = {
        col: [p.texts[i] for p in parcels] for i, col in enumerate(_TEXT_COLUMNS)
    }
    frame = pd.DataFrame(data)
    frame["declared_area_ha"] = pd.Series([p.area_ha for p in parcels], dtype="float64")
    frame["point_count"] = pd.Series([p.point_count for p in parcels], dtype="int64")
    gdf = gpd.GeoDataFrame(frame, geometry=geoms, crs=f"EPSG:{epsg}")
    return to_storage(gdf, report)


def parse_coordinate_text(text: str, source: str = "<text>") -> ReadResult:
    """Parcels from 坐标报盘 text already decoded (an upload), in EPSG:4490."""
    return _read(text, ReadReport(source=source, format=FORMAT))


def read_coordinate_file(path: str | PathLike[str], encoding: str | None = None) -> ReadResult:
    """Parcels from a 坐标报盘 file, in EPSG:4490; UTF-8 (with or without BOM) or GBK/GB18030.

    One row per parcel with the header fields as columns (see ``COLUMNS``); the declared
    area stays as declared, because comparing it with the computed area is the point.
    """
    source = str(path)
    if Path(path).exists():  # a FIFO would block; an empty file is said below, by line
        regular_file(Path(path), allow_empty=True)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(source, f"cannot read: {exc.strerror}") from exc
    text, codec = _decode(data, source, encoding)
    report = ReadReport(source=source, format=FORMAT, encoding=codec)
    return _read(text, report)


# --- writer ----------------------------------------------------------------------------------


def _decimals(precision: str, source: str) -> int:
    """Decimals of the coordinates from the header's 精度 (0.001 -> 3)."""
    value = _number(precision)
    if value is None or value <= 0:
        raise InputError(source, f"精度={precision!r} is not a positive number")
    return max(0, round(-math.log10(value)))


def _field_text(value: object, what: str, row: int, source: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value).strip()
    if any(c in text for c in ",\r\n"):
        raise InputError(source, f"{what} {text!r} holds a comma or line break", where=f"row {row}")
    return text


def _header_lines(
    header: Mapping[str, object] | None, zone: GKZone, source: str
) -> tuple[list[str], int]:
    """The [属性描述] lines and the coordinate decimals; derived zone facts cannot be overridden."""
    entries: dict[str, str] = {
        "格式版本号": "1.01版本",
        "数据产生单位": "",
        "数据产生日期": date.today().isoformat(),
        "坐标系": "2000国家大地坐标系",
        "几度分带": str(zone.width),
        "投影类型": "高斯克吕格",
        "计量单位": "米",
        "带号": str(zone.number),
        "精度": "0.001",
        "转换参数": ",,,,,,",
    }
    derived = {"几度分带": zone.width, "带号": zone.number}
    for key, value in (header or {}).items():
        key, text = str(key).strip(), str(value).strip()
        if not key or "=" in key or any(c in key + text for c in "\r\n"):
            raise InputError(source, f"header entry {key!r}={text!r} cannot be written")
        if key in derived and _whole(text) != derived[key]:
            raise CRSError(
                source, f"header {key}={text} contradicts the parcels' zone ({derived[key]})"
            )
        if key == "坐标系" and not _is_cgcs2000(text):
            raise CRSError(source, f"header 坐标系={text}: the polygons are written in CGCS2000")
        entries[key] = text
    lines = [f"[{HEADER_SECTION}]", *(f"{k}={v}" for k, v in entries.items())]
    return lines, _decimals(entries["精度"], source)


def _single_polygon(geom: object, row: int, source: str) -> Polygon:
    """The row's polygon; the format holds one outer ring per parcel, so no multi-part."""
    if isinstance(geom, MultiPolygon) and len(geom.geoms) == 1:
        geom = geom.geoms[0]
    if isinstance(geom, Polygon) and not geom.is_empty:
        return geom
    if geom is None or getattr(geom, "is_empty", False):
        problem = "the parcel has no geometry"
    elif isinstance(geom, MultiPolygon):
        problem = f"a MultiPolygon of {len(geom.geoms)} parts cannot be one parcel: split it"
    else:
        problem = f"a {getattr(geom, 'geom_type', type(geom).__name__)} is not a polygon"
    raise InputError(source, problem, where=f"row {row}")


def format_coordinate_text(
    gdf: gpd.GeoDataFrame,
    *,
    zone_width: ZoneWidth = 3,
    prefixed: bool = True,
    header: Mapping[str, object] | None = None,
    source: str = "<frame>",
) -> str:
    """Polygons (any CRS, usually EPSG:4490) as 坐标报盘 text in the GK zone of their centroid.

    Missing attribute columns are written empty (parcel ids as 1, 2, ...). Areas are the
    planar GK areas in 公顷 to 4 decimals, as surveyors declare them.
    """
    if gdf.crs is None:
        raise CRSError(source, "the frame has no coordinate reference system")
    if len(gdf) == 0:
        raise InputError(source, "no parcels to write")
    geo = gdf if gdf.crs.equals(STORAGE_CRS) else gdf.to_crs(STORAGE_CRS)
    polygons = [
        _single_polygon(g, row, source) for row, g in enumerate(geo.geometry.values, start=1)
    ]
    lon = shapely.GeometryCollection(polygons).centroid.x
    zone = gk_zone(lon, zone_width)
    gk = gpd.GeoSeries(polygons, crs=STORAGE_CRS).to_crs(gk_epsg(zone, prefixed=prefixed))
    lines, decimals = _header_lines(header, zone, source)
    lines.append(f"[{PARCEL_SECTION}]")
    for row, poly in enumerate(gk.values, start=1):
        texts = []
        for col in _TEXT_COLUMNS:
            value = gdf[col].iloc[row - 1] if col in gdf.columns else None
            texts.append(_field_text(value, col, row, source))
        if not texts[0]:
            texts[0] = str(row)
        if not texts[2]:
            texts[2] = POLYGON_SHAPE
        rings = [poly.exterior, *poly.interiors]
        points: list[str] = []
        numbered = 0  # points are named J1, J2, ... through all rings of a parcel
        for ring_no, ring in enumerate(rings, start=1):
            coords = shapely.get_coordinates(ring)  # closed: the last repeats the first
            names = [f"J{numbered + i}" for i in range(1, len(coords))]
            numbered += len(names)
            names.append(names[0])
            for name, (east, north) in zip(names, coords, strict=True):
                points.append(f"{name},{ring_no},{north:.{decimals}f},{east:.{decimals}f}")
        area = m2_to_hectares(poly.area)
        lines.append(f"{len(points)},{area:.4f},{','.join(texts)},@")
        lines.extend(points)
    return "\r\n".join(lines) + "\r\n"


def write_coordinate_file(
    gdf: gpd.GeoDataFrame,
    path: str | PathLike[str],
    *,
    zone_width: ZoneWidth = 3,
    prefixed: bool = True,
    encoding: str = "gbk",
    header: Mapping[str, object] | None = None,
) -> None:
    """Write polygons as a 坐标报盘 file (CRLF, GBK by default) surveyors' software reads."""
    source = str(path)
    text = format_coordinate_text(
        gdf, zone_width=zone_width, prefixed=prefixed, header=header, source=source
    )
    try:
        data = text.encode(encoding)
    except LookupError as exc:
        raise EncodingError(source, f"unknown encoding {encoding!r}") from exc
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise EncodingError(
            source,
            f"{exc.object[exc.start : exc.end]!r} cannot be written in {encoding}",
            where=_where(line),
        ) from exc
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise InputError(source, f"cannot write: {exc.strerror}") from exc
