"""OGC API Features over HTTP with real clients, compared with what the catalog holds."""

from __future__ import annotations

import geopandas as gpd
import httpx
import numpy as np
import pyogrio
import pytest
import shapely
from owslib.ogcapi.features import Features
from pyproj import Transformer
from shapely.geometry import box, shape
from shikong.catalog import Catalog

pytestmark = pytest.mark.usefixtures("as_tester")  # a department user, see conftest

BBOX = (113.25, 33.74, 113.35, 33.82)


@pytest.fixture(scope="module")
def landuse(demo_data):
    return Catalog.open(demo_data)["nrp-landuse"].to_geodataframe()


def test_owslib_lists_collections_and_reads_items(server, demo_data, landuse):
    api = Features(server.url)
    ids = {c["id"] for c in api.collections()["collections"]}
    vector_layers = {
        layer.id
        for layer in Catalog.open(demo_data).collections()
        if layer.kind in ("vector", "sensors")
        and (layer.classification != "restricted" or layer.id == "rer-parcels")
    }
    assert vector_layers <= ids  # the tester (nrp) sees all but psb's restricted cameras
    assert "psb-camera_sites" not in ids
    page = api.collection_items("nrp-landuse", bbox=list(BBOX), limit=1000)
    expect = landuse[landuse.intersects(box(*BBOX))]
    assert page["numberMatched"] == len(expect)
    assert sorted(f["id"] for f in page["features"]) == sorted(expect["fid"].tolist())
    one = api.collection_item("nrp-landuse", str(expect["fid"].iloc[0]))
    assert shape(one["geometry"]).equals_exact(expect.geometry.iloc[0], 1e-9)
    assert one["properties"]["DLMC"] == expect["DLMC"].iloc[0]  # Chinese intact


def test_paging_follows_next_links_to_every_feature(server, landuse):
    url = f"{server.url}/collections/nrp-landuse/items?limit=250&skipGeometry=true"
    seen, pages = [], 0
    while url:
        body = httpx.get(url).json()
        seen += [f["id"] for f in body["features"]]
        assert body["numberMatched"] == len(landuse)
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        pages += 1
        if not body["features"]:
            break
    assert sorted(seen) == sorted(landuse["fid"].tolist())
    assert pages >= len(landuse) // 250


def test_cql2_text_and_json_filters(server, landuse):
    base = f"{server.url}/collections/nrp-landuse/items"
    expect = landuse[(landuse.DLBM == "0101") & (landuse.TBMJ > 1_000_000)]
    text = httpx.get(
        base,
        params={"filter": "DLBM='0101' AND TBMJ>1000000", "limit": 1000, "skipGeometry": "true"},
    ).json()
    assert sorted(f["id"] for f in text["features"]) == sorted(expect.fid.tolist())
    cql_json = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "DLBM"}, "0101"]},
            {"op": ">", "args": [{"property": "TBMJ"}, 1000000]},
        ],
    }
    posted = httpx.post(
        base,
        json=cql_json,
        params={"limit": 1000},
        headers={"Content-Type": "application/query-cql-json"},
    ).json()
    assert sorted(f["id"] for f in posted["features"]) == sorted(expect.fid.tolist())
    point = shapely.Point(113.3, 33.78)
    spatial = httpx.get(
        base, params={"filter": "S_INTERSECTS(geometry,POINT(113.3 33.78))", "skipGeometry": "true"}
    ).json()
    assert [f["id"] for f in spatial["features"]] == landuse[landuse.intersects(point)].fid.tolist()


def test_sortby_properties_and_skip_geometry(server, landuse):
    body = httpx.get(
        f"{server.url}/collections/nrp-landuse/items",
        params={"sortby": "-TBMJ", "limit": 5, "properties": "DLBM,TBMJ", "skipGeometry": "true"},
    ).json()
    areas = [f["properties"]["TBMJ"] for f in body["features"]]
    assert areas == sorted(landuse.TBMJ, reverse=True)[:5]
    assert set(body["features"][0]["properties"]) == {"DLBM", "TBMJ"}
    assert body["features"][0]["geometry"] is None


def test_crs_and_bbox_crs(server, landuse):
    t = Transformer.from_crs(4490, 4547, always_xy=True)
    x0, y0 = t.transform(BBOX[0], BBOX[1])
    x1, y1 = t.transform(BBOX[2], BBOX[3])
    body = httpx.get(
        f"{server.url}/collections/nrp-landuse/items",
        params={
            "bbox": f"{y0},{x0},{y1},{x1}",  # in the CRS's axis order: northing first
            "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4547",
            "crs": "http://www.opengis.net/def/crs/EPSG/0/4547",
            "limit": 1,
        },
    ).json()
    assert body["numberMatched"] > 0
    ring = np.array(body["features"][0]["geometry"]["coordinates"][0])
    # EPSG:4547 axis order is northing, easting: northings ~3.7e6, eastings ~0.4e6
    assert (ring[:, 0] > 3_600_000).all() and (ring[:, 1] < 1_000_000).all()
    in_4490 = httpx.get(
        f"{server.url}/collections/nrp-landuse/items/{body['features'][0]['id']}",
        params={"crs": "http://www.opengis.net/def/crs/EPSG/0/4490"},
    ).json()
    lat_lon = np.array(in_4490["geometry"]["coordinates"][0])
    assert (lat_lon[:, 0] < 40).all() and (lat_lon[:, 1] > 100).all()  # lat first in 4490


def test_datetime_chooses_the_version(server, demo_data):
    layer = Catalog.open(demo_data)["nrp-landuse"]
    old = layer.to_geodataframe(as_of="2021-06-30")
    body = httpx.get(
        f"{server.url}/collections/nrp-landuse/items",
        params={"datetime": "2021-06-30T00:00:00Z", "limit": 1},
    ).json()
    assert body["numberMatched"] == len(old)


def test_gdal_oapif_driver_lists_features(server, landuse):
    frame = pyogrio.read_dataframe(f"OAPIF:{server.url}", layer="nrp-landuse")
    assert len(frame) == len(landuse)
    assert sorted(frame["DLMC"].unique()) == sorted(landuse.DLMC.unique())


def test_geopandas_reads_an_items_url(server, landuse):
    frame = gpd.read_file(
        f"{server.url}/collections/nrp-landuse/items?limit=1000&bbox={','.join(map(str, BBOX))}"
    )
    expect = landuse[landuse.intersects(box(*BBOX))]
    assert sorted(frame["fid"]) == sorted(expect.fid)


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/collections/nope", 404, "not found"),
        ("/collections/nrp-landuse/items/999999999", 404, "no feature"),
        ("/collections/nrp-landuse/items?bbox=1,2,3", 400, "bbox"),
        ("/collections/nrp-landuse/items?bbox=a,b,c,d", 400, "bbox"),
        ("/collections/nrp-landuse/items?datetime=yesterday", 400, "datetime"),
        ("/collections/nrp-landuse/items?filter=DLBM%3D", 400, "cql"),
        ("/collections/nrp-landuse/items?filter=NOPE%3D1", 400, "NOPE"),
        ("/collections/nrp-landuse/items?crs=EPSG:9999", 400, "CRS"),
        ("/collections/nrp-landuse/items?ghfqmc=农田保护区", 400, "ghfqmc"),
        ("/collections/nrp-landuse/items?limit=-1", 400, "limit"),
        ("/nothing/here", 404, "no resource"),
    ],
)
def test_bad_requests_get_a_clear_4xx(server, path, status, words):
    response = httpx.get(f"{server.url}{path}")
    assert response.status_code == status, response.text
    assert words.lower() in response.json()["description"].lower()
    assert httpx.get(f"{server.url}/collections/nrp-landuse/items?limit=1").status_code == 200


def test_html_pages_render(server):
    for path in ("/", "/collections", "/collections/nrp-landuse", "/collections/nrp-landuse/items"):
        page = httpx.get(f"{server.url}{path}?f=html")
        assert page.status_code == 200, (path, page.text[:500], server.log_tail())
        assert "<html" in page.text.lower()
    zh = httpx.get(f"{server.url}/collections/nrp-landuse?f=html&lang=zh")
    assert "土地利用现状" in zh.text


def test_a_layer_ingested_while_serving_is_listed_within_2_s(tmp_path, demo_data):
    import time

    from conftest import RunningServer, free_port, share_keys

    data = tmp_path / "data"
    src = tmp_path / "a.geojson"
    gpd.GeoDataFrame({"name": ["一"]}, geometry=[box(113.1, 33.7, 113.2, 33.8)], crs=4490).to_file(
        src
    )
    cat = Catalog.open(data)
    cat.ingest(src, department="nrp", layer="first", valid_from="2020-01-01")
    share_keys(demo_data, data)
    running = RunningServer(data, free_port())
    try:
        src2 = tmp_path / "b.geojson"
        gpd.GeoDataFrame(
            {"name": ["二", "三"]},
            geometry=[box(113.2, 33.7, 113.3, 33.8), box(113.3, 33.7, 113.4, 33.8)],
            crs=4490,
        ).to_file(src2)
        cat.ingest(src2, department="wat", layer="second", valid_from="2020-01-01")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            ids = [
                c["id"]
                for c in httpx.get(f"{running.url}/collections?f=json").json()["collections"]
            ]
            if "wat-second" in ids:
                break
            time.sleep(0.05)
        assert "wat-second" in ids, "not published within 2 s"
        # an updated layer serves its new version
        cat.ingest(src2, department="nrp", layer="first", valid_from="2024-01-01")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            body = httpx.get(f"{running.url}/collections/nrp-first/items?f=json").json()
            if body.get("numberMatched") == 2:
                break
            time.sleep(0.05)
        assert body["numberMatched"] == 2
    finally:
        running.stop()


def test_transactions_write_through_as_new_versions(tmp_path, demo_data):
    from conftest import RunningServer, free_port

    data = tmp_path / "data"
    src = tmp_path / "a.geojson"
    gpd.GeoDataFrame(
        {"pid": [1, 2], "name": ["一号", "二号"]},
        geometry=[box(113.1, 33.7, 113.2, 33.8), box(113.2, 33.7, 113.3, 33.8)],
        crs=4490,
    ).to_file(src)
    cat = Catalog.open(data)
    cat.ingest(
        src,
        department="urb",
        layer="facilities",
        id_field="pid",
        editable=True,
        valid_from="2024-01-01",
    )
    cat.ingest(src, department="urb", layer="frozen", id_field="pid", valid_from="2024-01-01")
    from conftest import share_keys
    from shikong.server.identity import KeyStore

    share_keys(demo_data, data)
    urb_key, _ = KeyStore(data).create("urb", "editor")
    running = RunningServer(data, free_port())
    base = f"{running.url}/collections/urb-facilities/items"
    geo = {"Content-Type": "application/geo+json", "X-API-Key": urb_key}
    try:
        feature = {
            "type": "Feature",
            "properties": {"name": "三号"},
            "geometry": box(113.3, 33.7, 113.4, 33.8).__geo_interface__,
        }
        created = httpx.post(base, json=feature, headers=geo)
        assert created.status_code == 201, created.text
        assert created.headers["location"].endswith("/items/3")
        assert httpx.get(f"{base}/3?f=json").json()["properties"]["name"] == "三号"
        feature["properties"]["name"] = "叁号"
        updated = httpx.put(f"{base}/3", json=feature, headers=geo)
        assert updated.status_code == 204, updated.text
        assert httpx.get(f"{base}/3?f=json").json()["properties"]["name"] == "叁号"
        assert httpx.delete(f"{base}/1", headers=geo).status_code == 200
        assert httpx.get(f"{base}/1?f=json").status_code == 404
        layer = Catalog.open(data)["urb-facilities"]
        assert len(layer.versions) == 4  # the original and one per edit
        assert sorted(layer.to_geodataframe().pid) == [2, 3]
        assert sorted(layer.versions[0].to_geodataframe().pid) == [1, 2]  # history kept
        bad = httpx.post(base, content=b"{not json", headers=geo)
        assert bad.status_code == 400
        bowtie = {
            "type": "Feature",
            "properties": {},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[113, 33], [113.1, 33.1], [113.1, 33], [113, 33.1], [113, 33]]],
            },
        }
        invalid = httpx.post(base, json=bowtie, headers=geo)
        assert invalid.status_code == 400 and "invalid" in invalid.json()["description"]
        frozen = httpx.post(
            f"{running.url}/collections/urb-frozen/items", json=feature, headers=geo
        )
        assert frozen.status_code == 400 and "not editable" in frozen.text
        assert len(Catalog.open(data)["urb-facilities"].versions) == 4  # nothing half-done
    finally:
        running.stop()


def test_a_page_is_rendered_with_its_own_views_config():
    """pygeoapi caches the translated config of a page per locale for the whole process;
    two access views (two configs) in one language must each get their own."""
    from babel import Locale
    from pygeoapi import l10n
    from shikong.server import pygeoapi_fixes

    pygeoapi_fixes.apply()
    english = Locale("en")
    one = {"server": {}, "resources": {"nrp-landuse": {"title": {"en": "Land use"}}}}
    two = {"server": {}, "resources": {"wat-rivers": {"title": {"en": "Rivers"}}}}
    for _ in range(2):
        assert list(l10n.translate_struct(one, english, True)["resources"]) == ["nrp-landuse"]
        assert list(l10n.translate_struct(two, english, True)["resources"]) == ["wat-rivers"]
    title = l10n.translate_struct(one, english, True)["resources"]["nrp-landuse"]["title"]
    assert title == "Land use"
