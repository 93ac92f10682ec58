"""CatalogView wraps a Catalog: it reads only visible collections, counts departments by
them, and writes nothing but a layer derived from collections it may write."""

from __future__ import annotations

import json

import pytest
from shikong.catalog import Catalog, LayerNotFound
from shikong.catalog.view import CatalogView, WriteRefused

SQUARE = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "a"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[113.0, 23.0], [113.01, 23.0], [113.01, 23.01], [113.0, 23.0]]],
            },
        }
    ],
}
LAYERS = ("nrp-a", "nrp-b", "wat-c")


@pytest.fixture
def catalog(tmp_path):
    """Three one-feature layers: two of nrp, one of wat."""
    source = tmp_path / "square.geojson"
    source.write_text(json.dumps(SQUARE))
    cat = Catalog.open(tmp_path / "data")
    for cid in LAYERS:
        department, layer = cid.split("-")
        cat.ingest(source, department=department, layer=layer, valid_from="2020-01-01")
    cat.source = source  # the file a test ingests again
    return cat


def counts(departments) -> dict[str, int]:
    return {d.code: d.layers for d in departments}


def test_departments_is_a_property_counting_only_visible_layers(catalog):
    assert counts(catalog.departments) == {"nrp": 2, "wat": 1}
    assert counts(CatalogView(catalog, ["nrp-a", "wat-c"]).departments) == {"nrp": 1, "wat": 1}
    assert counts(CatalogView(catalog, ["nrp-b"]).departments) == {"nrp": 1}
    assert CatalogView(catalog, []).departments == []
    named = {d.code: d.name for d in catalog.departments}
    assert {d.code: d.name for d in CatalogView(catalog, LAYERS).departments} == named


def test_hidden_layers_are_absent_from_every_read(catalog):
    view = CatalogView(catalog, ["nrp-a", "wat-c"])
    assert not isinstance(view, Catalog)  # composition: no Catalog method leaks through
    assert [layer.id for layer in view.collections()] == ["nrp-a", "wat-c"]
    assert [layer.id for layer in view.collections(department="nrp")] == ["nrp-a"]
    assert view.layer("nrp-a").current.id == "nrp-a-v1"
    assert view["wat-c"].id == "wat-c"
    for hidden in ("nrp-b", "nowhere-x"):
        with pytest.raises(LayerNotFound, match="no layer"):
            view.layer(hidden)
    assert sorted(i["id"] for i in view.search().items) == ["nrp-a-v1", "wat-c-v1"]
    assert view.search(collections=["nrp-b"]).matched == 0
    assert [i["id"] for i in view.search(ids=["nrp-b-v1", "nrp-a-v1"]).items] == ["nrp-a-v1"]
    assert view.version == catalog.version and view.paths.root == catalog.paths.root


def test_ingest_through_a_view_is_refused_unless_derived_from_writable_sources(catalog):
    view = CatalogView(catalog, ["nrp-a", "nrp-b", "wat-c"], writable=["nrp-a", "wat-c"])
    version = catalog.version
    refused = [
        ({}, "derived_from is empty"),  # a plain ingest
        ({"derived_from": ["nrp-b-v1"]}, "not one this view may write"),  # read-only source
        ({"derived_from": ["wat-c-v1"]}, "not one this view may write"),  # other department
        ({"derived_from": ["nrp-x-v9"]}, "no such visible version"),
    ]
    for kwargs, reason in refused:
        with pytest.raises(WriteRefused, match=reason):
            view.ingest(catalog.source, department="nrp", layer="derived", **kwargs)
    with pytest.raises(WriteRefused, match="may not write that collection"):
        view.ingest(catalog.source, department="nrp", layer="b", derived_from=["nrp-a-v1"])
    assert catalog.version == version
    assert [layer.id for layer in catalog.collections()] == list(LAYERS)

    result = view.ingest(
        catalog.source, department="nrp", layer="derived", derived_from=["nrp-a-v1"]
    )
    assert result.collection_id == "nrp-derived" and catalog.version == version + 1
    item = catalog.search(ids=[result.item_id]).items[0]
    assert item["properties"]["shikong:derived_from"] == ["nrp-a-v1"]


@pytest.mark.parametrize("name", ["writing", "commit_many", "export", "store"])
def test_the_catalogs_other_write_operations_are_refused(catalog, name):
    view = CatalogView(catalog, LAYERS, writable=LAYERS)
    with pytest.raises(WriteRefused, match=f"{name}: a view does not give"):
        getattr(view, name)
    with pytest.raises(AttributeError):
        view.no_such_thing  # noqa: B018
