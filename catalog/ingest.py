"""Ingest: a department's source → a cloud-native asset → a STAC item, committed atomically.

Order of work (what makes a kill -9 harmless):
1. read and check the source (nothing written yet: a refused source changes nothing);
2. note the version folder in the pending journal, then write the asset into it;
3. commit the item, the collection and the bumped catalog version in ONE index
   transaction: this is the commit point;
4. export the STAC JSON (atomic renames, children before parents). If the process dies
   here, the next writer re-exports from the index.

An asset is reachable only once a committed item names it (``/assets`` checks the index,
see ``assets.committed_asset``). What a dead or refused ingest left in its version
folder is removed: at once when the ingest fails with an error, else by the next
ingest, which first removes every folder the journal names that no committed item owns.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from shikong.spatial.errors import FormatError, InputError
from shikong.spatial.readers import ReadReport, read
from shikong.spatial.readers.encoding import decode_text
from shikong.spatial.readers.integrity import regular_file, shapefile_parts
from shikong.spatial.temporal import parse_instant, rfc3339

from . import assets as asset_writers
from .departments import departments
from .extension import CLASSIFICATIONS, KINDS, Field, ShikongExtension
from .faults import fault
from .layer import find_layer
from .observations import AppendResult, SensorSpec
from .stac import item_dict, rel
from .storage import DataDir, sha256_file
from .store import CatalogStore, LayerBatch, LayerTarget

if TYPE_CHECKING:
    from .observations import ObservationStore

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

    @property
    def target(self) -> LayerTarget:
        """Where the request's version goes, and what its collection document says."""
        return LayerTarget(
            self.department,
            self.layer,
            self.classification,
            self.title,
            self.title_en,
            self.description,
            tuple(self.keywords),
            self.editable,
        )


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
    if not req.source.is_dir():  # a folder delivery: the reader checks what it takes
        regular_file(req.source)  # before anything opens it: a FIFO would block forever
        if req.source.suffix.lower() == ".shp":  # the checksum reads every sidecar
            for part in shapefile_parts(req.source):
                regular_file(part, allow_empty=True)


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


def _next_version(existing: list[dict[str, Any]]) -> str:
    numbers = [int(v) for v in (i["properties"]["version"] for i in existing) if v.isdigit()]
    return str(max(numbers, default=0) + 1)


def ingest(store: CatalogStore, observations: ObservationStore, req: IngestRequest) -> IngestResult:
    """Ingest one source; see the module docstring for the order that makes it crash-safe.
    (``observations`` receives a readings source's readings.)"""
    req.source = Path(req.source)
    _check_request(req)
    kind = detect_kind(req)
    if kind == "readings":
        return ingest_readings(store, observations, req)
    cid = req.collection_id
    checksum = source_checksum(req)
    with store.writing():
        remove_residues(store)
        existing = store.items_of(cid)
        same = store.find_checksum(cid, checksum)
        if same is not None:
            return IngestResult(
                cid, same["id"], same["properties"]["version"], "unchanged", store.version()
            )
        collection = store.collection(cid)
        held = ShikongExtension.ext(collection).kind if collection is not None else None
        if collection is not None and held != kind:
            raise InputError(req.source, f"layer {cid} holds {held} data, not {kind}")
        version = req.version or _next_version(existing)
        item_id = f"{cid}-v{version}"
        if any(i["id"] == item_id for i in existing):
            raise InputError(
                "version",
                f"version {version} of {cid} exists with other content:"
                " versions never change; give a new --version",
            )
        valid_from = parse_instant(req.valid_from) if req.valid_from else datetime.now(UTC)
        frame, report = _read_vector(req, kind)
        folder = store.paths.asset_dir(req.department, req.layer, version)
        with _pending_asset(store, folder, item_id, existing):
            asset = _write_asset(req, kind, folder, frame)
            fault("after-asset")
            item = _version_item(
                store.paths, req, kind, version, valid_from, checksum, report, asset
            )
            store.commit([LayerBatch(req.target, kind, [item])])
        return IngestResult(cid, item_id, version, "created", store.version(), report=report)


def _version_item(
    paths: DataDir,
    req: IngestRequest,
    kind: str,
    version: str,
    valid_from: datetime,
    checksum: str,
    report: ReadReport | None,
    asset: asset_writers.AssetInfo,
) -> dict[str, Any]:
    """The STAC item of a new version whose asset is written."""
    item_id = f"{req.collection_id}-v{version}"
    item_dir = paths.item_json(req.department, req.layer, item_id).parent
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
        collection_id=req.collection_id,
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
        ShikongExtension.ext(item).derived_from = list(req.derived_from)
    return item


def _read_vector(req: IngestRequest, kind: str) -> tuple[Any, ReadReport | None]:
    """A vector source read and checked, before anything is written (rasters and data
    cubes are checked by their writers, which open the source first)."""
    if kind in ("raster", "datacube"):
        return None, None
    frame, report = read(req.source, **req.options)
    if kind == "sensors" and "sensor_id" not in frame.columns:
        raise FormatError(req.source, "a sensors layer needs a sensor_id column")
    return frame, report


def _write_asset(
    req: IngestRequest, kind: str, folder: Path, frame: Any
) -> asset_writers.AssetInfo:
    if kind == "raster":
        return asset_writers.write_raster(req.source, folder)
    if kind == "datacube":
        return asset_writers.write_datacube(req.source, folder)
    id_field = req.id_field or ("sensor_id" if kind == "sensors" else None)
    return asset_writers.write_vector(frame, folder, id_field=id_field)


# -- residues of ingests that died or failed ------------------------------------------
def _asset_folders(paths: DataDir, items: list[dict[str, Any]]) -> set[Path]:
    """The version folders that committed items' assets live in."""
    folders = set()
    for item in items:
        shikong = ShikongExtension.ext(item)
        item_dir = paths.item_json(shikong.department, shikong.layer, item["id"]).parent
        for asset in item.get("assets", {}).values():
            folders.add((item_dir / asset["href"]).resolve().parent)
    return folders


def _remove(paths: DataDir, folder: Path) -> None:
    """Remove a version folder, and its layer and department folders if left empty."""
    shutil.rmtree(folder, ignore_errors=True)
    assets = paths.assets
    for parent in (folder.parent, folder.parent.parent):
        if parent == assets or not parent.is_relative_to(assets):
            break
        with contextlib.suppress(OSError):  # not empty: other versions live there
            parent.rmdir()


def remove_residues(store: CatalogStore) -> list[Path]:
    """Remove what ingests that died left (call under the writer lock): the version
    folder of every journal entry whose item was never committed. Returns them."""
    journal = store.paths.pending_assets
    removed = []
    if not journal.is_dir():
        return removed
    for entry in sorted(journal.glob("*.json")):
        try:
            pending = json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # cut short while being written: nothing followed
            pending = None
        if pending and store.item(pending["item"]) is None:
            folder = store.paths.root / pending["folder"]
            if folder.exists():
                _remove(store.paths, folder)
                removed.append(folder)
        entry.unlink(missing_ok=True)
    return removed


@contextlib.contextmanager
def _pending_asset(
    store: CatalogStore, folder: Path, item_id: str, existing: list[dict[str, Any]]
) -> Iterator[None]:
    """Write an asset into ``folder`` for ``item_id``: journalled first, so that a kill
    before the commit leaves a residue the next writer removes, and removed at once if
    the ingest fails. Residues of the same layer that predate the journal go too."""
    layer_dir = folder.parent
    if layer_dir.is_dir():
        keep = _asset_folders(store.paths, existing)
        for child in layer_dir.iterdir():
            if child.resolve() not in keep:
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
    journal = store.paths.pending_assets
    journal.mkdir(parents=True, exist_ok=True)
    entry = journal / f"{uuid.uuid4().hex}.json"
    relative = folder.relative_to(store.paths.root).as_posix()
    entry.write_text(json.dumps({"folder": relative, "item": item_id}), encoding="utf-8")
    try:
        yield
    except BaseException:
        if store.item(item_id) is None:  # failed before its commit
            _remove(store.paths, folder)
        raise
    finally:
        entry.unlink(missing_ok=True)


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


def ingest_readings(
    store: CatalogStore, observations: ObservationStore, req: IngestRequest
) -> IngestResult:
    """Append readings to the observation store under their sensors layer."""
    if not req.sensor_layer:
        raise InputError(
            "sensor layer", "readings need the sensors layer they belong to (--sensor-layer)"
        )
    sensors_id = (
        req.sensor_layer if "-" in req.sensor_layer else f"{req.department}-{req.sensor_layer}"
    )
    sensors = find_layer(store, sensors_id, lambda: observations)
    if sensors.kind != "sensors":
        raise InputError("sensor layer", f"{sensors_id} is a {sensors.kind} layer, not sensors")
    frame = read_readings(req.source)
    specs = sensor_specs(sensors.to_geodataframe())
    cid = req.collection_id
    with store.writing():
        remove_residues(store)
        result = observations.append(sensors_id, frame, specs)
        first, last, count = observations.extent(sensors_id)
        item_id = f"{cid}-live"
        if result.accepted == 0 and store.item(item_id) is not None:
            return IngestResult(cid, item_id, "live", "unchanged", store.version(), readings=result)
        item_dir = store.paths.item_json(req.department, req.layer, item_id).parent
        archive = store.paths.observations_archive
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
                    "href": rel(archive, item_dir),
                    "type": "application/vnd.sqlite3",
                    "title": "observation store: archive (series, points)",
                    "roles": ["data"],
                    Field.STORE_LAYER: sensors_id,
                },
                "live": {
                    "href": rel(observations.live_path, item_dir),
                    "type": "application/vnd.sqlite3",
                    "title": "observation store: live file (recent runs, newest values, "
                    "alerts); attaches the archive as 'archive'",
                    "roles": ["data"],
                },
            },
            properties={
                Field.SENSOR_COLLECTION: sensors_id,
                Field.READING_COUNT: count,
                Field.LAST_READING: rfc3339(last.to_pydatetime()) if last is not None else None,
            },
            source=None,
            created=datetime.now(UTC),
        )
        previous = store.item(item_id)
        if previous is not None:
            item["properties"]["created"] = previous["properties"]["created"]
        store.commit([LayerBatch(req.target, "readings", [item], replace=True)])
        return IngestResult(cid, item_id, "live", "appended", store.version(), readings=result)
