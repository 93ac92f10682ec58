"""The shikong STAC extension: typed access to its fields and offline validation of
everything we write.

Core STAC 1.1 schemas come bundled with pystac; our extension's schema ships in this
package. Other extensions' schemas live on the web, so offline they are not checked
(their fields are simple and written by code that tests cover).

Code reads and writes our ``shikong:*`` fields only through :class:`ShikongExtension`
(names, where a name itself is needed, through :class:`Field`): tests/test_extension_accessor.py
checks that no other module spells one.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

import pystac
from jsonschema import Draft7Validator
from pystac.validation.local_validator import get_local_schema_cache
from referencing import Registry, Resource
from shikong.spatial.temporal import parse_instant, rfc3339

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


# -- typed access to our fields ----------------------------------------------------------
DEFAULT_ID_FIELD = "fid"
"""The id column of a vector layer that names none: the ingest writes a ``fid`` column
(row numbers) and readers look features up by it. Defined here only."""


class Field:
    """The names of our fields, for code that needs a name, not a value (queryables,
    sort keys, dict literals whose key order is what we write)."""

    DEPARTMENT = "shikong:department"
    CLASSIFICATION = "shikong:classification"
    KIND = "shikong:kind"
    LAYER = "shikong:layer"
    VALID_FROM = "shikong:valid_from"
    VALID_TO = "shikong:valid_to"
    ID_FIELD = "shikong:id_field"
    TITLE_EN = "shikong:title_en"
    SOURCE = "shikong:source"
    EDITABLE = "shikong:editable"
    DERIVED_FROM = "shikong:derived_from"
    VARIABLES = "shikong:variables"
    TIME_RANGE = "shikong:time_range"
    SENSOR = "shikong:sensor"
    SENSOR_COLLECTION = "shikong:sensor_collection"
    STORE_LAYER = "shikong:store_layer"
    READING_COUNT = "shikong:reading_count"
    LAST_READING = "shikong:last_reading"
    CATALOG_VERSION = "shikong:catalog_version"


def _plain(key: str, doc: str, default: Any = None) -> property:
    """A field read as stored (``default`` when absent) and written as given."""

    def get(self: ShikongExtension) -> Any:
        return self.fields.get(key, default)

    def put(self: ShikongExtension, value: Any) -> None:
        self.fields[key] = value

    return property(get, put, doc=doc)


def _required(key: str, doc: str) -> property:
    """A field every stored document of its kind has: absent, it is a KeyError (a broken
    document, which a commit refuses as a whole)."""

    def get(self: ShikongExtension) -> Any:
        return self.fields[key]

    def put(self: ShikongExtension, value: Any) -> None:
        self.fields[key] = value

    return property(get, put, doc=doc)


def _when(key: str, doc: str, required: bool = False) -> property:
    """A time field: an aware UTC datetime (None when null, or absent unless required);
    written from a datetime (or None) as RFC 3339, as STAC wants."""

    def get(self: ShikongExtension) -> datetime | None:
        text = self.fields[key] if required else self.fields.get(key)
        return parse_instant(text) if text else None

    def put(self: ShikongExtension, value: datetime | None) -> None:
        self.fields[key] = rfc3339(value)

    return property(get, put, doc=doc)


class ShikongExtension:
    """Typed access to the ``shikong:*`` fields of a STAC object, in the manner of
    pystac's extensions (``ShikongExtension.ext(obj).department``), for pystac objects and
    for the plain dicts the catalog passes around (faster, and what it writes).

    An item's fields are its ``properties``; a collection's, a catalog's, an asset's or a
    CoverageJSON coverage's are top-level. A dict without ``"type": "Feature"`` is taken
    as the field holder itself, so an item's properties dict works too. Reading an absent
    field gives None (or the field's default), except the fields every layer and version
    has (department, classification, kind, layer, valid_from): KeyError, as the raw
    lookups did. Setters write in place.

    An accessor costs about 0.15-0.3 us to make, more than the dict lookups it wraps: the
    per-item loops of a bulk commit (relink_versions, collection_dict, _relink_layer,
    _row) read by name through :class:`Field` instead, which keeps bench/catalog.py's
    ingest figure where it was.
    """

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    @classmethod
    def ext(cls, obj: Any, add_if_missing: bool = False) -> ShikongExtension:
        """The accessor of ``obj``: a dict (item, collection, catalog, asset, properties)
        or a pystac Item, Collection, Catalog or Asset. A pystac object must declare the
        extension unless ``add_if_missing`` adds it (as pystac's ``ext`` does)."""
        if isinstance(obj, dict):
            return cls(obj["properties"] if obj.get("type") == "Feature" else obj)
        if isinstance(obj, pystac.Asset):
            if obj.owner is not None:
                cls._declared(obj.owner, add_if_missing)
            return cls(obj.extra_fields)
        if isinstance(obj, pystac.Item):
            cls._declared(obj, add_if_missing)
            return cls(obj.properties)
        if isinstance(obj, pystac.Catalog):  # a Collection is a Catalog too
            cls._declared(obj, add_if_missing)
            return cls(obj.extra_fields)
        raise TypeError(f"no shikong fields on a {type(obj).__name__}")

    @staticmethod
    def has_extension(obj: Any) -> bool:
        extensions = obj.get("stac_extensions") if isinstance(obj, dict) else obj.stac_extensions
        return SCHEMA_URI in (extensions or [])

    @staticmethod
    def _declared(obj: pystac.STACObject, add_if_missing: bool) -> None:
        if SCHEMA_URI in obj.stac_extensions:
            return
        if not add_if_missing:
            raise pystac.ExtensionNotImplemented(
                f"{obj.id} does not declare the shikong extension ({SCHEMA_URI})"
            )
        obj.stac_extensions.append(SCHEMA_URI)

    # -- every layer, version and department catalog
    department = _required(Field.DEPARTMENT, "Code of the department that owns the data.")
    classification = _required(Field.CLASSIFICATION, f"Who may read it: {CLASSIFICATIONS}.")
    kind = _required(Field.KIND, f"What the layer holds: {KINDS}.")
    layer = _required(Field.LAYER, "The layer's name within its department.")
    id_field = _plain(Field.ID_FIELD, "The column naming a layer's features.", DEFAULT_ID_FIELD)
    # -- collections
    title_en = _plain(Field.TITLE_EN, "The layer's English title, if given.")
    # -- items (layer versions)
    valid_from = _when(Field.VALID_FROM, "Start of the version's validity.", required=True)
    valid_to = _when(Field.VALID_TO, "End of validity (the next version's start); None if current.")
    valid_from_iso = _required(Field.VALID_FROM, "valid_from as stored (RFC 3339, UTC).")
    valid_to_iso = _plain(Field.VALID_TO, "valid_to as stored (RFC 3339, UTC, or None).")
    source = _plain(Field.SOURCE, "The delivered source: path, checksum, format, encoding, crs.")
    derived_from = _plain(Field.DERIVED_FROM, "Item ids a computed layer was made from.")
    variables = _plain(Field.VARIABLES, "A data cube's variables: dimensions, type, unit.")
    time_range = _plain(Field.TIME_RANGE, "A data cube's first and last time (RFC 3339).")
    sensor_collection = _plain(Field.SENSOR_COLLECTION, "A readings layer's sensors layer.")
    reading_count = _plain(Field.READING_COUNT, "How many readings a readings layer holds.")
    last_reading = _when(Field.LAST_READING, "Time of a readings layer's newest reading.")
    # -- assets and coverages
    store_layer = _plain(Field.STORE_LAYER, "The sensors layer an observation store serves.")
    sensor = _plain(Field.SENSOR, "The sensor id of an EDR coverage.")
    # -- the root catalog
    catalog_version = _plain(Field.CATALOG_VERSION, "The catalog version exported.")

    @property
    def editable(self) -> bool:
        """Whether the layer's features may be edited through the Features API."""
        return bool(self.fields.get(Field.EDITABLE))

    @editable.setter
    def editable(self, value: bool) -> None:
        self.fields[Field.EDITABLE] = bool(value)
