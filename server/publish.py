"""The catalog as pygeoapi resources, rebuilt whenever the catalog version moves.

Each published snapshot is a fresh pygeoapi ``API`` object with its own config and
OpenAPI document; requests take the current snapshot, so a new layer appears (and an
updated layer serves its new version) without a restart and without a request ever
seeing a half-built config.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pygeoapi.api import API
from pygeoapi.openapi import get_oas
from shikong.catalog import Catalog, Layer
from shikong.catalog.extension import ShikongExtension
from shikong.catalog.policy import Access, CollectionMeta
from shikong.catalog.store import CatalogStore
from shikong.spatial.errors import InputError
from shikong.spatial.temporal import parse_instant

from . import pygeoapi_fixes
from .i18n import locale_dir
from .jobs import manager_config
from .processes import bind_process, process_allowed, process_resources
from .providers.versions import publish_store, version_entry
from .tiles.links import tile_links
from .workbench.basemap import basemap_config

TEMPLATES = Path(__file__).parent / "templates"

LOGGER = logging.getLogger(__name__)
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
SERVED_CRS = [
    CRS84,
    "http://www.opengis.net/def/crs/EPSG/0/4490",
    "http://www.opengis.net/def/crs/EPSG/0/4547",
    "http://www.opengis.net/def/crs/EPSG/0/4526",
]
# Assets hold CGCS2000 longitude/latitude. pygeoapi is told CRS84 (the same numbers: PROJ
# applies no shift between the two, their difference is centimetres) so that its bbox and
# output transforms keep x=longitude; the collections advertise the true storage CRS, so
# GDAL and QGIS open layers as EPSG:4490. CGCS2000 is a static CRS: no coordinate epoch.
STORAGE_CRS = "http://www.opengis.net/def/crs/EPSG/0/4490"
PROVIDERS = "shikong.server.providers"
POLL_SECONDS = 0.25
MAX_BASE_URLS = 8


def base_config(url: str, max_items: int = 1000) -> dict[str, Any]:
    """The server part of the pygeoapi config (everything but resources)."""
    return {
        "server": {
            "url": url.rstrip("/"),
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en", "zh"],  # bare zh: babel's zh-CN breaks pygeoapi negotiation
            # over the maximum: a server-limited page with a next link (Features /req/core/limit)
            "limits": {"default_items": 10, "max_items": max_items, "on_exceed": "throttle"},
            "map": basemap_config(),  # SHIKONG_BASEMAP: none, platform or a tile URL
            "templates": {"path": str(TEMPLATES)},  # ours over pygeoapi's: nothing from a CDN
            "pretty_print": False,
            "locale_dir": locale_dir(),
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": {
                    "en": "shikong spatio-temporal information cloud",
                    "zh": "时空信息云平台",
                },
                "description": {
                    "en": "The departments' shared vector layers, rasters and "
                    "live sensor data as OGC APIs",
                    "zh": "各部门共享的矢量、栅格与物联网实时数据（OGC API）",
                },
                "keywords": ["OGC API", "STAC", "CGCS2000", "时空信息"],
                "terms_of_service": f"{url.rstrip('/')}/",
                "url": f"{url.rstrip('/')}/",
            },
            "license": {
                "name": "proprietary: government data sharing",
                "url": f"{url.rstrip('/')}/",
            },
            "provider": {"name": "shikong", "url": f"{url.rstrip('/')}/"},
            "contact": {"name": "platform operator"},
        },
        "resources": {},
    }


def _text(zh: str | None, en: str | None) -> dict[str, str]:
    return {"en": en or zh or "", "zh": zh or en or ""}


def resource_for(layer: Layer, published: int = 0) -> dict[str, Any] | None:
    """A pygeoapi collection resource for a layer, or None if it has nothing to serve.

    Only the current version is read: a feature provider finds older ones when asked
    (:class:`~.providers.versions.PublishedVersions`; ``published`` is the catalog
    version this resource is built at).
    """
    c = layer.collection
    try:
        current = version_entry(layer.current)
    except InputError:  # no versions yet
        return None
    bbox = c["extent"]["spatial"]["bbox"][0]
    start, end = c["extent"]["temporal"]["interval"][0]
    resource: dict[str, Any] = {
        "type": "collection",
        "title": _text(c.get("title"), ShikongExtension.ext(c).title_en),
        "description": _text(c.get("description"), ShikongExtension.ext(c).title_en),
        "keywords": c.get("keywords") or [layer.name],
        "links": [
            {
                "type": "application/json",
                "rel": "describedby",
                "title": "STAC collection",
                "href": f"stac/collections/{layer.id}",
            },
            *tile_links(layer.id, layer.kind),
        ],
        "extents": {
            "spatial": {"bbox": bbox, "crs": CRS84},
            "temporal": {
                "begin": parse_instant(start) if start else None,
                "end": parse_instant(end) if end else None,
            },
        },
        "providers": [],
        "shikong": {
            "department": layer.department,
            "classification": layer.classification,
            "kind": layer.kind,
        },
    }
    if layer.kind in ("vector", "sensors", "readings", "raster"):  # the kinds with styles
        resource["links"].append(styles_link(layer.id))
    if layer.kind in ("vector", "sensors"):
        resource["providers"].append(
            {
                "type": "feature",
                "name": f"{PROVIDERS}.features.ShikongFeatureProvider",
                "data": current["path"],
                "current": current,
                "published": published,
                "id_field": layer.current.id_field,
                "crs": list(SERVED_CRS),
                "storage_crs": CRS84,
                "editable": ShikongExtension.ext(c).editable,
                "options": {"data_root": str(layer.store.paths.root), "collection": layer.id},
            }
        )
    if layer.kind in ("sensors", "readings"):
        resource["providers"].append(edr_provider(layer))
        # readings go back before the sensors layer's own version and keep arriving:
        # an open extent (pygeoapi checks datetime against it; the provider parses it)
        resource["extents"]["temporal"] = {"begin": None, "end": None}
        resource["formatters"] = [{"name": "shikong.server.formatters.GeoJSONFormatter"}]
    if layer.kind == "readings":
        # readings are observations, not a feature layer: the EDR provider is the default
        # (no itemType feature: clients do not list them as vector layers); the readings
        # are still paged at /items, advertised as records (see advertise_item_types)
        resource["providers"][-1]["default"] = True
        resource["providers"].insert(0, readings_feature_provider(resource["providers"][-1]))
    if layer.kind == "raster":
        resource["links"] += coverage_description_links(layer.id)
        path = current["path"]
        resource["providers"] += [
            {
                "type": "coverage",
                "name": f"{PROVIDERS}.coverage.ShikongCoverageProvider",
                "data": path,
                # the media type GDAL's OGCAPI driver looks for to read a coverage
                "format": {"name": "GTiff", "mimetype": GEOTIFF},
            },
            {
                "type": "map",
                "name": f"{PROVIDERS}.maps.ShikongMapProvider",
                "data": path,
                "collection": layer.id,  # its style (config/styles/) fixes the colour scale
                "format": {"name": "png", "mimetype": "image/png"},
            },
        ]
    if layer.kind == "datacube":
        resource["providers"] += datacube_providers(current["path"])
    return resource if resource["providers"] else None


def datacube_providers(path: str) -> list[dict[str, Any]]:
    """A gridded time series (Zarr, CF conventions) as a coverage and as EDR position/cube.

    pygeoapi's own xarray providers read the Zarr store directly; the grid's x/y are
    CGCS2000 longitude/latitude like every other asset.
    """
    common = {
        "data": path,
        "x_field": "x",
        "y_field": "y",
        "time_field": "time",
        "storage_crs": CRS84,
        "options": {"zarr": {"consolidated": False}},  # as catalog/assets.py writes them
    }
    return [
        {
            "type": "coverage",
            "name": f"{PROVIDERS}.datacube.ShikongDatacubeCoverageProvider",
            "format": {"name": "zarr", "mimetype": "application/zip"},
            **common,
        },
        {
            "type": "edr",
            "name": f"{PROVIDERS}.datacube.ShikongDatacubeEDRProvider",
            "format": {"name": "zarr"},
            **common,
        },
    ]


GEOTIFF = "image/tiff; application=geotiff"
OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0"
# OGC scale denominators assume 0.28 mm pixels; a degree of longitude at the equator
METRES_PER_DEGREE = 6378137 * math.pi / 180
PIXEL_SIZE_M = 0.28e-3


def styles_link(collection_id: str) -> dict[str, str]:
    """The link to a collection's styles (MapLibre documents, server/maps/)."""
    return {
        "type": "application/json",
        "rel": f"{OGC_REL}/styles",
        "title": "Styles of this collection (MapLibre style documents)",
        "href": f"collections/{collection_id}/styles?f=json",
    }


def coverage_description_links(collection_id: str) -> list[dict[str, str]]:
    """Domain set and range type of a raster coverage: its grid, bands and data type.

    GDAL's OGCAPI driver reads them to open the coverage with its true size and type.
    """
    base = f"collections/{collection_id}/coverage"
    return [
        {
            "type": "application/json",
            "rel": f"{OGC_REL}/coverage-domainset",
            "title": "Domain set of the coverage (grid, extent, CRS)",
            "href": f"{base}/domainset?f=json",
        },
        {
            "type": "application/json",
            "rel": f"{OGC_REL}/coverage-rangetype",
            "title": "Range type of the coverage (bands, data type, units)",
            "href": f"{base}/rangetype?f=json",
        },
    ]


def advertise_storage_crs(body: dict[str, Any]) -> None:
    """What the collection documents say beyond pygeoapi's (the rewrite of /collections).

    EPSG:4490 as the storage CRS of every collection pygeoapi calls CRS84, and the item
    type and map scale of each collection (:func:`advertise_item_types`).
    """
    collections = body.get("collections", [body])
    for collection in collections:
        if collection.get("storageCrs") == CRS84:
            collection["storageCrs"] = STORAGE_CRS
        advertise_item_types(collection)


def advertise_item_types(collection: dict[str, Any]) -> None:
    """Give every collection an ``itemType``, and a map its native scale.

    pygeoapi sets ``itemType`` only for feature and record collections. A raster or a
    datacube is a ``coverage``; a readings collection (EDR by default) is ``record``:
    its readings are paged at /items but it is not a feature layer. A collection with a
    map gets ``scaleDenominator`` from its grid, so a client does not take the map for
    a 60,000,000-pixel image (GDAL's Maps API default resolution is 1e-8 degrees).
    """
    links = collection.get("links", [])
    rels = {link.get("rel") for link in links}
    if "itemType" not in collection:
        if f"{OGC_REL}/coverage" in rels:
            collection["itemType"] = "coverage"
        elif "data_queries" in collection or "items" in rels:
            collection["itemType"] = "record"
            if "items" not in rels:
                links += _items_links(links)
    grid = collection.get("extent", {}).get("spatial", {}).get("grid")
    if f"{OGC_REL}/map" in rels and grid and grid[0].get("resolution"):
        resolution = abs(float(grid[0]["resolution"]))
        collection["scaleDenominator"] = resolution * METRES_PER_DEGREE / PIXEL_SIZE_M


def _items_links(links: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The /items links of a collection, from its self link."""
    self_link = next((link for link in links if link.get("rel") == "self"), None)
    if self_link is None:
        return []
    base = self_link["href"].split("?")[0]
    return [
        {
            "type": "application/geo+json",
            "rel": "items",
            "title": "Items as GeoJSON",
            "href": f"{base}/items?f=json",
        },
        {
            "type": "text/html",
            "rel": "items",
            "title": "Items as HTML",
            "href": f"{base}/items?f=html",
        },
    ]


def edr_provider(layer: Layer) -> dict[str, Any]:
    """EDR over the observation store for a sensors layer (or a readings layer's sensors)."""
    sensors = layer.sensors()
    frame = sensors.to_geodataframe()
    unit = str(frame["unit"].iloc[0]) if "unit" in frame and len(frame) else ""
    parameters = layer.observations.parameters(sensors.id) or ["value"]
    return {
        "type": "edr",
        "name": f"{PROVIDERS}.edr.ShikongEDRProvider",
        "data": str(layer.store.paths.observations_archive),
        "store_layer": sensors.id,
        "sensors_path": str(sensors.current.asset_path),
        "parameters": {p: unit if p == "value" else "" for p in parameters},
    }


def readings_feature_provider(edr: dict[str, Any]) -> dict[str, Any]:
    """The readings behind an EDR provider, also paged as features (OGC API Features)."""
    return {
        "type": "feature",
        "name": f"{PROVIDERS}.readings.ShikongReadingsProvider",
        "data": edr["data"],
        "store_layer": edr["store_layer"],
        "sensors_path": edr["sensors_path"],
        "id_field": "id",
        "crs": list(SERVED_CRS),
        "storage_crs": CRS84,
    }


def alerts_resource(catalog: Catalog) -> dict[str, Any]:
    """The collection of fired alerts (from the observation store)."""
    return {
        "type": "collection",
        "title": {"en": "Sensor alerts", "zh": "物联网预警"},
        "description": {
            "en": "Alerts fired by the alert rules on live readings",
            "zh": "实时监测数据触发的预警",
        },
        "keywords": ["alerts", "预警", "IoT"],
        "extents": {"spatial": {"bbox": [73, 3, 136, 54], "crs": CRS84}},
        "providers": [
            {
                "type": "feature",
                "name": f"{PROVIDERS}.alerts.ShikongAlertsProvider",
                "data": str(catalog.paths.root),
                "id_field": "id",
            }
        ],
        "shikong": {"department": "ema", "classification": "shared", "kind": "alerts"},
    }


def collection_metas(resources: dict[str, Any]) -> dict[str, CollectionMeta]:
    """Owner and classification of every published collection (what the policy reads)."""
    return {
        rid: CollectionMeta(rid, r["shikong"]["department"], r["shikong"]["classification"])
        for rid, r in resources.items()
        if r.get("type") == "collection" and "shikong" in r
    }


class Snapshot:
    """One published state of the catalog, served to each caller as its own view.

    ``resources`` holds every collection and process; no request is answered from it
    directly. :meth:`view` filters it for one :class:`Access` (hidden collections absent,
    personal fields masked, editing only where allowed) and builds a pygeoapi ``API`` for
    it, cached per distinct Access: departments with the same rights share one.
    """

    def __init__(
        self,
        version: int,
        config: dict[str, Any],
        resources: dict[str, Any],
        metas: dict[str, CollectionMeta],
    ) -> None:
        self.version = version
        self.config = config
        self.resources = resources
        self.metas = metas  # every catalog collection, published over OGC API or not
        self._views: dict[tuple[Access, str], View] = {}
        self._lock = threading.Lock()

    def view(self, access: Access, base_url: str | None = None) -> View:
        """The API of one access view, writing its links with ``base_url``.

        A request's Host picks its base URL (see public_url); only MAX_BASE_URLS distinct
        ones get their own views, so a caller inventing hosts cannot fill the memory.
        """
        url = (base_url or self.config["server"]["url"]).rstrip("/")
        found = self._views.get((access, url))
        if found is not None:
            return found
        with self._lock:
            known = {u for _, u in self._views}
            if url not in known and len(known) >= MAX_BASE_URLS:
                url = self.config["server"]["url"]
            found = self._views.get((access, url))
            if found is None:
                resources = absolute_links(restrict(self.resources, access), url)
                found = View(with_base_url(self.config, url), resources)
                self._views[(access, url)] = found
            return found


class View:
    """The pygeoapi API of one access view; its OpenAPI document is built on first use."""

    def __init__(self, config: dict[str, Any], resources: dict[str, Any]) -> None:
        self.resources = resources
        self.config = {**config, "resources": resources}
        self.api = API(self.config, "")
        self._openapi_lock = threading.Lock()

    def ensure_openapi(self) -> None:
        if self.api.openapi:
            return
        with self._openapi_lock:
            if not self.api.openapi:
                document = get_oas(copy.deepcopy(self.config), fail_on_invalid_collection=False)
                self.api.openapi = orjson.dumps(
                    pygeoapi_fixes.anchored_refs(pygeoapi_fixes.unique_operation_ids(document)),
                    default=_json_default,
                ).decode()


def with_base_url(config: dict[str, Any], url: str) -> dict[str, Any]:
    """The server config with every link written from another base URL."""
    if url == config["server"]["url"]:
        return config
    fresh = base_config(url, config["server"]["limits"]["max_items"])
    out = copy.copy(config)
    out["server"] = {**config["server"], "url": fresh["server"]["url"]}
    out["metadata"] = fresh["metadata"]
    return out


def absolute_links(resources: dict[str, Any], url: str) -> dict[str, Any]:
    """Resource links written relative to the server root, made absolute for one base URL.

    (A relative ``stac/collections/x`` in a collection page resolves under /collections/.)
    """
    out = {}
    for rid, resource in resources.items():
        links = resource.get("links")
        if links and any(not link["href"].startswith(("http:", "https:")) for link in links):
            resource = {
                **resource,
                "links": [
                    link
                    if link["href"].startswith(("http:", "https:"))
                    else {**link, "href": f"{url}/{link['href'].lstrip('/')}"}
                    for link in links
                ],
            }
        out[rid] = resource
    return out


def restrict(resources: dict[str, Any], access: Access) -> dict[str, Any]:
    """The resources one access view may see, with masks and editing set accordingly."""
    out: dict[str, Any] = {}
    for rid, resource in resources.items():
        if resource.get("type") == "process":
            if process_allowed(resource, access):
                out[rid] = bind_process(resource, access)
            continue
        if rid not in access.visible:
            continue
        resource = copy.deepcopy(resource)
        masks = access.masked_fields(rid)
        for provider in resource["providers"]:
            if provider["type"] != "feature":
                continue
            if rid == "alerts":
                provider["visible_layers"] = sorted(access.visible)
            provider["editable"] = bool(provider.get("editable")) and rid in access.writable
            if masks:
                provider["mask"] = masks
        out[rid] = resource
    return out


@dataclass(frozen=True)
class PublishedLayer:
    """What one catalog layer puts in a snapshot."""

    key: tuple[str, str]  # (department, layer name): how the store lists it
    meta: CollectionMeta
    resource: dict[str, Any] | None  # None: nothing to serve, or it could not be built
    failed: bool = False  # tried again at every republication

    @property
    def reads(self) -> set[str]:
        """The other layers its resource is built from (a readings layer's sensors)."""
        providers = (self.resource or {}).get("providers", [])
        return {p["store_layer"] for p in providers if "store_layer" in p}


class Publisher:
    """Keeps an up-to-date snapshot of the catalog as a pygeoapi API.

    A republication rebuilds only the layers whose collection changed since the snapshot's
    catalog version (the store keeps ``changed_version`` on collections), the readings
    layers of a changed sensors layer and the layers that could not be built; a layer the
    store no longer lists drops out. No version but each layer's current one is read.
    """

    def __init__(
        self,
        catalog: Catalog,
        url: str,
        extra_resources: Callable[[], dict[str, Any]] | None = None,
        max_items: int = 1000,
    ) -> None:
        self.catalog = catalog
        self.url = url
        self.max_items = max_items
        self.extra_resources = extra_resources or dict
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._layers: dict[str, PublishedLayer] = {}
        publish_store(catalog.store)  # the providers read older versions through it
        self.snapshot = self._build()

    def _changed_layers(self, store: CatalogStore) -> list[dict[str, Any]]:
        """Collections to (re)publish, without their per-version links (a layer's
        document has one per version); drops the layers the store no longer lists."""
        before: Snapshot | None = getattr(self, "snapshot", None)
        if before is None:
            return store.collection_heads()
        listed = {(d, name) for d in store.departments() for name in store.layer_names(d)}
        for cid in [cid for cid, p in self._layers.items() if p.key not in listed]:
            del self._layers[cid]
        docs = store.collection_heads(changed_since=before.version)
        changed = {c["id"] for c in docs}
        again = {
            cid
            for cid, p in self._layers.items()
            if cid not in changed and (p.failed or p.reads & changed)
        }
        if again:
            docs += [c for c in store.collection_heads() if c["id"] in again]
        return docs

    def _publish(self, layer: Layer, version: int) -> PublishedLayer:
        meta = CollectionMeta(layer.id, layer.department, layer.classification)
        key = (layer.department, layer.name)
        try:
            return PublishedLayer(key, meta, resource_for(layer, version))
        except Exception:  # one broken layer must not unpublish the others
            LOGGER.exception("cannot publish %s", layer.id)
            return PublishedLayer(key, meta, None, failed=True)

    def _build(self) -> Snapshot:
        version = self.catalog.version
        store = self.catalog.store
        for doc in self._changed_layers(store):
            layer = Layer(store, doc, lambda: self.catalog.observations)
            self._layers[layer.id] = self._publish(layer, version)
        resources: dict[str, Any] = {
            cid: p.resource for cid, p in sorted(self._layers.items()) if p.resource is not None
        }
        resources.update(self.extra_resources())
        config = base_config(self.url, self.max_items)
        jobs = self.catalog.paths.jobs
        jobs.mkdir(parents=True, exist_ok=True)
        config["server"]["manager"] = manager_config(self.catalog.paths.root, jobs)
        resources.update(process_resources(self.catalog.paths.root))
        if any(r["shikong"]["kind"] == "sensors" for r in resources.values() if "shikong" in r):
            resources["alerts"] = alerts_resource(self.catalog)
        metas = {cid: p.meta for cid, p in sorted(self._layers.items())}
        metas.update(collection_metas(resources))
        snapshot = Snapshot(version, config, resources, metas)
        LOGGER.info("published catalog version %s (%d resources)", version, len(resources))
        return snapshot

    def refresh(self) -> bool:
        """Publish the catalog again if its version moved; True if it did."""
        with self._lock:
            if self.catalog.version == self.snapshot.version:
                return False
            self.snapshot = self._build()
            return True

    def watch(self) -> threading.Thread:
        """Follow the catalog version in the background: a store that can announce its
        commits (``CatalogStore.watch_versions``: PostgreSQL's LISTEN/NOTIFY, which also reads the
        version every few seconds should a notification be lost) wakes it at once;
        otherwise it polls (a cheap SQLite read)."""
        announced = self.catalog.store.watch_versions(self._stop)

        def refresh() -> None:
            try:
                self.refresh()
            except Exception:  # keep serving the last good snapshot
                LOGGER.exception("republishing failed")

        def poll() -> None:
            while not self._stop.wait(POLL_SECONDS):
                refresh()

        def listen() -> None:
            for version in announced:
                if version != self.snapshot.version:
                    refresh()

        target = poll if announced is None else listen
        thread = threading.Thread(target=target, name="shikong-publisher", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return json.JSONEncoder().default(value)
