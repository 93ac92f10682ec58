"""STAC API (core, collections, item search with filter and sort) over the catalog index.

pygeoapi's own STAC search ignores collections, ids, intersects and filters; ours runs
on the catalog's SQLite index, so pystac-client and other STAC clients work unmodified.
stac-api-validator passes for every class claimed (tests/test_conformance_stac.py).

Choices a client may want to know:

- ``datetime`` follows RFC 3339 strictly (an instant, ``a/b``, ``../b``, ``a/..``), as
  STAC search requires: a bare date or a time without an offset is a 400 here. (The OGC
  Features endpoints keep bare dates for time travel: that is our extension there.)
- Sorting by ``datetime``: a layer version whose validity has ended carries a null
  ``datetime`` and its ``start_datetime``/``end_datetime``; its sort key is the start of
  its validity (``shikong:valid_from``), which is the ``datetime`` of a current version,
  so versions sort by when they came into force.
- ``limit`` above the server's maximum serves a page of the maximum, with a ``next``
  link, never an error (the STAC and OGC Features specs say so).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import numpy as np
import shapely
from pygeofilter import ast
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from shapely.geometry import shape
from shikong.catalog import Catalog
from shikong.catalog.extension import CLASSIFICATIONS, KINDS, Field
from shikong.catalog.item_filter import FilterError
from shikong.catalog.policy import Access
from shikong.catalog.view import CatalogView
from shikong.spatial.errors import InputError
from shikong.spatial.temporal import parse_datetime
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from . import cql_text
from .asset_download import object_response
from .problems import problem
from .public_url import current as current_base_url
from .stac_search import (
    FILTER_LANGS,
    GEOMETRY_TYPES,
    MAX_FILTER_DEPTH,
    MAX_TOKEN,
    BadRequest,
    json_value,
    search_body,
    short,
    single_params,
)
from .stac_search import bbox as _bbox
from .stac_search import names as _names
from .stac_search import text as _text
from .stac_search import whole as _whole

STAC_VERSION = "1.1.0"
CONFORMS = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#sort",
    "https://api.stacspec.org/v1.0.0/item-search#filter",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
]
DEFAULT_LIMIT, MAX_LIMIT = 10, 10_000
GEOJSON = "application/geo+json"
JSON = "application/json"
SCHEMA_JSON = "application/schema+json"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"


def bad(message: str) -> Response:
    """A search parameter that cannot be used (the one problem shape: problems.py)."""
    return problem(400, "InvalidParameterValue", message)


def not_found(message: str) -> Response:
    return problem(404, "NotFound", message)


class StacApi:
    """Routes under /stac, answering from the catalog index."""

    def __init__(
        self,
        catalog: Catalog,
        url: str,
        access_of: Callable[[Request], Access],
        max_limit: int = MAX_LIMIT,
    ) -> None:
        self.catalog = catalog
        self._url = url.rstrip("/")
        self.access_of = access_of  # the caller's view: hidden collections are absent
        self.max_limit = max_limit

    @property
    def url(self) -> str:
        """The base URL of the request being answered (links follow it: public_url)."""
        return current_base_url(self._url)

    @property
    def root(self) -> str:
        return f"{self.url}/stac"

    def _visible_collections(self, request: Request) -> list[dict[str, Any]]:
        visible = self.access_of(request).visible
        return [c for c in self.catalog.store.collections() if c["id"] in visible]

    def _visible(self, request: Request, cid: str) -> bool:
        return cid in self.access_of(request).visible

    # -- link rewriting --------------------------------------------------------------
    def _asset_url(self, item: dict[str, Any], name: str) -> str:
        """``/assets/{dept}/{layer}/{version}/{file}``, served by :meth:`asset`, wherever
        the asset is stored (``asset_store.served_path``): clients never see the bucket.
        A file outside ``assets/`` keeps its href."""
        from shikong.catalog.asset_store import served_path

        served = served_path(self.catalog.paths, item, name)
        return f"{self.url}/assets/{served}" if served else item["assets"][name]["href"]

    def item_out(self, item: dict[str, Any]) -> dict[str, Any]:
        item = copy.deepcopy(item)
        cid = item["collection"]
        base = f"{self.root}/collections/{cid}"
        keep = [link for link in item.get("links", []) if link["rel"] == "via"]
        versions = [
            {
                "title": link["rel"].replace("-", " "),
                **link,
                "href": f"{base}/items/{link['href'][2:-5]}",
            }
            for link in item.get("links", [])
            if link["rel"] in ("latest-version", "predecessor-version", "successor-version")
        ]
        title = item["properties"].get("title") or item["id"]
        item["links"] = [
            {"rel": "self", "href": f"{base}/items/{item['id']}", "type": GEOJSON, "title": title},
            {"rel": "parent", "href": base, "type": JSON, "title": "Collection"},
            {"rel": "collection", "href": base, "type": JSON, "title": "Collection"},
            {"rel": "root", "href": self.root, "type": JSON, "title": "STAC API"},
            *versions,
            *keep,
        ]
        for name, asset in item.get("assets", {}).items():
            asset["href"] = self._asset_url(item, name)
        return item

    def collection_out(self, collection: dict[str, Any]) -> dict[str, Any]:
        collection = copy.deepcopy(collection)
        base = f"{self.root}/collections/{collection['id']}"
        title = collection.get("title") or collection["id"]
        collection["links"] = [
            {"rel": "self", "href": base, "type": JSON, "title": title},
            {"rel": "parent", "href": self.root, "type": JSON, "title": "STAC API"},
            {"rel": "root", "href": self.root, "type": JSON, "title": "STAC API"},
            {"rel": "items", "href": f"{base}/items", "type": GEOJSON, "title": "Versions"},
            {
                "rel": QUERYABLES_REL,
                "href": f"{base}/queryables",
                "type": SCHEMA_JSON,
                "title": "Queryables",
            },
            {
                "rel": "alternate",
                "href": f"{self.url}/collections/{collection['id']}",
                "type": "text/html",
                "title": "OGC API collection",
            },
        ]
        return collection

    # -- endpoints -------------------------------------------------------------------
    async def landing(self, request: Request) -> Response:
        search = f"{self.root}/search"
        links = [
            {"rel": "self", "href": self.root, "type": JSON, "title": "STAC API"},
            {"rel": "root", "href": self.root, "type": JSON, "title": "STAC API"},
            {
                "rel": "conformance",
                "href": f"{self.root}/conformance",
                "type": JSON,
                "title": "Conformance classes",
            },
            {"rel": "data", "href": f"{self.root}/collections", "type": JSON, "title": "Layers"},
            {"rel": "search", "href": search, "type": GEOJSON, "method": "GET", "title": "Search"},
            {"rel": "search", "href": search, "type": GEOJSON, "method": "POST", "title": "Search"},
            {
                "rel": QUERYABLES_REL,
                "href": f"{self.root}/queryables",
                "type": SCHEMA_JSON,
                "title": "Queryables",
            },
            {
                "rel": "service-desc",
                "href": f"{self.url}/openapi?f=json",
                "type": "application/vnd.oai.openapi+json;version=3.0",
                "title": "OpenAPI document",
            },
            {
                "rel": "service-doc",
                "href": f"{self.url}/openapi?f=html",
                "type": "text/html",
                "title": "API documentation",
            },
        ] + [
            {
                "rel": "child",
                "href": f"{self.root}/collections/{c['id']}",
                "type": JSON,
                "title": c.get("title") or c["id"],
            }
            for c in self._visible_collections(request)
        ]
        return JSONResponse(
            {
                "type": "Catalog",
                "stac_version": STAC_VERSION,
                "id": "shikong",
                "title": "时空信息云平台 shikong",
                "description": "STAC API of the city catalog",
                "conformsTo": CONFORMS,
                "links": links,
            }
        )

    async def conformance(self, request: Request) -> Response:
        return JSONResponse({"conformsTo": CONFORMS})

    async def collections(self, request: Request) -> Response:
        items = [self.collection_out(c) for c in self._visible_collections(request)]
        return JSONResponse(
            {
                "collections": items,
                "links": [
                    {
                        "rel": "self",
                        "href": f"{self.root}/collections",
                        "type": JSON,
                        "title": "Layers",
                    },
                    {"rel": "root", "href": self.root, "type": JSON, "title": "STAC API"},
                ],
            }
        )

    async def collection(self, request: Request) -> Response:
        cid = request.path_params["collection_id"]
        found = self.catalog.store.collection(cid) if self._visible(request, cid) else None
        if found is None:
            return not_found(f"no collection {cid!r}")
        return JSONResponse(self.collection_out(found))

    async def collection_items(self, request: Request) -> Response:
        cid = request.path_params["collection_id"]
        if not self._visible(request, cid) or self.catalog.store.collection(cid) is None:
            return not_found(f"no collection {cid!r}")
        try:
            params = single_params(request)
        except BadRequest as exc:
            return bad(str(exc))
        params["collections"] = cid
        return await self._search(request, params, f"{self.root}/collections/{cid}/items", "GET")

    async def queryables(self, request: Request) -> Response:
        """What a filter may name, as JSON Schema: the item fields every layer version has.
        Other properties (a layer's own, e.g. ``proj:code``) may be named too: an item
        without one does not match, so ``additionalProperties`` is true."""
        cid = request.path_params.get("collection_id")
        if cid is None:
            url = f"{self.root}/queryables"
        elif self._visible(request, cid) and self.catalog.store.collection(cid) is not None:
            url = f"{self.root}/collections/{cid}/queryables"
        else:
            return not_found(f"no collection {cid!r}")
        return JSONResponse(
            {
                "$schema": "https://json-schema.org/draft/2019-09/schema",
                "$id": url,
                "type": "object",
                "title": f"Queryables of {cid}" if cid else "Queryables of every layer",
                "properties": QUERYABLES,
                "additionalProperties": True,
            },
            media_type=SCHEMA_JSON,
        )

    async def item(self, request: Request) -> Response:
        cid, iid = request.path_params["collection_id"], request.path_params["item_id"]
        found = self.catalog.store.item(iid) if self._visible(request, cid) else None
        if found is None or found["collection"] != cid:
            return not_found(f"no item {iid!r} in collection {cid!r}")
        return JSONResponse(self.item_out(found), media_type=GEOJSON)

    async def search(self, request: Request) -> Response:
        try:
            if request.method == "POST":
                params = search_body(await request.body())
            else:
                params = single_params(request)
        except BadRequest as exc:
            return bad(str(exc))
        return await self._search(request, params, f"{self.root}/search", request.method)

    async def asset(self, request: Request) -> Response:
        """An asset file at ``/assets/{dept}/{layer}/{version}/{file}``, if its collection
        is visible; a layer with personal fields the caller sees masked is not
        downloadable raw (the file holds them whole). Only files a committed version
        names are served, whatever else lies in the folder (committed_asset). An asset
        in object storage is streamed through this server (``asset_download``)."""
        from shikong.catalog.assets import committed_asset

        relative = request.path_params["path"]
        path = committed_asset(self.catalog.store, relative)
        if path is None:
            return not_found("no such asset")
        parts = relative.split("/")
        cid = f"{parts[0]}-{parts[1]}"
        ctx = request.state.shikong if hasattr(request.state, "shikong") else None
        if ctx is not None:
            ctx.touch(cid)
        access = self.access_of(request)
        if cid not in access.visible:
            if ctx is not None:
                ctx.denied = True
            return not_found("no such asset")
        if access.masked_fields(cid):
            if ctx is not None:
                ctx.denied = True
            return problem(
                403,
                "Forbidden",
                f"the raw file of {cid} holds personal data "
                f"({', '.join(access.masked_fields(cid))}); downloading it needs the "
                "personal-data grant. Its features are served masked at "
                f"{self.url}/collections/{cid}/items",
            )
        if isinstance(path, str):  # in object storage: proxied, after the same checks
            return await object_response(request, path)
        return FileResponse(path)

    async def _asset_checked(self, request: Request) -> Response:
        """:meth:`asset`, for a path a file could have: the file system never sees a NUL
        byte (a ValueError there) or an over-long name (an OSError)."""
        reason = asset_path_problem(request.path_params["path"])
        return bad(reason) if reason else await self.asset(request)

    # -- search ----------------------------------------------------------------------
    async def _search(
        self, request: Request, params: dict[str, Any], base: str, method: str
    ) -> Response:
        try:
            query = self._parse(params, method)
        except (BadRequest, InputError) as exc:
            return bad(str(exc))
        cql = query.pop("filter", None)
        limit, offset = query.pop("limit"), query.pop("offset")
        visible = self.access_of(request).visible
        catalog = CatalogView(self.catalog, visible)
        self._note_hidden(request, query.get("collections"), visible)
        try:
            result = catalog.search(**query, filter=cql, limit=limit, offset=offset)
        except FilterError as exc:  # a filter against values it cannot compare
            return bad(str(exc))
        items, matched = result.items, result.matched
        features = [self.item_out(i) for i in items]
        ctx = getattr(request.state, "shikong", None)
        if ctx is not None:
            ctx.touch(*sorted({i["collection"] for i in items}))
            ctx.count = len(features)
        links = [
            {
                "rel": "self",
                "href": f"{base}?{request.url.query}" if request.url.query else base,
                "type": GEOJSON,
                "title": "This page",
            },
            {"rel": "root", "href": self.root, "type": JSON, "title": "STAC API"},
        ]
        if base != f"{self.root}/search":  # /collections/{id}/items
            collection = base.removesuffix("/items")
            links += [
                {"rel": "collection", "href": collection, "type": JSON, "title": "Collection"},
                {"rel": "parent", "href": collection, "type": JSON, "title": "Collection"},
            ]
        if offset + limit < matched:
            drop = {"token"} if base == f"{self.root}/search" else {"token", "collections"}
            nxt = {k: v for k, v in params.items() if k not in drop}
            if method == "GET":
                links.append(
                    {
                        "rel": "next",
                        "type": GEOJSON,
                        "title": "Next page",
                        "method": "GET",
                        "href": f"{base}?{urlencode({**nxt, 'token': offset + limit})}",
                    }
                )
            else:
                links.append(
                    {
                        "rel": "next",
                        "type": GEOJSON,
                        "title": "Next page",
                        "method": "POST",
                        "href": base,
                        "body": {**nxt, "token": offset + limit},
                        "merge": False,
                    }
                )
        return JSONResponse(
            {
                "type": "FeatureCollection",
                "features": features,
                "numberMatched": matched,
                "numberReturned": len(features),
                "links": links,
            },
            media_type=GEOJSON,
        )

    def _note_hidden(self, request: Request, named: Any, visible: frozenset[str]) -> None:
        """A search naming collections the caller may not see answers as if they were
        absent (no items from them), and is audited as a refusal, as a hidden 404 is."""
        if not named:
            return
        names = [named] if isinstance(named, str) else list(named)
        hidden = [c for c in names if c not in visible and self.catalog.store.collection(c)]
        ctx = getattr(request.state, "shikong", None)
        if hidden and ctx is not None:
            ctx.denied = True
            ctx.touch(*hidden)

    def _parse(self, p: dict[str, Any], method: str = "GET") -> dict[str, Any]:
        """Search parameters as the catalog takes them. A POST body has passed
        :func:`search_body` (types are right); GET values are strings, checked here."""
        out: dict[str, Any] = {}
        for key in ("collections", "ids"):
            value = p.get(key)
            if value is not None:
                out[key] = _names(key, value)
        if p.get("bbox") is not None and p.get("intersects") is not None:
            raise BadRequest("bbox and intersects cannot be used together: give one")
        if p.get("bbox") is not None:
            if method == "POST" and not isinstance(p["bbox"], list):
                raise BadRequest(
                    f"bbox {p['bbox']!r} must be a JSON array of numbers in a POST body"
                )
            out["bbox"] = _bbox(p["bbox"])
        if p.get("intersects") is not None:
            geom = p["intersects"]
            geom = json_value(geom, "intersects") if isinstance(geom, str) else geom
            if not isinstance(geom, dict) or geom.get("type") not in GEOMETRY_TYPES:
                raise BadRequest(
                    f"intersects must be a GeoJSON geometry object ({', '.join(GEOMETRY_TYPES)})"
                )
            try:
                shp = shape(geom)
            except Exception:
                raise BadRequest("intersects is not a GeoJSON geometry") from None
            if shp.is_empty or not np.isfinite(shp.bounds).all():
                raise BadRequest("intersects is an empty geometry or has non-finite coordinates")
            if not shp.is_valid:
                raise BadRequest(f"intersects geometry is invalid: {shapely.is_valid_reason(shp)}")
            out["intersects"] = shp
        if p.get("datetime") is not None:
            if not isinstance(p["datetime"], str):
                raise BadRequest(f"datetime {p['datetime']!r} must be a string")
            try:
                window = parse_datetime(p["datetime"], strict=True)
            except InputError as exc:
                raise BadRequest(str(exc)) from None
            out["datetime"] = (window.start, window.end)
        limit = _whole(p.get("limit", DEFAULT_LIMIT), "limit")
        offset = _whole(p.get("token", p.get("offset", 0)), "token")
        if limit < 1:
            raise BadRequest(f"limit must be at least 1 (at most {self.max_limit} are served)")
        limit = min(limit, self.max_limit)  # a larger limit is served a full page
        if offset < 0 or offset > MAX_TOKEN:
            raise BadRequest(f"token must be a page offset from 0 to {MAX_TOKEN}")
        out["limit"], out["offset"] = limit, offset
        if p.get("sortby") is not None:
            out["sortby"] = _sortby(p["sortby"])
        if p.get("filter") is not None:
            out["filter"] = _filter(p["filter"], p.get("filter-lang"))
        elif p.get("filter-lang") is not None:
            _filter_lang(p["filter-lang"], None)
        if p.get("q") is not None:
            out["text"] = _text(p["q"])
        return out

    def routes(self) -> list[Route]:
        c = "/stac/collections/{collection_id}"
        return [
            Route("/stac", self.landing),
            Route("/stac/conformance", self.conformance),
            Route("/stac/collections", self.collections),
            Route(c, self.collection),
            Route(f"{c}/items", self.collection_items),
            Route(f"{c}/queryables", self.queryables),
            Route("/stac/queryables", self.queryables),
            Route(f"{c}/items/{{item_id}}", self.item),
            Route("/stac/search", self.search, methods=["GET", "POST"]),
            Route("/assets/{path:path}", self._asset_checked),
        ]


MAX_NAME_BYTES, MAX_PATH_BYTES = 255, 1024


def asset_path_problem(path: str) -> str | None:
    """Why no file can have this path under /assets (a 400 naming it), or None."""
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "asset path holds a control character (such as NUL or a newline)"
    encoded = [part.encode("utf-8", "surrogatepass") for part in path.split("/")]
    if sum(len(part) + 1 for part in encoded) > MAX_PATH_BYTES:
        return f"asset path is longer than {MAX_PATH_BYTES} bytes"
    if any(len(part) > MAX_NAME_BYTES for part in encoded):
        return f"asset path has a name longer than {MAX_NAME_BYTES} bytes"
    return None


QUERYABLES: dict[str, Any] = {
    "id": {"description": "Item id: layer, then version", "type": "string"},
    "collection": {"description": "Layer id: department, then layer", "type": "string"},
    "geometry": {
        "description": "Footprint",
        "$ref": "https://geojson.org/schema/Geometry.json",
    },
    "datetime": {
        "description": "Start of validity of a current version (null once it has ended)",
        "type": ["string", "null"],
        "format": "date-time",
    },
    "start_datetime": {
        "description": "Start of validity of a version that has ended",
        "type": "string",
        "format": "date-time",
    },
    "end_datetime": {
        "description": "End of validity of a version that has ended",
        "type": "string",
        "format": "date-time",
    },
    "title": {"description": "Title of the layer version", "type": "string"},
    "version": {"description": "Version name", "type": "string"},
    "deprecated": {"description": "True once a newer version replaced it", "type": "boolean"},
    Field.DEPARTMENT: {"description": "Owning department code", "type": "string"},
    Field.LAYER: {"description": "Layer name within its department", "type": "string"},
    Field.KIND: {
        "description": "What the layer holds",
        "type": "string",
        "enum": list(KINDS),
    },
    Field.CLASSIFICATION: {
        "description": "Who may read the layer",
        "type": "string",
        "enum": list(CLASSIFICATIONS),
    },
    Field.VALID_FROM: {
        "description": "Start of validity",
        "type": "string",
        "format": "date-time",
    },
    Field.VALID_TO: {
        "description": "End of validity (null while current)",
        "type": ["string", "null"],
        "format": "date-time",
    },
}


SORT_FIELDS = {
    "id": "id",
    "collection": "collection",
    "datetime": "datetime",
    "properties.datetime": "datetime",
    "start_datetime": "start_datetime",
    "properties.start_datetime": "start_datetime",
    "properties.end_datetime": "end_datetime",
    "end_datetime": "end_datetime",
}


def _sortby(value: Any) -> list[tuple[str, bool]]:
    if isinstance(value, str):
        fields = [(f.strip().lstrip("+-"), not f.strip().startswith("-")) for f in value.split(",")]
    else:  # a list of {field, direction}: search_body checked its shape
        fields = [(f["field"], f.get("direction", "asc") == "asc") for f in value]
    if not fields or any(not name for name, _ in fields):
        raise BadRequest("sortby names an empty field: give field names, e.g. -datetime,id")
    out = []
    for name, asc in fields:
        if name not in SORT_FIELDS:
            raise BadRequest(f"sortby: cannot sort by {name!r}; sortable: {', '.join(SORT_FIELDS)}")
        out.append((SORT_FIELDS[name], asc))
    return out


def _filter_lang(lang: Any, value: Any) -> str:
    """The filter language: as given, or guessed from the filter (an object is JSON)."""
    if lang is None:
        return "cql2-json" if isinstance(value, dict) else "cql2-text"
    if lang not in FILTER_LANGS:
        raise BadRequest(f"filter-lang {lang!r} is not one of {', '.join(FILTER_LANGS)}")
    return lang


def _filter(value: Any, lang: Any):
    """A CQL2 filter (text or JSON) as a pygeofilter AST, refused if nested too deeply."""
    lang = _filter_lang(lang, value)
    if lang == "cql2-json":
        if isinstance(value, str):
            value = json_value(value, "filter")
        if not isinstance(value, dict):
            raise BadRequest('a cql2-json filter must be a JSON object such as {"op": ...}')
    elif not isinstance(value, str):
        raise BadRequest("a cql2-text filter must be a string; send an object as cql2-json")
    elif _paren_depth(value) > MAX_FILTER_DEPTH:
        raise BadRequest(f"filter nests parentheses deeper than {MAX_FILTER_DEPTH} levels")
    try:
        node = parse_cql2_json(value) if lang == "cql2-json" else cql_text.parse(value)
    except RecursionError:
        raise BadRequest(f"filter is nested deeper than {MAX_FILTER_DEPTH} levels") from None
    except Exception as exc:
        raise BadRequest(f"filter is not valid {lang}: {short(str(exc))}") from None
    if not isinstance(node, ast.Node):
        raise BadRequest(f"filter is not a {lang} boolean expression")
    if _ast_depth(node) > MAX_FILTER_DEPTH:
        raise BadRequest(
            f"filter is nested deeper than {MAX_FILTER_DEPTH} levels "
            "(each AND/OR term and each NOT counts one)"
        )
    return node


def _paren_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest


def _ast_depth(node: Any) -> int:
    """How deep a pygeofilter AST goes, counted without recursion."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_FILTER_DEPTH:
            break
        children = getattr(current, "get_sub_nodes", lambda: [])() or []
        stack.extend((child, depth + 1) for child in children)
    return deepest
