"""HTTP routes of the tiles package; ``create_app`` adds them beside pygeoapi's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

if TYPE_CHECKING:
    from ..app import Server


def routes(server: Server) -> list[Route]:
    """The package's routes over the server's published, access-controlled snapshot."""
    return []
