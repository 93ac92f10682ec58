"""Every 404 an anonymous caller gets says that signing in may show more, alike for a
hidden and a missing collection; signed-in callers get the plain 404 (issue 20, item 2)."""

from __future__ import annotations

import shutil

import pytest
from shikong.server.app import create_app
from shikong.server.identity import KeyStore
from shikong.server.signin_hint import HINT_EN, HINT_ZH
from starlette.testclient import TestClient

PATHS = [
    "/collections/{id}?f=json",
    "/collections/{id}/items?f=json",
    "/collections/{id}/tiles/WebMercatorQuad/15/13113/26696",
    "/collections/{id}/styles",
    "/stac/collections/{id}",
]


@pytest.fixture(scope="module")
def data(demo_data, tmp_path_factory):
    """A copy of the demo city: this module adds a key."""
    copy = tmp_path_factory.mktemp("hint") / "data"
    shutil.copytree(demo_data, copy)
    return copy


@pytest.fixture(scope="module")
def client(data):
    with TestClient(create_app(data, url=None, watch=False)) as c:
        yield c


@pytest.mark.parametrize("template", PATHS)
def test_anonymous_404_bodies_are_the_same_for_hidden_and_missing_and_hint_sign_in(
    client, template
):
    hidden = client.get(template.format(id="rer-parcels"))
    missing = client.get(template.format(id="rer-no_such_layer"))
    assert hidden.status_code == missing.status_code == 404
    assert set(hidden.json()) == {"code", "type", "description"}  # the one problem shape
    assert HINT_EN in hidden.json()["description"] and HINT_ZH in hidden.json()["description"]
    assert hidden.json()["description"].replace("rer-parcels", "X") == missing.json()[
        "description"
    ].replace("rer-no_such_layer", "X")
    assert hidden.headers["content-length"] == str(len(hidden.content))


def test_an_html_404_page_carries_the_hint(client):
    page = client.get("/collections/rer-parcels?f=html&lang=zh")  # the hint in the page language
    assert page.status_code == 404
    assert "/signin" in page.text and HINT_ZH in page.text


def test_a_signed_in_caller_gets_the_plain_404(client, data):
    key, _ = KeyStore(data).create("wat", "hint-test")
    answer = client.get("/collections/rer-parcels?f=json", headers={"X-API-Key": key})
    assert answer.status_code == 404
    assert HINT_EN not in answer.json()["description"]
