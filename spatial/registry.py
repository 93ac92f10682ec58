"""Property registry (不动产登记) queries on a GeoDataFrame of registration records.

One row is one registration record of a parcel (宗地): ``unit_code`` (28-character
不动产单元代码), owner, right, use, ``state`` (0 temporary, 1 current 现势, 2 historical),
``valid_from`` / ``valid_to`` (ISO dates, ``valid_to`` null while the record is open) and,
for records a change produced, ``change_type`` (split / merge / rebound) and
``parent_codes`` (comma-separated unit codes of the records it came from). Registries never
delete: a change closes the old records and opens new ones, so "as of D" is a filter on
the validity columns, and the lineage of a parcel is the graph ``parent_codes`` spans.

Owner name and ID number are personal data. The functions here return them as stored;
the masking rules live beside the access policy (:mod:`shikong.catalog.masking`), and
every answer goes through them before it leaves the process. Pure functions, no catalog
or I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point, mapping
from shapely.geometry.base import BaseGeometry

from .area import Area, ellipsoidal_area_m2
from .crs import STORAGE_EPSG, transformer
from .errors import InputError
from .unit_code import parse_unit_code

TEMPORARY, CURRENT, HISTORICAL = 0, 1, 2
STATE_NAMES: dict[int, str] = {TEMPORARY: "临时", CURRENT: "现势", HISTORICAL: "历史"}
CHANGE_TYPES: dict[str, str] = {"split": "分割", "merge": "合并", "rebound": "界址调整"}


class UnknownUnitCode(InputError):
    """A well-formed unit code no record carries (or none valid on the date): HTTP 404."""


# -- dates -------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _parse_iso(text: str) -> date:
    return date.fromisoformat(text.strip()[:10])


def as_date(value: str | date | datetime, source: str = "as_of") -> date:
    """A date from an ISO string, date or datetime (the time of day is dropped).

    Registrations take effect by day, so every comparison here is between dates.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return _parse_iso(value)
        except ValueError:
            pass
    raise InputError(source, f"{value!r} is not an ISO date (YYYY-MM-DD)")


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # arrays and the like are not "missing"
        return False


def _column_dates(frame: pd.DataFrame, column: str) -> list[date | None]:
    if column not in frame.columns:
        return [None] * len(frame)
    return [None if _missing(v) else as_date(v, column) for v in frame[column]]


def valid_on(frame: gpd.GeoDataFrame, when: str | date | datetime) -> gpd.GeoDataFrame:
    """Records valid on a date: ``valid_from <= when < valid_to``, any state but 0.

    ``valid_to`` is exclusive because a change closes the old record on the day the new
    ones open: on the change date only the new records hold. A null ``valid_to`` is open;
    a null ``valid_from`` counts as "since always" (old records migrated without one).
    Temporary records (state 0, 临时) are applications, not rights, so they never count.
    The state itself is not needed otherwise: on a past date a now historical record
    (state 2) is exactly what was valid.
    """
    day = as_date(when)
    starts = _column_dates(frame, "valid_from")
    ends = _column_dates(frame, "valid_to")
    states = frame["state"] if "state" in frame.columns else pd.Series(CURRENT, frame.index)
    keep = [
        (s is None or s <= day) and (e is None or day < e) and not _is_state(st, TEMPORARY)
        for s, e, st in zip(starts, ends, states, strict=True)
    ]
    return frame[keep]


def _is_state(value: Any, state: int) -> bool:
    return not _missing(value) and int(value) == state


def current(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The current (现势) records: state 1 and no ``valid_to``."""
    open_ = frame["valid_to"].isna() if "valid_to" in frame.columns else True
    return frame[(frame["state"] == CURRENT) & open_]


def _restrict(frame: gpd.GeoDataFrame, as_of: str | date | datetime | None) -> gpd.GeoDataFrame:
    return current(frame) if as_of is None else valid_on(frame, as_of)


def _sorted(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    keys = [c for c in ("unit_code", "valid_from", "record_id") if c in frame.columns]
    return frame.sort_values(keys, kind="stable", na_position="first") if keys else frame


# -- queries -----------------------------------------------------------------------------


def _point(frame: gpd.GeoDataFrame, lon: float, lat: float) -> BaseGeometry:
    """The query point in the frame's CRS, after checking it is a lon/lat at all."""
    try:
        x, y = float(lon), float(lat)
    except (TypeError, ValueError) as exc:
        raise InputError("point", f"lon/lat must be numbers, got {lon!r}, {lat!r}") from exc
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InputError("point", f"lon/lat must be finite, got {lon!r}, {lat!r}")
    if not (-180.0 <= x <= 180.0 and -90.0 <= y <= 90.0):
        raise InputError(
            "point", f"({x}, {y}) is not a lon/lat in degrees (lon -180..180, lat -90..90)"
        )
    if frame.crs is not None and not frame.crs.is_geographic:
        x, y = transformer(STORAGE_EPSG, frame.crs).transform(x, y)
    return Point(x, y)


def parcels_at_point(
    frame: gpd.GeoDataFrame,
    lon: float,
    lat: float,
    as_of: str | date | datetime | None = None,
) -> gpd.GeoDataFrame:
    """Records whose parcel covers the point (EPSG:4490 lon/lat), current or as of a date.

    A point on the boundary two parcels share belongs to both: the registry cannot say
    which, so the caller sees both. The spatial index of ``frame`` is used (and cached by
    geopandas on it), so callers should keep one frame alive and query it repeatedly.
    """
    point = _point(frame, lon, lat)
    hits = frame.sindex.query(point, predicate="intersects")
    return _sorted(_restrict(frame.iloc[sorted(hits)], as_of))


def _check_code(code: str) -> str:
    """The normalised 28-character code, or the InputError parse_unit_code explains."""
    return parse_unit_code(code).code


def parcel_by_code(
    frame: gpd.GeoDataFrame, code: str, as_of: str | date | datetime | None = None
) -> gpd.GeoDataFrame:
    """The record(s) of a unit code: the one valid on ``as_of``, or all by ``valid_from``.

    Malformed codes raise InputError (which characters, what is wrong); a well-formed code
    no record carries raises UnknownUnitCode, and so does a known code with no record valid
    on ``as_of`` (the parcel did not exist yet, or no longer did), the message giving the
    periods it was valid so the caller can ask again.
    """
    normal = _check_code(code)
    rows = frame[frame["unit_code"] == normal]
    if rows.empty:
        raise UnknownUnitCode("unit code", f"no parcel with unit code {normal}")
    if as_of is None:
        return _sorted(rows)
    valid = valid_on(rows, as_of)
    if valid.empty:
        periods = ", ".join(
            f"{_text(r.get('valid_from')) or '…'} – {_text(r.get('valid_to')) or 'now'}"
            for _, r in _sorted(rows).iterrows()
        )
        raise UnknownUnitCode(
            "unit code",
            f"no parcel with unit code {normal} on {as_date(as_of)} (valid {periods})",
        )
    return _sorted(valid)


def _codes(value: Any) -> list[str]:
    """The unit codes of a ``parent_codes`` cell, in order, blanks and repeats dropped."""
    if _missing(value):
        return []
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    out: list[str] = []
    for p in parts:
        p = str(p).strip()
        if p and p not in out:
            out.append(p)
    return out


def parcel_history(frame: gpd.GeoDataFrame, code: str) -> dict[str, Any]:
    """The lineage of a parcel: the changes that made it and that it went through.

    Ancestors are followed through ``parent_codes`` and descendants through the records
    naming a code as parent, both recursively with a visited set, so chains (split, then
    merge of a part) are followed and a cyclic or self-referencing ``parent_codes`` (bad
    data) cannot loop. Events are the changes that produced a code of this line: records
    made by one change (same parents, date and type) form one event, so a split is one
    event with two ``to`` codes and a merge one with two ``from`` codes. ``records`` holds
    every record of every code an event names (siblings and co-parents included), as
    :func:`record_to_dict` dicts, personal fields unmasked: mask before answering.
    """
    normal = _check_code(code)
    codes = frame["unit_code"].astype(object)
    if not (codes == normal).any():
        raise UnknownUnitCode("unit code", f"no parcel with unit code {normal}")
    parents_of: dict[str, set[str]] = {}
    children_of: dict[str, set[str]] = {}
    has_parents = _has_parents(frame)
    for child, parents in zip(
        codes[has_parents], frame.loc[has_parents, "parent_codes"], strict=True
    ):
        for parent in _codes(parents):
            if parent == child:
                continue
            parents_of.setdefault(child, set()).add(parent)
            children_of.setdefault(parent, set()).add(child)

    def walk(start: str, step: dict[str, set[str]]) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in step.get(todo.pop(), ()):
                if nxt not in seen and nxt != start:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    ancestors = walk(normal, parents_of)
    descendants = walk(normal, children_of)
    line = {normal} | ancestors | descendants

    groups: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for _, row in frame[codes.isin(line) & has_parents].iterrows():
        parents = tuple(sorted(set(_codes(row.get("parent_codes"))) - {row["unit_code"]}))
        if not parents:
            continue
        key = (_text(row.get("valid_from")) or "", _text(row.get("change_type")) or "", parents)
        if row["unit_code"] not in groups.setdefault(key, []):
            groups[key].append(row["unit_code"])
    # siblings made by the same change but outside the line (the other half of a split)
    for _, row in frame[~codes.isin(line) & has_parents].iterrows():
        parents = tuple(sorted(set(_codes(row.get("parent_codes"))) - {row["unit_code"]}))
        key = (_text(row.get("valid_from")) or "", _text(row.get("change_type")) or "", parents)
        if key in groups and row["unit_code"] not in groups[key]:
            groups[key].append(row["unit_code"])

    events = [
        {
            "date": when or None,
            "change_type": kind or None,
            "from": sorted(parents),
            "to": sorted(children),
        }
        for (when, kind, parents), children in groups.items()
    ]
    events.sort(key=lambda e: (e["date"] or "", e["from"], e["to"]))
    involved = set(line)
    for e in events:
        involved.update(e["from"], e["to"])
    records = frame[codes.isin(involved)]
    records = records.sort_values(
        [c for c in ("valid_from", "unit_code", "record_id") if c in records.columns],
        kind="stable",
        na_position="first",
    )
    return {
        "unit_code": normal,
        "ancestors": sorted(ancestors),
        "descendants": sorted(descendants),
        "events": events,
        "records": records_to_dicts(records),
    }


def _has_parents(frame: pd.DataFrame) -> pd.Series:
    if "parent_codes" not in frame.columns:
        return pd.Series(False, frame.index)
    return frame["parent_codes"].notna()


def _id_pattern_ok(text: str) -> bool:
    """18 characters (17 digits and a digit or X check character), or the old 15 digits."""
    if len(text) == 18:
        return text[:17].isdigit() and (text[17].isdigit() or text[17] == "X")
    return len(text) == 15 and text.isdigit()


def property_by_owner(
    frame: gpd.GeoDataFrame,
    owner_name: str | None = None,
    id_number: str | None = None,
    as_of: str | date | datetime | None = None,
) -> gpd.GeoDataFrame:
    """A person's records (current, or valid on ``as_of``), by exact ID number and/or name.

    Exact matches only: a search by person is a restricted, audited operation, and fuzzy
    matching would hand out other people's property. Given both, a record must match
    both. The ID number's check letter is compared upper-case (x and X are the same ID).
    """
    for field, given in (("owner_name", owner_name), ("id_number", id_number)):
        if given is not None and not isinstance(given, str):
            # a JSON number loses an ID's leading zeros and its X: never guess it back
            raise InputError(field, f"must be text (a JSON string), not {type(given).__name__}")
    name = owner_name.strip() if isinstance(owner_name, str) else None
    idn = id_number.strip().upper() if isinstance(id_number, str) else None
    if not name and not idn:
        raise InputError("owner", "give an owner name or an ID number (or both)")
    if idn and not _id_pattern_ok(idn):
        raise InputError(
            "id_number",
            f"the value given ({len(idn)} characters) is not an ID number "
            "(18 characters, or 15 digits); it is not echoed: it may be personal data",
        )
    keep = pd.Series(True, frame.index)
    if name:
        keep &= frame["owner_name"] == name
    if idn:
        keep &= (
            frame["id_number"]
            .astype(object)
            .map(lambda v: isinstance(v, str) and v.strip().upper() == idn)
        )
    return _sorted(_restrict(frame[keep], as_of))


# -- answers -----------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A cell as text, dates as ISO, missing as None."""
    if _missing(value):
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _plain(value: Any) -> Any:
    """A cell as a JSON-ready Python value (numpy scalars unwrapped, NaN → None)."""
    if _missing(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _geojson(geom: Any) -> dict[str, Any] | None:
    if geom is None or not isinstance(geom, BaseGeometry) or geom.is_empty:
        return None
    return _lists(mapping(geom))


def _lists(value: Any) -> Any:
    """GeoJSON with lists instead of tuples, so it compares and dumps like parsed JSON."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


def record_to_dict(row: pd.Series | dict[str, Any]) -> dict[str, Any]:
    """The parcel answer of DOMAIN.md for one record, JSON-ready, personal data unmasked.

    The record model has one owner per record; ``owners`` is a list all the same, because
    the answer's shape must not change when co-ownership (共有) is recorded. The area is
    the registered ``area_m2`` (the legal figure), computed on the ellipsoid only when a
    record has none, and given in m², 公顷 and 亩.
    """
    get = row.get
    geom = get("geometry")
    area = _plain(get("area_m2"))
    if area is None and isinstance(geom, BaseGeometry):
        area = ellipsoidal_area_m2(geom)
    state = _plain(get("state"))
    state = int(state) if state is not None else None
    change = _text(get("change_type"))
    owner = {"owner_name": _text(get("owner_name")), "id_number": _text(get("id_number"))}
    return {
        "record_id": _text(get("record_id")),
        "unit_code": _text(get("unit_code")),
        "parcel_code": _text(get("parcel_code"))
        or (str(get("unit_code"))[:19] if not _missing(get("unit_code")) else None),
        "location": _text(get("location")),
        "land_use": _text(get("land_use")),
        "land_use_code": _text(get("land_use_code")),
        "area": Area(float(area)).as_dict() if area is not None else None,
        "right_type": _text(get("right_type")),
        "right_nature": _text(get("right_nature")),
        "term": {"start": _text(get("term_start")), "end": _text(get("term_end"))},
        "registration_date": _text(get("registration_date")),
        "state": state,
        "state_name": STATE_NAMES.get(state) if state is not None else None,
        "valid_from": _text(get("valid_from")),
        "valid_to": _text(get("valid_to")),
        "mortgaged": bool(_plain(get("mortgaged")) or False),
        "seized": bool(_plain(get("seized")) or False),
        "change_type": change,
        "change_name": CHANGE_TYPES.get(change) if change else None,
        "parent_codes": _codes(get("parent_codes")),
        "owners": [owner] if owner["owner_name"] or owner["id_number"] else [],
        "geometry": _geojson(geom),
    }


def records_to_dicts(frame: Iterable[Any] | pd.DataFrame) -> list[dict[str, Any]]:
    """:func:`record_to_dict` of every row of a frame, in its order."""
    if isinstance(frame, pd.DataFrame):
        return [record_to_dict(row) for _, row in frame.iterrows()]
    return [record_to_dict(row) for row in frame]


def parcels_at_points(frame: gpd.GeoDataFrame, points: np.ndarray) -> pd.DataFrame:
    """Every (point index, record index) pair where a record's polygon covers a point.

    Vectorised over the points with the frame's spatial index: the bulk form of
    :func:`parcels_at_point`, for geocoding many addresses or sensor sites at once.
    """
    point_rows, record_rows = frame.sindex.query(np.asarray(points), predicate="intersects")
    return pd.DataFrame({"point": point_rows, "record": frame.index.to_numpy()[record_rows]})
