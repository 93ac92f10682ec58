"""Every error answer has one shape, whichever part of the server refused (issue 18, item 3)."""

from __future__ import annotations

import json

import pytest
from shikong.server.app import create_app
from shikong.server.identity import KeyStore
from shikong.server.problems import Problem, from_error
from shikong.spatial.errors import FormatError, ShikongError
from starlette.testclient import TestClient

REFUSALS = [
    ("GET", "/collections/nope", None, 404),
    ("GET", "/collections/nrp-landuse/items?bbox=1,2", None, 400),
    ("GET", "/collections/nrp-landuse/items?ghfqmc=1", None, 400),
    ("GET", "/collections/nrp-landuse/items?datetime=yesterday", None, 400),
    ("GET", "/collections/nrp-landuse/items?filter=NOPE%3D1", None, 400),
    ("GET", "/collections/wat-water_level_sensors/position?coords=POINT(0%200)", None, 404),
    ("GET", "/readings/latest", None, 400),
    ("GET", "/readings/latest?layer=nope", None, 404),
    ("GET", "/readings/alerts?since=garbage", None, 400),
    ("POST", "/readings", "anonymous", 401),
    ("GET", "/stac/search?datetime=2021-06-30", None, 400),
    ("GET", "/stac/collections/nope", None, 404),
    ("DELETE", "/conformance", None, 405),
    ("GET", "/audit", None, 404),
    ("GET", "/nothing/here", None, 404),
    ("GET", "/collections", "bad-key", 401),
]


@pytest.fixture(scope="module")
def client(demo_data):
    key, _ = KeyStore(demo_data).create("nrp", "problems")
    with TestClient(create_app(demo_data, "http://t", watch=False)) as c:
        c.headers["X-API-Key"] = key
        yield c


@pytest.mark.parametrize(("method", "path", "who", "status"), REFUSALS)
def test_every_refusal_is_code_type_description(client, method, path, who, status):
    headers = {"anonymous": {"X-API-Key": ""}, "bad-key": {"X-API-Key": "sk_nope_nope"}}
    body = [] if method == "POST" else None
    reply = client.request(method, path, headers=headers.get(who), json=body)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert set(body) == {"code", "type", "description"} and body["type"] == body["code"]
    assert body["description"]


def test_a_library_input_error_is_a_400_and_anything_else_a_500():
    bad = from_error(FormatError("x.shp", "cut short"))
    assert (bad.status, bad.code) == (400, "InvalidParameterValue") and "x.shp" in bad.description
    other = from_error(ShikongError("boom"))
    assert other.status == 500 and "boom" not in other.description
    assert Problem(413, "too big").code == "PayloadTooLarge"


@pytest.mark.parametrize(
    "intersects",
    [
        {"type": "GeometryCollection", "geometries": []},
        {"type": "GeometryCollection"},
        {"type": "Polygon", "coordinates": []},
        {"type": "MultiPoint", "coordinates": []},
    ],
)
def test_an_empty_intersects_geometry_is_a_400(client, intersects):
    reply = client.post("/stac/search", json={"intersects": intersects})
    assert reply.status_code == 400, reply.text
    assert "intersects" in reply.json()["description"]


def test_a_cql2_json_property_that_is_not_text_is_a_400(client):
    body = {"op": "=", "args": [{"property": {"x": 1}}, 1]}
    reply = client.post(
        "/collections/wat-reservoirs/items",
        content=json.dumps(body),
        headers={"Content-Type": "application/query-cql-json"},
    )
    assert reply.status_code == 400, reply.text
    assert "property name must be text" in reply.json()["description"]
