"""HTTP routes of OGC API Tiles; ``create_app`` adds them beside pygeoapi's.

pygeoapi's tiles API (pygeoapi/api/tiles.py) is gone around, not used: its tile matrix
sets are a fixed enum of two (no CGCS2000), its tiles come from tile providers reading
prebuilt tiles or a proxy, and its answers carry no ETag or 304. What it does serve,
the landing page's ``/TileMatrixSets`` link, resolves here (both spellings).

Routes (JSON; tiles are MVT):

- ``/tileMatrixSets``, ``/tileMatrixSets/{tms}`` (and ``/TileMatrixSets...``);
- ``/collections/{id}/tiles`` (tilesets), ``/collections/{id}/tiles/{tms}`` (tileset
  metadata, ``?f=tilejson`` for TileJSON 3.0 of WebMercatorQuad),
  ``/collections/{id}/tiles/{tms}/{z}/{y}/{x}`` (``datetime``, ``properties``);
- ``/tiles``, ``/tiles/{tms}``, ``/tiles/{tms}/{z}/{y}/{x}``: the dataset tileset, every
  vector layer the caller may see as one MVT layer each (``collections`` narrows).

A tile answers 200 with ``ETag`` and ``Cache-Control``, 204 when empty, 304 when
``If-None-Match`` names its ETag. Bad input is a 4xx JSON naming the parameter.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from shikong.catalog.policy import ANONYMOUS, Access
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import public_url
from ..problems import Problem, render
from . import matrix_sets
from .render import (
    MVT_MEDIA_TYPE,
    RASTER_FORMATS,
    TILED_KINDS,
    TileResult,
    cached_vector_tile,
    open_layer,
    raster_tile,
    tile_source,
    vector_tile,
)

if TYPE_CHECKING:
    from ..app import Server

REL = "http://www.opengis.net/def/rel/ogc/1.0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
TILE_PARAMS = {"datetime", "properties", "f"}
DATASET_TILE_PARAMS = TILE_PARAMS | {"collections"}
META_PARAMS = {"f"}
SHORT_MAX_AGE = 60
IMMUTABLE_MAX_AGE = 31_536_000
MASKED = "personal data, masked for this caller"
# metadata is JSON; f=html (the landing page links it) answers the same JSON
META_FORMATS = ("json", "html")


def _base(server: Server) -> str:
    return (public_url.BASE_URL.get() or server.publisher.url).rstrip("/")


def _access(server: Server, request: Request) -> Access:
    ctx = getattr(request.state, "shikong", None)
    return server.access(ctx.caller if ctx is not None else ANONYMOUS)


def _touch(request: Request, *collections: str) -> None:
    ctx = getattr(request.state, "shikong", None)
    if ctx is not None:
        ctx.touch(*collections)


def _check_params(request: Request, allowed: set[str], formats: tuple[str, ...]) -> str:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise Problem(
            400,
            f"unknown query parameter {unknown[0]!r}; this resource takes "
            f"{', '.join(sorted(allowed))}",
        )
    f = request.query_params.get("f", formats[0]).lower()
    if f not in formats:
        raise Problem(400, f"f={f!r} is not served here; formats: {', '.join(formats)}")
    return f


def _int(request: Request, name: str) -> int:
    raw = request.path_params[name]
    if not (raw.isascii() and raw.isdigit()):
        label = {"z": "tileMatrix", "y": "tileRow", "x": "tileCol"}[name]
        raise Problem(400, f"{label} {raw!r} is not a whole number")
    return int(raw)


def _properties(request: Request) -> list[str] | None:
    raw = request.query_params.get("properties")
    if raw is None:
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


# -- documents ---------------------------------------------------------------------------
def tms_summary(base: str, tms: Any) -> dict[str, Any]:
    return {
        "id": tms.id,
        "title": tms.title or tms.id,
        "uri": tms.uri,
        "crs": str(tms.crs.root if hasattr(tms.crs, "root") else tms.crs),
        "links": [
            {
                "rel": "self",
                "type": "application/json",
                "title": f"{tms.id} tile matrix set",
                "href": f"{base}/tileMatrixSets/{tms.id}",
            },
            {
                "rel": f"{REL}tiling-scheme",
                "type": "application/json",
                "href": f"{base}/tileMatrixSets/{tms.id}",
            },
        ],
    }


def tms_document(tms: Any) -> dict[str, Any]:
    """The set as OGC TMS 2.0 JSON, with the TMS 1.0 names beside (same values).

    GDAL 3.6 (Debian 12, QGIS 3.22) reads only the 1.0 encoding (``identifier``,
    ``supportedCRS``, ``topLeftCorner``, ``boundingBox``); GDAL ≥ 3.7 and morecantile
    read 2.0. Both find what they need in one document.
    """
    doc = tms.model_dump(mode="json", exclude_none=True)
    crs = str(doc["crs"])
    left, bottom, right, top = tms.xy_bbox
    lat_first = tms._invert_axis
    doc.update(
        {
            "type": "TileMatrixSetType",
            "identifier": tms.id,
            "supportedCRS": crs,
            "boundingBox": {
                "type": "BoundingBoxType",
                "crs": crs,
                "lowerCorner": [bottom, left] if lat_first else [left, bottom],
                "upperCorner": [top, right] if lat_first else [right, top],
            },
        }
    )
    for matrix in doc["tileMatrices"]:
        matrix["identifier"] = matrix["id"]
        matrix["topLeftCorner"] = matrix["pointOfOrigin"]
    return doc


def _limits(tms: Any, bbox: list[float]) -> list[dict[str, Any]]:
    """The tiles of each tile matrix that cover a lon/lat bbox."""
    first, last = matrix_sets.zoom_range(tms)
    west, south, east, north = bbox
    out = []
    for z in range(first, last + 1):
        ul = tms.tile(west, north, z)
        lr = tms.tile(east, south, z)
        matrix = tms.matrix(z)
        out.append(
            {
                "tileMatrix": str(z),
                "minTileRow": max(0, min(ul.y, lr.y)),
                "maxTileRow": min(matrix.matrixHeight - 1, max(ul.y, lr.y)),
                "minTileCol": max(0, min(ul.x, lr.x)),
                "maxTileCol": min(matrix.matrixWidth - 1, max(ul.x, lr.x)),
            }
        )
    return out


def _layer_meta(server: Server, access: Access, cid: str, tms: Any) -> dict[str, Any]:
    source = tile_source(server, access, cid)
    version = source.versions.current
    layer = open_layer(version["path"], source.id_field)
    first, last = matrix_sets.zoom_range(tms)
    masked = access.masked_fields(cid)
    return {
        "id": cid,
        "dataType": "vector",
        "minTileMatrix": str(first),
        "maxTileMatrix": str(last),
        "propertiesSchema": {
            "type": "object",
            "properties": {
                name: {**schema, **({"description": MASKED} if name in masked else {})}
                for name, schema in layer.fields.items()
            },
        },
    }


def _union(boxes: list[list[float]]) -> list[float]:
    if not boxes:
        return [-180.0, -90.0, 180.0, 90.0]
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def tileset(
    server: Server, access: Access, base: str, tms: Any, cids: list[str], path: str
) -> dict[str, Any]:
    """Tileset metadata (OGC API Tiles, TileSet conformance class) of some collections."""
    resources = server.publisher.snapshot.resources
    bbox = _union([resources[c]["extents"]["spatial"]["bbox"] for c in cids])
    title = resources[cids[0]]["title"] if len(cids) == 1 else "every vector layer (shikong)"
    if isinstance(title, dict):
        title = title.get("zh") or title.get("en")
    return {
        "title": title,
        "dataType": "vector",
        "crs": str(tms.crs.root if hasattr(tms.crs, "root") else tms.crs),
        "tileMatrixSetURI": tms.uri,
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{base}{path}"},
            {
                "rel": "alternate",
                "type": "application/vnd.mapbox.tile+json",
                "title": "TileJSON",
                "href": f"{base}{path}?f=tilejson",
            },
            {
                "rel": f"{REL}tiling-scheme",
                "type": "application/json",
                "href": f"{base}/tileMatrixSets/{tms.id}",
            },
            {
                "rel": "item",
                "type": MVT_MEDIA_TYPE,
                "title": "Mapbox vector tiles",
                "templated": True,
                "href": f"{base}{path}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}",
            },
        ],
        "boundingBox": {"lowerLeft": bbox[:2], "upperRight": bbox[2:], "crs": CRS84},
        "tileMatrixSetLimits": _limits(tms, bbox),
        "layers": [_layer_meta(server, access, c, tms) for c in cids],
    }


def tilejson(
    server: Server, access: Access, base: str, tms: Any, cids: list[str], path: str
) -> dict[str, Any]:
    """TileJSON 3.0.0 (MapLibre, QGIS's vector tiles from a URL) of WebMercatorQuad."""
    if tms.id != "WebMercatorQuad":
        raise Problem(400, "f=tilejson describes WebMercatorQuad tiles only (XYZ scheme)")
    meta = tileset(server, access, base, tms, cids, path)
    bbox = meta["boundingBox"]["lowerLeft"] + meta["boundingBox"]["upperRight"]
    first, last = matrix_sets.zoom_range(tms)
    _types = {"integer": "Number", "number": "Number", "boolean": "Boolean"}
    return {
        "tilejson": "3.0.0",
        "name": meta["title"],
        "scheme": "xyz",
        "tiles": [f"{base}{path}/{{z}}/{{y}}/{{x}}"],
        "minzoom": first,
        "maxzoom": min(last, 22),
        "bounds": bbox,
        "center": [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, 12],
        "vector_layers": [
            {
                "id": layer["id"],
                "fields": {
                    name: _types.get(schema["type"], "String")
                    for name, schema in layer["propertiesSchema"]["properties"].items()
                },
                "minzoom": first,
                "maxzoom": min(last, 22),
            }
            for layer in meta["layers"]
        ],
    }


def tile_response(result: TileResult, request: Request) -> Response:
    """200, 204 (empty) or 304, with the ETag and the caching the tile allows."""
    scope = "public" if result.public else "private"
    if result.immutable:
        cache = f"{scope}, max-age={IMMUTABLE_MAX_AGE}, immutable"
    else:
        cache = f"{scope}, max-age={SHORT_MAX_AGE}"
    headers = {"ETag": result.etag, "Cache-Control": cache, "Vary": "Accept-Encoding"}
    if result.encoding:
        headers["Content-Encoding"] = result.encoding
    match = request.headers.get("if-none-match")
    if match and result.etag in [t.strip() for t in match.split(",")]:
        return Response(status_code=304, headers=headers)
    after = BackgroundTask(result.store) if result.store is not None else None
    if not result.content:
        return Response(status_code=204, headers=headers, background=after)
    return Response(result.content, media_type=result.media_type, headers=headers, background=after)


def accepts_gzip(request: Request) -> bool:
    """Whether Accept-Encoding takes gzip (not refused with ``q=0``)."""
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            if not q.startswith("q="):
                return True
            try:
                return float(q[2:]) > 0
            except ValueError:  # a malformed weight: the plain form always works
                return False
    return False


# -- routes ------------------------------------------------------------------------------
def routes(server: Server) -> list[Route]:
    """The package's routes over the server's published, access-controlled snapshot."""

    def handle(fn: Any) -> Any:
        """The endpoint answering a Problem raised anywhere below it."""

        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except Problem as exc:
                return render(exc)

        return endpoint

    async def matrix_set_list(request: Request) -> Response:
        _check_params(request, META_PARAMS, META_FORMATS)
        base = _base(server)
        return JSONResponse(
            {
                "tileMatrixSets": [tms_summary(base, t) for t in matrix_sets.all().values()],
                "links": [
                    {"rel": "self", "type": "application/json", "href": f"{base}/tileMatrixSets"}
                ],
            }
        )

    async def matrix_set(request: Request) -> Response:
        _check_params(request, META_PARAMS, META_FORMATS)
        tms = matrix_sets.get(request.path_params["tms"])
        return JSONResponse(tms_document(tms))

    def visible_tiled(access: Access) -> list[str]:
        resources = server.publisher.snapshot.resources
        return [
            cid
            for cid, r in resources.items()
            if cid in access.visible
            and r.get("type") == "collection"
            and r.get("shikong", {}).get("kind") in TILED_KINDS
        ]

    async def tileset_list(request: Request) -> Response:
        _check_params(request, META_PARAMS, META_FORMATS)
        base = _base(server)
        cid = request.path_params.get("cid")
        access = _access(server, request)
        if cid is not None:
            tile_source(server, access, cid)
            path = f"/collections/{cid}/tiles"
        else:
            path = "/tiles"
        sets = []
        for tms in matrix_sets.all().values():
            sets.append(
                {
                    "title": f"{cid or 'every vector layer'} in {tms.id}",
                    "dataType": "vector",
                    "crs": str(tms.crs.root if hasattr(tms.crs, "root") else tms.crs),
                    "tileMatrixSetURI": tms.uri,
                    "links": [
                        {
                            "rel": "self",
                            "type": "application/json",
                            "href": f"{base}{path}/{tms.id}",
                        },
                        {
                            "rel": f"{REL}tiling-scheme",
                            "type": "application/json",
                            "href": f"{base}/tileMatrixSets/{tms.id}",
                        },
                    ],
                }
            )
        links = [{"rel": "self", "type": "application/json", "href": f"{base}{path}"}]
        return JSONResponse({"tilesets": sets, "links": links})

    async def tileset_doc(request: Request) -> Response:
        f = _check_params(request, META_PARAMS, ("json", "tilejson", "html"))
        base = _base(server)
        tms = matrix_sets.get(request.path_params["tms"])
        access = _access(server, request)
        cid = request.path_params.get("cid")
        if cid is not None:
            tile_source(server, access, cid)
            cids, path = [cid], f"/collections/{cid}/tiles/{tms.id}"
        else:
            cids, path = visible_tiled(access), f"/tiles/{tms.id}"
            if not cids:
                raise Problem(404, "no vector layer is visible to this caller")
        build = tilejson if f == "tilejson" else tileset
        doc = await run_in_threadpool(build, server, access, base, tms, cids, path)
        return JSONResponse(doc)

    async def collection_tile(request: Request) -> Response:
        cid = request.path_params["cid"]
        resource = server.publisher.snapshot.resources.get(cid) or {}
        if resource.get("shikong", {}).get("kind") == "raster":
            f = _check_params(request, {"f"}, tuple(RASTER_FORMATS))
            z, y, x = _int(request, "z"), _int(request, "y"), _int(request, "x")
            result = await run_in_threadpool(
                raster_tile,
                server,
                _access(server, request),
                cid,
                request.path_params["tms"],
                z,
                y,
                x,
                fmt=f,
                if_none_match=request.headers.get("if-none-match"),
                defer_store=True,
            )
            return tile_response(result, request)
        _check_params(request, TILE_PARAMS, ("mvt",))
        z, y, x = _int(request, "z"), _int(request, "y"), _int(request, "x")
        args = (server, _access(server, request), cid, request.path_params["tms"], z, y, x)
        options = {
            "datetime": request.query_params.get("datetime"),
            "properties": _properties(request),
            "if_none_match": request.headers.get("if-none-match"),
        }
        # a cached tile is answered here (no layer opened, no thread hop); a miss is
        # rendered in a thread
        result = cached_vector_tile(*args, **options, gzip_ok=accepts_gzip(request))
        if result is None:
            result = await run_in_threadpool(vector_tile, *args, **options, defer_store=True)
        return tile_response(result, request)

    async def dataset_tile(request: Request) -> Response:
        _check_params(request, DATASET_TILE_PARAMS, ("mvt",))
        z, y, x = _int(request, "z"), _int(request, "y"), _int(request, "x")
        access = _access(server, request)
        tms_id = request.path_params["tms"]
        matrix_sets.get(tms_id)
        chosen = request.query_params.get("collections")
        cids = visible_tiled(access)
        if chosen is not None:
            wanted = [c.strip() for c in chosen.split(",") if c.strip()]
            missing = [c for c in wanted if c not in cids]
            if missing:
                raise Problem(
                    400, f"collections: no vector collection {', '.join(map(repr, missing))}"
                )
            cids = wanted
        if request.query_params.get("properties") is not None:
            raise Problem(400, "properties applies to a collection's tiles, not the dataset's")
        _touch(request, *cids)
        when = request.query_params.get("datetime")

        def parts() -> list[TileResult]:
            out = []
            for cid in cids:
                try:
                    out.append(vector_tile(server, access, cid, tms_id, z, y, x, datetime=when))
                except Problem as exc:
                    if exc.status == 404 and when:  # no version of this layer then
                        continue
                    raise
            return out

        results = await run_in_threadpool(parts)
        etag = hashlib.sha256("".join(r.etag for r in results).encode()).hexdigest()[:32]
        combined = TileResult(
            b"".join(r.content for r in results),
            f'"{etag}"',
            immutable=bool(results) and all(r.immutable for r in results),
            public=all(r.public for r in results),
        )
        return tile_response(combined, request)

    c = "/collections/{cid}/tiles"
    z = "{z}/{y}/{x}"
    out = []
    for prefix in ("/tileMatrixSets", "/TileMatrixSets"):
        out += [
            Route(prefix, handle(matrix_set_list)),
            Route(prefix + "/{tms}", handle(matrix_set)),
        ]
    out += [
        Route(c, handle(tileset_list)),
        Route(c + "/{tms}", handle(tileset_doc)),
        Route(c + "/{tms}/" + z, handle(collection_tile)),
        Route("/tiles", handle(tileset_list)),
        Route("/tiles/{tms}", handle(tileset_doc)),
        Route("/tiles/{tms}/" + z, handle(dataset_tile)),
    ]
    return out
