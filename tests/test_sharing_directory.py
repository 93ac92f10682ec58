"""The resource directory at /directory (issue 22, item 1), read by a real client.

OWSLib's ``Records`` reads it from a running ``shikong serve``; what it must return is
computed here from the STAC mirror's collection files read directly. A department finds
a restricted layer it may not read, with metadata only: no value of the layer's features
and no personal field's name appears anywhere in the directory's answers.
"""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import httpx
import pytest
from conftest import RunningServer, free_port
from owslib.ogcapi.records import Records
from shikong.catalog import Catalog
from shikong.server.identity import KeyStore


@pytest.fixture(scope="module")
def running(demo_data, tmp_path_factory):
    data = tmp_path_factory.mktemp("directory") / "data"
    shutil.copytree(demo_data, data, ignore=shutil.ignore_patterns("audit", "*.log"))
    key, _ = KeyStore(data).create("hud", "finder")
    server = RunningServer(data, free_port())
    yield server, data, {"X-API-Key": key}
    server.stop()


@pytest.fixture(scope="module")
def mirror(running) -> dict[str, dict]:
    """Every collection of the catalog, from its STAC JSON file."""
    _, data, _ = running
    found = [json.loads(p.read_text("utf-8")) for p in (data / "stac").glob("*/*/collection.json")]
    return {c["id"]: c for c in found}


def ids(items: dict) -> set[str]:
    return {f["id"] for f in items["features"]}


def test_records_client_finds_every_layer_and_searches(running, mirror):
    server, _, headers = running
    client = Records(f"{server.url}/directory", headers=headers)
    assert client.records() == ["directory"]
    everything = client.collection_items("directory", limit=1000)
    assert ids(everything) == set(mirror) and everything["numberMatched"] == len(mirror)

    def text(c: dict) -> str:
        return " ".join([c.get("title", ""), c.get("description", ""), *c.get("keywords", [])])

    parcels = client.collection_items("directory", q="宗地", limit=1000)
    assert ids(parcels) == {cid for cid, c in mirror.items() if "宗地" in text(c)} != set()
    rer = client.collection_items("directory", department="rer", limit=1000)
    assert ids(rer) == {cid for cid, c in mirror.items() if c["shikong:department"] == "rer"}
    rasters = client.collection_items("directory", kind="raster", limit=1000)
    assert ids(rasters) == {cid for cid, c in mirror.items() if c["shikong:kind"] == "raster"}
    box = [113.29, 33.78, 113.30, 33.79]

    def meets(c: dict) -> bool:
        w, s, e, n = c["extent"]["spatial"]["bbox"][0][:4]
        return w <= box[2] and box[0] <= e and s <= box[3] and box[1] <= n

    inside = client.collection_items("directory", bbox=box, limit=1000)
    assert ids(inside) == {cid for cid, c in mirror.items() if meets(c)}


def test_a_restricted_layer_is_found_but_its_data_stays_hidden(running, mirror):
    server, data, headers = running
    parcels = mirror["rer-parcels"]
    assert parcels["shikong:classification"] == "restricted"  # hud has no grant for it
    get = httpx.get(f"{server.url}/collections/rer-parcels?f=json", headers=headers)
    assert get.status_code == 404
    record = httpx.get(
        f"{server.url}/directory/collections/directory/items/rer-parcels?f=json", headers=headers
    )
    assert record.status_code == 200
    props = record.json()["properties"]
    assert (props["title"], props["department"], props["classification"]) == (
        parcels["title"], "rer", "restricted",
    )  # fmt: skip
    assert props["personal_data"] is True
    frame = gpd.read_parquet(Catalog.open(data)["rer-parcels"].current.asset_path)
    whole = httpx.get(
        f"{server.url}/directory/collections/directory/items?f=json&limit=1000", headers=headers
    ).text
    for column in ("owner_name", "id_number"):  # the policy file's personal fields
        assert f'"{column}"' not in whole
        for value in frame[column].dropna().astype(str).head(200):
            assert value not in whole
    for value in frame["unit_code"].astype(str).head(200):
        assert value not in whole
    # the public sees no directory at all
    assert httpx.get(f"{server.url}/directory?f=json").status_code == 404
    assert httpx.get(f"{server.url}/directory/collections/directory/items").status_code == 404


def test_records_name_fields_aliases_contacts_and_update_frequency(running, mirror):
    """A record's fields carry their Chinese aliases and units, its contact is the owner's
    data office, both as config/ writes them (read here with yaml), and no personal field."""
    from pathlib import Path

    import yaml

    config = Path(__file__).resolve().parents[1] / "config"
    server, _, headers = running
    aliases = yaml.safe_load((config / "field_aliases.yaml").read_text("utf-8"))["fields"]
    offices = {
        d["code"]: d["contact"]
        for d in yaml.safe_load((config / "departments.yaml").read_text("utf-8"))["departments"]
    }
    found = httpx.get(
        f"{server.url}/directory/collections/directory/items?f=json&limit=1000", headers=headers
    ).json()["features"]
    named = 0
    for rec in found:
        props = rec["properties"]
        contact = props["contacts"][0]
        office = offices[props["department"]]
        assert contact["name"] == office["name"]
        assert contact["emails"] == [{"value": office["email"]}]
        assert props["update_frequency"] in {
            "continual", "daily", "weekly", "monthly", "quarterly", "biannually",
            "annually", "irregular", "asNeeded",
        }  # fmt: skip
        for field in props["fields"]:
            known = aliases.get(field["name"])
            if known is None:
                assert "alias" not in field
                continue
            named += 1
            assert field["alias"] == known["alias"]
            assert field.get("unit") == known.get("unit")
    assert named > 10  # the demo city's layers use the standards' field codes


def test_update_frequency_follows_the_versions(tmp_path):
    """Three versions a month apart are monthly; two are too few to tell (asNeeded)."""
    from shikong.catalog.directory import update_frequency

    source = tmp_path / "kiosks.geojson"
    catalog = Catalog.open(tmp_path / "data")
    for n, start in enumerate(["2025-01-01", "2025-02-01", "2025-03-03"], start=1):
        gpd.GeoDataFrame(  # a new kiosk each month: each delivery is a new version
            {"fid": list(range(n))}, geometry=gpd.points_from_xy([113.3] * n, [33.78] * n), crs=4490
        ).to_file(source, driver="GeoJSON")
        catalog.ingest(source, department="urb", layer="kiosks", version=str(n),
                       valid_from=start, classification="public")  # fmt: skip
        expected = "asNeeded" if n < 3 else "monthly"
        assert update_frequency(Catalog.open(tmp_path / "data")["urb-kiosks"]) == expected
