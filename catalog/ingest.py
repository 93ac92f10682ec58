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
from .asset_store import (
    AssetStore,
    AssetStoreError,
    LocalAssets,
    configured_assets,
    store_of,
    version_key,
)
from .departments import departments
from .extension import CLASSIFICATIONS, KINDS, Field, ShikongExtension
from .faults import fault
from .layer import find_layer
from .observations import AppendResult, SensorSpec
from .stac import item_dict
from .storage import sha256_file
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
        assets = configured_assets(store.paths)
        key = version_key(req.department, req.layer, version)
        with _pending_asset(store, assets, key, item_id, existing):
            asset = _write_asset(req, kind, assets.workspace(key), frame)
            assets.publish(key)  # object storage: uploaded before the item names it
            fault("after-asset")
            item_dir = store.paths.item_json(req.department, req.layer, item_id).parent
            href = assets.href(key, asset.path, item_dir)
            item = _version_item(req, kind, version, valid_from, checksum, report, asset, href)
            store.commit([LayerBatch(req.target, kind, [item])])
        assets.release(key)
        return IngestResult(cid, item_id, version, "created", store.version(), report=report)


def _version_item(
    req: IngestRequest,
    kind: str,
    version: str,
    valid_from: datetime,
    checksum: str,
    report: ReadReport | None,
    asset: asset_writers.AssetInfo,
    href: str,
) -> dict[str, Any]:
    """The STAC item of a new version whose asset is written (and named by ``href``)."""
    item_id = f"{req.collection_id}-v{version}"
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
                "href": href,
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
def remove_residues(store: CatalogStore) -> list[str]:
    """Remove what ingests that died left (call under the writer lock): the version
    folder of every journal entry whose item was never committed, locally or in object
    storage. Returns what was removed. An entry whose store cannot be reached now stays
    for the next writer."""
    journal = store.paths.pending_assets
    removed: list[str] = []
    if not journal.is_dir():
        return removed
    for entry in sorted(journal.glob("*.json")):
        try:
            pending = json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # cut short while being written: nothing followed
            pending = None
        if pending and store.item(pending["item"]) is None:
            if "key" in pending:
                where = store_of(store.paths, pending["store"])
                try:
                    where.discard(pending["key"])
                except AssetStoreError:
                    continue
                removed.append(f"{where.url}/{pending['key']}")
            else:  # a journal entry written before object storage: a local folder
                folder = store.paths.root / pending["folder"]
                if folder.exists():
                    LocalAssets(store.paths).discard(
                        folder.relative_to(store.paths.assets).as_posix()
                    )
                    removed.append(str(folder))
        entry.unlink(missing_ok=True)
    return removed


@contextlib.contextmanager
def _pending_asset(
    store: CatalogStore, assets: AssetStore, key: str, item_id: str, existing: list[dict[str, Any]]
) -> Iterator[None]:
    """Write the asset folder ``key`` for ``item_id``: journalled first, so that a kill
    before the commit leaves a residue the next writer removes, and removed at once if
    the ingest fails. Residues of the same layer that predate the journal go too."""
    department, layer, _ = key.split("/")
    assets.sweep(department, layer, existing)
    assets.claim(key)
    journal = store.paths.pending_assets
    journal.mkdir(parents=True, exist_ok=True)
    entry = journal / f"{uuid.uuid4().hex}.json"
    relative = assets.workspace(key).relative_to(store.paths.root).as_posix()
    record = {"folder": relative, "item": item_id, "store": assets.url, "key": key}
    entry.write_text(json.dumps(record), encoding="utf-8")
    kept = False
    try:
        yield
    except BaseException:
        if store.item(item_id) is None:  # failed before its commit
            try:
                assets.discard(key)
            except AssetStoreError:  # storage unreachable: the next writer tries again
                kept = True
        raise
    finally:
        if not kept:
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
            assets=observations.data_assets(item_dir, sensors_id),
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
