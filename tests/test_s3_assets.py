"""Assets in S3-compatible object storage (issue 21, point 2), against a real SeaweedFS
(``tests/s3_server.py``): a vector layer and the demo DEM ingested with
``SHIKONG_ASSETS=s3://…`` are served as the same layers ingested into a local folder,
both checked against the source files read by geopandas and rasterio; ``/assets`` proxies
objects only to callers who may see them; a failed or killed upload leaves the catalog as
it was and no object behind; ``shikong migrate --assets`` moves the assets with their
checksums verified, and a second run does nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import morecantile
import numpy as np
import pytest
import rasterio
from pg_cluster import pg_cluster, pg_database  # noqa: F401
from rasterio.windows import from_bounds
from s3_server import REGION, s3_assets, s3_bucket, s3_server  # noqa: F401
from shapely.geometry import box
from starlette.testclient import TestClient

SHIKONG = Path(sys.executable).with_name("shikong")
BBOX = (113.2, 33.7, 113.4, 33.9)
VECTOR = "nrp/farmland_protection.geojson"
HIDDEN = "nrp/mining_rights.geojson"  # ingested restricted: anonymous callers never see it
DEM = "nrp/dem.tif"


def client(server, bucket: str):
    """An S3 client of the test's own (not shikong's) on the run's bucket."""
    from obstore.store import S3Store

    return S3Store(
        bucket,
        endpoint=server.endpoint,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        region=REGION,
        client_options={"allow_http": True},
    )


def objects(server, bucket: str, prefix: str) -> dict[str, dict]:
    """The bucket's objects under a prefix."""
    import obstore

    return {m["path"]: m for batch in obstore.list(client(server, bucket), prefix) for m in batch}


def fetch(server, bucket: str, key: str) -> bytes:
    import obstore

    return bytes(obstore.get(client(server, bucket), key).bytes())


@pytest.fixture
def assets(request) -> str:
    """``s3://<the run's bucket>/<a fresh prefix>``, the environment pointed at SeaweedFS
    (``s3_server.s3_assets``)."""
    return request.getfixturevalue("s3_assets")


@pytest.fixture
def weed(request):
    """The running SeaweedFS (``s3_server.s3_server``): its endpoint and keys."""
    return request.getfixturevalue("s3_server")


def build(data: Path, sources: Path) -> None:
    """Three layers: a public vector layer, a restricted one and the public DEM."""
    from shikong.catalog import Catalog

    catalog = Catalog.open(data)
    catalog.ingest(sources / VECTOR, department="nrp", layer="farmland", classification="public")
    catalog.ingest(sources / HIDDEN, department="nrp", layer="mining", classification="restricted")
    catalog.ingest(sources / DEM, department="nrp", layer="elevation", classification="public")


@pytest.fixture
def twins(demo_data, assets, tmp_path, monkeypatch) -> tuple[Path, Path, str]:
    """The same three layers ingested into a local folder and into object storage."""
    sources = demo_data.parent / "sources"
    local, remote = tmp_path / "local", tmp_path / "remote"
    build(local, sources)
    monkeypatch.setenv("SHIKONG_ASSETS", assets)
    build(remote, sources)
    return local, remote, assets


def source_hits(path: Path) -> set[int]:
    """Row numbers of the source's features that meet BBOX (ingest numbers rows so)."""
    frame = gpd.read_file(path).to_crs(4490)
    return set(np.flatnonzero(frame.intersects(box(*BBOX))).tolist())


def window(path: Path, bounds) -> np.ndarray:
    with rasterio.open(path) as src:
        win = from_bounds(*bounds, src.transform).round_offsets().round_lengths()
        return src.read(1, window=win)


def test_layers_in_object_storage_are_served_as_from_a_local_folder(twins, demo_data, weed):
    from shikong.catalog import Catalog
    from shikong.catalog.extension import validation_errors
    from shikong.server.app import create_app

    local, remote, url = twins
    sources = demo_data.parent / "sources"
    bucket, prefix = url[len("s3://") :].split("/", 1)
    item = Catalog(remote)["nrp-farmland"].current.item
    assert item["assets"]["data"]["href"] == f"{url}/nrp/farmland/1/data.parquet"
    assert validation_errors(item) == []  # STAC 1.1 and the shikong extension
    assert not [p for p in (remote / "assets").rglob("*") if p.is_file()]  # nothing local
    assert not [p for p in (remote / ".staging-assets").rglob("*") if p.is_file()]
    stored = objects(weed, bucket, prefix)
    assert set(stored) == {
        f"{prefix}/nrp/farmland/1/data.parquet",
        f"{prefix}/nrp/mining/1/data.parquet",
        f"{prefix}/nrp/elevation/1/data.tif",
    }
    # the object is the file ingest checksummed
    body = fetch(weed, bucket, f"{prefix}/nrp/farmland/1/data.parquet")
    assert "1220" + hashlib.sha256(body).hexdigest() == item["assets"]["data"]["file:checksum"]

    truth = source_hits(sources / VECTOR)
    assert truth, "the bbox meets some farmland"
    with rasterio.open(sources / DEM) as src:
        px = 16 * src.res[0]
    bounds = (113.1, 33.7, 113.1 + px, 33.7 + px)
    x, y, z = morecantile.tms.get("WebMercatorQuad").tile(113.3, 33.8, 11)
    answers = {}
    for name, data in (("local", local), ("s3", remote)):
        with TestClient(create_app(data, "http://testserver", watch=False)) as client:
            got = client.get(
                "/collections/nrp-farmland/items",
                params={"bbox": ",".join(map(str, BBOX)), "limit": 1000, "f": "json"},
            )
            assert got.status_code == 200, got.text
            ids = {f["id"] for f in got.json()["features"]}
            cov = client.get(
                "/collections/nrp-elevation/coverage",
                params={"f": "GTiff", "bbox": ",".join(map(str, bounds))},
            )
            assert cov.status_code == 200, cov.text
            with rasterio.MemoryFile(cov.content) as mem, mem.open() as src:
                grid = src.read(1)
            tile = client.get(f"/collections/nrp-elevation/tiles/WebMercatorQuad/{z}/{y}/{x}")
            assert tile.status_code == 200, tile.text
            answers[name] = (ids, grid, tile.content)
    assert answers["s3"][0] == answers["local"][0] == truth
    np.testing.assert_array_equal(answers["s3"][1], answers["local"][1])
    np.testing.assert_allclose(answers["s3"][1], window(sources / DEM, bounds))
    assert answers["s3"][2] == answers["local"][2] and len(answers["s3"][2]) > 100

    # the library reads the same: GeoParquet row groups by ranges, the COG through /vsis3/
    catalog = Catalog(remote)
    frame = catalog["nrp-farmland"].to_geodataframe(bbox=BBOX)
    assert truth <= set(frame["fid"])  # row groups that may match: a superset, no miss
    dem = catalog["nrp-elevation"].current.to_xarray(masked=False)
    with rasterio.open(sources / DEM) as src:
        np.testing.assert_array_equal(dem.isel(band=0).values, src.read(1))


def test_a_data_cube_in_object_storage_reads_as_its_source(
    demo_data, assets, tmp_path, monkeypatch
):
    """Zarr through zarr's object store (the library) and pygeoapi's xarray provider
    (the server's EDR), against the NetCDF source read by xarray."""
    import xarray as xr
    from shikong.catalog import Catalog
    from shikong.server.app import create_app

    source = demo_data.parent / "sources" / "met/rainfall_grid.nc"
    monkeypatch.setenv("SHIKONG_ASSETS", assets)
    data = tmp_path / "data"
    catalog = Catalog.open(data)
    catalog.ingest(source, department="met", layer="rain", classification="public")
    href = catalog["met-rain"].current.item["assets"]["data"]["href"]
    assert href == f"{assets}/met/rain/1/data.zarr"
    truth = xr.open_dataset(source)
    cube = catalog["met-rain"].to_xarray()
    np.testing.assert_array_equal(cube["precipitation"].values, truth["precipitation"].values)
    lon, lat = float(truth.x[7]), float(truth.y[5])
    with TestClient(create_app(data, "http://testserver", watch=False)) as client:
        got = client.get(
            "/collections/met-rain/position",
            params={"coords": f"POINT({lon} {lat})", "f": "json"},
        )
        assert got.status_code == 200, got.text
        values = got.json()["ranges"]["precipitation"]["values"]
    expected = truth["precipitation"].isel(x=7, y=5).values
    np.testing.assert_allclose(np.array(values, dtype=float), expected, rtol=1e-6)


def test_assets_downloads_are_proxied_after_the_access_check(twins, demo_data, weed):
    from shikong.catalog import Catalog
    from shikong.server.app import create_app
    from shikong.server.identity import KeyStore

    local, remote, url = twins
    bucket = url[len("s3://") :].split("/", 1)[0]
    key, _ = KeyStore(remote).create("nrp", "owner")
    dem_item = Catalog(remote)["nrp-elevation"].current.item
    dem_file = local / "assets/nrp/elevation/1/data.tif"  # the local twin, same source
    with TestClient(create_app(remote, "http://testserver", watch=False)) as client:
        item = client.get("/stac/collections/nrp-elevation/items/nrp-elevation-v1").json()
        href = item["assets"]["data"]["href"]
        assert href == "http://testserver/assets/nrp/elevation/1/data.tif"  # not the bucket
        whole = client.get(href)
        assert whole.status_code == 200
        assert whole.content == dem_file.read_bytes()
        assert (
            "1220" + hashlib.sha256(whole.content).hexdigest()
            == (dem_item["assets"]["data"]["file:checksum"])
        )
        part = client.get(href, headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206
        assert part.content == dem_file.read_bytes()[100:1100]
        assert part.headers["content-range"] == f"bytes 100-1099/{dem_file.stat().st_size}"

        # a layer the caller may not see: 404, as for a name that does not exist,
        # never a redirect to the bucket and never the bucket's name
        hidden = "/assets/nrp/mining/1/data.parquet"
        for response in (
            client.get(hidden, follow_redirects=False),
            client.get("/assets/nrp/nothing/1/data.parquet", follow_redirects=False),
        ):
            assert response.status_code == 404
            assert "location" not in response.headers
            assert bucket not in response.text and "s3" not in response.text.lower()
        owner = client.get(hidden, headers={"X-API-Key": key})
        assert owner.status_code == 200
        expected = (local / "assets/nrp/mining/1/data.parquet").read_bytes()
        assert gpd.read_parquet(io.BytesIO(owner.content)).equals(
            gpd.read_parquet(io.BytesIO(expected))
        )
        # an object no committed version names is not served, though it is in the bucket
        from shikong.catalog.asset_store import S3Assets
        from shikong.catalog.storage import DataDir

        stray = remote / "stray.tif"
        stray.write_bytes(b"not a version")
        S3Assets(DataDir(remote), url).upload(stray, "nrp/elevation/9/data.tif")
        assert client.get("/assets/nrp/elevation/9/data.tif").status_code == 404
        # a name inside a committed asset that no object has
        assert client.get("/assets/nrp/elevation/1/data.tif/nothing").status_code == 404


def test_a_failed_upload_leaves_the_catalog_and_the_bucket_as_they_were(
    demo_data, assets, weed, tmp_path, monkeypatch
):
    from shikong.catalog import Catalog
    from shikong.catalog.asset_store import AssetStoreError

    sources = demo_data.parent / "sources"
    bucket, prefix = assets[len("s3://") :].split("/", 1)
    data = tmp_path / "data"
    monkeypatch.setenv("SHIKONG_ASSETS", assets)
    catalog = Catalog.open(data)
    catalog.ingest(sources / VECTOR, department="nrp", layer="farmland")
    before = (catalog.version, json.dumps(catalog.store.items_of("nrp-farmland")))
    with monkeypatch.context() as m:  # keys that may read and list, not write
        m.setenv("AWS_ACCESS_KEY_ID", weed.reader_key)
        m.setenv("AWS_SECRET_ACCESS_KEY", weed.reader_secret)
        with pytest.raises(AssetStoreError, match="uploading data.tif.*AccessDenied"):
            catalog.ingest(sources / DEM, department="nrp", layer="elevation")
    assert (catalog.version, json.dumps(catalog.store.items_of("nrp-farmland"))) == before
    assert catalog.store.collection("nrp-elevation") is None
    assert not [p for p in (data / ".staging-assets").rglob("*") if p.is_file()]
    assert set(objects(weed, bucket, prefix)) == {f"{prefix}/nrp/farmland/1/data.parquet"}
    assert not list((data / ".pending-assets").glob("*.json"))

    # killed between the upload and the commit: no item; the next ingest removes the object
    env = {**os.environ, "SHIKONG_FAULT": "after-asset", "SHIKONG_ASSETS": assets}
    argv = [str(SHIKONG), "ingest", str(sources / DEM), "-d", "nrp", "-l", "elevation"]
    killed = subprocess.run([*argv, "--data", str(data)], env=env, capture_output=True)
    assert killed.returncode == -9
    assert f"{prefix}/nrp/elevation/1/data.tif" in objects(weed, bucket, prefix)
    assert Catalog(data).store.collection("nrp-elevation") is None
    Catalog.open(data).ingest(sources / HIDDEN, department="nrp", layer="mining")
    assert not list((data / ".pending-assets").glob("*.json"))
    assert set(objects(weed, bucket, prefix)) == {
        f"{prefix}/nrp/farmland/1/data.parquet",
        f"{prefix}/nrp/mining/1/data.parquet",
    }

    # an object already where the version would go (another catalog on the same prefix):
    # refused before anything is written, and left as it is
    import obstore

    foreign = f"{prefix}/nrp/elevation/1/data.tif"
    obstore.put(client(weed, bucket), foreign, b"another catalog's version")
    with pytest.raises(AssetStoreError, match="already holds 1 objects"):
        Catalog.open(data).ingest(sources / DEM, department="nrp", layer="elevation")
    assert fetch(weed, bucket, foreign) == b"another catalog's version"
    assert Catalog(data).store.collection("nrp-elevation") is None
    assert not list((data / ".pending-assets").glob("*.json"))


def test_a_bad_object_storage_is_one_line(assets, tmp_path):
    env = {**os.environ, "SHIKONG_ASSETS": ""}
    bad = assets.replace("s3://", "s3://no-such-bucket-")
    for value, says in ((bad, "NoSuchBucket"), ("ftp://x/y", "give s3://bucket/prefix")):
        done = subprocess.run(
            [str(SHIKONG), "catalog", "list", "--data", str(tmp_path), "--assets", value],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], lines


@pytest.fixture
def dsn(request) -> str:
    """A fresh PostgreSQL database with PostGIS (``pg_cluster.pg_database``)."""
    return request.getfixturevalue("pg_database")


def shikong(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(SHIKONG), *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )


def test_migrate_moves_the_assets_with_their_checksums_and_twice_is_a_no_op(
    demo_data, assets, weed, dsn, tmp_path
):
    import psycopg
    from shikong.catalog import Catalog
    from shikong.server.app import create_app

    sources = demo_data.parent / "sources"
    bucket, prefix = assets[len("s3://") :].split("/", 1)
    city = tmp_path / "city"
    build(city, sources)  # assets in the data directory
    local_items = {
        i["id"]: i
        for c in ("nrp-farmland", "nrp-mining", "nrp-elevation")
        for i in Catalog(city).store.items_of(c)
    }
    files = {
        p.relative_to(city / "assets").as_posix(): p
        for p in (city / "assets").rglob("*")
        if p.is_file()
    }
    assert len(files) == 3

    # a prefix whose objects are not this catalog's: refused before the catalog is copied
    import obstore

    taken = f"{prefix}-taken/nrp/elevation/1/data.tif"
    obstore.put(client(weed, bucket), taken, b"another catalog's version")
    refused = shikong("migrate", "--data", city, "--to", dsn, "--assets", f"{assets}-taken")
    assert refused.returncode == 2
    assert "already holds other bytes" in refused.stderr
    assert fetch(weed, bucket, taken) == b"another catalog's version"
    with psycopg.connect(dsn) as db:
        assert db.execute("SELECT count(*) FROM shikong.item_json").fetchone() == (0,)

    first = shikong("migrate", "--data", city, "--to", dsn, "--assets", assets)
    assert first.returncode == 0, first.stderr
    assert "3 assets" in first.stdout
    with psycopg.connect(dsn) as db:
        copied = dict(db.execute("SELECT id, json FROM shikong.item_json").fetchall())
    assert copied.keys() == local_items.keys()
    for item_id, item in copied.items():
        href = item["assets"]["data"]["href"]
        relative = href.removeprefix(f"{assets}/")
        assert href.startswith(f"{assets}/") and relative in files, href
        # the object holds the very bytes of the file
        body = fetch(weed, bucket, f"{prefix}/{relative}")
        assert (
            hashlib.sha256(body).digest() == hashlib.sha256(files[relative].read_bytes()).digest()
        )
        # and nothing else of the item changed
        rest = {**item, "assets": {}}
        assert rest == {**local_items[item_id], "assets": {}}
    # the data directory's own catalog is left as it was
    assert Catalog(city)["nrp-farmland"].current.item == local_items["nrp-farmland-v1"]
    stored = objects(weed, bucket, prefix)
    assert len(stored) == 3

    second = shikong("migrate", "--data", city, "--to", dsn, "--assets", assets)
    assert second.returncode == 0, second.stderr
    assert "already migrated" in second.stdout
    assert objects(weed, bucket, prefix) == stored  # not uploaded again
    elsewhere = shikong("migrate", "--data", city, "--to", dsn, "--assets", f"{assets}-other")
    assert elsewhere.returncode == 2
    assert "its assets elsewhere" in elsewhere.stderr

    # served from PostgreSQL and object storage alone: the local assets are gone
    dem_bytes = files["nrp/elevation/1/data.tif"].read_bytes()
    shutil.rmtree(city / "assets")
    (city / "index.sqlite").unlink()
    truth = source_hits(sources / VECTOR)
    with TestClient(create_app(city, "http://testserver", watch=False, database=dsn)) as http:
        got = http.get(
            "/collections/nrp-farmland/items",
            params={"bbox": ",".join(map(str, BBOX)), "limit": 1000, "f": "json"},
        )
        assert got.status_code == 200, got.text
        assert {f["id"] for f in got.json()["features"]} == truth
        tif = http.get("/assets/nrp/elevation/1/data.tif")
        assert tif.status_code == 200
        assert tif.content == dem_bytes
