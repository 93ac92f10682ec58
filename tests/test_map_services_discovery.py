"""A client starting from the landing page finds the map services, and /conformance
declares the OGC API Tiles classes the tiles routes implement."""

from __future__ import annotations

import pytest
from shikong.server.app import create_app
from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def client(demo_data):
    with TestClient(create_app(demo_data, url=None, watch=False)) as c:
        yield c


def test_the_landing_page_links_every_map_service_and_each_link_answers(client):
    links = client.get("/?f=json").json()["links"]
    by_title = {link.get("title", ""): link for link in links}
    wanted = {
        "/tiles": "application/json",
        "/styles": "application/json",
        "/wms?service=WMS&request=GetCapabilities&version=1.3.0": "xml",
        "/wmts/1.0.0/WMTSCapabilities.xml": "xml",
    }
    hrefs = {link["href"].removeprefix("http://testserver"): link for link in links}
    for path, kind in wanted.items():
        assert path in hrefs, (path, list(by_title))
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:200])
        assert kind in answer.headers["content-type"], (path, answer.headers["content-type"])
    tilesets = client.get("/tiles").json()
    assert tilesets["tilesets"], "the dataset tilesets list is empty"
    # the tiling schemes link pygeoapi writes resolves too (it answered 404 before issue 19)
    schemes = [link for link in links if link["rel"].endswith("/tiling-schemes")]
    assert schemes and all(
        client.get(link["href"].removeprefix("http://testserver")).status_code == 200
        for link in schemes
        if link["type"] == "application/json"
    )


def test_conformance_declares_the_tiles_classes_once(client):
    classes = client.get("/conformance?f=json").json()["conformsTo"]
    for name in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt", "tmxs"):
        assert classes.count(f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{name}") == 1
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
