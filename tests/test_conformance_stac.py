"""The STAC API as outside clients see it: stac-api-validator, GDAL's STACIT driver,
odc-stac, and the regressions the validator found (issue 16, items 7, 18 and 22).

The validator runs in a subprocess with its JSON-schema look-ups answered from
tests/conformance/schemas (CI has no internet; see tests/conformance/offline.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
import yaml
from conftest import RunningServer, free_port
from shikong.catalog import Catalog
from shikong.config import load as load_config

OFFLINE = Path(__file__).parent / "conformance" / "offline.py"
MAX_PAGE = 20  # small, so that a limit above it can be seen to page
AREA = {  # inside the demo city
    "type": "Polygon",
    "coordinates": [[[113.2, 33.7], [113.4, 33.7], [113.4, 33.9], [113.2, 33.9], [113.2, 33.7]]],
}


@pytest.fixture(scope="module")
def stac_server(demo_data, tmp_path_factory):
    """The demo city served from a copy whose policy lets a test suite's bursts through
    (the rate limit protects the service; the suites test the API) and pages at 20."""
    data = tmp_path_factory.mktemp("conformance") / "data"
    shutil.copytree(demo_data, data, ignore=shutil.ignore_patterns("*.log"))
    policy = dict(load_config("access_policy"))
    policy["limits"] = {
        **policy["limits"],
        "rate_per_second": 100_000,
        "rate_burst": 100_000,
        "max_page_size": MAX_PAGE,
    }
    (data / "access_policy.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True))
    running = RunningServer(data, free_port())
    yield running
    running.stop()


@pytest.fixture
def client(stac_server, tester_key):
    with httpx.Client(base_url=stac_server.url, headers={"X-API-Key": tester_key}, timeout=60) as c:
        yield c


def run_validator(url: str, key: str, classes: list[str], collection: str, *extra: str) -> str:
    args = [sys.executable, str(OFFLINE), "stac_api_validator", "--root-url", f"{url}/stac"]
    for name in classes:
        args += ["--conformance", name]
    args += ["--collection", collection, "-H", f"X-API-Key: {key}", *extra]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert "Errors: none" in out and "Failed." not in out, out[-6000:]
    assert done.returncode == 0, out[-6000:]
    return out


def test_stac_api_validator_finds_no_errors(stac_server, tester_key):
    """Every class the API claims, pagination included, on a layer with two versions."""
    run_validator(
        stac_server.url,
        tester_key,
        ["core", "item-search", "features", "collections", "filter"],
        "nrp-landuse",
        "--geometry",
        json.dumps(AREA),
        "--validate-pagination",
    )


def test_stac_api_validator_sort_class(stac_server, tester_key):
    """The validator compares ``datetime`` values and cannot order a null one, which a
    version whose validity ended has: it checks the sort class on a one-version layer;
    the order of ended versions is checked below against the catalog."""
    run_validator(stac_server.url, tester_key, ["item-search#sort"], "nrp-dem")


def test_sorting_by_datetime_orders_versions_by_start_of_validity(client, demo_data):
    every = Catalog.open(demo_data).search(collections=["nrp-landuse"]).items
    expect = [i["id"] for i in sorted(every, key=lambda i: i["properties"]["shikong:valid_from"])]
    assert len(expect) >= 2 and any(i["properties"]["datetime"] is None for i in every)
    for sortby, order, direction in (
        ("properties.datetime", expect, "asc"),
        ("-properties.datetime", expect[::-1], "desc"),
    ):
        got = client.get(
            "/stac/search", params={"collections": "nrp-landuse", "sortby": sortby}
        ).json()
        assert [f["id"] for f in got["features"]] == order
        posted = client.post(
            "/stac/search",
            json={
                "collections": ["nrp-landuse"],
                "sortby": [{"field": "datetime", "direction": direction}],
            },
        ).json()
        assert [f["id"] for f in posted["features"]] == order


@pytest.mark.parametrize(
    "value",
    [
        "/",
        "../..",
        "/..",
        "../",
        "1985-04-12T23:20:50.Z",
        "1985-04-12T23:20:50,52Z",
        "1937-01-01T12:00:27.87+0100",
        "1985-12-12T23:20:50.52",  # no offset
        "1985-04-12",  # a bare date
        "1985-13-12T23:20:50Z",
        "2021-01-01T00:00:00Z/2020-01-01T00:00:00Z",
        "2020-01-01T00:00:00Z/2021-01-01T00:00:00Z/",
    ],
)
def test_search_refuses_what_is_not_rfc3339(client, value):
    response = client.get("/stac/search", params={"datetime": value})
    assert response.status_code == 400, response.text
    assert value in response.json()["description"] or "datetime" in response.json()["description"]
    assert client.post("/stac/search", json={"datetime": value}).status_code == 400


def test_search_takes_rfc3339_instants_and_half_open_intervals(client, demo_data):
    cat = Catalog.open(demo_data)
    visible = [c["id"] for c in client.get("/stac/collections").json()["collections"]]
    for value, bounds in (
        ("2021-06-30T00:00:00Z", ("2021-06-30T00:00:00Z", "2021-06-30T00:00:00Z")),
        ("2021-06-30T08:00:00.5+08:00", ("2021-06-30T00:00:00.5Z", "2021-06-30T00:00:00.5Z")),
        ("2021-06-30t00:00:00z/..", ("2021-06-30T00:00:00Z", None)),
        ("../2021-01-01T00:00:00Z", (None, "2021-01-01T00:00:00Z")),
        (
            "2020-01-01T00:00:00Z/2021-01-01T00:00:00Z",
            ("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
        ),
    ):
        got = client.post("/stac/search", json={"datetime": value, "limit": MAX_PAGE})
        assert got.status_code == 200, got.text
        expect = cat.search(datetime=tuple(bounds), collections=visible, limit=1)
        assert got.json()["numberMatched"] == expect.matched > 0, value


def test_bbox_with_intersects_and_a_posted_csv_bbox_are_400(client):
    params = {"bbox": "113.2,33.7,113.4,33.9", "intersects": json.dumps(AREA)}
    assert client.get("/stac/search", params=params).status_code == 400
    body = {"bbox": [113.2, 33.7, 113.4, 33.9], "intersects": AREA}
    assert "intersects" in client.post("/stac/search", json=body).json()["description"]
    response = client.post("/stac/search", json={"bbox": "113.2,33.7,113.4,33.9"})
    assert response.status_code == 400 and "bbox" in response.json()["description"]
    assert client.post("/stac/search", json={"bbox": [113.2, 33.7, 113.4, 33.9]}).is_success


def test_limit_above_the_maximum_serves_a_full_page_and_a_next_link(client):
    for response in (
        client.get("/stac/search", params={"limit": 50_000}),
        client.post("/stac/search", json={"limit": 50_000}),
    ):
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["numberReturned"] == MAX_PAGE < page["numberMatched"]
        nxt = next(link for link in page["links"] if link["rel"] == "next")
        if nxt["method"] == "GET":
            second = client.get(nxt["href"]).json()
        else:
            second = client.post(nxt["href"], json=nxt["body"]).json()
        assert not {f["id"] for f in second["features"]} & {f["id"] for f in page["features"]}
    assert client.get("/stac/search", params={"limit": 0}).status_code == 400


def test_collection_items_have_self_links_and_queryables_exist(client, stac_server):
    page = client.get("/stac/collections/nrp-landuse/items", params={"limit": 1}).json()
    rels = {link["rel"]: link for link in page["links"]}
    assert rels["self"]["href"] == f"{stac_server.url}/stac/collections/nrp-landuse/items?limit=1"
    assert "collections=" not in rels["next"]["href"]
    assert rels["collection"]["href"] == f"{stac_server.url}/stac/collections/nrp-landuse"
    root = client.get("/stac").json()
    assert all(link.get("title") for link in root["links"])
    assert {"service-doc", "service-desc"} <= {link["rel"] for link in root["links"]}
    link = next(x for x in root["links"] if x["rel"].endswith("/queryables"))
    schema = client.get(link["href"]).json()
    assert schema["$id"] == link["href"] and schema["type"] == "object"
    assert "shikong:department" in schema["properties"]
    assert client.get("/stac/collections/nope/queryables").status_code == 404


def test_asset_hrefs_are_dept_layer_version_file_and_serve_the_file(client, stac_server, demo_data):
    """Issue 16 item 7: one form, /assets/{dept}/{layer}/{version}/{file}."""
    for cid, iid, name in (
        ("nrp-dem", "nrp-dem-v2021", "data.tif"),
        ("nrp-landuse", "nrp-landuse-v2020", "data.parquet"),
    ):
        item = client.get(f"/stac/collections/{cid}/items/{iid}").json()
        href = item["assets"]["data"]["href"]
        dept, layer = cid.split("-", 1)
        version = item["properties"]["version"]
        assert href == f"{stac_server.url}/assets/{dept}/{layer}/{version}/{name}"
        got = client.get(href)
        assert got.status_code == 200
        assert got.content == (demo_data / "assets" / dept / layer / version / name).read_bytes()
    assert client.get("/assets/assets/nrp/dem/2021/data.tif").status_code == 404
    assert client.get("/assets/../index.sqlite").status_code == 404


@pytest.fixture
def gdal_key(tester_key, monkeypatch):
    """GDAL (rasterio's own build) sends the key with every request it makes."""
    monkeypatch.setenv("GDAL_HTTP_HEADERS", f"X-API-Key: {tester_key}")
    monkeypatch.delenv("GDAL_HTTP_AUTH", raising=False)
    return tester_key


def test_gdal_stacit_opens_the_dem_from_a_search(stac_server, demo_data, gdal_key):
    """Issue 16 item 22: GDAL's STACIT driver builds a mosaic of the search's raster
    assets from their proj:* fields; it must match the COG opened directly."""
    cog = demo_data / "assets" / "nrp" / "dem" / "2021" / "data.tif"
    url = f'STACIT:"{stac_server.url}/stac/search?collections=nrp-dem":asset=data'
    with rasterio.open(url) as stacit, rasterio.open(cog) as direct:
        assert stacit.driver == "STACIT"
        assert (stacit.width, stacit.height) == (direct.width, direct.height)
        assert stacit.crs.to_epsg() == direct.crs.to_epsg() == 4490
        assert np.allclose(tuple(stacit.transform), tuple(direct.transform), atol=1e-9)
        window = ((100, 164), (200, 264))
        np.testing.assert_array_equal(stacit.read(1, window=window), direct.read(1, window=window))


def test_odc_stac_loads_the_dem_through_pystac_client(stac_server, demo_data, tester_key, gdal_key):
    import odc.stac
    from pystac_client import Client

    client = Client.open(f"{stac_server.url}/stac", headers={"X-API-Key": tester_key})
    items = list(client.search(collections=["nrp-dem"]).items())
    assert [i.id for i in items] == ["nrp-dem-v2021"]
    cube = odc.stac.load(items, bands=["data"], chunks={})
    cog = demo_data / "assets" / "nrp" / "dem" / "2021" / "data.tif"
    with rasterio.open(cog) as direct:
        truth = direct.read(1)
        assert cube.odc.geobox.crs.epsg == 4490
        assert tuple(cube.odc.geobox.shape) == (direct.height, direct.width)
        assert np.allclose(tuple(cube.odc.geobox.affine), tuple(direct.transform), atol=1e-9)
    values = cube["data"].isel(time=0).values
    np.testing.assert_array_equal(values, truth)


def test_raster_assets_carry_the_fields_gdal_reads(client, demo_data):
    """GDAL 3.6 (Debian 12, QGIS 3.22) reads only proj:epsg; newer GDAL proj:code."""
    item = client.get("/stac/collections/nrp-dem/items/nrp-dem-v2021").json()
    asset = item["assets"]["data"]
    assert asset["type"] == "image/tiff; application=geotiff; profile=cloud-optimized"
    assert asset["proj:code"] == "EPSG:4490" and asset["proj:epsg"] == 4490
    with rasterio.open(demo_data / "assets" / "nrp" / "dem" / "2021" / "data.tif") as src:
        assert asset["proj:shape"] == [src.height, src.width]
        assert asset["proj:transform"] == pytest.approx(list(src.transform)[:6])
    assert any("/projection/" in uri for uri in item["stac_extensions"])
