"""The catalog as one caller may see it: collections outside the view are absent.

Processes, analyses and STAC search take a catalog and look layers up by id; given a
view, a hidden layer raises :class:`LayerNotFound` exactly as a missing one does, so the
answer cannot depend on data the caller may not read (and does not reveal that it exists).

A view wraps a :class:`Catalog` (it is not one) and offers its read API: ``collections``,
``layer`` / ``[id]``, ``search``, ``departments``, ``version``, ``paths`` and
``observations``. Layers it returns read their own versions and readings as usual.

What a view may write: one thing, a *derived* layer through :meth:`CatalogView.ingest`
(the mine-remediation process writes its NDVI-change raster back this way). The new
version must name the versions it was computed from (``derived_from``), each of them
in a collection the view may write and of the department it is written into, and the
target collection must be new or writable too. Every other write operation of
:class:`Catalog` (``writing``, ``commit_many``, ``export``) and its raw ``store`` are
refused with :class:`WriteRefused`: through them a caller would see or change
collections outside the view.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from shikong.spatial.errors import InputError

from .catalog import Catalog
from .departments import Department
from .ingest import IngestResult
from .layer import Layer, LayerNotFound
from .observations import ObservationStore
from .search import SearchResult
from .storage import DataDir

# Catalog attributes a view refuses, and why (the error names the reason).
_REFUSED = {
    "writing": "the writer lock",
    "commit_many": "a raw commit",
    "export": "the STAC export",
    "store": "the raw store (it holds hidden collections)",
}


class WriteRefused(InputError):
    """A write a catalog view may not make; the message says what a view may write."""


class CatalogView:
    """A catalog restricted to the collections ``visible`` (of them, ``writable`` may be
    written as the sources of a derived layer: see the module docstring)."""

    def __init__(
        self, catalog: Catalog, visible: Iterable[str], writable: Iterable[str] = ()
    ) -> None:
        self._catalog = catalog
        self.visible = frozenset(visible)
        self.writable = frozenset(writable) & self.visible

    def __repr__(self) -> str:
        return f"CatalogView({self.paths.root}, {len(self.visible)} collections)"

    def __getattr__(self, name: str) -> Any:
        if name in _REFUSED:
            raise WriteRefused(
                "catalog view",
                f"{name}: a view does not give {_REFUSED[name]}; it writes only derived "
                "layers, through ingest(..., derived_from=[...])",
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- reading ---------------------------------------------------------------------
    @property
    def paths(self) -> DataDir:
        return self._catalog.paths

    @property
    def version(self) -> int:
        """The catalog's version: it counts every commit, visible or not."""
        return self._catalog.version

    @property
    def observations(self) -> ObservationStore:
        return self._catalog.observations

    @property
    def departments(self) -> list[Department]:
        """Departments with at least one visible layer, counting only those."""
        counts: dict[str, int] = {}
        for layer in self.collections():
            counts[layer.department] = counts.get(layer.department, 0) + 1
        return [
            Department(d.code, d.name, d.name_en, counts[d.code])
            for d in self._catalog.departments
            if d.code in counts
        ]

    def collections(self, department: str | None = None, kind: str | None = None) -> list[Layer]:
        return [
            layer
            for layer in self._catalog.collections(department, kind)
            if layer.id in self.visible
        ]

    def layer(self, collection_id: str) -> Layer:
        if collection_id not in self.visible:
            raise LayerNotFound("collection", f"no layer {collection_id!r} in the catalog")
        return self._catalog.layer(collection_id)

    __getitem__ = layer

    def search(self, *, collections: Any = None, **kwargs: Any) -> SearchResult:
        wanted = self.visible if collections is None else self.visible & set(collections)
        if not wanted:
            return SearchResult([], 0)
        return self._catalog.search(collections=sorted(wanted), **kwargs)

    # -- writing: derived layers only ---------------------------------------------------
    def ingest(
        self,
        source: str | Path,
        *,
        department: str,
        layer: str,
        derived_from: Sequence[str] = (),
        **kwargs: Any,
    ) -> IngestResult:
        """Ingest a layer derived from versions in writable collections (module docstring)."""
        target = f"{department}-{layer}"
        if not derived_from:
            raise WriteRefused(
                target, "a catalog view ingests only derived layers: derived_from is empty"
            )
        found = {i["id"]: i["collection"] for i in self.search(ids=list(derived_from)).items}
        for item_id in derived_from:
            collection = found.get(item_id)
            if collection is None:
                raise WriteRefused(target, f"derived_from {item_id!r}: no such visible version")
            if collection not in self.writable or self.layer(collection).department != department:
                raise WriteRefused(
                    target,
                    f"derived_from {item_id!r}: its collection {collection!r} is not one this "
                    f"view may write in department {department!r}",
                )
        if target not in self.writable and self._exists(target):
            raise WriteRefused(target, "this view may not write that collection")
        return self._catalog.ingest(
            source, department=department, layer=layer, derived_from=list(derived_from), **kwargs
        )

    def _exists(self, collection_id: str) -> bool:
        try:
            self._catalog.layer(collection_id)
        except LayerNotFound:
            return False
        return True
