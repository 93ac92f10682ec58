"""shikong.catalog: the departments' STAC catalog, its assets, search and versions."""

from .catalog import Catalog, Department, LayerNotFound
from .ingest import IngestRequest, IngestResult
from .layer import Layer, LayerVersion
from .search import SearchResult

__all__ = [
    "Catalog",
    "Department",
    "IngestRequest",
    "IngestResult",
    "Layer",
    "LayerNotFound",
    "LayerVersion",
    "SearchResult",
]
