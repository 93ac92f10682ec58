"""The catalog as analysts use it: ``Catalog.open(path)`` and everything reachable from it.

A thin facade: the catalog's storage is a :class:`~shikong.catalog.store.CatalogStore`
(SQLite in a data directory here), the readings an
:class:`~shikong.catalog.observation_store.ReadingStore` (SQLite files beside the index, or
PostgreSQL beside a PostgreSQL catalog). Ingest, layers and the live path
take the store itself; this class gives analysts one object to start from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import date
from html import escape
from pathlib import Path
from typing import Any

from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from .departments import Department, departments
from .extension import ShikongExtension
from .ingest import IngestRequest, IngestResult, ingest
from .layer import Layer, find_layer
from .observation_store import ReadingStore
from .search import SearchResult, parse_interval
from .sqlite_store import SqliteCatalogStore
from .storage import DataDir, default_data_dir
from .store import CatalogStore, LayerBatch, Query
from .stores import configured_store, observation_store


def open_store(
    data_dir: str | Path, database: str | None = None, schema: str | None = None
) -> CatalogStore:
    """The catalog store of a data directory, as configured: PostgreSQL when ``database``
    or ``$SHIKONG_DATABASE`` names it (see :mod:`.stores`), else SQLite in the directory."""
    store = configured_store(data_dir, database, schema)
    return store if store is not None else SqliteCatalogStore(DataDir(Path(data_dir)))


class Catalog:
    """A data directory's catalog: departments → layers (collections) → versions (items).

    ``Catalog(store)`` over any :class:`CatalogStore`; ``Catalog(path)`` is the store
    configured for that data directory (:func:`open_store`: SQLite in it unless
    ``$SHIKONG_DATABASE`` names PostgreSQL), without :meth:`open`'s recovery of an
    interrupted export: tools that only read use it.
    """

    def __init__(self, store: CatalogStore | str | Path) -> None:
        if not isinstance(store, CatalogStore):
            store = open_store(Path(store))
        self.store = store
        self._observations: ReadingStore | None = None

    @classmethod
    def open(cls, path: str | Path | None = None, database: str | None = None) -> Catalog:
        """Open (or create) the catalog in a data directory; default ``$SHIKONG_DATA``.

        ``database``: a PostgreSQL DSN for the catalog store (default
        ``$SHIKONG_DATABASE``; unset: SQLite in the data directory).
        """
        root = Path(path) if path is not None else default_data_dir()
        catalog = cls(open_store(root, database))
        catalog.store.finish_interrupted_export()
        return catalog

    def __repr__(self) -> str:
        return (
            f"Catalog({str(self.paths.root)!r}, version {self.version}, "
            f"{len(self.departments)} departments, {len(self.store.collections())} layers)"
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
    def paths(self) -> DataDir:
        return self.store.paths

    @property
    def version(self) -> int:
        """Increases with every committed change; servers poll it to publish live."""
        return self.store.version()

    @property
    def observations(self) -> ReadingStore:
        if self._observations is None:  # beside the catalog: SQLite here, or PostgreSQL
            self._observations = observation_store(self.store)
        return self._observations

    def _observation_store(self) -> ReadingStore:
        return self.observations

    # -- reading ---------------------------------------------------------------------
    @property
    def departments(self) -> list[Department]:
        known = departments()
        counts: dict[str, int] = {}
        for c in self.store.collections():
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
            Layer(self.store, c, self._observation_store)
            for c in self.store.collections(department)
            if kind is None or ShikongExtension.ext(c).kind == kind
        ]

    def layer(self, collection_id: str) -> Layer:
        return find_layer(self.store, collection_id, self._observation_store)

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
        filter: Any = None,
        sortby: Sequence[tuple[str, bool]] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> SearchResult:
        """Items (layer versions) matching every given constraint.

        ``datetime`` is a date, an instant or an interval ``"2020-01-01/2021-12-31"``
        (open ends as ``..``); an item matches if its validity overlaps it. ``filter`` is
        a CQL2 filter on the items' properties, ``id`` and ``collection``: a CQL2-JSON
        dict or a pygeofilter AST (semantics: :mod:`.item_filter`).
        """
        if isinstance(intersects, dict):
            intersects = shape(intersects)
        if isinstance(filter, dict):
            filter = parse_cql2_json(filter)
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
            filter=filter,
            sortby=list(sortby),
            limit=limit,
            offset=offset,
        )
        items, matched = self.store.search(query)
        return SearchResult(items, matched)

    # -- writing ---------------------------------------------------------------------
    def ingest(self, source: str | Path, *, department: str, layer: str, **kwargs) -> IngestResult:
        """Ingest a department's source as a new version of a layer (see IngestRequest)."""
        return ingest(
            self.store, self.observations, IngestRequest(Path(source), department, layer, **kwargs)
        )

    def writing(self, export: bool = True) -> contextlib.AbstractContextManager[None]:
        """Hold the data directory's writer lock; export the STAC JSON on the way out.

        ``export=False`` leaves the JSON mirror to a later :meth:`export` (bulk loads):
        the index commit is what makes a change visible to search and to the server.
        """
        return self.store.writing(export)

    def commit_many(
        self,
        batches: list[tuple[IngestRequest, str, list[dict[str, Any]], bool]],
        export: bool = True,
    ) -> int:
        """Add items to layers in ONE transaction and bump the catalog version once.

        Each batch is (request, kind, new items, replace); with replace, items of the same
        id are replaced (a live readings item), else they are added as new versions.
        """
        return self.store.commit(
            [LayerBatch(req.target, kind, items, replace) for req, kind, items, replace in batches],
            export,
        )

    def export(self) -> None:
        """Write the STAC JSON of everything committed since the last export."""
        self.store.export()
