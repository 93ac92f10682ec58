"""Collections say what they are (issue 19, item 8): an itemType on every collection,
rasters and readings not offered as feature layers, and a raster that GDAL 3.6's OGCAPI
driver opens as a coverage of its true size, bands and type (checked against the COG)."""

from __future__ import annotations

import json
import subprocess

import httpx
import numpy as np
import pytest
import rasterio
from shikong.catalog import Catalog

OGC = "http://www.opengis.net/def/rel/ogc/1.0"


@pytest.fixture(scope="module")
def kinds(demo_data) -> dict[str, str]:
    return {layer.id: layer.kind for layer in Catalog.open(demo_data).collections()}


def test_every_collection_has_an_item_type_that_fits_its_kind(server, tester_key, kinds):
    expected = {
        "vector": "feature",
        "sensors": "feature",
        "readings": "record",
        "raster": "coverage",
        "datacube": "coverage",
    }
    for headers in ({}, {"X-API-Key": tester_key}):
        listed = httpx.get(f"{server.url}/collections?f=json", headers=headers).json()
        assert listed["collections"]
        for collection in listed["collections"]:
            cid = collection["id"]
            assert "itemType" in collection, cid
            if cid in kinds:
                assert collection["itemType"] == expected[kinds[cid]], cid
            one = httpx.get(f"{server.url}/collections/{cid}?f=json", headers=headers).json()
            assert one["itemType"] == collection["itemType"], cid


def test_rasters_and_readings_are_not_feature_layers(server, kinds):
    listed = httpx.get(f"{server.url}/collections?f=json").json()["collections"]
    by_id = {c["id"]: c for c in listed}
    raster = by_id["nrp-dem"]
    assert not any(link["rel"] == "items" for link in raster["links"])
    readings = [c for cid, c in by_id.items() if kinds.get(cid) == "readings"]
    assert readings
    for collection in readings:
        assert collection["itemType"] == "record"
        # still paged at /items, as records
        items = next(link for link in collection["links"] if link["rel"] == "items")
        assert httpx.get(items["href"], params={"limit": 1}).status_code == 200
    # what a feature client lists (ogctests, QGIS, newer GDAL read itemType)
    features = {c["id"] for c in listed if c["itemType"] == "feature"}
    assert not features & {cid for cid, kind in kinds.items() if kind in ("raster", "readings")}


def test_the_coverage_is_linked_as_geotiff_with_its_grid_and_bands(server, demo_data):
    doc = httpx.get(f"{server.url}/collections/nrp-dem?f=json").json()
    rels = {(link["rel"], link.get("type")) for link in doc["links"]}
    assert (f"{OGC}/coverage", "image/tiff; application=geotiff") in rels
    domain = httpx.get(f"{server.url}/collections/nrp-dem/coverage/domainset").json()
    ranges = httpx.get(f"{server.url}/collections/nrp-dem/coverage/rangetype").json()
    with rasterio.open(Catalog.open(demo_data)["nrp-dem"].current.asset_path) as src:
        lat, lon = domain["generalGrid"]["axis"]
        assert (lon["lowerBound"], lat["upperBound"]) == pytest.approx(
            (src.bounds.left, src.bounds.top)
        )
        assert round((lon["upperBound"] - lon["lowerBound"]) / lon["resolution"]) == src.width
        assert round((lat["upperBound"] - lat["lowerBound"]) / lat["resolution"]) == src.height
        assert len(ranges["field"]) == src.count
    assert httpx.get(f"{server.url}/collections/tra-roads/coverage/domainset").status_code == 404


def _gdal(*args: str, cache=None) -> subprocess.CompletedProcess:
    """A GDAL command line tool; its WMS block cache kept out of the working directory."""
    import os
    import tempfile

    env = {**os.environ, "GDAL_DEFAULT_WMS_CACHE_PATH": cache or tempfile.mkdtemp()}
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)


def test_gdal_ogcapi_opens_the_dem_as_a_coverage_of_its_true_size_and_type(
    server, demo_data, tmp_path
):
    cog = Catalog.open(demo_data)["nrp-dem"].current.asset_path
    with rasterio.open(cog) as src:
        width, height, count = src.width, src.height, src.count
        dtype, truth = src.dtypes[0], src.read(1)
    info = _gdal("gdalinfo", "-json", f"OGCAPI:{server.url}/collections/nrp-dem")
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)
    assert described["size"] == [width, height]
    assert len(described["bands"]) == count
    assert described["bands"][0]["type"].lower() == dtype
    # and the pixels GDAL reads through the coverage API are the COG's own
    out = tmp_path / "dem.tif"
    copied = _gdal("gdal_translate", "-q", f"OGCAPI:{server.url}/collections/nrp-dem", str(out))
    assert copied.returncode == 0, copied.stderr
    with rasterio.open(out) as got:
        assert np.array_equal(got.read(1), truth)


def test_the_map_does_not_advertise_an_absurd_image_size(server, demo_data):
    cog = Catalog.open(demo_data)["nrp-dem"].current.asset_path
    with rasterio.open(cog) as src:
        width = src.width
    info = _gdal("gdalinfo", "-json", "-oo", "API=MAP", f"OGCAPI:{server.url}/collections/nrp-dem")
    assert info.returncode == 0, info.stderr
    size = json.loads(info.stdout)["size"]
    assert abs(size[0] - width) / width < 0.05  # was 60,000,005 pixels wide
