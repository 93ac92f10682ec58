"""HTTP routes of the ows package; ``create_app`` adds them beside pygeoapi's.

``/wms`` answers WMS 1.3.0 and 1.1.1 KVP requests, ``/wmts`` WMTS 1.0.0 KVP requests,
``/wmts/1.0.0/WMTSCapabilities.xml`` and ``/wmts/1.0.0/{layer}/{style}/{tms}/{z}/{y}/{x}.{ext}``
its RESTful binding. Every refusal is the XML exception the protocol defines (with an HTTP
4xx); a layer the caller may not see is ``LayerNotDefined``, as an absent one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import public_url
from . import wms, wmts
from .errors import OwsError, ows_exception, wms_exception
from .kvp import Kvp

if TYPE_CHECKING:
    from ..app import Server

LOGGER = logging.getLogger(__name__)


def _base(server: Server) -> str:
    return public_url.current(server.publisher.url).rstrip("/")


def routes(server: Server) -> list[Route]:
    """The package's routes over the server's published, access-controlled snapshot."""

    async def answer(request: Request, work: Callable[[], Response], failed) -> Response:
        try:
            return await run_in_threadpool(work)
        except OwsError as exc:
            return failed(exc)
        except Exception:
            LOGGER.exception("unhandled error in %s", request.url.path)
            return failed(OwsError("NoApplicableCode", "internal error (logged)"))

    async def wms_kvp(request: Request) -> Response:
        kvp = Kvp(request)
        version = wms.version_of(kvp)
        base = _base(server)

        def work() -> Response:
            service = kvp.get("SERVICE")
            operation = kvp.get("REQUEST") or ""
            if service is not None and service.upper() != "WMS" and operation != "GetMap":
                raise OwsError("InvalidParameterValue", "SERVICE must be WMS", "SERVICE")
            key = operation.lower()
            if key in ("getcapabilities", "capabilities"):
                return wms.capabilities(server, request, kvp, base)
            if key in ("getmap", "map"):
                return wms.get_map(server, request, kvp)
            if key == "getfeatureinfo":
                return wms.get_feature_info(server, request, kvp)
            if not operation:
                raise OwsError("MissingParameterValue", "REQUEST is required", "REQUEST")
            raise OwsError(
                "OperationNotSupported",
                f"REQUEST {operation!r}: use GetCapabilities, GetMap or GetFeatureInfo",
                "REQUEST",
            )

        return await answer(request, work, lambda exc: wms_exception(exc, version))

    async def wmts_kvp(request: Request) -> Response:
        kvp = Kvp(request)
        base = _base(server)

        def work() -> Response:
            service = kvp.get("SERVICE")
            if service is not None and service.upper() != "WMTS":
                raise OwsError("InvalidParameterValue", "SERVICE must be WMTS", "SERVICE")
            operation = kvp.get("REQUEST") or ""
            if operation.lower() == "getcapabilities":
                return wmts.capabilities(server, request, base)
            if operation.lower() == "gettile":
                return wmts.kvp_tile(server, request, kvp)
            if not operation:
                raise OwsError("MissingParameterValue", "REQUEST is required", "REQUEST")
            raise OwsError(
                "OperationNotSupported",
                f"REQUEST {operation!r}: use GetCapabilities or GetTile",
                "REQUEST",
            )

        return await answer(request, work, ows_exception)

    async def wmts_capabilities(request: Request) -> Response:
        base = _base(server)
        return await answer(
            request, lambda: wmts.capabilities(server, request, base), ows_exception
        )

    async def wmts_rest_tile(request: Request) -> Response:
        p = request.path_params
        col, _, ext = p["col"].partition(".")
        media = wmts.EXTENSIONS.get(ext.lower())

        def work() -> Response:
            if media is None:
                raise OwsError(
                    "InvalidParameterValue",
                    f"tile suffix {ext!r}: use .png, or .mvt for vector tiles",
                    "Format",
                )
            return wmts.get_tile(
                server,
                request,
                p["layer"],
                p["style"],
                p["tms"],
                p["matrix"],
                p["row"],
                col,
                media,
                request.query_params.get("time"),
            )

        return await answer(request, work, ows_exception)

    return [
        Route("/wms", wms_kvp),
        Route("/wmts", wmts_kvp),
        Route("/wmts/1.0.0/WMTSCapabilities.xml", wmts_capabilities),
        Route("/wmts/1.0.0/{layer}/{style}/{tms}/{matrix}/{row}/{col}", wmts_rest_tile),
    ]
