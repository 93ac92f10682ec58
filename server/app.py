"""The HTTP server: pygeoapi's API functions behind our own Starlette routes.

pygeoapi's bundled apps read a config file at import; we route to ``pygeoapi.api``
functions with the current published snapshot instead, so the catalog can change
under a running server. Every error leaves as JSON naming the problem; an exception
we did not foresee is logged and answered 500 without a traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from pygeoapi import api as core_api
from pygeoapi.api import APIRequest, apply_gzip
from pygeoapi.api import coverages as coverages_api
from pygeoapi.api import environmental_data_retrieval as edr_api
from pygeoapi.api import itemtypes as itemtypes_api
from pygeoapi.api import maps as maps_api
from pygeoapi.api import processes as processes_api
from pygeoapi.plugin import load_plugin
from shikong.catalog import Catalog, asset_store
from shikong.catalog.live import LiveIngest
from shikong.catalog.policy import ANONYMOUS, Access, Caller, Policy
from shikong.catalog.sharing import grants_of
from shikong.spatial.errors import InputError, ShikongError
from shikong.spatial.temporal import parse_datetime
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import log_masking, map_services, metrics, params, public_url, pygeoapi_fixes, stats
from . import sharing as sharing_routes
from .audit import AuditLog
from .audit import query as audit_query
from .guard import Guard, RequestContext
from .identity import Authenticator, JwtSettings, KeyStore
from .jobs import JOB_OWNER
from .live import LiveApi, MqttBridge
from .maps import api as maps_routes
from .ows import api as ows_routes
from .problems import Problem, from_error, problem, render
from .processes import ALWAYS_AUDITED, process_reads, wants_async
from .providers.coverage import SCALING, raster_info
from .public_reads import PublicReads
from .publish import Publisher, View, advertise_storage_crs
from .rate_limits import buckets_for
from .stac_api import StacApi
from .tiles import api as tiles_routes
from .workbench import api as workbench_routes
from .workbench import error_pages
from .workbench import workbench as workbench_page

LOGGER = logging.getLogger(__name__)


def _bad_datetime(value: str) -> str | None:
    """Why a datetime parameter is not an instant or an interval, or None."""
    try:
        parse_datetime(value)
    except InputError as exc:
        return str(exc)
    return None


def _bad_bbox(value: str) -> str | None:
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        return f"bbox {value!r} is not a list of numbers"
    if len(numbers) not in (4, 6):
        return "bbox should be 4 numbers (minx,miny,maxx,maxy) or 6 with heights"
    if not all(math.isfinite(n) for n in numbers):
        return "bbox holds a value that is not a finite number"
    half = len(numbers) // 2
    if any(numbers[i] > numbers[i + half] for i in range(half)):
        return "bbox minimum is greater than its maximum"
    return None


CRS_URI = re.compile(r"^http://www\.opengis\.net/def/crs/(EPSG/0/\d{4,5}|OGC/1\.3/CRS84)$")
MAX_MAP_PIXELS = 4096


def _bad_map_params(request: Request) -> str | None:
    """pygeoapi answers 500 to a negative width or an unparseable bbox-crs; name them."""
    q = request.query_params
    for name in ("width", "height"):
        value = q.get(name)
        if value is not None and (not value.isdigit() or not 1 <= int(value) <= MAX_MAP_PIXELS):
            return f"{name} must be a whole number of pixels from 1 to {MAX_MAP_PIXELS}"
    crs = q.get("bbox-crs")
    if crs is not None and not CRS_URI.match(crs):
        return f"bbox-crs {crs!r} is not a CRS URI like http://www.opengis.net/def/crs/EPSG/0/4490"
    if q.get("transparent", "true").lower() not in ("true", "false"):
        return "transparent must be true or false"
    return None


def prevalidate(request: Request) -> Response | None:
    """Checks pygeoapi leaves to providers or answers with a vague message (or a 500)."""
    bbox = request.query_params.get("bbox")
    if bbox is not None:
        reason = _bad_bbox(bbox)
        if reason:
            return problem(400, "InvalidParameterValue", reason)
    value = request.query_params.get("datetime")
    if value is not None:
        reason = _bad_datetime(value)
        if reason:
            return problem(400, "InvalidParameterValue", reason)
    return None


def context(request: Request) -> RequestContext:
    """The gate's note for this request (an anonymous one when called without the gate)."""
    ctx = getattr(request.state, "shikong", None)
    if ctx is None:
        ctx = RequestContext(ANONYMOUS)
        request.state.shikong = ctx
    return ctx


def _with_query(request: Request, query: list[tuple[str, str]]) -> Request:
    """The same request with another query string (pygeoapi reads it from the scope)."""
    request.scope["query_string"] = urlencode(query).encode()
    return Request(request.scope, request.receive)


def _is_json(headers: dict[str, str]) -> bool:
    return "json" in headers.get("Content-Type", headers.get("content-type", ""))


NUMBER_RETURNED = re.compile(rb'"numberReturned":\s*(\d+)')


class Server:
    """Routes each request to pygeoapi with the caller's view of the current snapshot."""

    def __init__(self, catalog: Catalog, url: str, policy: Policy | None = None) -> None:
        self.catalog = catalog
        self.policy = policy or Policy.load(catalog.paths.root)
        self.publisher = Publisher(catalog, url, max_items=self.policy.limits.max_page_size)
        self.grants = sharing_routes.server_grants(
            catalog.paths.root,
            lambda: self.publisher.snapshot.metas,
            AuditLog(catalog.paths.root, personal=self.policy.personal_data),
        )
        self._access: dict[tuple[int, tuple[int, int], Caller], Access] = {}

    def access(self, caller: Caller) -> Access:
        """What a caller may see in the current snapshot, with the policy file's grants and
        the approved access requests in force (cached per snapshot, grants and caller)."""
        snapshot = self.publisher.snapshot
        granted, in_force = self.grants.current()
        key = (snapshot.version, granted, caller)
        found = self._access.get(key)
        if found is None:
            if len(self._access) > 10_000:
                self._access.clear()
            policy = self.policy.with_grants(grants_of(in_force))
            found = policy.access(caller, snapshot.metas.values())
            self._access[key] = found
        return found

    def classification(self, collection: str) -> str | None:
        meta = self.publisher.snapshot.metas.get(collection)
        return meta.classification if meta else None

    def hidden(self, caller: Caller, collection: str) -> bool:
        """The collection exists but this caller may not see it (answered 404)."""
        return (
            collection in self.publisher.snapshot.metas
            and collection not in self.access(caller).visible
        )

    def view(self, request: Request) -> View:
        caller = context(request).caller
        return self.publisher.snapshot.view(self.access(caller), public_url.BASE_URL.get())

    async def call(
        self,
        fn: Callable,
        request: Request,
        *args: Any,
        skip_valid_check: bool = False,
        rewrite: Callable[[dict], None] | None = None,
    ) -> Response:
        """pygeoapi's answer for this caller; ``rewrite`` amends a JSON body in place."""
        ctx = context(request)
        api = self.view(request).api
        early = prevalidate(request)
        if early is not None:
            return early
        req = await APIRequest.from_starlette(request, api.locales)
        if not skip_valid_check and not req.is_valid():
            headers, status, content = api.get_format_exception(req)
        else:
            owner = JOB_OWNER.set(None if ctx.caller.anonymous else ctx.caller.label)
            try:
                headers, status, content = await run_in_threadpool(fn, api, req, *args)
            except Exception:
                LOGGER.exception("unhandled error in %s %s", request.method, request.url.path)
                return problem(500, "NoApplicableCode", "internal error (logged)")
            finally:
                JOB_OWNER.reset(owner)
        if ctx.collections and isinstance(content, bytes | str) and ctx.items is None:
            found = NUMBER_RETURNED.search(
                content if isinstance(content, bytes) else content.encode()
            )
            if found:
                ctx.count = int(found.group(1))
        headers = dict(headers or {})
        if rewrite is not None and status == HTTPStatus.OK and _is_json(headers):
            body = orjson.loads(content)
            rewrite(body)
            content = orjson.dumps(body)
        if status != HTTPStatus.NO_CONTENT and content is not None:
            content = apply_gzip(headers, content)
        response = Response(content if content is not None else b"", status_code=int(status))
        response.headers.update(headers)
        return response

    # -- handlers --------------------------------------------------------------------
    async def landing(self, r: Request) -> Response:
        base = self.view(r).api.config["server"]["url"].rstrip("/")
        return await self.call(
            core_api.landing_page,
            r,
            rewrite=lambda body: map_services.advertise_on_landing(body, base),
        )

    async def openapi(self, r: Request) -> Response:
        await run_in_threadpool(self.view(r).ensure_openapi)
        return await self.call(core_api.openapi_, r)

    async def conformance(self, r: Request) -> Response:
        return await self.call(core_api.conformance, r, rewrite=map_services.advertise_conformance)

    async def collections(self, r: Request) -> Response:
        cid = r.path_params.get("collection_id")
        return await self.call(core_api.describe_collections, r, cid, rewrite=advertise_storage_crs)

    async def schema(self, r: Request) -> Response:
        return await self.call(core_api.get_collection_schema, r, r.path_params["collection_id"])

    async def queryables(self, r: Request) -> Response:
        return await self.call(
            itemtypes_api.get_collection_queryables, r, r.path_params["collection_id"]
        )

    async def items(self, r: Request) -> Response:
        response = await self._items(r)
        if r.method in ("POST", "PUT", "DELETE") and response.status_code in (200, 201, 204):
            await run_in_threadpool(self.publisher.refresh)  # read your own write
        return response

    async def _items(self, r: Request) -> Response:
        cid = r.path_params["collection_id"]
        item = r.path_params.get("item_id")
        writing = r.method in ("PUT", "DELETE") or (
            r.method == "POST"
            and r.headers.get("content-type", "").startswith("application/geo+json")
        )
        if writing:
            access = self.access(context(r).caller)
            if cid in access.visible and cid not in access.writable:
                context(r).denied = True
                return problem(
                    403,
                    "Forbidden",
                    f"editing {cid} needs its owner department or a write grant",
                )
        if r.method == "GET":
            wrong = await run_in_threadpool(self._unknown_parameters, r, cid, item)
            if wrong:
                return problem(400, "InvalidParameterValue", wrong)
        if r.method == "GET" and "f" not in r.query_params and pygeoapi_fixes.wants_geojson(r):
            r = _with_query(r, [*r.query_params.multi_items(), ("f", "json")])
        if item is None:
            if r.method == "GET":
                return await self.call(
                    itemtypes_api.get_collection_items, r, cid, skip_valid_check=True
                )
            if r.method == "POST":
                ctype = r.headers.get("content-type", "")
                if ctype.startswith("application/geo+json"):
                    return await self.call(
                        itemtypes_api.manage_collection_item,
                        r,
                        "create",
                        cid,
                        skip_valid_check=True,
                    )
                if not ctype:
                    return problem(
                        400,
                        "InvalidParameterValue",
                        "POST needs a Content-Type: application/geo+json to add "
                        "a feature, application/query-cql-json for a filter",
                    )
                return await self.call(
                    itemtypes_api.get_collection_items, r, cid, skip_valid_check=True
                )
            return await self.call(
                itemtypes_api.manage_collection_item, r, "options", cid, skip_valid_check=True
            )
        if r.method == "GET":
            return await self.call(itemtypes_api.get_collection_item, r, cid, item)
        action = {"PUT": "update", "DELETE": "delete", "OPTIONS": "options"}[r.method]
        return await self.call(
            itemtypes_api.manage_collection_item, r, action, cid, item, skip_valid_check=True
        )

    def _unknown_parameters(self, r: Request, cid: str, item: str | None) -> str | None:
        """Why an items request names a parameter the API does not define, or None."""
        resource = self.view(r).resources.get(cid)
        provider = next(
            (p for p in (resource or {}).get("providers", []) if p["type"] == "feature"), None
        )
        if provider is None:
            return None  # pygeoapi answers the unknown collection or item type itself
        names = list(dict.fromkeys(r.query_params.keys()))
        fields = list(load_plugin("provider", provider).get_fields()) if item is None else []
        unknown = params.unknown_parameters(
            names, (params.ITEMS | set(fields)) if item is None else params.ITEM
        )
        return params.unknown_message(unknown, fields) if unknown else None

    def _unknown_bands(self, r: Request) -> str | None:
        """pygeoapi says only "Invalid field specified"; name the band and the choices."""
        wanted = [p for p in r.query_params.get("properties", "").split(",") if p]
        resource = self.view(r).resources.get(r.path_params["collection_id"])
        if not wanted or resource is None:
            return None
        coverage = next((p for p in resource["providers"] if p["type"] == "coverage"), None)
        if coverage is None:
            return None
        names = raster_info(coverage["data"]).names
        missing = [w for w in wanted if w not in names]
        if missing:
            return f"no band {', '.join(missing)}; bands: {', '.join(names)}"
        return None

    async def coverage(self, r: Request) -> Response:
        scaling = {
            k: r.query_params[k] for k in ("scale-size", "scale-factor") if k in r.query_params
        }
        wrong = self._unknown_bands(r)
        if wrong:
            return problem(400, "InvalidParameterValue", wrong)
        token = SCALING.set(scaling)  # pygeoapi does not pass scale-* on to providers
        try:
            return await self.call(
                coverages_api.get_collection_coverage,
                r,
                r.path_params["collection_id"],
                skip_valid_check=True,
            )
        finally:
            SCALING.reset(token)

    async def map(self, r: Request) -> Response:
        wrong = _bad_map_params(r)
        if wrong:
            return problem(400, "InvalidParameterValue", wrong)
        return await self.call(
            maps_api.get_collection_map,
            r,
            r.path_params["collection_id"],
            r.path_params.get("style_id"),
        )

    async def edr(self, r: Request) -> Response:
        query_type = r.url.path.rstrip("/").split("/")[-1]
        if r.query_params.get("f", "").lower() == "geojson":  # pygeoapi matches f= in lower case
            query = [(k, v.lower() if k == "f" else v) for k, v in r.query_params.multi_items()]
            r = _with_query(r, query)
        location = r.path_params.get("location_id")
        if location is not None:
            query_type = "locations"
        response = await self.call(
            edr_api.get_collection_edr_query,
            r,
            r.path_params["collection_id"],
            r.path_params.get("instance_id"),
            query_type,
            location,
            skip_valid_check=True,
        )
        if response.body.startswith(b'{"type":"FeatureCollection"'):
            response.headers["content-type"] = "application/geo+json"  # pygeoapi says covjson
        return response

    async def processes(self, r: Request) -> Response:
        return await self.call(processes_api.describe_processes, r, r.path_params.get("process_id"))

    async def execute(self, r: Request) -> Response:
        body = await r.body()
        pid = r.path_params["process_id"]
        ctx = context(r)
        limit = self.policy.limits.max_process_input_bytes
        if len(body) > limit:
            return problem(
                413, "PayloadTooLarge", f"process inputs over the limit of {limit} bytes"
            )
        parsed: dict = {}
        if body:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                return problem(400, "InvalidParameterValue", f"request body is not JSON: {exc}")
            if not isinstance(parsed, dict):
                return problem(
                    400, "InvalidParameterValue", "request body must be a JSON object with 'inputs'"
                )
        ctx.process, ctx.input_digest = pid, hashlib.sha256(body).hexdigest()
        ctx.always_audit = pid in ALWAYS_AUDITED
        resource = self.view(r).resources.get(pid)
        if resource is not None:
            inputs = parsed.get("inputs")
            ctx.touch(*process_reads(resource, inputs, self.publisher.snapshot.metas))
            if ctx.caller.anonymous and wants_async(pid, r.headers.get("prefer", "")):
                return problem(
                    403,
                    "Forbidden",
                    "asynchronous jobs need an identity (X-API-Key or a bearer token): "
                    "their status and results are shown to their owner only",
                )
        return await self.call(processes_api.execute_process, r, r.path_params["process_id"])

    async def jobs(self, r: Request) -> Response:
        job = r.path_params.get("job_id")
        if r.method == "DELETE":
            return await self.call(processes_api.delete_job, r, job)
        return await self.call(processes_api.get_jobs, r, job)

    async def job_results(self, r: Request) -> Response:
        return await self.call(processes_api.get_job_result, r, r.path_params["job_id"])

    async def audit(self, r: Request) -> Response:
        """The audit log, for auditors: ?user=&department=&collection=&since=&until=
        &status=&denied=&limit= (others get 404, as for anything they may not see).
        Entries are masked again on the way out (logs written before masking)."""
        from .audit import BadTime
        from .audit_mask import Redactor

        ctx = context(r)
        if ctx.caller.role != "auditor":
            ctx.denied = True
            return problem(404, "NotFound", f"no resource at {r.url.path}")
        ctx.always_audit = True
        q = r.query_params
        known = {"user", "department", "collection", "since", "until", "status", "denied"}
        unknown = sorted(set(q) - known - {"limit", "f"})
        if unknown:
            return problem(
                400, "InvalidParameterValue", f"unknown query parameter {unknown[0]!r} for /audit"
            )
        for name in ("status", "limit"):
            if q.get(name) is not None and not (q[name].isascii() and q[name].isdigit()):
                return problem(
                    400, "InvalidParameterValue", f"{name} {q[name]!r} is not a positive integer"
                )
        status = int(q["status"]) if q.get("status") else None
        limit = int(q.get("limit") or 1000)
        if limit < 1:
            return problem(400, "InvalidParameterValue", "limit must be a positive integer")
        denied_text = q.get("denied", "").lower()
        if denied_text not in ("", "true", "false"):
            return problem(400, "InvalidParameterValue", "denied must be true or false")
        denied = {"true": True, "false": False}.get(denied_text)
        try:
            rows = await run_in_threadpool(
                audit_query,
                self.catalog.paths.audit_log,
                user=q.get("user"),
                department=q.get("department"),
                collection=q.get("collection"),
                since=q.get("since"),
                until=q.get("until"),
                status=status,
                denied=denied,
                limit=limit,
                redactor=Redactor(self.policy.personal_data),
            )
        except BadTime as exc:
            return problem(400, "InvalidParameterValue", str(exc))
        return JSONResponse({"entries": rows, "numberReturned": len(rows)})

    def routes(self) -> list[Route]:
        c = "/collections/{collection_id}"
        edr_kinds = ["position", "area", "cube", "radius", "trajectory", "corridor", "locations"]
        routes = [
            Route("/", self.landing),
            Route("/openapi", self.openapi),
            Route("/conformance", self.conformance),
            Route("/collections", self.collections),
            Route(c, self.collections),
            Route(f"{c}/schema", self.schema),
            Route(f"{c}/queryables", self.queryables),
            Route(f"{c}/items", self.items, methods=["GET", "POST", "OPTIONS"]),
            Route(
                f"{c}/items/{{item_id}}", self.items, methods=["GET", "PUT", "DELETE", "OPTIONS"]
            ),
            Route(f"{c}/coverage", self.coverage),
            Route(f"{c}/map", self.map),
            Route(f"{c}/styles/{{style_id}}/map", self.map),
            Route(f"{c}/locations/{{location_id}}", self.edr),
            Route("/processes", self.processes),
            Route("/processes/{process_id}", self.processes),
            Route("/processes/{process_id}/execution", self.execute, methods=["POST"]),
            Route("/jobs", self.jobs),
            Route("/jobs/{job_id}", self.jobs, methods=["GET", "DELETE"]),
            Route("/jobs/{job_id}/results", self.job_results),
            Route("/audit", self.audit),
        ]
        routes += [Route(f"{c}/{kind}", self.edr) for kind in edr_kinds]
        return routes


async def _not_found(request: Request, exc: Exception) -> Response:
    return problem(404, "NotFound", f"no resource at {request.url.path}")


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (405 and the like) in the problem shape, headers kept."""
    status = getattr(exc, "status_code", 500)
    headers = dict(getattr(exc, "headers", None) or {})
    if status in (204, 304):  # no body allowed
        return Response(status_code=status, headers=headers)
    if status == 405:
        allowed = headers.get("Allow", "see the OpenAPI document")
        response = problem(
            405,
            "MethodNotAllowed",
            f"{request.method} is not allowed at {request.url.path}; allowed: {allowed}",
        )
    else:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        response = problem(status, phrase.replace(" ", ""), str(getattr(exc, "detail", phrase)))
    response.headers.update(headers)
    return response


async def _problem(request: Request, exc: Exception) -> Response:
    """A Problem raised anywhere under a handler; a library error as the 400 it is."""
    if isinstance(exc, Problem):
        return render(exc)
    if isinstance(exc, ShikongError) and not isinstance(exc, InputError):
        LOGGER.exception("unhandled error", exc_info=exc)
    return render(from_error(exc))


async def _server_error(request: Request, exc: Exception) -> Response:
    LOGGER.exception("unhandled error", exc_info=exc)
    return problem(500, "NoApplicableCode", "internal error (logged)")


def create_app(
    data_dir: str | Path,
    url: str | None,
    watch: bool = True,
    mqtt: str | None = None,
    jwt: JwtSettings | None = None,
    policy: Policy | None = None,
    local_url: str = "http://localhost:5000",
    database: str | None = None,
):
    """The ASGI application serving one data directory (and an MQTT broker's sensors).

    ``database``: the catalog's PostgreSQL DSN (default ``$SHIKONG_DATABASE``; unset:
    SQLite in the data directory), see :mod:`shikong.catalog.stores`.

    Access control is not optional: the Starlette app is wrapped by the gate, and every
    handler serves the caller's view. Bearer tokens are accepted when ``jwt`` (or the
    SHIKONG_JWT_* environment) names an issuer. ``url`` is the public base URL of every
    link; None writes links with each request's own scheme and host (``local_url`` when
    a request names none), see :mod:`public_url`.
    """
    pygeoapi_fixes.apply()
    log_masking.install()
    public = public_url.PublicUrl(url, local_url, public_url.trusted_from_env())
    url = url or local_url
    catalog = Catalog.open(data_dir, database)
    if asset_store.s3_configured():  # before any raster job starts its Dask workers
        asset_store.configure_gdal()
    server = Server(catalog, url, policy)
    live = LiveIngest(catalog.store, catalog.observations)
    bridge = MqttBridge(live, mqtt) if mqtt else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if watch:
            server.publisher.watch()
        if bridge is not None:
            bridge.start()
        yield
        if bridge is not None:
            bridge.stop()
        server.publisher.stop()

    def access_of(request: Request) -> Access:
        return server.access(context(request).caller)

    stac = StacApi(server.catalog, url, access_of, server.policy.limits.max_page_size)
    app = Starlette(
        routes=stac.routes()
        + LiveApi(live, bridge, access_of).routes()
        + tiles_routes.routes(server)
        + workbench_routes.routes(server)
        + workbench_page.routes(server)
        + maps_routes.routes(server)
        + ows_routes.routes(server)
        + sharing_routes.routes(server)
        + stats.routes(server)
        + metrics.routes(server)
        + server.routes(),
        lifespan=lifespan,
        exception_handlers={
            404: _not_found,
            500: _server_error,
            HTTPException: _http_error,
            Problem: _problem,
            ShikongError: _problem,
        },
    )
    app.state.server = server
    guard = Guard(
        metrics.instrument(app, server),  # counts and times each request by route (/metrics)
        Authenticator(KeyStore(catalog.paths.root), jwt or JwtSettings.from_env()),
        AuditLog(catalog.paths.root, personal=server.policy.personal_data),
        server.policy.limits,
        server.classification,
        server.hidden,
        buckets_for(
            catalog.paths.root,
            server.policy.limits.rate_per_second,
            server.policy.limits.rate_burst,
        ),
    )
    guard.audit.annotate = server.grants.annotate  # an entry names the grant it was served by
    guard.on_refusal = app.state.metrics.refused  # the gate's own refusals in /metrics
    server.public_reads = PublicReads(catalog.paths.root)  # public reads for /stats
    guard.on_unaudited = server.public_reads.add
    guard.state = app.state  # tests and tools reach the server through the outer app
    pages = error_pages.middleware(guard, server)  # a browser's error answers as pages
    pages = server.grants.per_request(pages)  # the grants read once a request
    return public.middleware(pages)  # outermost: the gate sees the caller behind a proxy
