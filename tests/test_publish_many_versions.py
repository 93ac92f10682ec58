"""The server publishes a layer of thousands of versions without reading them all (brief
H2): the snapshot holds its current version only, an as-of request reads the one version
valid then, and a commit republishes only the layers it changed.

The truth is what was committed: version k is valid from day k to day k+1, and the few
versions asked for have assets of their own whose one feature names k.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import orjson
import pytest
from conftest import version_item
from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderItemNotFoundError
from shapely.geometry import Point
from shikong.catalog import Catalog, IngestRequest
from shikong.catalog.sqlite_store import SqliteCatalogStore
from shikong.catalog.store import LayerBatch, LayerTarget
from shikong.server.app import create_app
from shikong.server.providers.versions import PublishedVersions
from shikong.server.publish import Publisher
from starlette.testclient import TestClient

N = 5000
FIRST = datetime(2000, 1, 1, tzinfo=UTC)
ASKED = (1, 1234, 4321, 4999, N)  # versions with assets of their own
LAYER = "nrp-many"


def day(k: int) -> datetime:
    """Version k's first instant (it is valid until version k+1's)."""
    return FIRST + timedelta(days=k)


def asset(folder: Path, label: str) -> str:
    path = folder / f"{label}.parquet"
    frame = gpd.GeoDataFrame(
        {"fid": [1], "version": [label]}, geometry=[Point(113.3, 33.8)], crs="EPSG:4490"
    )
    frame.to_parquet(path)
    return str(path)


def items(folder: Path, layer: str, ks: range) -> list[dict]:
    req = IngestRequest(Path("/dev/null"), "nrp", layer)
    shared = asset(folder, f"{layer}-shared")
    out = []
    for k in ks:
        item = version_item(req, k, (113.2, 33.7, 113.4, 33.9), day(k), f"{layer} {k}")
        href = asset(folder, str(k)) if k in ASKED or k > N else shared
        item["assets"] = {"data": {"href": href, "type": "application/vnd.apache.parquet"}}
        out.append(item)
    return out


def commit(store, layer: str, ks: range, folder: Path, classification: str = "public") -> None:
    target = LayerTarget("nrp", layer, classification=classification, title=layer)
    store.commit([LayerBatch(target, "vector", items(folder, layer, ks))])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("many")
    folder = root / "assets_in"
    folder.mkdir()
    store = SqliteCatalogStore(Catalog.open(root / "data").store.paths)
    commit(store, "many", range(1, N + 1), folder)
    commit(store, "few", range(1, 3), folder)
    store.close()
    return root / "data"


@pytest.fixture
def counted(monkeypatch) -> Counter:
    """Calls of the store methods that read every version of a layer."""
    calls: Counter = Counter()
    for name in ("items_of", "versions_of"):
        original = getattr(SqliteCatalogStore, name)

        def spy(self, *args, _name=name, _original=original):
            calls[_name] += 1
            return _original(self, *args)

        monkeypatch.setattr(SqliteCatalogStore, name, spy)
    return calls


def test_the_snapshot_holds_the_current_version_only(data, counted):
    publisher = Publisher(Catalog(data), "http://t")
    assert counted == Counter()  # no layer's versions were read
    resource = publisher.snapshot.resources[LAYER]
    (feature,) = [p for p in resource["providers"] if p["type"] == "feature"]
    assert "versions" not in feature
    assert feature["current"]["version"] == str(N) and feature["current"]["valid_to"] is None
    assert feature["current"]["valid_from"] == day(N).timestamp()
    assert feature["current"]["path"] == str(data.parent / "assets_in" / f"{N}.parquet")
    assert len(orjson.dumps(resource, default=str)) < 4000  # nothing per version


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (None, str(N)),
        (day(1).strftime("%Y-%m-%dT%H:%M:%SZ"), "1"),
        ((day(1234) + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ"), "1234"),
        (day(4321).strftime("%Y-%m-%d"), "4321"),  # a bare date: its whole day
        # an interval: the last version valid in it
        (f"{day(4000):%Y-%m-%d}/{(day(4999) + timedelta(hours=1)):%Y-%m-%dT%H:%M:%SZ}", "4999"),
        (f"{day(N):%Y-%m-%d}/..", str(N)),
        ("2030-01-01", str(N)),  # the current version has no end
    ],
)
def test_an_old_datetime_reads_the_version_committed_for_it(data, counted, when, expected):
    params = {"f": "json"} | ({"datetime": when} if when else {})
    with TestClient(create_app(data, "http://t", watch=False)) as client:
        answer = client.get(f"/collections/{LAYER}/items", params=params)
    assert answer.status_code == 200, answer.text
    (feature,) = answer.json()["features"]
    assert feature["properties"]["version"] == expected
    assert counted == Counter()


def test_before_the_first_version_there_is_none(data, counted):
    publisher = Publisher(Catalog(data), "http://t")
    (feature,) = [
        p for p in publisher.snapshot.resources[LAYER]["providers"] if p["type"] == "feature"
    ]
    with pytest.raises(ProviderItemNotFoundError):
        PublishedVersions.of(feature).pick("1999-06-30")
    with pytest.raises(ProviderInvalidQueryError):
        PublishedVersions.of(feature).pick("yesterday")
    with TestClient(create_app(data, "http://t", watch=False)) as client:
        answer = client.get(f"/collections/{LAYER}/items", params={"datetime": "1999-06-30"})
    assert answer.status_code == 400  # pygeoapi: outside the collection's temporal extent
    assert counted == Counter()


def test_a_commit_republishes_only_the_layers_it_changed(tmp_path, counted):
    catalog = Catalog.open(tmp_path / "data")
    commit(catalog.store, "many", range(1, 51), tmp_path)  # (every commit relinks all)
    commit(catalog.store, "few", range(1, 3), tmp_path)
    publisher = Publisher(catalog, "http://t")
    before = publisher.snapshot.resources
    commit(catalog.store, "many", range(51, 52), tmp_path)  # a new current version
    commit(catalog.store, "few", range(3, 4), tmp_path, classification="restricted")
    assert publisher.refresh()
    after = publisher.snapshot
    (feature,) = [p for p in after.resources[LAYER]["providers"] if p["type"] == "feature"]
    assert feature["current"]["version"] == "51"
    assert after.metas["nrp-few"].classification == "restricted"  # hidden from the public
    commit(catalog.store, "many", range(52, 53), tmp_path)
    assert publisher.refresh()
    assert publisher.snapshot.resources["nrp-few"] is after.resources["nrp-few"]  # untouched
    assert publisher.snapshot.resources[LAYER] is not before[LAYER]
    db = catalog.store.index.db  # a layer the store no longer lists drops out
    with db:
        db.execute("DELETE FROM collections WHERE id='nrp-few'")
        db.execute("DELETE FROM items WHERE collection='nrp-few'")
        db.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
    assert publisher.refresh()
    assert "nrp-few" not in publisher.snapshot.resources
    assert "nrp-few" not in publisher.snapshot.metas
    assert counted == Counter()  # (a commit relinks through the index, not these)
