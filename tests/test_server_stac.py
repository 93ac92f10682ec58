"""STAC API: pystac-client searches the running server; results match the catalog."""

from __future__ import annotations

import httpx
import pytest
from pystac_client import Client
from shapely.geometry import box, shape
from shikong.catalog import Catalog

pytestmark = pytest.mark.usefixtures("as_tester")  # a department user, see conftest


@pytest.fixture(scope="module")
def items(demo_data):
    every = Catalog.open(demo_data).search().items
    return [i for i in every if i["collection"] != "psb-camera_sites"]  # hidden from nrp


def test_pystac_client_search_by_bbox_datetime_and_cql2(server, items):
    client = Client.open(f"{server.url}/stac")
    ids = {c.id for c in client.get_collections()}
    assert ids == {i["collection"] for i in items}
    area = (113.25, 33.74, 113.35, 33.82)
    found = {i.id for i in client.search(bbox=area, max_items=None).items()}
    expect = {
        i["id"] for i in items if i.get("geometry") and shape(i["geometry"]).intersects(box(*area))
    }
    assert found == expect and found
    found = {i.id for i in client.search(datetime="2021-06-30", max_items=None).items()}
    expect = {
        i["id"]
        for i in items
        if i["properties"]["shikong:valid_from"] <= "2021-06-30T23:59:59Z"
        and (i["properties"]["shikong:valid_to"] or "9999") > "2021-06-30"
    }
    assert found == expect and "nrp-landuse-v2020" in found and "nrp-landuse-v2023" not in found
    found = {
        i.id
        for i in client.search(
            filter="\"shikong:department\" = 'wat' AND \"shikong:kind\" = 'sensors'",
            filter_lang="cql2-text",
            max_items=None,
        ).items()
    }
    assert found == {
        i["id"]
        for i in items
        if i["properties"]["shikong:department"] == "wat"
        and i["properties"]["shikong:kind"] == "sensors"
    }
    found = {
        i.id
        for i in client.search(
            filter={"op": "=", "args": [{"property": "shikong:classification"}, "public"]},
            max_items=None,
        ).items()
    }
    assert found == {
        i["id"] for i in items if i["properties"]["shikong:classification"] == "public"
    }


def test_paging_and_collections_filter(server, items):
    client = Client.open(f"{server.url}/stac")
    search = client.search(
        collections=["nrp-landuse", "nrp-rs_mining"], limit=1, max_items=None, method="GET"
    )
    assert sorted(i.id for i in search.items()) == sorted(
        i["id"] for i in items if i["collection"] in ("nrp-landuse", "nrp-rs_mining")
    )
    posted = client.search(
        collections=["nrp-landuse"],
        limit=1,
        max_items=None,
        method="POST",
        sortby="-properties.datetime",
    )
    assert [i.id for i in posted.items()] == ["nrp-landuse-v2023", "nrp-landuse-v2020"]


def test_item_links_and_assets_resolve(server):
    item = httpx.get(f"{server.url}/stac/collections/nrp-landuse/items/nrp-landuse-v2020").json()
    asset = httpx.get(item["assets"]["data"]["href"])
    assert asset.status_code == 200 and asset.content[:4] == b"PAR1"
    succ = next(link for link in item["links"] if link["rel"] == "successor-version")
    assert httpx.get(succ["href"]).json()["id"] == "nrp-landuse-v2023"


@pytest.mark.parametrize(
    "params",
    [
        {"bbox": "1,2,3"},
        {"bbox": "a,b,c,d"},
        {"datetime": "yesterday"},
        {"limit": "0"},
        {"limit": "x"},
        {"filter": "DLBM ="},
        {"sortby": "nope"},
        {"intersects": '{"type": "Point"}'},
    ],
)
def test_bad_searches_are_400(server, params):
    response = httpx.get(f"{server.url}/stac/search", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["description"]


def test_unknown_collection_and_item_are_404(server):
    assert httpx.get(f"{server.url}/stac/collections/nope").status_code == 404
    assert httpx.get(f"{server.url}/stac/collections/nrp-landuse/items/x").status_code == 404
    assert httpx.get(f"{server.url}/assets/../index.sqlite").status_code == 404
