"""HTTP routes of the pages package; ``create_app`` adds them beside pygeoapi's.

- ``/static/...``: our files (``server/static/``: the vendored libraries, our stylesheet,
  logo, favicon and page scripts), then pygeoapi's own static files (its default.css and
  default.js, which its templates name). Files are public: they hold no data.
- ``/collections/{id}/coverage`` as a page (``f=html``, or a browser's ``Accept``): the
  coverage described, a preview image from the Maps API and links to the data, in the
  request's language. pygeoapi's page would compute the whole CoverageJSON (15 MB for the
  demo DEM), embed it and render in the server's default language; every other request
  to that path goes on to the coverage route (``Server.coverage``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from pygeoapi import l10n
from pygeoapi.api import APIRequest
from pygeoapi.util import render_j2_template
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..providers.coverage import raster_info
from . import sharing_pages

if TYPE_CHECKING:
    from ..app import Server

STATIC_PACKAGES = [("shikong.server", "static"), ("pygeoapi", "static")]
COVERAGE_TEMPLATE = "collections/coverage/index.html"
PREVIEW_WIDTH = 800


def static_files() -> StaticFiles:
    """Our static folder first, pygeoapi's behind it (its default.css, default.js)."""
    return StaticFiles(packages=STATIC_PACKAGES)


def wants_html(request: Request) -> bool:
    """The page is asked for: ``f=html``, or no ``f`` and a browser's Accept header."""
    f = request.query_params.get("f")
    if f is not None:
        return f.lower() == "html"
    return "text/html" in request.headers.get("accept", "")


def coverage_page_data(
    resource: dict[str, Any], collections_url: str, cid: str, query: list[tuple[str, str]]
) -> dict[str, Any]:
    """What the coverage page shows: the bands, the preview and the data's links."""
    dataset = f"{collections_url}/{cid}"
    kept = urlencode([(k, v) for k, v in query if k not in ("f", "lang")])
    amp = f"&{kept}" if kept else ""
    providers = {p["type"]: p for p in resource.get("providers", [])}
    coverage = providers.get("coverage", {})
    bands: list[dict[str, Any]] = []
    size = None
    if coverage.get("format", {}).get("name") == "GTiff":
        info = raster_info(coverage["data"])
        size = {"width": info.width, "height": info.height, "bbox": info.bounds_4490}
        bands = [
            {"name": n, "type": t, "unit": u}
            for n, t, u in zip(info.names, info.dtypes, info.units, strict=True)
        ]
    links = [
        {"rel": "collection", "title": resource["title"], "href": dataset},
        {
            "rel": "alternate",
            "type": "application/prs.coverage+json",
            "title": "This document as CoverageJSON",
            "href": f"{dataset}/coverage?f=json{amp}",
        },
    ]
    if coverage.get("format", {}).get("mimetype"):
        links.append(
            {
                "rel": "alternate",
                "type": coverage["format"]["mimetype"],
                "title": "The coverage as GeoTIFF",
                "href": f"{dataset}/coverage?f={coverage['format']['name']}{amp}",
            }
        )
    if bands:
        links += [
            {"rel": "domainset", "title": "Domain set", "href": f"{dataset}/coverage/domainset"},
            {"rel": "rangetype", "title": "Range type", "href": f"{dataset}/coverage/rangetype"},
        ]
    return {
        "id": cid,
        "title": resource["title"],
        "query_path": f"{dataset}/coverage",
        "dataset_path": dataset,
        "collections_path": collections_url,
        "links": links,
        "bands": bands,
        "size": size,
        "preview": f"{dataset}/map?f=png&width={PREVIEW_WIDTH}" if "map" in providers else None,
    }


def routes(server: Server) -> list[BaseRoute]:
    """The package's routes over the server's published, access-controlled snapshot."""

    async def coverage(request: Request) -> Response:
        if not wants_html(request):
            return await server.coverage(request)
        view = server.view(request)
        cid = request.path_params["collection_id"]
        resource = view.resources.get(cid)
        if resource is None or not any(
            p["type"] == "coverage" for p in resource.get("providers", [])
        ):
            return await server.coverage(request)  # its 404 (hidden = missing) or error
        api = view.api
        req = await APIRequest.from_starlette(request, api.locales)
        data = await run_in_threadpool(
            coverage_page_data,
            l10n.translate_struct(resource, req.locale),
            api.get_collections_url(),
            cid,
            list(request.query_params.multi_items()),
        )
        html = await run_in_threadpool(
            render_j2_template,
            api.tpl_config,
            api.config["server"]["templates"],
            COVERAGE_TEMPLATE,
            data,
            req.locale,
        )
        return HTMLResponse(html, headers={"Content-Language": l10n.locale2str(req.locale)})

    return [
        Mount("/static", app=static_files(), name="static"),
        Route("/collections/{collection_id}/coverage", coverage),
        *sharing_pages.routes(server),
    ]
