"""shikong.catalog: the departments' STAC catalog, its assets, search and versions.

Names are loaded on first use, so that importing one light module of the package
(``shikong.catalog.storage`` for the data-directory layout, say) does not import the
catalog and geopandas with it (``shikong audit verify`` starts in a tenth of a second).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "Catalog": "catalog",
    "CatalogStore": "store",
    "Department": "departments",
    "IngestRequest": "ingest",
    "IngestResult": "ingest",
    "Layer": "layer",
    "LayerNotFound": "layer",
    "LayerVersion": "layer",
    "SearchResult": "search",
}

__all__ = [
    "Catalog",
    "CatalogStore",
    "Department",
    "IngestRequest",
    "IngestResult",
    "Layer",
    "LayerNotFound",
    "LayerVersion",
    "SearchResult",
]

if TYPE_CHECKING:
    from .catalog import Catalog
    from .departments import Department
    from .ingest import IngestRequest, IngestResult
    from .layer import Layer, LayerNotFound, LayerVersion
    from .search import SearchResult
    from .store import CatalogStore


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'shikong.catalog' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value
