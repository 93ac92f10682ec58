"""HTTP routes of the maps package; ``create_app`` adds them beside pygeoapi's.

- ``/styles``, ``/styles/{styleId}``: the dataset's style (every collection the caller
  may see, rasters under polygons under lines under points), as MapLibre style v8;
- ``/collections/{id}/styles``, ``/collections/{id}/styles/{styleId}``: one collection's
  styles (``default`` and its alternates);
- ``/collections/{id}/coverage/domainset`` and ``/coverage/rangetype``: a raster
  coverage's grid and bands, which GDAL's OGCAPI driver reads to open it as a coverage;
- ``/collections/{id}/coverage`` with ``scaleSize=`` (the spelling GDAL's OGCAPI driver
  sends) is passed on as ``scale-size``.

A collection the caller may not see answers 404 exactly as a missing one; the dataset
style names none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import public_url
from ..problems import problem
from ..providers.coverage import domainset, rangetype, raster_info
from .styles import combined_style, facts_from_resource, spec_for, style_for, style_ids

if TYPE_CHECKING:
    from ..app import Server

STYLE_MEDIA_TYPE = "application/vnd.mapbox.style+json"
STYLED_KINDS = ("vector", "sensors", "readings", "raster")
DATASET_STYLES = {"default": "Every collection you may see, in its default style"}


def _json(body: Any, media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), media_type=media_type)


class MapsApi:
    """Styles and coverage descriptions over the caller's view of the published snapshot."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def _base(self, request: Request) -> str:
        base = public_url.BASE_URL.get() or self.server.publisher.snapshot.config["server"]["url"]
        return base.rstrip("/")

    def _resources(self, request: Request) -> dict[str, Any]:
        """The collections this caller may see (hidden ones are simply absent)."""
        return self.server.view(request).resources

    def _styled(self, request: Request, cid: str) -> tuple[Any, Response | None]:
        resource = self._resources(request).get(cid)
        if resource is None or resource.get("type") != "collection":
            return None, problem(404, "NotFound", f"no collection {cid}")
        kind = resource.get("shikong", {}).get("kind")
        if kind not in STYLED_KINDS:
            return None, problem(404, "NotFound", f"collection {cid} ({kind}) has no styles")
        return facts_from_resource(cid, resource), None

    async def dataset_styles(self, request: Request) -> Response:
        base = self._base(request)
        styles = [
            {
                "id": sid,
                "title": title,
                "links": [
                    {
                        "rel": "stylesheet",
                        "type": STYLE_MEDIA_TYPE,
                        "title": "MapLibre style document",
                        "href": f"{base}/styles/{sid}",
                    }
                ],
            }
            for sid, title in DATASET_STYLES.items()
        ]
        return _json(
            {
                "styles": styles,
                "default": "default",
                "links": [{"rel": "self", "type": "application/json", "href": f"{base}/styles"}],
            }
        )

    async def dataset_style(self, request: Request) -> Response:
        sid = request.path_params["style_id"]
        if sid not in DATASET_STYLES:
            return problem(404, "NotFound", f"no style {sid}; styles: {', '.join(DATASET_STYLES)}")
        facts = [
            facts_from_resource(cid, r)
            for cid, r in self._resources(request).items()
            if r.get("type") == "collection" and r.get("shikong", {}).get("kind") in STYLED_KINDS
        ]
        document = combined_style(sorted(facts, key=lambda f: f.id), self._base(request))
        return _json(document, STYLE_MEDIA_TYPE)

    async def collection_styles(self, request: Request) -> Response:
        cid = request.path_params["collection_id"]
        facts, refused = self._styled(request, cid)
        if refused is not None:
            return refused
        base = f"{self._base(request)}/collections/{cid}/styles"
        styles = []
        for sid in style_ids(facts):
            spec = spec_for(facts, sid)
            styles.append(
                {
                    "id": sid,
                    "title": spec.get("title", sid),
                    "links": [
                        {
                            "rel": "stylesheet",
                            "type": STYLE_MEDIA_TYPE,
                            "title": "MapLibre style document",
                            "href": f"{base}/{sid}",
                        }
                    ],
                }
            )
        return _json(
            {
                "styles": styles,
                "default": "default",
                "links": [{"rel": "self", "type": "application/json", "href": base}],
            }
        )

    async def collection_style(self, request: Request) -> Response:
        cid = request.path_params["collection_id"]
        sid = request.path_params["style_id"]
        facts, refused = self._styled(request, cid)
        if refused is not None:
            return refused
        if sid not in style_ids(facts):
            return problem(
                404, "NotFound", f"no style {sid} for {cid}; styles: {', '.join(style_ids(facts))}"
            )
        return _json(style_for(facts, sid, self._base(request)), STYLE_MEDIA_TYPE)

    def _coverage_info(self, request: Request) -> tuple[Any, Response | None]:
        cid = request.path_params["collection_id"]
        resource = self._resources(request).get(cid)
        provider = next(
            (
                p
                for p in (resource or {}).get("providers", [])
                if p.get("type") == "coverage" and str(p.get("data", "")).endswith(".tif")
            ),
            None,
        )
        if provider is None:
            return None, problem(404, "NotFound", f"no raster coverage {cid}")
        return raster_info(provider["data"]), None

    async def domainset(self, request: Request) -> Response:
        info, refused = self._coverage_info(request)
        return refused or _json(domainset(info))

    async def rangetype(self, request: Request) -> Response:
        info, refused = self._coverage_info(request)
        return refused or _json(rangetype(info))

    async def coverage(self, request: Request) -> Response:
        """GDAL's OGCAPI driver writes scaleSize; the API (and pygeoapi) read scale-size."""
        query = [
            ("scale-size" if key == "scaleSize" else key, value)
            for key, value in request.query_params.multi_items()
        ]
        request.scope["query_string"] = urlencode(query).encode()
        return await self.server.coverage(Request(request.scope, request.receive))


def routes(server: Server) -> list[Route]:
    """The package's routes over the server's published, access-controlled snapshot."""
    api = MapsApi(server)
    c = "/collections/{collection_id}"
    return [
        Route("/styles", api.dataset_styles),
        Route("/styles/{style_id}", api.dataset_style),
        Route(f"{c}/styles", api.collection_styles),
        Route(f"{c}/styles/{{style_id}}", api.collection_style),
        Route(f"{c}/coverage/domainset", api.domainset),
        Route(f"{c}/coverage/rangetype", api.rangetype),
        Route(f"{c}/coverage", api.coverage),
    ]
