"""Styles as data (config/styles/, server/maps/styles.py): MapLibre v8 documents, valid
colours, our own tiles URLs, access control, and the colour evaluator against truth
computed here from the style files."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pytest
from matplotlib.colors import is_color_like, to_rgba
from shikong.server.maps import styles
from shikong.server.maps.styles import STYLES_DIR, fill_colors

HEX = re.compile(r"^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$")
LAYER_TYPES = {"fill", "line", "circle", "raster", "symbol", "background", "fill-extrusion"}
COLOR_KEYS = re.compile(r"-color$")


@pytest.fixture(scope="module")
def client(demo_data):
    from shikong.server.app import create_app
    from starlette.testclient import TestClient

    return TestClient(create_app(demo_data, url=None, watch=False))


@pytest.fixture(scope="module")
def nrp_key(demo_data) -> str:
    from shikong.server.identity import KeyStore

    key, _ = KeyStore(demo_data).create("nrp", "styles-tester")
    return key


def colours_in(node, under_color=False):
    """Every colour string of a style: paint values of *-color keys, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from colours_in(value, under_color or bool(COLOR_KEYS.search(key)))
    elif isinstance(node, list):
        if node and node[0] in ("get", "slice"):
            return
        for value in node:
            yield from colours_in(value, under_color)
    elif isinstance(node, str) and under_color and node.startswith(("#", "rgb")):
        yield node


def check_maplibre(document: dict, base: str) -> None:
    """The essentials of the MapLibre style spec v8 (no Python validator exists)."""
    assert document["version"] == 8
    assert isinstance(document["sources"], dict) and document["sources"]
    for name, source in document["sources"].items():
        assert source["type"] in ("vector", "raster")
        for url in source["tiles"]:
            assert url.startswith(f"{base}/collections/{name}/tiles/WebMercatorQuad/")
            assert "{z}/{y}/{x}" in url
    ids = [layer["id"] for layer in document["layers"]]
    assert len(ids) == len(set(ids)), "layer ids are unique"
    for layer in document["layers"]:
        assert layer["type"] in LAYER_TYPES
        assert layer["source"] in document["sources"]
        if document["sources"][layer["source"]]["type"] == "vector":
            assert layer["source-layer"] == layer["source"]
        else:
            assert layer["type"] == "raster"
    assert "glyphs" not in document and "sprite" not in document  # nothing from outside
    for colour in colours_in(document["layers"]):
        assert HEX.match(colour) and is_color_like(colour), colour


def test_every_style_file_is_well_formed_and_every_colour_valid():
    files = sorted(STYLES_DIR.glob("*.json"))
    kinds = set()
    for path in files:
        spec = json.loads(path.read_text())
        assert path.stem == spec["id"]
        target = spec["applies_to"]
        kinds.add(target.get("kind"))
        assert spec["layers"] and all(layer["type"] in LAYER_TYPES for layer in spec["layers"])
        for colour in colours_in(spec["layers"]):
            assert HEX.match(colour) and is_color_like(colour), (path.name, colour)
        for _, colour in spec.get("raster", {}).get("colormap", []):
            assert HEX.match(colour), (path.name, colour)
    assert {"polygon", "line", "point", "raster", "readings"} <= kinds


def test_every_collection_style_is_maplibre_v8_on_our_tiles(client):
    listed = client.get("/collections?f=json").json()["collections"]
    styled = 0
    for collection in listed:
        reply = client.get(f"/collections/{collection['id']}/styles")
        if collection["id"] in ("met-rainfall_grid",):
            assert reply.status_code == 404
            continue
        assert reply.status_code == 200, (collection["id"], reply.text)
        for entry in reply.json()["styles"]:
            href = entry["links"][0]["href"]
            document = client.get(href)
            assert document.status_code == 200
            assert document.headers["content-type"].startswith("application/vnd.mapbox.style+json")
            check_maplibre(document.json(), "http://testserver")
            styled += 1
    assert styled >= 10
    dataset = client.get("/styles/default").json()
    check_maplibre(dataset, "http://testserver")
    kinds = [dataset["sources"][layer["source"]]["type"] for layer in dataset["layers"]]
    assert kinds.index("vector") > kinds.index("raster"), "rasters are drawn under vectors"


def test_known_layers_get_their_own_styles(client):
    landuse = client.get("/collections/nrp-landuse/styles/default")
    assert landuse.status_code == 404, "shared layer, anonymous caller: not visible"
    dem = client.get("/collections/nrp-dem/styles/default").json()
    meta = dem["metadata"]["shikong:collections"]["nrp-dem"]["shikong:raster"]
    assert meta["rescale"] == "minmax" and meta["colormap"][0][1] == "#4f9a4a"
    roads = client.get("/collections/tra-roads/styles/default").json()
    assert roads["layers"][0]["paint"]["line-color"][0] == "match"
    rs = client.get("/collections/nrp-rs_mining/styles")
    assert rs.status_code == 404  # shared: hidden from the anonymous caller


def test_hidden_collections_styles_answer_404_like_missing_ones(client, nrp_key):
    missing = client.get("/collections/no-such-layer/styles")
    hidden = client.get("/collections/rer-parcels/styles")  # restricted to rer
    assert missing.status_code == hidden.status_code == 404
    assert set(hidden.json()) == {"code", "type", "description"}
    assert client.get("/collections/rer-parcels/styles/default").status_code == 404
    dataset = client.get("/styles/default", headers={"X-API-Key": nrp_key}).json()
    assert "psb-camera_sites" not in dataset["sources"]  # restricted to psb (and ema)
    assert (
        client.get(
            "/collections/psb-camera_sites/styles", headers={"X-API-Key": nrp_key}
        ).status_code
        == 404
    )
    assert "nrp-landuse" in dataset["sources"]  # nrp sees its own layer
    assert "rer-parcels" in dataset["sources"]  # and the parcels rer grants it
    anonymous = client.get("/styles/default").json()
    assert "nrp-landuse" not in anonymous["sources"]
    shared = client.get("/collections/nrp-landuse/styles", headers={"X-API-Key": nrp_key})
    assert shared.status_code == 200
    unknown = client.get("/collections/nrp-dem/styles/nope")
    assert unknown.status_code == 404 and "nope" in unknown.json()["description"]


def _hex(colour: str) -> np.ndarray:
    return np.round(np.array(to_rgba(colour)) * 255)


def test_fill_colors_follow_the_landuse_style():
    """GB/T 21010 first-level class → the colour the style file names (truth: the file)."""
    spec = json.loads((STYLES_DIR / "nrp-landuse.json").read_text())
    fill = spec["layers"][0]
    match = fill["paint"]["fill-color"]
    table = {match[i]: match[i + 1] for i in range(2, len(match) - 1, 2)}
    codes = ["0101", "0301", "1101", "0702", "9999", None]
    got = fill_colors(fill, pa.table({"DLBM": codes}))
    opacity = fill["paint"]["fill-opacity"]
    for code, colour in zip(codes, got, strict=True):
        named = table.get(code[:2], match[-1]) if code else match[-1]
        expected = _hex(named)
        expected[3] = round(255 * opacity)
        assert (np.abs(colour.astype(int) - expected) <= 1).all(), (code, colour, named)
    # the same from a list of dicts and from a frame
    import pandas as pd

    records = [{"DLBM": c} for c in codes]
    assert (fill_colors(fill, records) == got).all()
    assert (fill_colors(fill, pd.DataFrame({"DLBM": codes})) == got).all()


def test_fill_colors_interpolate_and_step():
    spec = json.loads((STYLES_DIR / "agr-farmland_quality.json").read_text())
    fill = spec["layers"][0]
    stops = fill["paint"]["fill-color"][3:]
    xs, colours = stops[::2], [_hex(c) for c in stops[1::2]]
    grades = [1, 2.5, 5, 10, 12]
    got = fill_colors(fill, [{"quality_grade": g} for g in grades])
    for grade, colour in zip(grades, got, strict=True):
        expected = [np.interp(grade, xs, [c[k] for c in colours]) for k in range(3)]
        assert np.abs(colour[:3] - np.array(expected)).max() <= 1, grade
    step = {
        "type": "circle",
        "paint": {"circle-color": ["step", ["get", "v"], "#000000", 10, "#ff0000"]},
    }
    assert fill_colors(step, [{"v": 9.9}, {"v": 10}])[:, 0].tolist() == [0, 255]
    with pytest.raises(styles.UnsupportedExpression):
        fill_colors({"type": "fill", "paint": {"fill-color": ["case", True, "#fff", "#000"]}}, [{}])


def test_parse_color_reads_css_forms():
    assert styles.parse_color("#f00") == (255, 0, 0, 1.0)
    assert styles.parse_color("rgba(0, 128, 255, 0.5)") == (0, 128, 255, 0.5)
    assert styles.parse_color("#00ff0080")[3] == pytest.approx(128 / 255)
    with pytest.raises(ValueError):
        styles.parse_color("not-a-colour")


def test_the_style_sources_resolve_to_tiles_with_the_named_layers(client):
    """Every source of the dataset style answers at its URL; vector tiles hold a layer
    named as the style's source-layer, raster tiles are images."""
    import io

    import mapbox_vector_tile
    import morecantile
    from PIL import Image

    tms = morecantile.tms.get("WebMercatorQuad")
    document = client.get("/styles/default").json()
    checked = 0
    for name, source in document["sources"].items():
        west, south, east, north = source.get("bounds") or (113.0, 33.6, 113.6, 34.0)
        tile = tms.tile((west + east) / 2, (south + north) / 2, 12)
        url = source["tiles"][0].format(z=tile.z, y=tile.y, x=tile.x)
        reply = client.get(url.replace("http://testserver", ""))
        assert reply.status_code in (200, 204), (name, reply.status_code, reply.text[:200])
        if reply.status_code == 204 or not reply.content:
            continue
        if source["type"] == "vector":
            layers = [
                layer["source-layer"] for layer in document["layers"] if layer["source"] == name
            ]
            assert set(layers) <= set(mapbox_vector_tile.decode(reply.content)), name
        else:
            assert Image.open(io.BytesIO(reply.content)).size == (256, 256)
        checked += 1
    assert checked >= 5
