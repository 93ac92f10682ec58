"""Live readings from any channel (HTTP batches, MQTT, files) into the observation store.

Readings name only their sensor; the sensor directory, built from every sensors layer of
the catalog, says which layer a sensor belongs to, its valid range and the attributes
the alert rules read. It is rebuilt when the catalog version moves, so a sensors layer
ingested while the server runs takes readings at once.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pandas.api.types import infer_dtype
from shikong.spatial.errors import EncodingError, FormatError
from shikong.spatial.readers.encoding import codec_name, decode_text

from .extension import ShikongExtension
from .ingest import sensor_specs
from .layer import Layer
from .observation_store import ReadingStore
from .observations import AppendResult, SensorSpec, factorize_names
from .store import CatalogStore


@dataclass(frozen=True)
class Sensor:
    id: str
    layer: str
    department: str
    kind: str
    spec: SensorSpec
    attributes: dict[str, Any]


@dataclass
class LiveResult:
    """What a batch did, across the layers its readings belong to."""

    accepted: int = 0
    duplicates: int = 0
    rejected: Counter = field(default_factory=Counter)
    alerts: list = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def add(self, part: AppendResult) -> None:
        self.accepted += part.accepted
        self.duplicates += part.duplicates
        self.rejected.update(part.rejected)
        self.alerts += part.alerts
        room = max(0, MAX_EXAMPLES - len(self.examples))
        self.examples += [_cut(e, 300) for e in part.examples[:room]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": dict(self.rejected),
            "rejected_total": sum(self.rejected.values()),
            "examples": self.examples,
            "alerts": [a.to_dict() for a in self.alerts],
        }


class LiveIngest:
    """Routes readings to their sensors layer and commits them (with alerts) durably."""

    def __init__(self, store: CatalogStore, observations: ReadingStore) -> None:
        self.store = store
        self.observations = observations
        self._lock = threading.Lock()
        # held by a server around parsing and ingesting one batch: threads of a process
        # gain nothing by validating at once (the GIL), and interleaved they stretch the
        # store's writer lock that other worker processes wait on; where appends run side
        # by side (PostgreSQL), one batch is parsed while another waits on the database
        self.one_batch: contextlib.AbstractContextManager = (
            contextlib.nullcontext() if observations.parallel_appends else threading.Lock()
        )
        self._version = -1
        self._sensors: dict[str, Sensor] = {}

    def sensors(self) -> dict[str, Sensor]:
        version = self.store.version()
        if version != self._version:
            with self._lock:
                if version != self._version:
                    self._sensors = self._load()
                    self._version = version
        return self._sensors

    def _sensor_layers(self) -> list[Layer]:
        return [
            Layer(self.store, c, lambda: self.observations)
            for c in self.store.collections()
            if ShikongExtension.ext(c).kind == "sensors"
        ]

    def _load(self) -> dict[str, Sensor]:
        out: dict[str, Sensor] = {}
        for layer in self._sensor_layers():
            frame = layer.to_geodataframe()
            specs = sensor_specs(frame)
            records = frame.drop(columns=frame.geometry.name).to_dict("records")
            for row in records:
                sid = str(row["sensor_id"])
                out[sid] = Sensor(
                    sid, layer.id, layer.department, str(row.get("kind", "")), specs[sid], row
                )
        return out

    def ingest(
        self,
        frame: pd.DataFrame,
        department: str | None = None,
        kind: str | None = None,
        may_write: Callable[[str], bool] | None = None,
    ) -> LiveResult:
        """Commit a batch (sensor_id, time, value[, parameter]); refusals are counted.

        ``may_write(layer id)`` refuses readings of sensors layers the sender may not
        write (counted like any other refusal, so the rest of the batch is kept).
        """
        result = LiveResult()
        # what readings_frame refused on the way in counts with the rest of the batch
        result.rejected.update(frame.attrs.get("rejected", {}))
        result.examples += frame.attrs.get("examples", [])[:MAX_EXAMPLES]
        if frame.empty:
            return result
        frame = frame.copy()
        # everything per distinct sensor (a batch holds few), then one mask per layer
        codes, names = factorize_names(frame["sensor_id"], str)
        frame["sensor_id"] = pd.array(np.array(names, dtype=object)[codes], dtype=object)
        directory = self.sensors()
        found = [directory.get(s) for s in names]
        unknown = np.array([m is None for m in found], bool)[codes]
        if unknown.any():
            result.rejected["unknown sensor"] += int(unknown.sum())
            first = names[codes[np.flatnonzero(unknown)[0]]]
            result.examples.append(f"unknown sensor {_short(first)}")
        if department is not None or kind is not None:  # MQTT: the topic must agree
            # with the sensor: its department, and its kind where it has one (a sensor
            # without a kind takes any kind level; an empty level never reaches here)
            mismatch = np.array(
                [
                    m is not None
                    and (
                        (department is not None and m.department != department)
                        or (kind is not None and bool(m.kind) and m.kind != kind)
                    )
                    for m in found
                ],
                bool,
            )[codes]
            if mismatch.any():
                result.rejected["topic does not match the sensor"] += int(mismatch.sum())
                unknown |= mismatch
        for layer in sorted({m.layer for m in found if m is not None}):
            in_layer = np.array([m is not None and m.layer == layer for m in found], bool)
            rows = in_layer[codes] & ~unknown
            if not rows.any():
                continue
            if may_write is not None and not may_write(layer):
                result.rejected["not permitted to write this sensors layer"] += int(rows.sum())
                result.examples.append(f"{layer}: no write grant")
                continue
            members = {n: m for n, m, here in zip(names, found, in_layer, strict=True) if here}
            result.add(
                self.observations.append(
                    layer,
                    frame if rows.all() else frame[rows],
                    {n: m.spec for n, m in members.items()},
                    attributes={n: m.attributes for n, m in members.items()},
                )
            )
        return result


REQUIRED = ("sensor_id", "time", "value")
MAX_NAME = 200  # characters of a sensor_id or parameter: longer is garbage, not a name
MAX_EXAMPLES = 5


def parse_batch(body: bytes, content_type: str) -> pd.DataFrame:
    """A batch as JSON (array or {"readings": [...]}), NDJSON or CSV; FormatError (or
    EncodingError) if the body as a whole cannot be read. Readings that cannot be
    understood one by one are refused and counted (see ``readings_frame``)."""
    kind, charset = _media_type(content_type)
    is_csv = kind in ("text/csv", "application/csv")
    text = _decode(body, charset, detect=is_csv)
    if not text.strip():
        raise FormatError("body", "empty batch")
    if is_csv and (frame := _plain_csv_frame(text)) is not None:
        return frame
    refused: Counter = Counter()
    try:
        if is_csv:
            rows = _csv_rows(text, refused)
        elif kind in ("application/x-ndjson", "application/ndjson"):
            rows = []
            for line in text.split("\n"):  # not splitlines(): U+2028 may sit in a string
                if line.strip():
                    try:
                        rows.append(load_json(line))
                    except ValueError:  # one broken line costs only itself
                        refused["line is not JSON"] += 1
        else:
            parsed = load_json(text)
            rows = parsed.get("readings", [parsed]) if isinstance(parsed, dict) else parsed
    except (ValueError, csv.Error) as exc:
        raise FormatError("body", f"not {kind or 'JSON'}: {exc}") from None
    if not isinstance(rows, list):
        raise FormatError("body", "a batch is a list of readings")
    frame = readings_frame(rows)
    frame.attrs["rejected"].update(refused)
    return frame


def _plain_csv_frame(text: str) -> pd.DataFrame | None:
    """A CSV body read by Arrow, column by column, when it is plain CSV: a header of
    distinct names on its first line (read by the csv module), then no quotes and no NUL,
    every row as many fields as the header, no field over the csv module's limit. What
    the csv module would then read is exactly what Arrow reads, and ``readings_frame``
    sees the same readings (a gateway's batch of 20,000 rows: ~10 ms instead of ~250 ms).
    None for any other body: the csv module reads it row by row (``_csv_rows``), with its
    own rules for the odd row."""
    if "\x00" in text or text[0] in "\r\n":
        return None
    header = csv.reader(io.StringIO(text, newline=""))
    try:
        names = next(header)
    except csv.Error:
        return None
    if header.line_num != 1 or len(set(names)) != len(names):
        return None
    end = min((i for i in (text.find("\r"), text.find("\n")) if i >= 0), default=len(text))
    if '"' in text[end:]:
        return None
    try:
        table = pacsv.read_csv(
            pa.py_buffer(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=False),
            parse_options=pacsv.ParseOptions(quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeEncodeError):  # a short or long row, say
        return None
    limit = csv.field_size_limit()
    if any((pc.max(pc.utf8_length(c)).as_py() or 0) > limit for c in table.columns):
        return None
    columns = {
        name: _objects_of(table.column(name)) if name in names else np.full(len(table), None)
        for name in (*REQUIRED, "parameter")
    }
    numbers = None
    if "value" in names:  # Arrow's parse where it takes every value, pandas' otherwise
        with contextlib.suppress(pa.ArrowInvalid):
            numbers = table.column("value").cast(pa.float64()).to_numpy()

    def reading(i: int) -> dict[str, str]:  # as the csv module's DictReader gives it
        return {name: table.column(k)[i].as_py() for k, name in enumerate(names)}

    return _checked(columns, reading, len(table), Counter(), [], numbers)


def _objects_of(column: pa.ChunkedArray) -> np.ndarray:
    """An Arrow string column as an object array of str."""
    return column.to_numpy(zero_copy_only=False).astype(object, copy=False)


def _csv_rows(text: str, refused: Counter) -> list[dict]:
    """Rows of a CSV body as dicts by its header; a row the csv module cannot read (a
    field over its size limit) is counted and skipped, not the end of the batch."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        raise FormatError("body", "CSV without a header row")
    rows = []
    while True:
        try:
            rows.append(next(reader))
        except StopIteration:
            return rows
        except csv.Error:
            refused["row is not CSV"] += 1


def _media_type(content_type: str) -> tuple[str, str | None]:
    """The media type (lower case) and its charset parameter, if any."""
    kind, *params = (content_type or "").split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return kind.strip().lower(), charset


def _decode(body: bytes, charset: str | None, detect: bool) -> str:
    """The body as text: in its declared charset; else CSV as the readers detect it (UTF-8,
    GBK, GB18030: department exports are often GBK) and JSON as UTF-8 (RFC 8259)."""
    if charset:
        return _decode_declared(body, codec_name(charset) or charset)
    if detect:
        return decode_text(body, "body")[0]
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EncodingError(
            "body",
            f"JSON is not valid UTF-8 ({exc.reason} at byte {exc.start}); send UTF-8 or "
            "name the charset in Content-Type",
        ) from None


def _decode_declared(body: bytes, charset: str) -> str:
    """The body in the charset its Content-Type names; EncodingError if that is no text
    encoding, does not fit the bytes, or yields text that UTF-8 cannot hold (the escape
    codecs can make lone surrogates)."""
    try:
        text = decode_text(body, "body", charset)[0]
        text.encode("utf-8")
    except (UnicodeError, LookupError) as exc:
        raise EncodingError("body", f"not text in charset {charset!r}: {exc}") from None
    return text


class InvalidText:
    """Stands for a string that no UTF-8 can hold (a lone surrogate escape): not a string
    to the checks, so its reading is refused, not stored or echoed."""

    def __repr__(self) -> str:
        return "<text with a lone surrogate>"


def _no_lone_surrogates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = {}
    for key, value in pairs:
        if type(value) is str and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                value = InvalidText()
        out[key] = value
    return out


def load_json(data: str | bytes) -> Any:
    """JSON with orjson; what orjson refuses but Python's json module writes (NaN,
    Infinity, 1e400) is read by the standard library, so such a value costs only its own
    reading. ValueError if neither reads it."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as first:
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            return json.loads(text, object_pairs_hook=_no_lone_surrogates)
        except (ValueError, RecursionError):
            raise first from None


def readings_frame(rows: list[Any]) -> pd.DataFrame:
    """The one place where raw readings (from JSON, NDJSON, CSV or MQTT) are checked and
    coerced before any vectorised code sees them.

    A reading is kept when it is an object whose sensor_id is a string, parameter a string
    (of at most MAX_NAME characters) or absent, time a string and value a number or text;
    the rest are refused by reason in ``attrs["rejected"]`` (a few shown in
    ``attrs["examples"]``), so one bad reading never costs its neighbours. The frame has
    sensor_id, time and parameter as object columns of str (parameter None if absent) and
    value as float (NaN where a text is not a number: the store refuses it by name).
    Columns are checked whole where their type allows (a clean batch costs a few passes
    in C), reading by reading otherwise.
    """
    rejected: Counter = Counter()
    examples: list[str] = []
    good = [r for r in rows if type(r) is dict]
    if len(good) < len(rows):
        rejected["not a reading object"] += len(rows) - len(good)
        first = next(r for r in rows if type(r) is not dict)
        examples.append(f"not a reading object: {_short(first)}")
    columns = {name: _objects([r.get(name) for r in good]) for name in (*REQUIRED, "parameter")}
    return _checked(columns, good.__getitem__, len(good), rejected, examples)


def _checked(
    columns: dict[str, np.ndarray],
    reading: Callable[[int], Any],
    n: int,
    rejected: Counter,
    examples: list[str],
    numbers: np.ndarray | None = None,
) -> pd.DataFrame:
    """The frame of readings_frame from its columns (object arrays, None where absent);
    ``reading(i)`` is reading i as sent (for the examples of refusals), ``numbers`` the
    values already parsed from text, if they were."""
    reasons: dict[int, str] = {}  # reading -> why it is refused (the first problem found)
    _check_text(columns["sensor_id"], "sensor_id", reasons, required=True)
    _check_text(columns["parameter"], "parameter", reasons, required=False, limit=MAX_NAME)
    _check_text(columns["time"], "time", reasons, required=True)
    times = columns["time"]  # pandas reads these as its own clock, not the reading's time
    for i in np.flatnonzero((times == "now") | (times == "today")):
        reasons.setdefault(int(i), "unparseable time")
    value = numbers if numbers is not None else _numbers(columns["value"], reasons)
    keep = slice(None)
    if reasons:
        keep = np.ones(n, bool)
        keep[list(reasons)] = False
        rejected.update(reasons.values())
        for i in sorted(reasons)[: max(0, MAX_EXAMPLES - len(examples))]:
            examples.append(f"{reasons[i]}: {_short(reading(i))}")
    # object columns as given (inferring Arrow strings would copy every one); built
    # column by column: a frame from a list of dicts costs more than the checks above
    texts = {name: columns[name][keep] for name in ("sensor_id", "time", "parameter")}
    frame = pd.DataFrame(texts, dtype=object, copy=False)
    frame.insert(2, "value", value[keep])
    frame.attrs["rejected"] = rejected
    frame.attrs["examples"] = examples
    return frame


def _objects(values: list[Any]) -> np.ndarray:
    column = np.empty(len(values), object)  # element-wise: a value may itself be a list
    column[:] = values
    return column


def _check_text(
    column: np.ndarray,
    name: str,
    reasons: dict[int, str],
    required: bool,
    limit: int | None = None,
) -> None:
    """Note readings whose ``name`` is missing (if required), not a string or longer than
    ``limit``; an optional one that is empty becomes None."""
    kind = infer_dtype(column, skipna=False)
    if kind == "string" and (limit is None or max(map(len, column), default=0) <= limit):
        return  # the usual batch: every one a string
    if not required and column.tolist().count(None) == len(column):
        return  # the usual parameter: absent throughout
    for i, v in enumerate(column):
        if i in reasons:
            continue
        if v is None or (not required and v == ""):
            if required:
                reasons[i] = f"{name} missing or null"
            else:
                column[i] = None
        elif type(v) is not str:
            reasons[i] = f"{name} is not a string"
        elif limit is not None and len(v) > limit:
            reasons[i] = f"{name} over {limit} characters"


def _numbers(column: np.ndarray, reasons: dict[int, str]) -> np.ndarray:
    """Values as floats: numbers as they are, text parsed (NaN if it is not a number);
    null, booleans, lists and objects are noted in ``reasons``."""
    kind = infer_dtype(column, skipna=False)
    if kind in ("floating", "integer", "mixed-integer-float", "integer-na"):
        try:
            return column.astype(float)
        except OverflowError:  # an integer beyond float: reading by reading below
            pass
    if kind == "string":  # CSV
        return _parse_numbers(column)
    out = np.full(len(column), np.nan)  # NaN: refused by the store as not a number
    text = []
    for i, v in enumerate(column):
        kind = type(v)
        if kind is float or kind is int:
            with contextlib.suppress(OverflowError):
                out[i] = v
        elif kind is str:
            text.append(i)
        elif i not in reasons:
            reasons[i] = "value missing or null" if v is None else "value is not a number"
    if text:
        out[text] = _parse_numbers(column[text])
    return out


def _parse_numbers(texts: np.ndarray) -> np.ndarray:
    parsed = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce")
    return parsed.to_numpy(dtype=float, na_value=np.nan)


def _short(value: Any) -> str:
    """A reading (or part of one) as logs and answers show it: its repr, cut short."""
    return _cut(repr(value))


def _cut(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
