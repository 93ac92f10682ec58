"""The 一张图 workbench: one page with every layer the caller may see, and its data feeds.

- ``/workbench``: the page (MapLibre GL JS, vendored; our script and stylesheet);
- ``/workbench/layers``: the caller's layers grouped by department, each with its style
  (URL and document), kind and the dates its versions start (the time slider's stops);
  the page carries the same list in its HTML (``#sk-boot``), so the map can ask for the
  tiles of the layers shown on opening without two round trips first;
- ``/workbench/aliases``: Chinese field aliases and units (``config/field_aliases.yaml``;
  the English page shows the field names instead, with the units);
- ``/workbench/proposal``: a proposal file (坐标报盘 .txt, GeoJSON, zipped Shapefile) as
  the process input and a CRS84 outline to draw, read by the library's readers;
- the sign-in routes (:mod:`.signin`), the live stream (:mod:`.sse`) and the
  mine-remediation view's NDVI change tiles and table (:mod:`.mines`).

Nothing here decides access: every list comes from the caller's view (``Server.view``),
and the page then reads tiles, styles, items and processes through the same gate.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson
import shapely
from shikong.catalog.departments import departments
from shikong.catalog.field_aliases import field_aliases
from shikong.spatial.errors import ShikongError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .. import public_url
from ..maps.styles import facts_from_resource, style_for
from ..problems import problem
from ..providers.versions import PublishedVersions
from .mines import MinesApi
from .pages import page_language, render
from .signin import SigninApi
from .sse import LiveStream

if TYPE_CHECKING:
    from ..app import Server

MAP_KINDS = ("raster", "vector", "sensors")  # drawn from tiles; readings are in the stream
MAX_PROPOSAL_BYTES = 8 * 1024 * 1024
PROPOSAL_SUFFIXES = (".txt", ".geojson", ".json", ".zip")


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _day(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def _title(resource: dict[str, Any], cid: str, lang: str = "zh") -> str:
    """The collection's title in ``lang`` (titles are ``{en, zh}`` or one string)."""
    title = resource.get("title")
    if isinstance(title, dict):
        return title.get(lang) or title.get("zh") or title.get("en") or cid
    return title or cid


def layer_entry(cid: str, resource: dict[str, Any], lang: str = "zh") -> dict[str, Any]:
    feature = next((p for p in resource.get("providers", []) if p.get("current")), None)
    versions = PublishedVersions.of(feature).timeline() if feature else []
    kind = resource["shikong"]["kind"]
    return {
        "id": cid,
        "title": _title(resource, cid, lang),
        "kind": kind,
        "classification": resource["shikong"]["classification"],
        "style": f"/collections/{cid}/styles/default",
        "timed": kind != "raster" and len(versions) > 0,
        "versions": [
            {"version": v["version"], "from": _day(v["valid_from"]), "to": _day(v["valid_to"])}
            for v in versions
        ],
        "bbox": (resource.get("extents") or {}).get("spatial", {}).get("bbox"),
    }


def layers_by_department(resources: dict[str, Any], lang: str = "zh") -> dict[str, Any]:
    """The caller's drawable layers, grouped by department in the departments' order,
    titles and department names in ``lang``."""
    names = departments()
    groups: dict[str, list[dict[str, Any]]] = {}
    for cid, resource in resources.items():
        if resource.get("type") != "collection" or "shikong" not in resource:
            continue
        if resource["shikong"]["kind"] not in MAP_KINDS:
            continue
        groups.setdefault(resource["shikong"]["department"], []).append(
            layer_entry(cid, resource, lang)
        )
    order = [d for d in names if d in groups] + sorted(d for d in groups if d not in names)
    dates = sorted(
        {v["from"] for g in groups.values() for layer in g for v in layer["versions"] if v["from"]}
    )
    return {
        "departments": [
            {
                "code": d,
                "name": _department_name(names.get(d, {}), d, lang),
                "layers": sorted(groups[d], key=lambda layer: layer["id"]),
            }
            for d in order
        ],
        "dates": dates,
    }


def _department_name(department: dict[str, Any], code: str, lang: str) -> str:
    if lang == "en":
        return department.get("name_en") or department.get("name") or code
    return department.get("name") or code


def with_styles(catalog: dict[str, Any], resources: dict[str, Any], base: str) -> dict[str, Any]:
    """Each layer of ``catalog`` with its default style document (``map``): the page adds
    them to the map as they are, without asking for each (a layer whose style cannot be
    made here is fetched by the page from its URL)."""
    for department in catalog["departments"]:
        for layer in department["layers"]:
            try:
                facts = facts_from_resource(layer["id"], resources[layer["id"]])
                layer["map"] = style_for(facts, "default", base)
            except (KeyError, StopIteration, ValueError, OSError):
                layer["map"] = None
    return catalog


def script_json(value: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element (no ``</script>``,
    no ``<!--``): ``<``, ``>`` and ``&`` written as JSON escapes."""
    text = orjson.dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def read_proposal(name: str, data: bytes) -> dict[str, Any]:
    """A proposal file as the process input (坐标报盘 text as text, so the report keeps its
    declared area; anything else as a CRS84 geometry) and its outline to draw."""
    from shikong.spatial.readers import read
    from shikong.spatial.readers.encoding import decode_text

    suffix = Path(name).suffix.lower()
    if suffix not in PROPOSAL_SUFFIXES:
        raise ValueError(
            f"a proposal is a 坐标报盘 .txt, GeoJSON or zipped Shapefile, not {name!r}"
        )
    with tempfile.TemporaryDirectory(prefix="shikong-proposal-") as folder:
        path = Path(folder) / f"proposal{suffix}"
        path.write_bytes(data)
        frame = read(path).frame
    if frame.crs is not None and frame.crs.to_epsg() not in (4490, 4326):
        frame = frame.to_crs(4490)
    outline = shapely.union_all(frame.geometry.values)
    proposal: Any = shapely.geometry.mapping(outline)
    if suffix == ".txt":
        proposal = decode_text(data, name)[0]
    return {
        "name": name,
        "proposal": proposal,
        "outline": {
            "type": "Feature",
            "properties": {},
            "geometry": shapely.geometry.mapping(outline),
        },
    }


class Workbench:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.signin = SigninApi(server)
        self.stream = LiveStream(server)
        self.mines = MinesApi(server)

    def _base(self) -> str:
        base = public_url.BASE_URL.get() or self.server.publisher.snapshot.config["server"]["url"]
        return base.rstrip("/")

    def catalog(self, request: Request) -> dict[str, Any]:
        """The caller's layers by department, with their style documents, in the
        request's language."""
        resources = self.server.view(request).resources
        catalog = layers_by_department(resources, page_language(request))
        return with_styles(catalog, resources, self._base())

    async def page(self, request: Request) -> Response:
        catalog = await run_in_threadpool(self.catalog, request)
        html = render(
            "workbench.html", request, self.signin.caller(request), boot=script_json(catalog)
        )
        return HTMLResponse(html, headers={"cache-control": "no-store"})

    async def layers(self, request: Request) -> Response:
        return _json(await run_in_threadpool(self.catalog, request))

    async def aliases(self, request: Request) -> Response:
        return _json(field_aliases())

    async def proposal(self, request: Request) -> Response:
        name = unquote(request.headers.get("x-file-name", ""))  # the page percent-encodes it
        data = await request.body()
        if not data:
            return problem(400, "MissingParameterValue", "send the proposal file as the body")
        if len(data) > MAX_PROPOSAL_BYTES:
            return problem(
                413, "PayloadTooLarge", f"a proposal file is at most {MAX_PROPOSAL_BYTES} bytes"
            )
        try:
            answer = await run_in_threadpool(read_proposal, name or "proposal.txt", data)
        except (ShikongError, ValueError) as exc:
            return problem(400, "InvalidParameterValue", f"{name}: {exc}")
        return _json(answer)

    def routes(self) -> list[Route]:
        return [
            *self.signin.routes(),
            Route("/workbench", self.page),
            Route("/workbench/layers", self.layers),
            Route("/workbench/aliases", self.aliases),
            Route("/workbench/proposal", self.proposal, methods=["POST"]),
            *self.stream.routes(),
            *self.mines.routes(),
        ]


def routes(server: Server) -> list[Route]:
    """The workbench's and sign-in's routes, for ``create_app``."""
    return Workbench(server).routes()
