"""shikong.catalog: the departments' STAC catalog, its assets, search and versions."""

from .catalog import Catalog
from .departments import Department
from .ingest import IngestRequest, IngestResult
from .layer import Layer, LayerNotFound, LayerVersion
from .search import SearchResult
from .store import CatalogStore

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
