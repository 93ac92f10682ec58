"""Mine remediation on the demo city: loss in active mines, recovery in the remediated one,
and a derived NDVI-change layer that links to its inputs."""

from __future__ import annotations

import json
import shutil

import pytest
from shikong.catalog import Catalog
from shikong.catalog.extension import validation_errors
from shikong.catalog.remediation import mine_remediation_assessment


@pytest.fixture(scope="module")
def assessed(demo_data, tmp_path_factory):
    data = tmp_path_factory.mktemp("remediation") / "data"
    shutil.copytree(demo_data, data)
    cat = Catalog.open(data)
    return cat, mine_remediation_assessment(cat)


def test_vegetation_falls_in_active_mines_and_recovers_in_the_closed_one(assessed):
    _, report = assessed
    mines = {m["name"]: m for m in report["mines"]}
    closed = [m for m in mines.values() if m["status"] == "注销"]
    active = [m for m in mines.values() if m["status"] == "有效" and m["pixels"] > 0]
    assert closed and closed[0]["ndvi_change"] > 0.05
    assert closed[0]["recovered_ha"] > 0
    assert active and all(m["ndvi_change"] < 0 for m in active)
    assert sum(m["disturbed_ha"] for m in active) > 0
    for m in mines.values():
        if m["pixels"]:
            assert m["ndvi_after"] - m["ndvi_before"] == pytest.approx(m["ndvi_change"], abs=1e-4)


def test_the_change_layer_is_derived_from_both_dates(assessed):
    cat, report = assessed
    item = cat.search(ids=[report["derived"]]).items[0]
    assert item["properties"]["shikong:derived_from"] == [report["before"], report["after"]]
    links = [link for link in item["links"] if link["rel"] == "derived_from"]
    folder = cat.paths.item_json("nrp", "ndvi_change", item["id"]).parent
    for link in links:
        parent = json.loads((folder / link["href"]).read_text())
        assert parent["id"] in (report["before"], report["after"])
    assert validation_errors(item) == []


def test_raster_versions_stack_on_time(assessed):
    cat, _ = assessed
    stack = cat["nrp-rs_mining"].stack()
    assert stack.dims[0] == "time" and stack.sizes["time"] == 2
    assert [str(t)[:4] for t in stack.time.values] == ["2019", "2024"]
    first = cat["nrp-rs_mining"].versions[0].to_xarray()
    assert float(stack.isel(time=0).sum()) == float(first.sum())
