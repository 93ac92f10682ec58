"""Raster layers in WMS: drawn by helper B's renderer with the layer's fixed colour scale.

:func:`shikong.server.maps.raster.render_bbox` (rio-tiler over the COG's overviews, the
layer's style) draws the image, so WMS, the Maps API and the raster tiles agree pixel for
pixel. Until that renderer is installed a grey stretch over the COG's statistics stands in
(GDAL's warper, nearest neighbour). GetFeatureInfo samples the COG at the point.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
import rasterio.warp
from PIL import Image
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from rasterio.vrt import WarpedVRT

from . import crs as ows_crs

if TYPE_CHECKING:
    from .layers import ServedLayer
    from .render import MapView


def _styled_renderer():
    try:
        from shikong.server.maps import raster as maps_raster
        from shikong.server.maps import styles as maps_styles
    except ImportError:
        return None
    return maps_raster.render_bbox, maps_styles.raster_spec


def draw(image: Image.Image, layer: ServedLayer, view: MapView, style_id: str = "default") -> None:
    """Draw a raster layer's view onto an RGBA image (nodata stays transparent)."""
    styled = _styled_renderer()
    if styled is not None:
        from .style import facts

        render_bbox, raster_spec = styled
        png = render_bbox(
            layer.raster_path,
            view.bbox,
            ows_crs.served(view.crs).crs.to_wkt(),
            view.width,
            view.height,
            style=raster_spec(facts(layer.id, layer.resource), style_id),
            fmt="png",
        )
        image.alpha_composite(Image.open(io.BytesIO(png)).convert("RGBA"))
        return
    image.alpha_composite(_grey(layer.raster_path, view))


@lru_cache(maxsize=64)
def _stretch(path: str) -> tuple[float, float]:
    with rasterio.open(path) as src:
        stats = src.stats(indexes=[1], approx=True)[0]
    return float(stats.min), float(stats.max)


def _grey(path: str, view: MapView) -> Image.Image:
    """Band 1 in grey between the COG's minimum and maximum (the stand-in renderer)."""
    low, high = _stretch(path)
    transform = from_bounds(*view.bbox, view.width, view.height)
    with rasterio.open(path) as src:
        nodata = src.nodata
        with WarpedVRT(
            src,
            crs=ows_crs.served(view.crs).crs,
            transform=transform,
            width=view.width,
            height=view.height,
            resampling=Resampling.nearest,
            src_nodata=nodata,
            nodata=nodata if nodata is not None else np.nan,
            dtype="float64",
        ) as vrt:
            band = vrt.read(1, masked=True)
    scaled = np.clip((band.filled(low) - low) / max(high - low, 1e-12) * 255, 0, 255)
    grey = scaled.astype(np.uint8)
    alpha = np.where(np.ma.getmaskarray(band) | np.isnan(band.filled(np.nan)), 0, 255)
    return Image.fromarray(np.dstack([grey, grey, grey, alpha.astype(np.uint8)]), "RGBA")


def values_at(layer: ServedLayer, lon: float, lat: float) -> list[dict[str, Any]]:
    """The raster's band values at a point, as one feature (none outside or on nodata)."""
    with rasterio.open(layer.raster_path) as src:
        x, y = (lon, lat)
        if src.crs is not None and src.crs.to_epsg() not in (4490, 4326):
            x, y = (float(v[0]) for v in rasterio.warp.transform(4490, src.crs, [lon], [lat]))
        row, col = src.index(x, y)
        if not (0 <= row < src.height and 0 <= col < src.width):
            return []
        values = next(src.sample([(x, y)], masked=True))
        if np.ma.getmaskarray(values).all():
            return []
        names = [d or f"band_{k}" for k, d in enumerate(src.descriptions, 1)]
    masked = np.ma.getmaskarray(values)
    props = {
        n: (None if m else float(v)) for n, v, m in zip(names, values.data, masked, strict=True)
    }
    return [
        {
            "type": "Feature",
            "id": None,
            "layer": layer.id,
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": props,
        }
    ]
