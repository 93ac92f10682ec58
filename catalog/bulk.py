"""Ingest a manifest of department sources (the demo city, or a city's own delivery list)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .ingest import IngestResult


@dataclass
class ManifestEntry:
    """One delivered file and where it belongs in the catalog (manifest.json row)."""

    path: str
    department: str
    layer: str
    title: str
    classification: str
    kind: str
    version: str
    valid_from: str
    title_en: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    keywords: list[str] = field(default_factory=list)
    description: str = ""
    sensor_layer: str | None = None

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> ManifestEntry:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in row.items() if k in known})


def read_manifest(path: Path) -> list[ManifestEntry]:
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    return [ManifestEntry.from_dict(r) for r in rows]


def ingest_entries(
    catalog: Catalog,
    base: Path,
    entries: Iterable[ManifestEntry],
    progress: Callable[[ManifestEntry, IngestResult], None] | None = None,
) -> list[IngestResult]:
    """Ingest entries in order (versions by validity, readings after their sensors).

    The STAC JSON mirror is written once at the end rather than after every layer.
    """
    results = []
    with catalog.writing():
        for entry in entries:
            kind = entry.kind if entry.kind != "readings" else None
            result = catalog.ingest(
                base / entry.path,
                department=entry.department,
                layer=entry.layer,
                classification=entry.classification,
                kind=kind,
                version=entry.version if entry.kind != "readings" else None,
                valid_from=entry.valid_from,
                title=entry.title,
                title_en=entry.title_en,
                description=entry.description,
                keywords=list(entry.keywords),
                options=dict(entry.options),
                sensor_layer=entry.sensor_layer,
            )
            results.append(result)
            if progress is not None:
                progress(entry, result)
    return results
