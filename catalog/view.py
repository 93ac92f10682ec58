"""The catalog as one caller may see it: collections outside the view are absent.

Processes and analyses take a catalog and look layers up by id; given a view, a hidden
layer raises :class:`LayerNotFound` exactly as a missing one does, so the answer cannot
depend on data the caller may not read (and does not reveal that it exists).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .catalog import Catalog, Department, LayerNotFound
from .layer import Layer
from .search import SearchResult


class CatalogView(Catalog):
    """A read view of a catalog restricted to a set of collection ids."""

    def __init__(self, catalog: Catalog, visible: Iterable[str]) -> None:
        self.__dict__.update(catalog.__dict__)  # same data directory, index and store
        self.visible = frozenset(visible)

    def __repr__(self) -> str:
        return f"CatalogView({self.paths.root}, {len(self.visible)} collections)"

    def departments(self) -> list[Department]:
        counts: dict[str, int] = {}
        for layer in self.collections():
            counts[layer.department] = counts.get(layer.department, 0) + 1
        return [
            Department(d.code, d.name, d.name_en, counts[d.code])
            for d in super().departments()
            if d.code in counts
        ]

    def collections(self, department: str | None = None, kind: str | None = None) -> list[Layer]:
        return [
            layer for layer in super().collections(department, kind) if layer.id in self.visible
        ]

    def layer(self, collection_id: str) -> Layer:
        if collection_id not in self.visible:
            raise LayerNotFound("collection", f"no layer {collection_id!r} in the catalog")
        return super().layer(collection_id)

    __getitem__ = layer

    def search(self, *, collections: Any = None, **kwargs: Any) -> SearchResult:
        wanted = self.visible if collections is None else self.visible & set(collections)
        if not wanted:
            return SearchResult([], 0)
        return super().search(collections=sorted(wanted), **kwargs)
