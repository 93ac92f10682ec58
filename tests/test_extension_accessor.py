"""The shikong STAC extension accessor (issue 18, item 4): typed reads and writes of our
``shikong:*`` fields on pystac objects and on the plain dicts the catalog passes around,
checked against the raw JSON the catalog wrote; and no module outside the accessor spells
a ``shikong:`` field name."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path

import pystac
import pytest
from shikong.catalog.extension import (
    DEFAULT_ID_FIELD,
    SCHEMA_URI,
    Field,
    ShikongExtension,
)

ROOT = Path(__file__).resolve().parents[1]


def _item() -> dict:
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [SCHEMA_URI],
        "id": "nrp-roads-v1",
        "geometry": None,
        "properties": {
            "datetime": "2021-03-04T05:06:07Z",
            "shikong:department": "nrp",
            "shikong:classification": "shared",
            "shikong:kind": "vector",
            "shikong:layer": "roads",
            "shikong:valid_from": "2021-03-04T05:06:07Z",
            "shikong:valid_to": None,
            "shikong:source": {"path": "/x/roads.shp", "checksum": "abc"},
        },
        "links": [],
        "assets": {},
    }


def test_item_dict_fields_are_typed():
    item = _item()
    ext = ShikongExtension.ext(item)
    assert (ext.department, ext.classification, ext.kind, ext.layer) == (
        "nrp",
        "shared",
        "vector",
        "roads",
    )
    assert ext.valid_from == datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert ext.valid_from_iso == "2021-03-04T05:06:07Z"
    assert ext.valid_to is None and ext.valid_to_iso is None
    assert ext.source["checksum"] == "abc"
    # absent fields: None, or their defaults
    assert ext.title_en is None and ext.derived_from is None and ext.last_reading is None
    assert ext.id_field == DEFAULT_ID_FIELD == "fid"
    assert ext.editable is False
    # the fields every stored layer and version has: absent, the document is broken
    del item["properties"]["shikong:valid_from"], item["properties"]["shikong:kind"]
    for name in ("valid_from", "valid_from_iso", "kind"):
        with pytest.raises(KeyError):
            getattr(ext, name)


def test_setters_write_the_stored_form_in_place():
    item = _item()
    ext = ShikongExtension.ext(item)
    ext.valid_to = datetime(2022, 1, 1, 8, tzinfo=UTC)
    ext.classification = "restricted"
    ext.id_field = "parcel_id"
    ext.editable = 1
    ext.derived_from = ["nrp-roads-v0"]
    props = item["properties"]
    assert props["shikong:valid_to"] == "2022-01-01T08:00:00Z"
    assert props["shikong:classification"] == "restricted"
    assert props["shikong:id_field"] == "parcel_id"
    assert props["shikong:editable"] is True
    assert props["shikong:derived_from"] == ["nrp-roads-v0"]
    ext.valid_to = None
    assert props["shikong:valid_to"] is None
    ext.valid_to_iso = "2023-05-06T00:00:00Z"
    assert ext.valid_to == datetime(2023, 5, 6, tzinfo=UTC)


def test_collections_assets_coverages_and_properties_hold_fields_top_level():
    collection = {"type": "Collection", "shikong:department": "wat", "shikong:title_en": "Rivers"}
    assert ShikongExtension.ext(collection).department == "wat"
    assert ShikongExtension.ext(collection).title_en == "Rivers"
    asset = {"href": "x.sqlite", "type": "application/vnd.sqlite3", "shikong:store_layer": "s"}
    assert ShikongExtension.ext(asset).store_layer == "s"
    coverage = {"type": "Coverage", "shikong:sensor": "G1"}
    assert ShikongExtension.ext(coverage).sensor == "G1"
    props: dict = {}
    ShikongExtension.ext(props).sensor_collection = "wat-gauges"
    assert props == {"shikong:sensor_collection": "wat-gauges"}
    root = {"type": "Catalog", "shikong:catalog_version": 7}
    assert ShikongExtension.ext(root).catalog_version == 7


def test_pystac_objects():
    item = pystac.Item.from_dict(_item())
    ext = ShikongExtension.ext(item)
    assert ext.layer == "roads" and ext.valid_from.year == 2021
    ext.reading_count = 12
    ext.last_reading = datetime(2024, 2, 3, tzinfo=UTC)
    out = item.to_dict()["properties"]
    assert out["shikong:reading_count"] == 12
    assert out["shikong:last_reading"] == "2024-02-03T00:00:00Z"

    extent = pystac.Extent(
        pystac.SpatialExtent([[0, 0, 1, 1]]), pystac.TemporalExtent([[None, None]])
    )
    collection = pystac.Collection("c", "d", extent)
    with pytest.raises(pystac.ExtensionNotImplemented):
        ShikongExtension.ext(collection)
    ShikongExtension.ext(collection, add_if_missing=True).editable = True
    assert ShikongExtension.has_extension(collection)
    assert collection.to_dict()["shikong:editable"] is True

    asset = pystac.Asset("x.sqlite", extra_fields={"shikong:store_layer": "wat-gauges"})
    item.add_asset("data", asset)
    assert ShikongExtension.ext(asset).store_layer == "wat-gauges"
    with pytest.raises(TypeError):
        ShikongExtension.ext(42)


def test_field_names_are_the_schema_fields():
    """Every name the accessor writes is declared by the extension's schema, or is one of
    the fields the schema leaves open (``additionalProperties``) that the code writes."""
    schema = json.loads((ROOT / "catalog/schemas/shikong-v1.0.0.json").read_text())
    declared = set(schema["definitions"]["fields"]["properties"])
    names = {v for k, v in vars(Field).items() if k.isupper()}
    assert all(n.startswith("shikong:") for n in names)
    assert declared - {"shikong:personal_fields"} <= names


def test_demo_catalog_reads_through_the_accessor(demo_data):
    """Every collection and item of the demo city, read through the accessor, gives what
    its JSON file on disk holds (the STAC mirror, written by the catalog)."""
    from shikong.catalog import Catalog

    catalog = Catalog.open(demo_data)
    stac = demo_data / "stac"
    seen = 0
    for layer in catalog.collections():
        on_disk = json.loads(
            catalog.paths.collection_json(layer.department, layer.name).read_text()
        )
        ext = ShikongExtension.ext(layer.collection)
        assert ext.department == on_disk["shikong:department"]
        assert ext.kind == on_disk["shikong:kind"]
        assert ext.classification == on_disk["shikong:classification"]
        assert ext.editable is bool(on_disk.get("shikong:editable"))
        for version in layer.versions:
            raw = json.loads(
                catalog.paths.item_json(layer.department, layer.name, version.id).read_text()
            )["properties"]
            item = ShikongExtension.ext(version.item)
            assert item.layer == raw["shikong:layer"] == layer.name
            assert item.valid_from_iso == raw["shikong:valid_from"]
            assert item.valid_to_iso == raw["shikong:valid_to"]
            assert version.valid_from == item.valid_from
            assert item.id_field == raw.get("shikong:id_field", "fid")
            seen += 1
    assert seen > 10
    root = json.loads((stac / "catalog.json").read_text())
    assert ShikongExtension.ext(root).catalog_version == catalog.version


def _package_dirs() -> list[Path]:
    """Every folder pyproject maps to a shikong package, and the benchmarks."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapped = config["tool"]["setuptools"]["package-dir"].values()
    return sorted({ROOT / d for d in mapped} | {ROOT / "bench"})


def _style_metadata_keys() -> frozenset[str]:
    """Namespaced keys of MapLibre style documents' metadata (not STAC fields)."""
    from shikong.server.maps.styles import STYLE_METADATA_KEYS

    return STYLE_METADATA_KEYS


def _field_names_spelt(path: Path, root: Path = ROOT) -> list[str]:
    """Every string constant of a module that is a ``shikong:`` field name, with its line
    (f-string parts and dictionary keys included; docstrings and comments are not; the
    style documents' metadata keys are declared once, in server/maps/styles.py)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}  # docstrings
    styles = root / "server" / "maps" / "styles.py"
    declared = _style_metadata_keys() if path == styles else frozenset()
    return [
        f"{path.relative_to(root)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and id(node) not in prose
        and isinstance(node.value, str)
        and node.value.startswith("shikong:")
        and node.value not in declared
    ]


def test_no_raw_shikong_field_lookups_outside_the_accessor():
    """Fields are read and written through ShikongExtension (names through Field) only,
    so a field's name, type and default have one home: catalog/extension.py."""
    allowed = {ROOT / "catalog" / "extension.py"}
    found = []
    for folder in _package_dirs():
        for path in sorted(folder.rglob("*.py")):
            if path in allowed or ".venv" in path.parts:
                continue
            found += _field_names_spelt(path)
    assert not found, "raw shikong: field names (use ShikongExtension/Field):\n" + "\n".join(found)


def test_the_scan_sees_a_raw_lookup(tmp_path):
    """The scan above is not vacuous: it finds a subscript, a .get and an f-string part."""
    module = tmp_path / "m.py"
    module.write_text(
        '"""shikong: a docstring is prose."""\n'
        'a = item["properties"]["shikong:kind"]\n'
        'b = c.get("shikong:id_field", "fid")\n'
        "d = f\"{p['shikong:valid_to']}\"\n"
    )
    hits = _field_names_spelt(module, tmp_path)
    assert [h.split(":")[1] for h in hits] == ["2", "3", "4"]
