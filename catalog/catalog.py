"""The catalog as analysts use it: ``Catalog.open(path)`` and everything reachable from it."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from html import escape
from pathlib import Path
from typing import Any

import orjson
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shikong.spatial.errors import InputError

from .cells import item_key
from .extension import Field, ShikongExtension
from .index import (
    CatalogIndex,
    ItemRow,
    PreparedCollections,
    PreparedItems,
    Query,
    prepare_collections,
    prepare_items,
)
from .ingest import IngestRequest, IngestResult, _fault, departments, ingest
from .layer import Layer
from .observations import ObservationStore
from .prefetch import prefetched
from .search import SearchResult, parse_interval
from .stac import collection_dict, department_catalog, parse_when, relink_versions, root_catalog
from .storage import (
    DataDir,
    collector_paused,
    default_data_dir,
    exclusive_lock,
    fsync_dir,
    write_bytes_atomic,
    write_json_atomic,
    write_new_file,
)
from .textsearch import index_text

_CHUNK_ITEMS = 1000  # rows per insert statement in a bulk commit
_FIRST_CHUNK_ITEMS = 200  # the first is smaller: SQLite starts sooner


class LayerNotFound(InputError):
    """No collection with that id: the server answers 404."""


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    name_en: str
    layers: int

    def __repr__(self) -> str:
        return f"Department({self.code} {self.name}, {self.layers} layers)"


class Catalog:
    """A data directory's catalog: departments → layers (collections) → versions (items)."""

    def __init__(self, root: Path) -> None:
        self.paths = DataDir(Path(root))
        self.index = CatalogIndex(self.paths.index)
        self._observations: ObservationStore | None = None
        self._lock = threading.RLock()
        self._writing = 0

    @classmethod
    def open(cls, path: str | Path | None = None) -> Catalog:
        """Open (or create) the catalog in a data directory; default ``$SHIKONG_DATA``."""
        catalog = cls(Path(path) if path is not None else default_data_dir())
        if catalog.index.version() > int(catalog.index.meta("exported_version") or 0):
            with catalog.writing():  # a writer died between commit and export: finish it
                pass
        return catalog

    def __repr__(self) -> str:
        return (
            f"Catalog({str(self.paths.root)!r}, version {self.version}, "
            f"{len(self.departments)} departments, {len(self.index.collections())} layers)"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{escape(d.code)}</td><td>{escape(d.name)}</td><td>{d.layers}</td></tr>"
            for d in self.departments
        )
        return (
            f"<b>shikong catalog</b> {escape(str(self.paths.root))} · version {self.version}"
            f"<table><tr><th>dept</th><th>name</th><th>layers</th></tr>{rows}</table>"
        )

    @property
    def version(self) -> int:
        """Increases with every committed change; servers poll it to publish live."""
        return self.index.version()

    @property
    def observations(self) -> ObservationStore:
        if self._observations is None:
            self._observations = ObservationStore(self.paths.root / "observations.sqlite")
        return self._observations

    # -- reading ---------------------------------------------------------------------
    @property
    def departments(self) -> list[Department]:
        known = departments()
        counts: dict[str, int] = {}
        for c in self.index.collections():
            code = ShikongExtension.ext(c).department
            counts[code] = counts.get(code, 0) + 1
        return [
            Department(code, d["name"], d["name_en"], counts[code])
            for code, d in known.items()
            if code in counts
        ]

    def collections(self, department: str | None = None, kind: str | None = None) -> list[Layer]:
        """Layers, optionally of one department or kind."""
        return [
            Layer(self, c)
            for c in self.index.collections(department)
            if kind is None or ShikongExtension.ext(c).kind == kind
        ]

    def layer(self, collection_id: str) -> Layer:
        collection = self.index.collection(collection_id)
        if collection is None:
            raise LayerNotFound("collection", f"no layer {collection_id!r} in the catalog")
        return Layer(self, collection)

    __getitem__ = layer

    def search(
        self,
        *,
        bbox: Sequence[float] | None = None,
        intersects: BaseGeometry | dict | None = None,
        datetime: str | date | tuple | None = None,
        collections: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        departments: Sequence[str] | None = None,
        kinds: Sequence[str] | None = None,
        classifications: Sequence[str] | None = None,
        text: str | None = None,
        current_only: bool = False,
        sortby: Sequence[tuple[str, bool]] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> SearchResult:
        """Items (layer versions) matching every given constraint.

        ``datetime`` is a date, an instant or an interval ``"2020-01-01/2021-12-31"``
        (open ends as ``..``); an item matches if its validity overlaps it.
        """
        if isinstance(intersects, dict):
            intersects = shape(intersects)
        start, end = parse_interval(datetime) if datetime is not None else (None, None)
        query = Query(
            bbox=bbox,
            intersects=intersects,
            start=start,
            end=end,
            collections=collections,
            ids=ids,
            departments=departments,
            kinds=kinds,
            classifications=classifications,
            text=text,
            current_only=current_only,
            sortby=list(sortby),
            limit=limit,
            offset=offset,
        )
        items, matched = self.index.search(query)
        return SearchResult(items, matched)

    # -- writing ---------------------------------------------------------------------
    def ingest(self, source: str | Path, *, department: str, layer: str, **kwargs) -> IngestResult:
        """Ingest a department's source as a new version of a layer (see IngestRequest)."""
        return ingest(self, IngestRequest(Path(source), department, layer, **kwargs))

    @contextlib.contextmanager
    def writing(self, export: bool = True) -> Iterator[None]:
        """Hold the data directory's writer lock; export the STAC JSON on the way out.

        ``export=False`` leaves the JSON mirror to a later :meth:`export` (bulk loads):
        the index commit is what makes a change visible to search and to the server.
        """
        with self._lock:
            outer = self._writing == 0
            if outer:
                lock = exclusive_lock(self.paths.lock)
                lock.__enter__()
            self._writing += 1
            try:
                yield
            finally:
                self._writing -= 1
                if outer:
                    try:
                        _fault("before-export")
                        if export:
                            self.export()
                    finally:
                        lock.__exit__(None, None, None)

    def commit_version(
        self, req: IngestRequest, kind: str, item: dict[str, Any], replace: bool = False
    ) -> int:
        """Commit an item with its collection's relinked versions; the commit point."""
        return self.commit_many([(req, kind, [item], replace)])

    def commit_items(self, req: IngestRequest, kind: str, items: list[dict[str, Any]]) -> int:
        """Add several versions to one layer at once."""
        return self.commit_many([(req, kind, items, False)])

    def commit_many(
        self,
        batches: list[tuple[IngestRequest, str, list[dict[str, Any]], bool]],
        export: bool = True,
    ) -> int:
        """Add items to layers in ONE transaction and bump the catalog version once.

        Each batch is (request, kind, new items, replace); with replace, items of the same
        id are replaced (a live readings item), else they are added as new versions.
        """
        merged: dict[str, tuple[IngestRequest, str, list[dict[str, Any]], bool]] = {}
        for req, kind, new_items, replace in batches:  # one entry per layer
            if req.collection_id in merged:
                first = merged[req.collection_id]
                new_items = first[2] + new_items
                replace = replace or first[3]
            merged[req.collection_id] = (req, kind, new_items, replace)
        with (
            collector_paused(),
            self.writing(export=export),
            self.index.transaction() as db,
        ):
            version = CatalogIndex.bump_version(db)
            known = self.index.collections_by_id(list(merged))
            existing = {cid: self.index.items_of(cid) for cid in known}  # read before writes
            layers = [
                (*batch, known.get(cid, {}), existing.get(cid, [])) for cid, batch in merged.items()
            ]

            def chunks() -> Iterator[tuple[PreparedItems, PreparedCollections]]:
                """Rows and collection documents, about _CHUNK_ITEMS rows at a time."""
                rows: list[ItemRow] = []
                docs: list[tuple[dict[str, Any], str]] = []
                size = _FIRST_CHUNK_ITEMS
                for req, kind, new_items, replace, old, stored in layers:
                    collection, changed = _relink_layer(req, kind, new_items, replace, old, stored)
                    rows += [_row(i) for i in changed]
                    docs.append((collection, _collection_text(collection)))
                    if len(rows) >= size:
                        yield prepare_items(rows, version), prepare_collections(docs, version)
                        rows, docs, size = [], [], _CHUNK_ITEMS
                if rows or docs:
                    yield prepare_items(rows, version), prepare_collections(docs, version)

            total = sum(len(layer[2]) for layer in layers)
            ahead = prefetched(chunks) if total >= 2 * _CHUNK_ITEMS else nullcontext(chunks())
            with ahead as prepared:  # large commits: rows are built while others are inserted
                for items, collections in prepared:
                    CatalogIndex.put_prepared(db, items)
                    CatalogIndex.put_prepared_collections(db, collections)
        return version

    def export(self) -> None:
        """Write the STAC JSON of everything committed since the last export (under the
        writer lock, like any write).

        Items are written compact (they are many); catalogs and collections indented.
        New item files are not referenced until their collection.json is renamed into
        place, so only replaced files need the temporary-name dance.
        """
        done = int(self.index.meta("exported_version") or 0)
        current = self.index.version()
        if current <= done:
            return
        for dept, layer, item_id, text in self.index.items_changed_since(done):
            path = self.paths.item_json(dept, layer, item_id)
            if path.exists():
                write_bytes_atomic(path, bytes(text), fsync=False)
            else:
                write_new_file(path, bytes(text))
        known = departments()
        changed_depts = self.index.changed_departments(done)
        for code in changed_depts:
            for collection in self.index.collections(code, changed_since=done):
                write_json_atomic(
                    self.paths.collection_json(code, ShikongExtension.ext(collection).layer),
                    collection,
                    fsync=False,
                )
            d = known[code]
            write_json_atomic(
                self.paths.department_catalog(code),
                department_catalog(code, d["name"], d["name_en"], self.index.layer_names(code)),
            )
        depts = [(code, known[code]["name"]) for code in self.index.departments()]
        write_json_atomic(self.paths.root_catalog, root_catalog(depts, current))
        fsync_dir(self.paths.stac)
        with self.index.transaction() as db:
            CatalogIndex.set_meta(db, "exported_version", current)


def _relink_layer(
    req: IngestRequest,
    kind: str,
    new_items: list[dict[str, Any]],
    replace: bool,
    old: dict[str, Any],
    existing: list[dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The layer's collection after adding items to its ``existing`` ones (``old`` is
    its collection document, if any), and the items that changed. Pure: it runs in a
    prefetch thread."""
    cid = req.collection_id
    if replace:
        new_ids = {i["id"] for i in new_items}
        existing = [i for i in existing if i["id"] not in new_ids]
    was = ShikongExtension.ext(old) if old else None  # the layer's collection, if stored
    classification = req.classification or (was and was.classification) or "shared"
    # a stored version changes when its validity ends or its links do: a new latest
    # version, or one arriving between two others, relinks versions it does not close
    # per-item loops of a bulk commit: fields by name on the dict (see relink_versions)
    before = {i["id"]: (i["properties"][Field.VALID_TO], i["links"]) for i in existing}
    items = relink_versions(existing + new_items, cid)
    for item in items:  # policy is per layer: every version follows the layer
        item["properties"][Field.CLASSIFICATION] = classification
    reclassified = was is not None and was.classification != classification
    changed = [
        i
        for i in items
        if i["id"] not in before
        or reclassified
        or before[i["id"]] != (i["properties"][Field.VALID_TO], i["links"])
    ]
    collection = collection_dict(
        collection_id=cid,
        department=req.department,
        department_name=departments()[req.department]["name"],
        layer=req.layer,
        kind=kind,
        classification=classification,
        title=req.title or old.get("title") or req.layer,
        title_en=req.title_en or (was and was.title_en),
        description=req.description or old.get("description", ""),
        keywords=list(req.keywords) or old.get("keywords", []),
        items=items,
        extra={
            Field.EDITABLE: bool(req.editable if req.editable is not None else was and was.editable)
        },
    )
    return collection, changed


def _collection_text(collection: dict[str, Any]) -> str:
    """Search tokens of a layer: its items are found by them too."""
    shikong = ShikongExtension.ext(collection)
    dept = shikong.department
    parts = (
        collection.get("title"),
        shikong.title_en,
        collection.get("description"),
        " ".join(collection.get("keywords", [])),
        dept,
        departments()[dept]["name"],
    )
    return index_text(" ".join(str(p) for p in parts if p))


def _footprint(item: dict[str, Any]) -> bytes | None:
    """The geometry as GeoJSON for intersects, or None when it is just its bbox (most
    layer footprints are): the index keeps the bbox anyway."""
    geometry, bbox = item.get("geometry"), item.get("bbox")
    if not geometry:
        return None
    if bbox and len(bbox) == 4 and geometry["type"] == "Polygon":
        rings = geometry["coordinates"]
        if len(rings) == 1 and len(rings[0]) == 5:
            a, b, c, d, e = rings[0]
            x0, y0, x1, y1 = bbox
            # the bbox's four corners, closed, with a and c opposite (not a bow tie)
            if (
                a == e
                and a[0] != c[0]
                and a[1] != c[1]
                and {tuple(a), tuple(b), tuple(c), tuple(d)}
                == {(x0, y0), (x1, y0), (x1, y1), (x0, y1)}
            ):
                return None
    return orjson.dumps(geometry)


@functools.lru_cache(maxsize=1 << 14)
def _epoch(when: str) -> float:
    """Seconds since 1970 of an RFC 3339 time; a version's end is the next one's start,
    so a bulk commit reads most times twice."""
    return parse_when(when).timestamp()


def _row(item: dict[str, Any]) -> ItemRow:
    props = item["properties"]  # once per item of a bulk commit: fields by name (Field)
    dept = props[Field.DEPARTMENT]
    text = index_text(f"{item['id']} {props.get('title') or ''}")
    to = props.get(Field.VALID_TO)
    bbox = item.get("bbox")
    return ItemRow(
        id=item["id"],
        collection=item["collection"],
        department=dept,
        kind=props[Field.KIND],
        classification=props[Field.CLASSIFICATION],
        version=props["version"],
        valid_from=_epoch(props[Field.VALID_FROM]),
        valid_to=_epoch(to) if to else None,
        bbox=bbox,
        footprint=_footprint(item),
        text=text,
        source_checksum=(props.get(Field.SOURCE) or {}).get("checksum"),
        json=orjson.dumps(item),
        cell=item_key(bbox) if bbox else None,
    )
