"""Live readings from any channel (HTTP batches, MQTT, files) into the observation store.

Readings name only their sensor; the sensor directory, built from every sensors layer of
the catalog, says which layer a sensor belongs to, its valid range and the attributes
the alert rules read. It is rebuilt when the catalog version moves, so a sensors layer
ingested while the server runs takes readings at once.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd
from shikong.spatial.errors import FormatError

from .catalog import Catalog
from .ingest import sensor_specs
from .observations import AppendResult, SensorSpec, factorize_names


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
        self.examples += part.examples[: max(0, 5 - len(self.examples))]

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

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        # held by a server around parsing and ingesting one batch: threads of a process
        # gain nothing by validating at once (the GIL), and interleaved they stretch the
        # store's writer lock that other worker processes wait on
        self.one_batch = threading.Lock()
        self._version = -1
        self._sensors: dict[str, Sensor] = {}

    def sensors(self) -> dict[str, Sensor]:
        version = self.catalog.version
        if version != self._version:
            with self._lock:
                if version != self._version:
                    self._sensors = self._load()
                    self._version = version
        return self._sensors

    def _load(self) -> dict[str, Sensor]:
        out: dict[str, Sensor] = {}
        for layer in self.catalog.collections(kind="sensors"):
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
            result.examples.append(f"unknown sensor {first!r}")
        if department or kind:  # MQTT: the topic must agree with the sensor
            mismatch = np.array(
                [
                    m is not None
                    and bool(
                        (department and m.department != department) or (kind and m.kind != kind)
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
                self.catalog.observations.append(
                    layer,
                    frame if rows.all() else frame[rows],
                    {n: m.spec for n, m in members.items()},
                    attributes={n: m.attributes for n, m in members.items()},
                )
            )
        return result


REQUIRED = ("sensor_id", "time", "value")


def parse_batch(body: bytes, content_type: str) -> pd.DataFrame:
    """A batch as JSON (array or {"readings": [...]}), NDJSON or CSV; FormatError if none."""
    kind = (content_type or "").split(";")[0].strip().lower()
    text = body.decode("utf-8-sig", errors="strict") if body else ""
    if not text.strip():
        raise FormatError("body", "empty batch")
    try:
        if kind in ("text/csv", "application/csv"):
            rows = list(csv.DictReader(io.StringIO(text)))
        elif kind in ("application/x-ndjson", "application/ndjson"):
            rows = [orjson.loads(line) for line in text.splitlines() if line.strip()]
        else:
            parsed = orjson.loads(text)
            rows = parsed.get("readings", [parsed]) if isinstance(parsed, dict) else parsed
    except (orjson.JSONDecodeError, csv.Error, UnicodeDecodeError) as exc:
        raise FormatError("body", f"not {kind or 'JSON'}: {exc}") from None
    if not isinstance(rows, list):
        raise FormatError("body", "a batch is a list of readings")
    return readings_frame(rows)


def readings_frame(rows: list[Any]) -> pd.DataFrame:
    """Rows with sensor_id, time, value (and parameter) as they came (missing = None);
    non-objects dropped as 'not a reading object'. Built column by column: a frame from
    a list of dicts costs more than the validation after it."""
    good = [r for r in rows if isinstance(r, dict)]
    columns = {}
    for name in (*REQUIRED, "parameter"):
        column = np.empty(len(good), object)  # element-wise: a value may itself be a list
        column[:] = [r.get(name) for r in good]
        columns[name] = column
    # object columns as given: inferring Arrow strings would copy every one
    frame = pd.DataFrame(columns, dtype=object, copy=False)
    bad = len(rows) - len(good)
    frame.attrs["not_objects"] = bad
    return frame
