"""OGC API Maps of a raster layer, drawn with the layer's style (one fixed colour scale).

pygeoapi's maps API calls :class:`ShikongMapProvider`; the image comes from
:func:`shikong.server.maps.raster.render_bbox`, the same code and the same style as the
raster tiles and WMS, so a full-extent map and its two halves agree where they overlap.
"""

from __future__ import annotations

import re
from typing import Any

from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)

from ..maps.raster import StyleError, render_bbox
from ..maps.styles import raster_spec
from .coverage import raster_info

WORLD = [-180.0, -90.0, 180.0, 90.0]  # what pygeoapi passes when the request has no bbox
EPSG_URI = re.compile(r"/EPSG/0/(\d+)$")


def crs_of(uri: str | None) -> str:
    """A CRS URI of the Maps API as rasterio reads it (CRS84 stays lon/lat)."""
    if not uri or str(uri).endswith("CRS84"):
        return "OGC:CRS84"
    found = EPSG_URI.search(str(uri))
    if found is None:
        raise ProviderInvalidQueryError(user_msg=f"crs {uri!r} is not an EPSG or CRS84 URI")
    return f"EPSG:{found.group(1)}"


class ShikongMapProvider(BaseProvider):
    """PNG maps of a raster layer in any EPSG CRS, in its style."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.collection = provider_def.get("collection", "")
        self.info = raster_info(self.data)

    def query(
        self,
        style: str | None = None,
        bbox: list | None = None,
        width: int = 500,
        height: int = 300,
        crs: str | None = None,
        datetime_: str | None = None,
        transparent: Any = True,
        format_: str = "png",
        **kwargs: Any,
    ) -> bytes:
        fmt = str(format_ or "png").lower().removeprefix("image/")
        if fmt != "png":  # pygeoapi answers only its provider's one format
            raise ProviderInvalidQueryError(
                user_msg="maps are drawn as PNG (f=png); JPEG and WebP: the tiles API"
            )
        try:
            spec = raster_spec(self.collection, style or "default")
        except KeyError:
            raise ProviderItemNotFoundError(
                user_msg=f"no style {style!r} for {self.collection}"
            ) from None
        target = crs_of(crs)
        box = list(bbox or WORLD)
        if box == WORLD and target == "OGC:CRS84":  # no bbox asked: the layer's extent
            box = list(self.info.bounds_4490)
        try:
            return render_bbox(
                self.data,
                box,
                target,
                int(width),
                int(height),
                style=spec,
                fmt=fmt,
                transparent=str(transparent).lower() != "false",
            )
        except StyleError as exc:
            raise ProviderInvalidQueryError(user_msg=str(exc)) from None
