"""HTTP routes of the pages package; ``create_app`` adds them beside pygeoapi's.

- ``/static/...``: our files (``server/static/``: the vendored libraries, our stylesheet,
  logo and favicon), then pygeoapi's own static files for what its templates name and we
  do not override. Files are public: they hold no data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

if TYPE_CHECKING:
    from ..app import Server

STATIC_PACKAGES = [("shikong.server", "static"), ("pygeoapi", "static")]


def static_files() -> StaticFiles:
    """Our static folder first, pygeoapi's behind it (its default.css, default.js)."""
    return StaticFiles(packages=STATIC_PACKAGES)


def routes(server: Server) -> list[BaseRoute]:
    """The package's routes (``server`` is unused so far; the workbench pages need it)."""
    return [Mount("/static", app=static_files(), name="static")]
