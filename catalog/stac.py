"""STAC 1.1 JSON for departments, layers (collections) and layer versions (items).

Built as plain dicts (fast, and exactly what is written), read back with pystac where
analysts want objects. Every object validates against the STAC 1.1 core schemas and the
shikong extension (see :mod:`shikong.catalog.extension`).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from shikong.spatial.temporal import rfc3339

from .extension import (
    FILE_URI,
    PROJECTION_URI,
    SCHEMA_URI,
    STAC_VERSION,
    TABLE_URI,
    VERSION_URI,
    Field,
    ShikongExtension,
)

RASTER_PROJ_FIELDS = ("proj:code", "proj:shape", "proj:transform", "proj:bbox", "proj:wkt2")

PLATFORM_TITLE = "时空信息云平台 shikong"


def rel(target: Path, start_dir: Path) -> str:
    """A relative href from a JSON file's folder, so the catalog can move as a whole."""
    return os.path.relpath(target, start_dir).replace(os.sep, "/")


def item_dict(
    *,
    item_id: str,
    collection_id: str,
    department: str,
    layer: str,
    kind: str,
    classification: str,
    version: str,
    valid_from: datetime,
    title: str,
    geometry: BaseGeometry | None,
    assets: dict[str, dict[str, Any]],
    properties: dict[str, Any],
    source: dict[str, Any] | None,
    created: datetime,
) -> dict[str, Any]:
    """An item describing one version of a layer (validity is set by :func:`relink_versions`)."""
    bbox = list(geometry.bounds) if geometry is not None else None
    extensions = [SCHEMA_URI, VERSION_URI, PROJECTION_URI, FILE_URI]
    if "table:columns" in properties:
        extensions.append(TABLE_URI)
    props = {
        "title": title,
        "datetime": rfc3339(valid_from),
        "created": rfc3339(created),
        "updated": rfc3339(created),
        "version": version,
        "deprecated": False,
        Field.DEPARTMENT: department,
        Field.CLASSIFICATION: classification,
        Field.KIND: kind,
        Field.LAYER: layer,
        Field.VALID_FROM: rfc3339(valid_from),
        Field.VALID_TO: None,
        **{k: v for k, v in properties.items() if v is not None},
    }
    if source is not None:
        ShikongExtension.ext(props).source = source
    assets = {name: _with_projection(asset, props) for name, asset in assets.items()}
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": extensions,
        "id": item_id,
        "geometry": mapping(geometry) if geometry is not None else None,
        "properties": props,
        "links": [],
        "assets": assets,
        "collection": collection_id,
    }
    if bbox is not None:
        item["bbox"] = bbox
    return item


def _with_projection(asset: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    """A GeoTIFF asset carries its own grid (``proj:*``), as raster readers look for it
    there first: GDAL's STACIT driver and odc-stac open a collection from a search."""
    if not str(asset.get("type", "")).startswith("image/tiff") or "proj:shape" not in props:
        return asset
    fields = {k: props[k] for k in RASTER_PROJ_FIELDS if k in props}
    code = props.get("proj:code")
    fields["proj:epsg"] = (
        int(code.split(":")[1]) if isinstance(code, str) and code.startswith("EPSG:") else None
    )  # null tells GDAL 3.6 to read proj:wkt2
    return {**asset, **fields}


def relink_versions(items: list[dict[str, Any]], collection_id: str) -> list[dict[str, Any]]:
    """Close each version's validity at the next one's start and link the version chain.

    A version is valid from its own start to the start of the next version (by validity,
    not by ingest order); the last stays open. STAC wants start/end for a closed interval
    and a single datetime for an open one, so both forms are written accordingly.
    """
    # a bulk commit's per-item loop: fields by name (Field) on the dict, as the accessor
    # object would cost a bulk commit ~1.5 us an item (see ShikongExtension)
    items = sorted(items, key=lambda i: (i["properties"][Field.VALID_FROM], i["id"]))
    latest = items[-1]["id"] if items else None
    for pos, item in enumerate(items):
        props = item["properties"]
        start = props[Field.VALID_FROM]
        nxt = items[pos + 1] if pos + 1 < len(items) else None
        end = nxt["properties"][Field.VALID_FROM] if nxt else None
        props[Field.VALID_TO] = end
        props["deprecated"] = nxt is not None
        for key in ("start_datetime", "end_datetime"):
            props.pop(key, None)
        if end is None:
            props["datetime"] = start
        else:
            props.update(datetime=None, start_datetime=start, end_datetime=end)
        links = [
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "root", "href": "../../../catalog.json", "type": "application/json"},
            {"rel": "latest-version", "href": f"./{latest}.json", "type": "application/geo+json"},
        ]
        if pos > 0:
            links.append(
                {
                    "rel": "predecessor-version",
                    "href": f"./{items[pos - 1]['id']}.json",
                    "type": "application/geo+json",
                }
            )
        if nxt is not None:
            links.append(
                {
                    "rel": "successor-version",
                    "href": f"./{nxt['id']}.json",
                    "type": "application/geo+json",
                }
            )
        for parent in props.get(Field.DERIVED_FROM, []):  # lineage of computed layers
            dept, layer_name = parent.split("-", 1)[0], parent.rsplit("-v", 1)[0].split("-", 1)[1]
            links.append(
                {
                    "rel": "derived_from",
                    "type": "application/geo+json",
                    "href": f"../../../{dept}/{layer_name}/items/{parent}.json",
                }
            )
        source = props.get(Field.SOURCE)
        if source:
            links.append(
                {
                    "rel": "via",
                    "href": Path(source["path"]).resolve().as_uri(),
                    "title": "source delivered by the department",
                }
            )
        item["links"] = links
        item["collection"] = collection_id
    return items


def collection_dict(
    *,
    collection_id: str,
    department: str,
    department_name: str,
    layer: str,
    kind: str,
    classification: str,
    title: str,
    title_en: str | None,
    description: str,
    keywords: list[str],
    items: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A collection for a layer: its extent covers every version."""
    boxes = [i["bbox"] for i in items if i.get("bbox")]
    bbox = (
        [
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        ]
        if boxes
        else [-180.0, -90.0, 180.0, 90.0]
    )
    starts = [i["properties"][Field.VALID_FROM] for i in items]  # per item: by name
    ends = [i["properties"][Field.VALID_TO] for i in items]
    interval = [min(starts) if starts else None, None if (not ends or None in ends) else max(ends)]
    links = [
        {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
    ] + [
        {
            "rel": "item",
            "href": f"./items/{i['id']}.json",
            "type": "application/geo+json",
            "title": f"{title} {i['properties']['version']}",
        }
        for i in items
    ]
    collection = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [SCHEMA_URI],
        "id": collection_id,
        "title": title,
        "description": description or title,
        "keywords": keywords,
        "license": "other",
        "providers": [{"name": department_name, "roles": ["producer", "licensor", "host"]}],
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}},
        "links": links,
        Field.DEPARTMENT: department,
        Field.CLASSIFICATION: classification,
        Field.KIND: kind,
        Field.LAYER: layer,
        "summaries": {"version": [i["properties"]["version"] for i in items]},
        **(extra or {}),
    }
    if title_en:
        ShikongExtension.ext(collection).title_en = title_en
    return collection


def department_catalog(code: str, name: str, name_en: str, layers: list[str]) -> dict[str, Any]:
    """The catalog of one department: one child per layer."""
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "stac_extensions": [SCHEMA_URI],
        "id": code,
        "title": name,
        "description": f"{name} ({name_en})",
        Field.DEPARTMENT: code,
        "links": [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        ]
        + [
            {"rel": "child", "href": f"./{layer}/collection.json", "type": "application/json"}
            for layer in layers
        ],
    }


def root_catalog(departments: list[tuple[str, str]], version: int) -> dict[str, Any]:
    """The platform's root catalog: one child per department."""
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "stac_extensions": [SCHEMA_URI],
        "id": "shikong",
        "title": PLATFORM_TITLE,
        "description": "各部门共享的时空数据目录 / the departments' shared spatio-temporal catalog",
        Field.CATALOG_VERSION: version,
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
        + [
            {
                "rel": "child",
                "href": f"./{code}/catalog.json",
                "type": "application/json",
                "title": name,
            }
            for code, name in departments
        ],
    }
