"""The basemap under the pages' maps, from ``SHIKONG_BASEMAP`` (no public tile server).

- ``none``: no basemap; the map says so ("no basemap configured");
- ``platform`` (the default): the platform's own layers, drawn from its vector tiles in their styles
  (``/styles/default``: what the caller may see), needing nothing from outside;
- a tile URL template with ``{z}``, ``{x}``, ``{y}`` (e.g. 天地图's ``vec_w`` with its
  ``tk=`` key, or an intranet tile server). ``SHIKONG_BASEMAP_ATTRIBUTION`` is shown
  under it; ``{s}`` in the URL takes ``SHIKONG_BASEMAP_SUBDOMAINS`` (天地图: 01234567).

pygeoapi's templates read ``server.map`` of its config; this is what we put there.
"""

from __future__ import annotations

import os
from typing import Any

from shikong.spatial.errors import InputError

KINDS = ("none", "platform")


def basemap_config(environ: os._Environ[str] | dict[str, str] | None = None) -> dict[str, Any]:
    """``server.map`` for pygeoapi's config: ``kind`` (none, platform, url), ``url``,
    ``attribution``, ``subdomains``. A value that is none of these is refused at start."""
    env = os.environ if environ is None else environ
    value = (env.get("SHIKONG_BASEMAP") or "platform").strip()
    if value.lower() in KINDS:
        return {"kind": value.lower(), "url": "", "attribution": ""}
    if not (value.startswith(("http://", "https://", "/")) and "{z}" in value):
        raise InputError(
            "SHIKONG_BASEMAP",
            f"{value!r} is not none, platform or a tile URL template with {{z}}, {{x}} and {{y}}",
        )
    return {
        "kind": "url",
        "url": value,
        "attribution": env.get("SHIKONG_BASEMAP_ATTRIBUTION", ""),
        "subdomains": env.get("SHIKONG_BASEMAP_SUBDOMAINS", "abc"),
    }
