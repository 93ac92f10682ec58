"""The shikong STAC extension and offline validation of everything we write.

Core STAC 1.1 schemas come bundled with pystac; our extension's schema ships in this
package. Other extensions' schemas live on the web, so offline they are not checked
(their fields are simple and written by code that tests cover).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator
from pystac.validation.local_validator import get_local_schema_cache
from referencing import Registry, Resource

SCHEMA_URI = "https://shikong.dev/stac/shikong/v1.0.0/schema.json"
# Projection v1.2: it has both ``proj:code`` (GDAL >= 3.10, odc-stac) and ``proj:epsg``, the
# only CRS field GDAL 3.6's STACIT driver (Debian 12, QGIS 3.22) reads; v2.0 forbids it.
PROJECTION_URI = "https://stac-extensions.github.io/projection/v1.2.0/schema.json"
FILE_URI = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
TABLE_URI = "https://stac-extensions.github.io/table/v1.2.0/schema.json"
VERSION_URI = "https://stac-extensions.github.io/version/v1.2.0/schema.json"

CLASSIFICATIONS = ("public", "shared", "restricted")
KINDS = ("vector", "raster", "sensors", "readings", "datacube")
STAC_VERSION = "1.1.0"
_CORE = "https://schemas.stacspec.org/v1.1.0/{kind}-spec/json-schema/{kind}.json"


@lru_cache(maxsize=1)
def extension_schema() -> dict[str, Any]:
    text = resources.files("shikong.catalog").joinpath("schemas/shikong-v1.0.0.json")
    return json.loads(text.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validators() -> dict[str, Draft7Validator]:
    cache = get_local_schema_cache()
    cache[SCHEMA_URI] = extension_schema()
    registry = Registry().with_resources(
        (uri, Resource.from_contents(schema)) for uri, schema in cache.items()
    )
    validators = {
        kind: Draft7Validator(cache[_CORE.format(kind=kind)], registry=registry)
        for kind in ("item", "collection", "catalog")
    }
    validators["shikong"] = Draft7Validator(extension_schema(), registry=registry)
    return validators


_KIND_OF_TYPE = {"Feature": "item", "Collection": "collection", "Catalog": "catalog"}


def validation_errors(obj: dict[str, Any]) -> list[str]:
    """Messages for every way a STAC object breaks STAC 1.1 core or the shikong extension."""
    kind = _KIND_OF_TYPE.get(obj.get("type", ""))
    if kind is None:
        return [f"unknown STAC type {obj.get('type')!r}"]
    validators = _validators()
    errors = [
        f"{kind}: {e.message} at {list(e.absolute_path)}" for e in validators[kind].iter_errors(obj)
    ]
    if SCHEMA_URI in obj.get("stac_extensions", []):
        errors += [
            f"shikong extension: {e.message} at {list(e.absolute_path)}"
            for e in validators["shikong"].iter_errors(obj)
        ]
    return errors
