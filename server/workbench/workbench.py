"""The 一张图 workbench: one page with every layer the caller may see, and its data feeds.

- ``/workbench``: the page (MapLibre GL JS, vendored; our script and stylesheet);
- ``/workbench/layers``: the caller's layers grouped by department, each with its style
  URL, kind and the dates its versions start (the time slider's stops);
- ``/workbench/aliases``: Chinese field aliases and units (``config/field_aliases.yaml``);
- the sign-in routes (:mod:`.signin`) and the live stream (:mod:`.sse`).

Nothing here decides access: every list comes from the caller's view (``Server.view``),
and the page then reads tiles, styles, items and processes through the same gate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .pages import render
from .signin import SigninApi

if TYPE_CHECKING:
    from ..app import Server


class Workbench:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.signin = SigninApi(server)

    async def page(self, request: Request) -> Response:
        html = render("workbench.html", request, self.signin.caller(request))
        return HTMLResponse(html, headers={"cache-control": "no-store"})

    def routes(self) -> list[Route]:
        return [*self.signin.routes(), Route("/workbench", self.page)]


def routes(server: Server) -> list[Route]:
    """The workbench's and sign-in's routes, for ``create_app``."""
    return Workbench(server).routes()
