"""The workbench's pages for access requests and usage statistics (issue 22, points 2, 4).

- ``/workbench/requests``: a signed-in department's requests with their state, a form to
  ask another department for a layer, and, for an ``admin``, the requests made to its
  department's layers with approve / approve narrowed / refuse;
- ``/workbench/stats``: the usage figures of ``GET /stats`` as a chart per day and a table
  per layer and department, with since / until / layer filters; auditors and admins only,
  anyone else gets the 404 ``/stats`` gives.

The page frame's "json" link (``?f=json``) of either page goes to the API it reads
(``/sharing/requests``, ``/stats`` with the page's filters): a redirect, no second answer.

These handlers only render pages. Every read and every write is made by the page's own
script (``static/workbench/requests.js``, ``stats.js``) through the existing APIs
(``/sharing/requests``, ``/directory``, ``/stats``) with the session cookie and the CSRF
token, so the API's checks stay the only ones; no write path is added here. The pages are
rendered by pygeoapi's template environment in our page frame (``_base.html``), so the
language (``lang=``, else ``Accept-Language``), the zh catalogue, links keeping ``lang=``
and who is signed in come as on every other page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from pygeoapi import l10n
from pygeoapi.api import APIRequest
from pygeoapi.util import render_j2_template
from shikong.catalog.departments import departments
from shikong.catalog.policy import RIGHTS, Caller
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..problems import problem
from ..stats import PARAMETERS as STATS_PARAMETERS
from ..stats import ROLES as STATS_ROLES
from .signin import caller_summary

if TYPE_CHECKING:
    from ..app import Server

REQUESTS_TEMPLATE = "workbench/requests.html"
STATS_TEMPLATE = "workbench/stats.html"


def may_see_stats(caller: Caller) -> bool:
    """Whoever ``GET /stats`` answers: auditors and admins (server/stats.py)."""
    return not caller.anonymous and caller.role in STATS_ROLES


def department_names() -> dict[str, dict[str, str]]:
    """Every department's names for the page's script: code → {zh, en}."""
    return {
        code: {"zh": d.get("name", code), "en": d.get("name_en") or d.get("name", code)}
        for code, d in departments().items()
    }


def page_data(caller: Caller, **extra: Any) -> dict[str, Any]:
    """What both pages carry: who is signed in (for the script: what to show), the
    departments' names and the rights."""
    return {
        "who": caller_summary(caller),
        "departments": department_names(),
        "rights": list(RIGHTS),
        "stats": may_see_stats(caller),
        **extra,
    }


def stats_filters(request: Request) -> dict[str, str]:
    """The page's filters as given in its address (passed on to ``/stats`` by the script)."""
    q = request.query_params
    return {name: q[name] for name in STATS_PARAMETERS if q.get(name)}


def routes(server: Server) -> list[Route]:
    """The two pages, over the server's caller view and page templates."""
    from ..app import context  # app imports the workbench package

    async def render(request: Request, template: str, data: dict[str, Any]) -> Response:
        api = server.view(request).api
        req = await APIRequest.from_starlette(request, api.locales)
        data["lang"] = req.locale.language
        html = await run_in_threadpool(
            render_j2_template,
            api.tpl_config,
            api.config["server"]["templates"],
            template,
            data,
            req.locale,
        )
        headers = {"content-language": l10n.locale2str(req.locale), "cache-control": "no-store"}
        return HTMLResponse(html, headers=headers)

    async def requests_page(request: Request) -> Response:
        if request.query_params.get("f") == "json":  # the frame's "json" link: the API
            return RedirectResponse("/sharing/requests", status_code=303)
        return await render(request, REQUESTS_TEMPLATE, page_data(context(request).caller))

    async def stats_page(request: Request) -> Response:
        ctx = context(request)
        if not may_see_stats(ctx.caller):
            ctx.denied = True  # as /stats itself records it
            return problem(404, "NotFound", f"no resource at {request.url.path}")
        filters = stats_filters(request)
        if request.query_params.get("f") == "json":
            query = urlencode(filters)
            return RedirectResponse(f"/stats?{query}" if query else "/stats", status_code=303)
        return await render(request, STATS_TEMPLATE, page_data(ctx.caller, filters=filters))

    return [
        Route("/workbench/requests", requests_page),
        Route("/workbench/stats", stats_page),
    ]
