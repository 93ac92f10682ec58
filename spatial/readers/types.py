"""Column types for text sources (CSV): the source's own schema first, then inference.

A CSV carries no types, so every column used to come back as text: ``warning_level > 100``
could not be compared and ``经度`` was a string. GDAL's answer is a ``.csvt`` sidecar (one
line of quoted type names, e.g. ``"String","Real","Integer","Date"``); where a delivery has
one we follow it. Otherwise a column becomes:

- integer, if every value is a whole number without a leading zero and of at most 15
  digits (``0101`` land-class codes and 18-digit ID numbers stay text: a leading zero or
  a digit beyond float precision means an identifier, not a quantity);
- number, if every value is a decimal number (same leading-zero rule);
- boolean, if every value is true/false (any case) or 是/否;
- date or date-time, if every value is an ISO 8601 date or date-time (date-times with an
  offset are stored in UTC);
- text otherwise. Columns named like identifiers (``*_id``, ``id``, ``*code*``, 编码,
  代码, 编号, 号码, 电话) stay text whatever they hold: a county code is not a quantity.

Empty cells are missing values and do not decide a type.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import FormatError

INTEGER = re.compile(r"^[+-]?(?:0|[1-9]\d{0,14})$")
NUMBER = re.compile(r"^[+-]?(?:0|[1-9]\d*)?(?:\.\d+)?(?:[eE][+-]?\d+)?$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$"
)
OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
TRUE, FALSE = {"true", "是"}, {"false", "否"}
IDENTIFIER_NAME = re.compile(
    r"(?:^id$|_id$|^id_|code|编码|代码|编号|号码|电话|phone)", re.IGNORECASE
)

# .csvt type names (GDAL's CSV driver) and what each becomes.
CSVT_TYPES = {
    "integer": "integer",
    "integer64": "integer",
    "real": "number",
    "string": "text",
    "date": "date",
    "datetime": "datetime",
    "time": "text",
    "integer(boolean)": "boolean",
    "wkt": "text",
    "coordx": "number",
    "coordy": "number",
    "point(x)": "number",
    "point(y)": "number",
}


def _all(values: pd.Series, pattern: re.Pattern[str]) -> bool:
    return bool(values.map(lambda v: pattern.match(v) is not None).all())


def infer_kind(name: str, values: pd.Series) -> str:
    """The kind of a text column: integer, number, boolean, date, datetime or text."""
    present = values.dropna().astype(str).str.strip()
    present = present[present != ""]
    if present.empty or IDENTIFIER_NAME.search(str(name)):
        return "text"
    if _all(present, INTEGER):
        return "integer"
    if _all(present, NUMBER) and present.str.contains(r"\d").all():
        if not present.str.match(r"^[+-]?0\d").any():
            return "number"
        return "text"
    lowered = present.str.lower()
    if lowered.isin(TRUE | FALSE).all():
        return "boolean"
    if _all(present, DATE):
        return "date"
    if _all(present, DATETIME):
        return "datetime"
    return "text"


def convert(values: pd.Series, kind: str, name: str, source: str) -> pd.Series:
    """A text column as ``kind`` (FormatError naming the column if a value does not fit)."""
    text = values.astype("string").str.strip().replace("", pd.NA)
    try:
        if kind == "integer":
            return pd.to_numeric(text, errors="raise").astype("Int64")
        if kind == "number":
            return pd.to_numeric(text, errors="raise").astype("Float64")
        if kind == "boolean":
            lowered = text.str.lower()
            bad = text.notna() & ~lowered.isin(TRUE | FALSE | {"1", "0"})
            if bad.any():
                raise ValueError(f"{text[bad].iloc[0]!r} is not a boolean")
            return lowered.map(lambda v: None if pd.isna(v) else v in TRUE | {"1"}).astype(
                "boolean"
            )
        if kind == "date":
            return pd.to_datetime(text, format="ISO8601").dt.date.astype("object")
        if kind == "datetime":
            with_offset = text.dropna().map(lambda v: OFFSET.search(v) is not None)
            utc = bool(with_offset.any())
            return pd.to_datetime(text, format="ISO8601", utc=utc)
    except (ValueError, TypeError) as exc:
        raise FormatError(source, f"column {name!r} is declared {kind} but {exc}") from None
    return values


def read_csvt(csv_path: Path, columns: list[str]) -> dict[str, str] | None:
    """Kinds from a GDAL ``.csvt`` sidecar beside the CSV, or None if there is none."""
    sidecar = csv_path.with_suffix(".csvt")
    if not sidecar.exists():
        sidecar = csv_path.with_suffix(".CSVT")
        if not sidecar.exists():
            return None
    line = sidecar.read_text(encoding="utf-8-sig").strip().splitlines()[0]
    width = re.compile(r"\(\d+(?:\.\d+)?\)$")  # "String(20)", "Real(10.2)"
    names = [width.sub("", t.strip().strip('"')).lower() for t in line.split(",")]
    if len(names) != len(columns):
        raise FormatError(
            sidecar, f"{len(names)} types for {len(columns)} columns of {csv_path.name}"
        )
    kinds = {}
    for column, type_name in zip(columns, names, strict=True):
        if type_name not in CSVT_TYPES:
            raise FormatError(sidecar, f"unknown type {type_name!r} for column {column!r}")
        kinds[column] = CSVT_TYPES[type_name]
    return kinds


def type_columns(
    frame: pd.DataFrame, source: Path, skip: set[str] | None = None
) -> tuple[pd.DataFrame, dict[str, str], str]:
    """The frame with typed columns, the kind of each converted column, and its origin."""
    skip = skip or set()
    declared = read_csvt(source, [str(c) for c in frame.columns])
    origin = f"{source.with_suffix('.csvt').name}" if declared else "inferred"
    kinds: dict[str, str] = {}
    out = frame.copy()
    for column in frame.columns:
        if column in skip:
            continue
        kind = declared[str(column)] if declared else infer_kind(str(column), frame[column])
        if kind == "text":
            continue
        out[column] = convert(frame[column], kind, str(column), str(source))
        kinds[str(column)] = kind
    return out, kinds, origin
