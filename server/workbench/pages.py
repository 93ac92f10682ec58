"""Our HTML pages' one template environment (server/templates/workbench, autoescaped).

Every page extends ``base.html``, whose header says who is signed in (or offers to sign
in) and loads nothing from outside the server.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from shikong.catalog.policy import Caller
from starlette.requests import Request

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "workbench"
MAPLIBRE = "maplibre-gl-4.7.1"  # the version W1 vendored under server/static/vendor/


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, request: Request, caller: Caller, **context: Any) -> str:
    """A page for this caller: ``who`` (see signin.caller_summary) is in every page."""
    from .signin import caller_summary

    return (
        environment()
        .get_template(name)
        .render(who=caller_summary(caller), path=request.url.path, maplibre=MAPLIBRE, **context)
    )
