"""OGC API Tiles and vector tiles (issue 19, items 1, 2, 6), checked against truth computed
here from the GeoParquet assets with geopandas and shapely, decoded with an independent
decoder (mapbox-vector-tile) and with GDAL (3.6's MVT driver, pyogrio's newer OGCAPI)."""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from conftest import RunningServer, free_port
from shikong.catalog import Catalog
from shikong.server.app import create_app
from shikong.server.identity import KeyStore
from starlette.testclient import TestClient

EXTENT, BUFFER = 4096, 64  # what docs-draft/tiles.md promises


def min_size(z: int) -> int:
    """Units under which lines and polygons leave a zoom: 1 px of a 256-px tile to z12,
    of a 512-px tile from z13 (docs-draft/tiles.md)."""
    return 16 if z <= 12 else 8


R = 6378137.0
HALF = math.pi * R


@pytest.fixture(scope="module")
def city(demo_data, tmp_path_factory):
    """A copy of the demo city (its own tile cache) and keys of three departments."""
    data = tmp_path_factory.mktemp("tiles") / "data"
    shutil.copytree(demo_data, data)
    keys = KeyStore(data)
    return {
        "data": data,
        "nrp": keys.create("nrp", "planner")[0],  # reads rer-parcels, owners masked
        "rer": keys.create("rer", "registrar")[0],  # owns rer-parcels, sees owners
        "wat": keys.create("wat", "gauge")[0],  # may not read rer-parcels
    }


@pytest.fixture(scope="module")
def client(city):
    return TestClient(create_app(city["data"], url=None, watch=False))


def get(client, path, key=None, **kw):
    headers = kw.pop("headers", {})
    if key:
        headers["X-API-Key"] = key
    return client.get(path, headers=headers, **kw)


# -- independent tile geometry (the OGC definitions, not the server's code) ---------------
def mercator_bounds(z: int, y: int, x: int) -> tuple[float, float, float, float]:
    size = 2 * HALF / 2**z
    return (-HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size)


def cgcs_bounds(z: int, y: int, x: int) -> tuple[float, float, float, float]:
    """天地图 c tiles: level 1 is two 180° tiles from 180°W, 90°N."""
    size = 180.0 / 2 ** (z - 1)
    return (-180 + x * size, 90 - (y + 1) * size, -180 + (x + 1) * size, 90 - y * size)


def mercator_tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return y, x


def cgcs_tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    size = 180.0 / 2 ** (z - 1)
    return int((90 - lat) / size), int((lon + 180) / size)


TMS = {
    "WebMercatorQuad": (mercator_bounds, mercator_tile_of, 3857),
    "CGCS2000Quad": (cgcs_bounds, cgcs_tile_of, 4490),
}


def truth(frame: gpd.GeoDataFrame, id_field: str, tms: str, z: int, y: int, x: int):
    """(ids that must be in the tile, ids that may be, the frame in the tile's CRS)."""
    bounds_of, _, epsg = TMS[tms]
    frame = frame.to_crs(epsg) if epsg != 4490 else frame
    minx, miny, maxx, maxy = bounds_of(z, y, x)
    unit = (maxx - minx) / EXTENT
    grown = shapely.box(
        minx - BUFFER * unit, miny - BUFFER * unit, maxx + BUFFER * unit, maxy + BUFFER * unit
    )
    inner = shapely.box(minx, miny, maxx, maxy)
    b = frame.geometry.bounds
    size = np.maximum(b.maxx - b.minx, b.maxy - b.miny) / unit
    point = frame.geometry.geom_type.str.contains("Point").to_numpy()
    shown = point | (size.to_numpy() >= min_size(z))
    must = set(frame.loc[frame.intersects(inner).to_numpy() & shown, id_field])
    may = set(frame.loc[frame.intersects(grown).to_numpy(), id_field])
    return must, may, frame, (minx, miny, maxx, maxy)


def decode(content: bytes) -> dict:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})


def to_crs_units(geometry: dict, box) -> shapely.Geometry:
    """A decoded geometry (tile units, y down) back in the tile's CRS."""
    minx, miny, maxx, maxy = box
    geom = shapely.geometry.shape(geometry)
    return shapely.transform(
        geom,
        lambda c: np.column_stack(
            [minx + c[:, 0] * (maxx - minx) / EXTENT, maxy - c[:, 1] * (maxy - miny) / EXTENT]
        ),
    )


def layer_truth(data: Path, collection: str, version: int = -1):
    layer = Catalog.open(data)[collection]
    v = layer.versions[version]
    return gpd.read_parquet(v.asset_path), v.id_field, v


# -- tile matrix sets and metadata ------------------------------------------------------
def test_tile_matrix_sets_and_the_landing_page_link(client):
    listed = client.get("/tileMatrixSets").json()["tileMatrixSets"]
    assert {t["id"] for t in listed} == {"WebMercatorQuad", "WorldCRS84Quad", "CGCS2000Quad"}
    for link in client.get("/").json()["links"]:
        if link["rel"].endswith("tiling-schemes"):
            assert client.get(link["href"]).status_code == 200, link
    cgcs = client.get("/tileMatrixSets/CGCS2000Quad").json()
    assert cgcs["crs"] == "http://www.opengis.net/def/crs/EPSG/0/4490"
    first = cgcs["tileMatrices"][0]
    assert (first["id"], first["matrixWidth"], first["matrixHeight"]) == ("1", 2, 1)
    assert first["cellSize"] == pytest.approx(180 / 256)
    assert first["pointOfOrigin"] == [90, -180]  # lat, lon: EPSG:4490's axis order


def test_collection_links_its_tilesets_and_tilejson(client, city):
    doc = get(client, "/collections/tra-roads", city["nrp"]).json()
    rels = {link["rel"]: link["href"] for link in doc["links"]}
    tilesets = get(client, rels["http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"]).json()
    assert {t["tileMatrixSetURI"].rsplit("/", 1)[-1] for t in tilesets["tilesets"]} == {
        "WebMercatorQuad",
        "WorldCRS84Quad",
        "CGCS2000Quad",
    }
    tj = get(client, "/collections/tra-roads/tiles/WebMercatorQuad?f=tilejson").json()
    assert tj["tiles"][0].endswith("/collections/tra-roads/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert tj["vector_layers"][0]["id"] == "tra-roads"


# -- tile truth ---------------------------------------------------------------------------
CASES = [
    ("nrp-landuse", "WebMercatorQuad", 12),
    ("nrp-landuse", "WebMercatorQuad", 15),
    ("nrp-landuse", "CGCS2000Quad", 13),
    ("tra-roads", "WebMercatorQuad", 13),
    ("tra-roads", "CGCS2000Quad", 11),
    ("rer-parcels", "WebMercatorQuad", 16),
    ("wat-water_level_sensors", "WebMercatorQuad", 11),
]


@pytest.mark.parametrize(("collection", "tms", "z"), CASES)
def test_tile_holds_exactly_the_features_meeting_it(client, city, collection, tms, z):
    frame, id_field, _ = layer_truth(city["data"], collection)
    rng = random.Random(f"{collection}{tms}{z}")
    _, tile_of, _ = TMS[tms]
    seen_nonempty = 0
    for _ in range(4):
        point = frame.geometry.iloc[rng.randrange(len(frame))].representative_point()
        y, x = tile_of(point.x + rng.uniform(-0.002, 0.002), point.y, z)
        reply = get(client, f"/collections/{collection}/tiles/{tms}/{z}/{y}/{x}", city["rer"])
        assert reply.status_code in (200, 204), reply.text
        must, may, projected, box = truth(frame, id_field, tms, z, y, x)
        if reply.status_code == 204:
            assert not must
            continue
        seen_nonempty += 1
        features = decode(reply.content)[collection]["features"]
        got = [f["properties"][id_field] for f in features]
        assert len(got) == len(set(got)), "a feature appears once"
        assert must <= set(got), f"missing {sorted(must - set(got))[:5]}"
        assert set(got) <= may, f"not meeting the buffered tile: {sorted(set(got) - may)[:5]}"
        # geometry: the decoded shape inside the tile is the true shape within a unit
        by_id = projected.set_index(id_field).geometry
        unit = (box[2] - box[0]) / EXTENT
        inner = shapely.box(*box)
        for f in features[:50]:
            if isinstance(f["properties"][id_field], int):
                assert f["id"] == f["properties"][id_field]
            mine = to_crs_units(f["geometry"], box).intersection(inner)
            true = by_id[f["properties"][id_field]].intersection(inner)
            if true.geom_type.endswith("Polygon") and true.area > 0:
                slack = 1.5 * unit * (true.length + 8 * unit)
                assert mine.symmetric_difference(true).area <= slack
            else:
                assert mine.hausdorff_distance(true) <= 2 * unit or mine.is_empty
    assert seen_nonempty, "random tiles over features hold features"


def test_datetime_picks_the_version_features_would(client, city):
    frame, id_field, first = layer_truth(city["data"], "nrp-landuse", 0)
    layer = Catalog.open(city["data"])["nrp-landuse"]
    assert len(layer.versions) > 1, "the demo's land use has several versions"
    when = first.valid_from.date().isoformat()
    point = frame.geometry.iloc[0].representative_point()
    y, x = mercator_tile_of(point.x, point.y, 14)
    path = f"/collections/nrp-landuse/tiles/WebMercatorQuad/14/{y}/{x}"
    old = get(client, f"{path}?datetime={when}", city["nrp"])
    new = get(client, path, city["nrp"])
    must, may, _, _ = truth(frame, id_field, "WebMercatorQuad", 14, y, x)
    got = {f["properties"][id_field] for f in decode(old.content)["nrp-landuse"]["features"]}
    assert must <= got <= may
    assert old.headers["etag"] != new.headers["etag"]
    assert "immutable" in old.headers["cache-control"]  # a closed version never changes
    assert "immutable" not in new.headers["cache-control"]


def test_properties_select_attributes(client, city):
    frame, id_field, _ = layer_truth(city["data"], "tra-roads")
    point = frame.geometry.iloc[0].representative_point()
    y, x = mercator_tile_of(point.x, point.y, 12)
    reply = get(client, f"/collections/tra-roads/tiles/WebMercatorQuad/12/{y}/{x}?properties=name")
    for feature in decode(reply.content)["tra-roads"]["features"]:
        assert set(feature["properties"]) <= {id_field, "name"}
        assert id_field in feature["properties"]


# -- access control -----------------------------------------------------------------------
def parcel_tile(city):
    frame, id_field, _ = layer_truth(city["data"], "rer-parcels")
    point = frame.geometry.iloc[0].representative_point()
    y, x = mercator_tile_of(point.x, point.y, 16)
    return frame, id_field, f"/collections/rer-parcels/tiles/WebMercatorQuad/16/{y}/{x}"


def test_hidden_layer_tiles_are_404_like_a_missing_one(client, city):
    _, _, path = parcel_tile(city)
    for key in (None, city["wat"]):  # anonymous 404s also say that signing in may show more
        missing = get(client, path.replace("rer-parcels", "rer-nothing"), key)
        hidden = get(client, path, key)
        assert hidden.status_code == 404
        assert hidden.json()["description"] == missing.json()["description"].replace(
            "rer-nothing", "rer-parcels"
        )
        assert get(client, "/collections/rer-parcels/tiles", key).status_code == 404
        tilejson = "/collections/rer-parcels/tiles/WebMercatorQuad?f=tilejson"
        assert get(client, tilejson, key).status_code == 404
        dataset = get(client, "/tiles/WebMercatorQuad", key).json()
        assert "rer-parcels" not in {layer["id"] for layer in dataset["layers"]}
    assert get(client, path, city["rer"]).status_code == 200


def test_personal_fields_are_masked_in_tiles(client, city):
    frame, id_field, path = parcel_tile(city)
    owners = frame.set_index(id_field)
    masked = decode(get(client, path, city["nrp"]).content)["rer-parcels"]["features"]
    whole = decode(get(client, path, city["rer"]).content)["rer-parcels"]["features"]
    assert masked and len(masked) == len(whole)
    for feature in masked:
        row = owners.loc[feature["properties"][id_field]]
        name, number = str(row["owner_name"]), str(row["id_number"])
        assert feature["properties"]["owner_name"] == name[0] + "*" * (len(name) - 1)
        assert feature["properties"]["id_number"] == number[:6] + "****" + number[-4:]
    for feature in whole:
        row = owners.loc[feature["properties"][id_field]]
        assert feature["properties"]["owner_name"] == row["owner_name"]
    # the dataset tile masks them too
    dataset = get(client, path.replace("/collections/rer-parcels", ""), city["nrp"])
    for feature in decode(dataset.content)["rer-parcels"]["features"]:
        assert "*" in feature["properties"]["owner_name"]


# -- caching ------------------------------------------------------------------------------
def test_etag_304_and_cache_control(client, city):
    _, _, path = parcel_tile(city)
    first = get(client, path, city["rer"])
    assert first.headers["cache-control"].startswith("private")  # restricted layer
    again = get(client, path, city["rer"], headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    masked = get(client, path, city["nrp"])
    assert masked.headers["etag"] != first.headers["etag"]  # another caller's masks
    public = get(client, "/collections/tra-roads/tiles/WebMercatorQuad/10/415/843")
    assert public.headers["cache-control"].startswith("public")


def test_cached_tiles_go_gzipped_to_clients_that_take_gzip(client, city):
    """A cached tile is answered in its gzip form to a client sending Accept-Encoding:
    gzip (as browsers, GDAL and QGIS do), as itself to one refusing it; both decode to the
    same tile, each form has its own ETag, and either ETag gets a 304."""
    import gzip

    _, _, path = parcel_tile(city)
    get(client, path, city["rer"])  # rendered: cached (with its gzip form) after answering
    plain = get(client, path, city["rer"], headers={"Accept-Encoding": "identity"})
    refused = get(client, path, city["rer"], headers={"Accept-Encoding": "gzip;q=0, br"})
    assert "content-encoding" not in plain.headers and "content-encoding" not in refused.headers
    assert refused.content == plain.content and decode(plain.content)["rer-parcels"]["features"]
    raw = client.build_request(
        "GET", path, headers={"X-API-Key": city["rer"], "Accept-Encoding": "gzip"}
    )
    zipped = client.send(raw, stream=True)
    body = b"".join(zipped.iter_raw())
    assert zipped.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["vary"]
    assert len(body) < len(plain.content) and gzip.decompress(body) == plain.content
    assert zipped.headers["etag"] != plain.headers["etag"]
    for etag in (plain.headers["etag"], zipped.headers["etag"]):
        held = get(client, path, city["rer"], headers={"If-None-Match": etag})
        assert held.status_code == 304


def test_reingest_serves_the_new_version_at_once(tmp_path):
    data = tmp_path / "data"
    catalog = Catalog.open(data)
    source = tmp_path / "v1.geojson"

    def write(boxes):
        frame = gpd.GeoDataFrame(
            {"fid": list(range(len(boxes))), "name": [f"b{i}" for i in range(len(boxes))]},
            geometry=[shapely.box(*b) for b in boxes],
            crs=4490,
        )
        frame.to_file(source, driver="GeoJSON")

    write([(113.30, 33.78, 113.301, 33.781)])
    catalog.ingest(
        source,
        department="urb",
        layer="kiosks",
        version="1",
        valid_from="2024-01-01",
        classification="public",
    )
    app = create_app(data, url=None, watch=False)
    client = TestClient(app)
    y, x = mercator_tile_of(113.3005, 33.7805, 15)
    path = f"/collections/urb-kiosks/tiles/WebMercatorQuad/15/{y}/{x}"
    one = client.get(path)
    assert len(decode(one.content)["urb-kiosks"]["features"]) == 1
    write([(113.30, 33.78, 113.301, 33.781), (113.3003, 33.7803, 113.3007, 33.7807)])
    catalog.ingest(source, department="urb", layer="kiosks", version="2", valid_from="2025-01-01")
    app.state.server.publisher.refresh()  # what the publisher's watcher does within 0.25 s
    two = client.get(path, headers={"If-None-Match": one.headers["etag"]})
    assert two.status_code == 200, "the old ETag does not match the new version"
    assert two.headers["etag"] != one.headers["etag"]
    assert len(decode(two.content)["urb-kiosks"]["features"]) == 2


def test_cache_stays_within_its_bound(tmp_path):
    from shikong.server.tiles.cache import TileCache

    cache = TileCache(tmp_path, max_bytes=10_000)
    for i in range(30):
        cache.put(f"{i:064x}", b"x" * 1000)
    assert cache.size() <= 10_000
    assert cache.get(f"{29:064x}") == b"x" * 1000  # the newest stays


# -- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/collections/tra-roads/tiles/NoSuchTMS/1/0/0", 404, "NoSuchTMS"),
        ("/tileMatrixSets/NoSuchTMS", 404, "NoSuchTMS"),
        ("/collections/tra-roads/tiles/WebMercatorQuad/30/0/0", 400, "tile matrix 30"),
        ("/collections/tra-roads/tiles/WebMercatorQuad/2/4/0", 400, "rows 0 to 3"),
        ("/collections/tra-roads/tiles/WebMercatorQuad/2/0/-1", 400, "tileCol"),
        ("/collections/tra-roads/tiles/CGCS2000Quad/0/0/0", 400, "tile matrices 1 to 20"),
        ("/collections/tra-roads/tiles/WebMercatorQuad/2/1/3?datetime=yesterday", 400, "yesterday"),
        ("/collections/tra-roads/tiles/WebMercatorQuad/2/1/3?properties=nope", 400, "nope"),
        ("/collections/tra-roads/tiles/WebMercatorQuad/2/1/3?bogus=1", 400, "bogus"),
        ("/collections/tra-roads/tiles/WebMercatorQuad/2/1/3?datetime=1900-01-01", 404, "1900"),
        ("/collections/nrp-dem/tiles/WebMercatorQuad/2/1/3?f=gif", 400, "gif"),
        ("/collections/alerts/tiles/WebMercatorQuad/2/1/3", 404, "alerts"),
        ("/tiles/WebMercatorQuad/2/1/3?collections=rer-parcels", 400, "rer-parcels"),
        ("/collections/tra-roads/tiles/WorldCRS84Quad?f=tilejson", 400, "WebMercatorQuad"),
    ],
)
def test_bad_requests_answer_json_naming_the_problem(client, path, status, words):
    reply = client.get(path)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["description"]


# -- real clients -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(city):
    server = RunningServer(city["data"], free_port())
    yield server.url
    server.stop()


def _ogrinfo():
    binary = shutil.which("ogrinfo")
    if binary is None:
        if os.environ.get("SHIKONG_REQUIRE_SERVICES"):
            pytest.fail("ogrinfo is not installed and SHIKONG_REQUIRE_SERVICES is set")
        pytest.skip("ogrinfo is not installed (apt-get install gdal-bin)")
    return binary


def test_gdal_mvt_driver_reads_a_tile(live, city, tmp_path):
    import httpx

    _, id_field, path = parcel_tile(city)
    reply = httpx.get(live + path, headers={"X-API-Key": city["rer"]}, timeout=30)
    tile = tmp_path / "16.pbf"
    tile.write_bytes(reply.content)
    ours = decode(reply.content)["rer-parcels"]["features"]
    run = subprocess.run(
        [_ogrinfo(), "-ro", "-al", "-geom=NO", f"MVT:{tile}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MVT_TILE_EXTENT": str(EXTENT)},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("OGRFeature(") == len(ours)
    for feature in ours:
        assert f"{id_field} (Integer) = {feature['properties'][id_field]}" in run.stdout or (
            f"{id_field} (Integer64) = {feature['properties'][id_field]}" in run.stdout
        )


def test_gdal_ogcapi_driver_reads_the_tiles_api(live, city):
    """GDAL ≥ 3.7 (pyogrio's wheels) reads vector tiles through OGC API Tiles; Debian's
    GDAL 3.6.2 OGCAPI driver was built without vector tiles and reads Features with
    API=ITEMS (docs-draft/tiles.md)."""
    import httpx

    pyogrio = pytest.importorskip("pyogrio")
    frame, id_field, _ = layer_truth(city["data"], "hud-buildings")
    url = f"OGCAPI:{live}/collections/hud-buildings"
    pyogrio.set_gdal_config_options(  # the key as Basic auth, as QGIS and GDAL send it
        {"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": f"planner:{city['nrp']}"}
    )
    try:
        layers = [name for name, _ in pyogrio.list_layers(url)]
        assert "Zoom level 15" in layers
        got = pyogrio.read_dataframe(url, layer="Zoom level 15")
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_USERPWD": None})
    assert set(got[id_field]) == set(frame[id_field])  # every building, once per tile
    tms_doc = httpx.get(f"{live}/tileMatrixSets/WebMercatorQuad", timeout=30).json()
    assert tms_doc.get("supportedCRS"), "GDAL 3.6 reads the TMS 1.0 names"
    run = subprocess.run(
        [_ogrinfo(), "-ro", "-so", "-oo", "API=ITEMS", url, "hud-buildings"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GDAL_HTTP_HEADERS": f"X-API-Key: {city['nrp']}"},
    )
    assert run.returncode == 0 and f"Feature Count: {len(frame)}" in run.stdout, run.stdout


def test_seed_fills_the_cache_the_server_reads(city):
    from click.testing import CliRunner
    from shikong.server.cli import main
    from shikong.server.tiles.cache import TileCache

    cache = TileCache(city["data"] / "cache" / "tiles")
    before = len(cache._files())
    run = CliRunner().invoke(
        main,
        [
            "tiles",
            "seed",
            "--layer",
            "wat-reservoirs",
            "--zoom",
            "9-11",
            "--data",
            str(city["data"]),
        ],
    )
    assert run.exit_code == 0, run.output
    assert "wat-reservoirs z11:" in run.output
    assert len(cache._files()) > before
    bad = CliRunner().invoke(main, ["tiles", "seed", "--layer", "x", "--zoom", "9-2"])
    assert bad.exit_code == 2 and "first zoom is above the last" in bad.output


def test_raster_collections_answer_map_tiles_drawn_by_maps(client, city):
    from PIL import Image

    y, x = mercator_tile_of(113.3, 33.8, 11)
    reply = get(client, f"/collections/nrp-dem/tiles/WebMercatorQuad/11/{y}/{x}")
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
    import io

    image = Image.open(io.BytesIO(reply.content))
    assert image.size == (256, 256)
    hidden = f"/collections/nrp-rs_mining/tiles/WebMercatorQuad/11/{y}/{x}"
    assert get(client, hidden).status_code == 404  # shared raster, anonymous caller
    assert get(client, hidden, city["nrp"]).status_code in (200, 204)
