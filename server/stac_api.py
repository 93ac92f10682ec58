"""STAC API (core, collections, item search with filter and sort) over the catalog index.

pygeoapi's own STAC search ignores collections, ids, intersects and filters; ours runs
on the catalog's SQLite index, so pystac-client and other STAC clients work unmodified.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import shapely
from pygeofilter.backends.native.evaluate import NativeEvaluator
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text
from shapely.geometry import shape
from shikong.catalog import Catalog
from shikong.catalog.policy import Access
from shikong.catalog.search import parse_interval
from shikong.catalog.view import CatalogView
from shikong.spatial.errors import InputError
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

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
DATE_PROPS = (
    "datetime",
    "start_datetime",
    "end_datetime",
    "created",
    "updated",
    "shikong:valid_from",
    "shikong:valid_to",
)


class BadRequest(Exception):
    """A search parameter that cannot be understood: answered 400 naming it."""


def bad(message: str) -> JSONResponse:
    return JSONResponse({"code": "InvalidParameterValue", "description": message}, status_code=400)


def not_found(message: str) -> JSONResponse:
    return JSONResponse({"code": "NotFound", "description": message}, status_code=404)


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
        self.url = url.rstrip("/")
        self.root = f"{self.url}/stac"
        self.access_of = access_of  # the caller's view: hidden collections are absent
        self.max_limit = max_limit

    def _visible_collections(self, request: Request) -> list[dict[str, Any]]:
        visible = self.access_of(request).visible
        return [c for c in self.catalog.index.collections() if c["id"] in visible]

    def _visible(self, request: Request, cid: str) -> bool:
        return cid in self.access_of(request).visible

    # -- link rewriting --------------------------------------------------------------
    def _asset_url(self, item: dict[str, Any], href: str) -> str:
        props = item["properties"]
        folder = self.catalog.paths.item_json(
            props["shikong:department"], props["shikong:layer"], item["id"]
        ).parent
        path = (folder / href).resolve()
        try:
            return f"{self.url}/assets/{path.relative_to(self.catalog.paths.root.resolve())}"
        except ValueError:
            return href

    def item_out(self, item: dict[str, Any]) -> dict[str, Any]:
        item = copy.deepcopy(item)
        cid = item["collection"]
        base = f"{self.root}/collections/{cid}"
        keep = [link for link in item.get("links", []) if link["rel"] == "via"]
        versions = [
            {**link, "href": f"{base}/items/{link['href'][2:-5]}"}
            for link in item.get("links", [])
            if link["rel"] in ("latest-version", "predecessor-version", "successor-version")
        ]
        item["links"] = [
            {"rel": "self", "href": f"{base}/items/{item['id']}", "type": GEOJSON},
            {"rel": "parent", "href": base, "type": "application/json"},
            {"rel": "collection", "href": base, "type": "application/json"},
            {"rel": "root", "href": self.root, "type": "application/json"},
            *versions,
            *keep,
        ]
        for asset in item.get("assets", {}).values():
            asset["href"] = self._asset_url(item, asset["href"])
        return item

    def collection_out(self, collection: dict[str, Any]) -> dict[str, Any]:
        collection = copy.deepcopy(collection)
        base = f"{self.root}/collections/{collection['id']}"
        collection["links"] = [
            {"rel": "self", "href": base, "type": "application/json"},
            {"rel": "parent", "href": self.root, "type": "application/json"},
            {"rel": "root", "href": self.root, "type": "application/json"},
            {"rel": "items", "href": f"{base}/items", "type": GEOJSON},
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
        links = [
            {"rel": "self", "href": self.root, "type": "application/json"},
            {"rel": "root", "href": self.root, "type": "application/json"},
            {"rel": "conformance", "href": f"{self.root}/conformance", "type": "application/json"},
            {"rel": "data", "href": f"{self.root}/collections", "type": "application/json"},
            {"rel": "search", "href": f"{self.root}/search", "type": GEOJSON, "method": "GET"},
            {"rel": "search", "href": f"{self.root}/search", "type": GEOJSON, "method": "POST"},
            {
                "rel": "service-desc",
                "href": f"{self.url}/openapi?f=json",
                "type": "application/vnd.oai.openapi+json;version=3.0",
            },
        ] + [
            {
                "rel": "child",
                "href": f"{self.root}/collections/{c['id']}",
                "type": "application/json",
                "title": c.get("title"),
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
                    {"rel": "self", "href": f"{self.root}/collections", "type": "application/json"},
                    {"rel": "root", "href": self.root, "type": "application/json"},
                ],
            }
        )

    async def collection(self, request: Request) -> Response:
        cid = request.path_params["collection_id"]
        found = self.catalog.index.collection(cid) if self._visible(request, cid) else None
        if found is None:
            return not_found(f"no collection {cid!r}")
        return JSONResponse(self.collection_out(found))

    async def collection_items(self, request: Request) -> Response:
        cid = request.path_params["collection_id"]
        if not self._visible(request, cid) or self.catalog.index.collection(cid) is None:
            return not_found(f"no collection {cid!r}")
        params = dict(request.query_params)
        params["collections"] = cid
        return await self._search(request, params, f"{self.root}/collections/{cid}/items", "GET")

    async def item(self, request: Request) -> Response:
        cid, iid = request.path_params["collection_id"], request.path_params["item_id"]
        found = self.catalog.index.item(iid) if self._visible(request, cid) else None
        if found is None or found["collection"] != cid:
            return not_found(f"no item {iid!r} in collection {cid!r}")
        return JSONResponse(self.item_out(found), media_type=GEOJSON)

    async def search(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                return bad("search body is not JSON")
            if not isinstance(body, dict):
                return bad("search body must be a JSON object")
            return await self._search(request, body, f"{self.root}/search", "POST")
        return await self._search(request, dict(request.query_params), f"{self.root}/search", "GET")

    async def asset(self, request: Request) -> Response:
        """An asset file, if its collection is visible; a layer with personal fields the
        caller sees masked is not downloadable raw (the file holds them whole)."""
        root = self.catalog.paths.root.resolve()
        path = (root / request.path_params["path"]).resolve()
        if not path.is_relative_to(root / "assets") or not path.is_file():
            return not_found("no such asset")
        parts = path.relative_to(root / "assets").parts
        cid = f"{parts[0]}-{parts[1]}" if len(parts) > 2 else ""
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
            return JSONResponse(
                {
                    "code": "Forbidden",
                    "description": f"the raw file of {cid} holds personal data "
                    f"({', '.join(access.masked_fields(cid))}); downloading it needs the "
                    "personal-data grant. Its features are served masked at "
                    f"{self.url}/collections/{cid}/items",
                },
                status_code=403,
            )
        return FileResponse(path)

    # -- search ----------------------------------------------------------------------
    async def _search(
        self, request: Request, params: dict[str, Any], base: str, method: str
    ) -> Response:
        try:
            query = self._parse(params)
        except (BadRequest, InputError) as exc:
            return bad(str(exc))
        cql = query.pop("filter", None)
        limit, offset = query.pop("limit"), query.pop("offset")
        catalog = CatalogView(self.catalog, self.access_of(request).visible)
        if cql is None:
            result = catalog.search(**query, limit=limit, offset=offset)
            items, matched = result.items, result.matched
        else:
            every = catalog.search(**query).items
            try:
                hits = [i for i in every if _matches(cql, i)]
            except Exception as exc:  # evaluating a filter against odd values
                return bad(f"filter cannot be evaluated: {exc}")
            items, matched = hits[offset : offset + limit], len(hits)
        features = [self.item_out(i) for i in items]
        ctx = getattr(request.state, "shikong", None)
        if ctx is not None:
            ctx.touch(*sorted({i["collection"] for i in items}))
            ctx.count = len(features)
        links = [{"rel": "root", "href": self.root, "type": "application/json"}]
        if offset + limit < matched:
            nxt = {k: v for k, v in params.items() if k != "token"}
            if method == "GET":
                links.append(
                    {
                        "rel": "next",
                        "type": GEOJSON,
                        "method": "GET",
                        "href": f"{base}?{urlencode({**nxt, 'token': offset + limit})}",
                    }
                )
            else:
                links.append(
                    {
                        "rel": "next",
                        "type": GEOJSON,
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

    def _parse(self, p: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("collections", "ids"):
            value = p.get(key)
            if value is not None:
                out[key] = value.split(",") if isinstance(value, str) else list(value)
        if p.get("bbox") is not None:
            raw = p["bbox"]
            try:
                box = [float(v) for v in (raw.split(",") if isinstance(raw, str) else raw)]
            except (TypeError, ValueError):
                raise BadRequest(f"bbox {raw!r} is not a list of numbers") from None
            if len(box) == 6:
                box = [box[0], box[1], box[3], box[4]]
            if len(box) != 4 or box[0] > box[2] or box[1] > box[3]:
                raise BadRequest(f"bbox {raw!r} is not minx,miny,maxx,maxy")
            out["bbox"] = box
        if p.get("intersects") is not None:
            geom = p["intersects"]
            try:
                geom = json.loads(geom) if isinstance(geom, str) else geom
                shp = shape(geom)
            except Exception:
                raise BadRequest("intersects is not a GeoJSON geometry") from None
            if not shp.is_valid:
                raise BadRequest(f"intersects geometry is invalid: {shapely.is_valid_reason(shp)}")
            out["intersects"] = shp
        if p.get("datetime"):
            parse_interval(p["datetime"])  # InputError names a bad instant or interval
            out["datetime"] = p["datetime"]
        try:
            limit = int(p.get("limit", DEFAULT_LIMIT))
            offset = int(p.get("token", p.get("offset", 0)))
        except (TypeError, ValueError):
            raise BadRequest("limit and token must be integers") from None
        if not 1 <= limit <= self.max_limit:
            raise BadRequest(f"limit must be between 1 and {self.max_limit}")
        if offset < 0:
            raise BadRequest("token must not be negative")
        out["limit"], out["offset"] = limit, offset
        if p.get("sortby"):
            out["sortby"] = _sortby(p["sortby"])
        if p.get("filter") is not None:
            out["filter"] = _filter(p["filter"], p.get("filter-lang"))
        if p.get("q"):
            out["text"] = p["q"] if isinstance(p["q"], str) else " ".join(p["q"])
        return out

    def routes(self) -> list[Route]:
        c = "/stac/collections/{collection_id}"
        return [
            Route("/stac", self.landing),
            Route("/stac/conformance", self.conformance),
            Route("/stac/collections", self.collections),
            Route(c, self.collection),
            Route(f"{c}/items", self.collection_items),
            Route(f"{c}/items/{{item_id}}", self.item),
            Route("/stac/search", self.search, methods=["GET", "POST"]),
            Route("/assets/{path:path}", self.asset),
        ]


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
        fields = [(f.lstrip("+-"), not f.startswith("-")) for f in value.split(",") if f]
    else:
        fields = [(f["field"], f.get("direction", "asc") == "asc") for f in value]
    out = []
    for name, asc in fields:
        if name not in SORT_FIELDS:
            raise BadRequest(f"cannot sort by {name!r}; sortable: {', '.join(SORT_FIELDS)}")
        out.append((SORT_FIELDS[name], asc))
    return out


def _filter(value: Any, lang: str | None):
    try:
        if isinstance(value, dict) or lang == "cql2-json":
            return parse_cql2_json(value if isinstance(value, dict) else json.loads(value))
        return parse_cql2_text(value)
    except Exception as exc:
        raise BadRequest(f"filter is not valid CQL2: {exc}") from None


_EVALUATORS: dict[int, Any] = {}


def _matches(node: Any, item: dict[str, Any]) -> bool:
    """Evaluate a CQL2 AST on an item: properties by name, plus id, collection, geometry."""
    fn = _EVALUATORS.get(id(node))
    if fn is None:
        fn = NativeEvaluator(
            attribute_map={
                "id": "id",
                "collection": "collection",
                "geometry": "geometry",
                "*": "properties.*",
            },
            use_getattr=False,
        ).evaluate(node)
        _EVALUATORS.clear()
        _EVALUATORS[id(node)] = fn
    view = dict(item)
    props = dict(item["properties"])
    for key in DATE_PROPS:
        if isinstance(props.get(key), str):
            props[key] = datetime.fromisoformat(props[key].replace("Z", "+00:00"))
    view["properties"] = props
    if item.get("geometry"):
        view["geometry"] = shape(item["geometry"])
    try:
        return bool(fn(view))
    except TypeError:  # comparing with a missing (None) property: no match
        return False
