"""Ingest: a department's source → a cloud-native asset → a STAC item, committed atomically.

Order of work (what makes a kill -9 harmless):
1. read and check the source (nothing written yet);
2. write the asset into its own version folder (invisible until committed);
3. commit the item, the collection and the bumped catalog version in ONE index
   transaction: this is the commit point;
4. export the STAC JSON (atomic renames, children before parents). If the process dies
   here, the next writer re-exports from the index.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from shikong.config import load as load_config
from shikong.spatial.errors import FormatError, InputError
from shikong.spatial.readers import ReadReport, read
from shikong.spatial.readers.encoding import decode_text

from . import assets as asset_writers
from .extension import CLASSIFICATIONS, KINDS
from .observations import AppendResult, SensorSpec
from .stac import iso, item_dict, parse_when, rel
from .storage import sha256_file

if TYPE_CHECKING:
    from .catalog import Catalog

LAYER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
VERSION_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
RASTER_SUFFIXES = {".tif", ".tiff"}
CUBE_SUFFIXES = {".nc", ".nc4", ".zarr"}
READING_COLUMNS = {"sensor_id", "time", "value"}


@dataclass
class IngestRequest:
    """Everything that says what a source is and where it goes in the catalog."""

    source: Path
    department: str
    layer: str
    classification: str | None = None  # None: keep the layer's, "shared" for a new layer
    kind: str | None = None
    version: str | None = None
    valid_from: str | date | datetime | None = None
    title: str | None = None
    title_en: str | None = None
    description: str = ""
    keywords: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    id_field: str | None = None
    sensor_layer: str | None = None
    editable: bool | None = None  # None: keep the layer's setting (False for a new layer)
    derived_from: list[str] = field(default_factory=list)  # item ids this was computed from

    @property
    def collection_id(self) -> str:
        return f"{self.department}-{self.layer}"


@dataclass
class IngestResult:
    """What an ingest did: created a version, found it unchanged, or appended readings."""

    collection_id: str
    item_id: str
    version: str
    status: str  # "created" | "unchanged" | "appended"
    catalog_version: int
    report: ReadReport | None = None
    readings: AppendResult | None = None


@cache
def departments() -> dict[str, dict[str, str]]:
    """The departments of config/departments.yaml by code."""
    return {d["code"]: d for d in load_config("departments")["departments"]}


def _check_request(req: IngestRequest) -> None:
    if req.department not in departments():
        raise InputError(
            "department",
            f"unknown department {req.department!r}; known: {', '.join(departments())}",
        )
    if not LAYER_NAME.match(req.layer):
        raise InputError(
            "layer",
            f"{req.layer!r} is not a layer name: use lower-case letters, "
            "digits and _ (start with a letter)",
        )
    if req.classification is not None and req.classification not in CLASSIFICATIONS:
        raise InputError(
            "classification", f"{req.classification!r} is not one of {', '.join(CLASSIFICATIONS)}"
        )
    if req.kind is not None and req.kind not in KINDS:
        raise InputError("kind", f"{req.kind!r} is not one of {', '.join(KINDS)}")
    if req.version is not None and not VERSION_LABEL.match(req.version):
        raise InputError(
            "version",
            f"{req.version!r} is not a version label (letters, digits, . _ -; at most 32)",
        )
    if not req.source.exists():
        raise InputError(req.source, "no such file")


def detect_kind(req: IngestRequest) -> str:
    """Raster by suffix, data cube by suffix, readings by their columns, else vector."""
    suffix = req.source.suffix.lower()
    if req.kind:
        return req.kind
    if suffix in RASTER_SUFFIXES:
        return "raster"
    if suffix in CUBE_SUFFIXES:
        return "datacube"
    if suffix == ".csv":
        head = req.source.open("rb").read(4096)
        first = decode_text(head.split(b"\n")[0], str(req.source))[0]
        if {c.strip().lower() for c in first.split(",")} >= READING_COLUMNS:
            return "readings"
    return "vector"


def source_checksum(req: IngestRequest) -> str:
    """sha256 of the source (with its sidecars) and of the options that shape the result."""
    h = hashlib.sha256()
    src = req.source
    files = (
        [p for p in sorted(src.rglob("*")) if p.is_file()]
        if src.is_dir()
        else sorted(
            p
            for p in src.parent.glob(f"{src.stem}.*")
            if p.suffix.lower() in {".shp", ".shx", ".dbf", ".prj", ".cpg"}
        )
        if src.suffix.lower() == ".shp"
        else [src]
    )
    for f in files:
        h.update(f.name.encode())
        sha256_file(f, h)
    shape = {"options": req.options, "id_field": req.id_field, "kind": req.kind}
    h.update(json.dumps(shape, sort_keys=True, default=str).encode())
    return "1220" + h.hexdigest()


def _fault(point: str) -> None:
    """Test hook: die here with SIGKILL, as a crash or an OOM kill would."""
    if os.environ.get("SHIKONG_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _next_version(existing: list[dict[str, Any]]) -> str:
    numbers = [int(v) for v in (i["properties"]["version"] for i in existing) if v.isdigit()]
    return str(max(numbers, default=0) + 1)


def ingest(catalog: Catalog, req: IngestRequest) -> IngestResult:
    """Ingest one source; see the module docstring for the order that makes it crash-safe."""
    req.source = Path(req.source)
    _check_request(req)
    kind = detect_kind(req)
    if kind == "readings":
        return ingest_readings(catalog, req)
    cid = req.collection_id
    checksum = source_checksum(req)
    with catalog.writing():
        existing = catalog.index.items_of(cid)
        same = catalog.index.find_checksum(cid, checksum)
        if same is not None:
            return IngestResult(
                cid, same["id"], same["properties"]["version"], "unchanged", catalog.version
            )
        collection = catalog.index.collection(cid)
        if collection is not None and collection["shikong:kind"] != kind:
            raise InputError(
                req.source, f"layer {cid} holds {collection['shikong:kind']} data, not {kind}"
            )
        version = req.version or _next_version(existing)
        item_id = f"{cid}-v{version}"
        if any(i["id"] == item_id for i in existing):
            raise InputError(
                "version",
                f"version {version} of {cid} exists with other content:"
                " versions never change; give a new --version",
            )
        report, asset = _write_asset(catalog, req, kind, version)
        _fault("after-asset")
        valid_from = parse_when(req.valid_from) if req.valid_from else datetime.now(UTC)
        item_dir = catalog.paths.item_json(req.department, req.layer, item_id).parent
        source = {
            "path": str(req.source.resolve()),
            "checksum": checksum,
            "format": report.format if report else req.source.suffix.lstrip(".").upper(),
            "encoding": report.encoding if report else None,
            "crs": report.crs if report else asset.item_properties.get("proj:code"),
        }
        if report and (report.actions or report.warnings or report.repaired):
            source["actions"] = report.actions
            source["warnings"] = report.warnings
            source["repaired"] = len(report.repaired)
        item = item_dict(
            item_id=item_id,
            collection_id=cid,
            department=req.department,
            layer=req.layer,
            kind=kind,
            classification=req.classification,
            version=version,
            valid_from=valid_from,
            title=f"{req.title or req.layer} {version}",
            geometry=asset.footprint,
            assets={
                "data": {
                    "href": rel(asset.path, item_dir),
                    "type": asset.media_type,
                    "title": asset.title,
                    "roles": ["data"],
                    **asset.asset_fields,
                }
            },
            properties=asset.item_properties,
            source=source,
            created=datetime.now(UTC),
        )
        if req.derived_from:
            item["properties"]["shikong:derived_from"] = list(req.derived_from)
        catalog.commit_version(req, kind, item)
        return IngestResult(cid, item_id, version, "created", catalog.version, report=report)


def _write_asset(catalog: Catalog, req: IngestRequest, kind: str, version: str):
    folder = catalog.paths.asset_dir(req.department, req.layer, version)
    if kind == "raster":
        return None, asset_writers.write_raster(req.source, folder)
    if kind == "datacube":
        return None, asset_writers.write_datacube(req.source, folder)
    frame, report = read(req.source, **req.options)
    if kind == "sensors" and "sensor_id" not in frame.columns:
        raise FormatError(req.source, "a sensors layer needs a sensor_id column")
    id_field = req.id_field or ("sensor_id" if kind == "sensors" else None)
    return report, asset_writers.write_vector(frame, folder, id_field=id_field)


def sensor_specs(frame: pd.DataFrame) -> dict[str, SensorSpec]:
    """Valid ranges of each sensor from a sensors layer (min_valid/max_valid columns)."""
    specs = {}
    for row in frame.itertuples(index=False):
        lo = getattr(row, "min_valid", None)
        hi = getattr(row, "max_valid", None)
        specs[str(row.sensor_id)] = SensorSpec(
            str(row.sensor_id),
            float(lo) if lo is not None and pd.notna(lo) else float("-inf"),
            float(hi) if hi is not None and pd.notna(hi) else float("inf"),
        )
    return specs


def read_readings(source: Path) -> pd.DataFrame:
    """A readings CSV (sensor_id, time, value[, parameter]) in UTF-8 or GBK."""
    text, _ = decode_text(source.read_bytes(), str(source))
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise FormatError(source, f"not a well-formed CSV: {exc}") from exc
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = READING_COLUMNS - set(frame.columns)
    if missing:
        raise FormatError(
            source,
            f"readings need columns sensor_id, time, value; missing {', '.join(sorted(missing))}",
        )
    return frame


def ingest_readings(catalog: Catalog, req: IngestRequest) -> IngestResult:
    """Append readings to the observation store under their sensors layer."""
    if not req.sensor_layer:
        raise InputError(
            "sensor layer", "readings need the sensors layer they belong to (--sensor-layer)"
        )
    sensors_id = (
        req.sensor_layer if "-" in req.sensor_layer else f"{req.department}-{req.sensor_layer}"
    )
    sensors = catalog.layer(sensors_id)
    if sensors.kind != "sensors":
        raise InputError("sensor layer", f"{sensors_id} is a {sensors.kind} layer, not sensors")
    frame = read_readings(req.source)
    specs = sensor_specs(sensors.to_geodataframe())
    cid = req.collection_id
    with catalog.writing():
        result = catalog.observations.append(sensors_id, frame, specs)
        first, last, count = catalog.observations.extent(sensors_id)
        item_id = f"{cid}-live"
        if result.accepted == 0 and catalog.index.item(item_id) is not None:
            return IngestResult(cid, item_id, "live", "unchanged", catalog.version, readings=result)
        item_dir = catalog.paths.item_json(req.department, req.layer, item_id).parent
        store = catalog.paths.root / "observations.sqlite"
        geometry = sensors.current.footprint
        item = item_dict(
            item_id=item_id,
            collection_id=cid,
            department=req.department,
            layer=req.layer,
            kind="readings",
            classification=req.classification,
            version="live",
            valid_from=first.to_pydatetime() if first is not None else datetime.now(UTC),
            title=f"{req.title or req.layer}",
            geometry=geometry,
            assets={
                "data": {
                    "href": rel(store, item_dir),
                    "type": "application/vnd.sqlite3",
                    "title": "observation store: archive (series, points)",
                    "roles": ["data"],
                    "shikong:store_layer": sensors_id,
                },
                "live": {
                    "href": rel(catalog.observations.live_path, item_dir),
                    "type": "application/vnd.sqlite3",
                    "title": "observation store: live file (recent runs, newest values, "
                    "alerts); attaches the archive as 'archive'",
                    "roles": ["data"],
                },
            },
            properties={
                "shikong:sensor_collection": sensors_id,
                "shikong:reading_count": count,
                "shikong:last_reading": iso(last.to_pydatetime()) if last is not None else None,
            },
            source=None,
            created=datetime.now(UTC),
        )
        previous = catalog.index.item(item_id)
        if previous is not None:
            item["properties"]["created"] = previous["properties"]["created"]
        catalog.commit_version(req, "readings", item, replace=True)
        return IngestResult(cid, item_id, "live", "appended", catalog.version, readings=result)
