"""The resource directory as an OGC API Records service at ``/directory`` (issue 22).

A small pygeoapi API of its own (landing page, conformance, one ``directory`` record
collection), not a collection among the layers: it serves metadata of every layer
(:mod:`shikong.catalog.directory`) to any signed-in department, whatever it may read,
while ``/collections`` lists only what the caller may read. Anonymous callers get 404
for the whole tree, as for anything they may not see. Records are rebuilt when the
catalog version moves, so an ingested layer appears at once.

    /directory                                   landing page
    /directory/conformance
    /directory/collections[/directory]
    /directory/collections/directory/items       ?q=&department=&kind=&classification=&bbox=
    /directory/collections/directory/items/{id}
    /directory/collections/directory/queryables
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pygeoapi import api as core_api
from pygeoapi.api import API, APIRequest
from pygeoapi.api import itemtypes as itemtypes_api
from pygeoapi.provider.base import BaseProvider, ProviderItemNotFoundError
from shikong.catalog import Catalog
from shikong.catalog import directory as library
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import public_url
from .problems import problem
from .publish import CRS84, base_config

if TYPE_CHECKING:
    from .app import Server

COLLECTION = "directory"
FILTERS = ("department", "kind", "classification")
_cache: dict[str, tuple[int, list[dict[str, Any]]]] = {}
_cache_lock = threading.Lock()


def cached_records(root: str, personal: dict[str, Any]) -> list[dict[str, Any]]:
    """The directory's records of a data directory, rebuilt when its catalog moves."""
    catalog = Catalog.open(root)
    version = catalog.version
    with _cache_lock:
        hit = _cache.get(root)
        if hit is not None and hit[0] == version:
            return hit[1]
    found = library.records(catalog, personal)
    with _cache_lock:
        _cache[root] = (version, found)
    return found


class DirectoryProvider(BaseProvider):
    """pygeoapi ``record`` provider over the catalog's layers (metadata only)."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.personal = provider_def.get("personal") or {}
        self.get_fields()

    def get_fields(self) -> dict[str, Any]:
        self._fields = {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "department": {"type": "string"},
            "kind": {"type": "string"},
            "classification": {"type": "string"},
            "q": {"type": "string"},
        }
        return self._fields

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list | None = None,
        datetime_: str | None = None,
        properties: list | None = None,
        sortby: list | None = None,
        select_properties: list | None = None,
        skip_geometry: bool = False,
        q: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        wanted = dict(properties or [])
        found = library.search(
            cached_records(self.data, self.personal),
            q=q,
            bbox=bbox or None,
            **{name: wanted.get(name) for name in FILTERS},
        )
        page = [] if resulttype == "hits" else found[offset : offset + limit]
        if skip_geometry:
            page = [{**rec, "geometry": None} for rec in page]
        return {
            "type": "FeatureCollection",
            "features": page,
            "numberMatched": len(found),
            "numberReturned": len(page),
        }

    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        for rec in cached_records(self.data, self.personal):
            if rec["id"] == identifier:
                return rec
        raise ProviderItemNotFoundError(f"no layer {identifier!r} in the directory")


def resource(root: str, personal: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "collection",
        "title": {"en": "Resource directory", "zh": "数据资源目录"},
        "description": {
            "en": "Every department's layers described: owner, classification, kind, "
            "extent, versions and fields (metadata only; data per the access policy)",
            "zh": "各部门图层的元数据：权属部门、密级、类型、范围、版本与字段（仅元数据）",
        },
        "keywords": ["数据资源目录", "metadata", "OGC API Records"],
        "extents": {"spatial": {"bbox": [73, 3, 136, 54], "crs": CRS84}},
        "providers": [
            {
                "type": "record",
                "name": f"{__name__}.DirectoryProvider",
                "data": root,
                "id_field": "id",
                "title_field": "title",
                "personal": personal,
            }
        ],
    }


class DirectoryApi:
    """One pygeoapi API per base URL over the directory collection."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._apis: dict[str, API] = {}
        self._lock = threading.Lock()

    def api(self) -> API:
        base = (public_url.BASE_URL.get() or self.server.publisher.url).rstrip("/")
        found = self._apis.get(base)
        if found is None:
            with self._lock:
                config = base_config(f"{base}/directory")
                root = str(self.server.catalog.paths.root)
                personal = {k: dict(v) for k, v in self.server.policy.personal_data.items()}
                config["resources"] = {COLLECTION: resource(root, personal)}
                found = self._apis.setdefault(base, API(config, ""))
        return found


def routes(server: Server) -> list[Route]:
    from .app import context

    apis = DirectoryApi(server)

    def handler(fn: Any, *names: str) -> Any:
        async def handle(request: Request) -> Response:
            if context(request).caller.anonymous:
                return problem(404, "NotFound", f"no resource at {request.url.path}")
            api = apis.api()
            req = await APIRequest.from_starlette(request, api.locales)
            args = [request.path_params.get(n) for n in names]
            headers, status, content = await run_in_threadpool(fn, api, req, *args)
            response = Response(content if content is not None else b"", int(status))
            response.headers.update(headers or {})
            return response

        return handle

    c = "/directory/collections/{collection_id}"
    return [
        Route("/directory", handler(core_api.landing_page)),
        Route("/directory/conformance", handler(core_api.conformance)),
        Route("/directory/collections", handler(core_api.describe_collections)),
        Route(c, handler(core_api.describe_collections, "collection_id")),
        Route(f"{c}/queryables", handler(itemtypes_api.get_collection_queryables, "collection_id")),
        Route(f"{c}/items", handler(itemtypes_api.get_collection_items, "collection_id")),
        Route(
            f"{c}/items/{{item_id}}",
            handler(itemtypes_api.get_collection_item, "collection_id", "item_id"),
        ),
    ]
