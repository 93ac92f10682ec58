"""WMS 1.3.0 (and 1.1.1): GetCapabilities, GetMap and GetFeatureInfo over the catalog.

Axis order follows the version (see :mod:`.crs`): 1.3.0 writes BBOX in the CRS's own
order, 1.1.1 always x/y. Vector layers are drawn by :mod:`.render` with their style's
colours (:mod:`.style`), raster layers by :mod:`.raster`. GetFeatureInfo answers the
features under a pixel (polygons holding its centre, points and lines within their drawn
size), masked as the Features API masks them.
"""

from __future__ import annotations

import html
import io
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import shapely
from lxml import etree
from PIL import Image
from shikong.catalog.policy import mask_value
from starlette.requests import Request
from starlette.responses import Response

from . import crs as ows_crs
from . import raster, render, style
from .errors import OwsError
from .kvp import Kvp
from .layers import ServedLayer, pick, served_layers

if TYPE_CHECKING:
    from ..app import Server

WMS_NS = "http://www.opengis.net/wms"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_SIZE = 4096
MAX_LAYERS = 16
IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}
INFO_FORMATS = ("application/json", "application/geo+json", "text/html", "text/plain")


def version_of(kvp: Kvp) -> str:
    """1.3.0 unless the request says 1.1.x (WMTVER is 1.0's name for VERSION)."""
    version = kvp.get("VERSION") or kvp.get("WMTVER") or "1.3.0"
    return "1.1.1" if version.startswith("1.1") else "1.3.0"


# -- GetCapabilities ----------------------------------------------------------------------
def capabilities(server: Server, request: Request, kvp: Kvp, base: str) -> Response:
    version = version_of(kvp)
    layers = served_layers(server, request)
    v13 = version == "1.3.0"
    ns = f"{{{WMS_NS}}}" if v13 else ""

    def el(parent, tag: str, text: str | None = None, **attrs: str):
        child = etree.SubElement(parent, ns + tag, {k: str(v) for k, v in attrs.items()})
        if text is not None:
            child.text = text
        return child

    def link(parent, tag: str, href: str):
        return el(parent, tag, **{f"{{{XLINK}}}type": "simple", f"{{{XLINK}}}href": href})

    if v13:
        nsmap = {None: WMS_NS, "xlink": XLINK, "xsi": XSI}
        root = etree.Element(ns + "WMS_Capabilities", nsmap=nsmap)
        root.set(
            f"{{{XSI}}}schemaLocation",
            f"{WMS_NS} http://schemas.opengis.net/wms/1.3.0/capabilities_1_3_0.xsd",
        )
    else:
        root = etree.Element("WMT_MS_Capabilities", nsmap={"xlink": XLINK})
    root.set("version", version)
    service = el(root, "Service")
    el(service, "Name", "WMS" if v13 else "OGC:WMS")
    el(service, "Title", "shikong 时空信息云平台")
    el(service, "Abstract", "The departments' layers as WMS; what you see depends on your key")
    link(service, "OnlineResource", f"{base}/wms")
    el(service, "Fees", "none")
    el(service, "AccessConstraints", "government data sharing; API key as HTTP Basic password")
    if v13:
        el(service, "LayerLimit", str(MAX_LAYERS))
        el(service, "MaxWidth", str(MAX_SIZE))
        el(service, "MaxHeight", str(MAX_SIZE))
    capability = el(root, "Capability")
    req = el(capability, "Request")
    operations = {
        "GetCapabilities": ["text/xml" if v13 else "application/vnd.ogc.wms_xml"],
        "GetMap": list(IMAGE_FORMATS),
        "GetFeatureInfo": list(INFO_FORMATS),
    }
    for operation, formats in operations.items():
        op = el(req, operation)
        for media in formats:
            el(op, "Format", media)
        get = el(el(el(op, "DCPType"), "HTTP"), "Get")
        link(get, "OnlineResource", f"{base}/wms?")
    exception = el(capability, "Exception")
    el(exception, "Format", "XML" if v13 else "application/vnd.ogc.se_xml")
    top = el(capability, "Layer")
    el(top, "Title", "shikong")
    crs_tag = "CRS" if v13 else "SRS"
    for code in ows_crs.CODES:
        if v13 or code != "CRS:84":
            el(top, crs_tag, code)
    if layers:
        boxes = np.array([layer.bbox for layer in layers.values()])
        whole = (*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0))
        _geographic_box(el, top, whole, v13)
    for layer in layers.values():
        node = el(top, "Layer", queryable="1", opaque="0")
        el(node, "Name", layer.id)
        el(node, "Title", layer.title)
        el(node, "Abstract", layer.abstract)
        _geographic_box(el, node, layer.bbox, v13)
        for code in _layer_crs(layer):
            box = _bbox_in(layer.bbox, code)
            if box is None:
                continue
            minx, miny, maxx, maxy = ows_crs.served(code).from_xy(box, version)
            el(
                node,
                "BoundingBox",
                **{crs_tag: code},
                minx=repr(minx),
                miny=repr(miny),
                maxx=repr(maxx),
                maxy=repr(maxy),
            )
        if layer.vector:
            times = layer.version_times()
            if len(times) > 1:
                if v13:
                    el(
                        node,
                        "Dimension",
                        ",".join(times),
                        name="time",
                        units="ISO8601",
                        default=times[-1],
                        nearestValue="0",
                    )
                else:
                    el(node, "Dimension", name="time", units="ISO8601")
                    el(node, "Extent", ",".join(times), name="time", default=times[-1])
        for style_id in style.style_ids(layer.id, layer.resource):
            st = el(node, "Style")
            el(st, "Name", style_id)
            el(st, "Title", style_id)
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    media = "text/xml" if v13 else "application/vnd.ogc.wms_xml"
    return Response(body, media_type=media)


def _geographic_box(el, parent, bbox, v13: bool) -> None:
    west, south, east, north = (repr(float(v)) for v in bbox)
    if v13:
        box = el(parent, "EX_GeographicBoundingBox")
        el(box, "westBoundLongitude", west)
        el(box, "eastBoundLongitude", east)
        el(box, "southBoundLatitude", south)
        el(box, "northBoundLatitude", north)
    else:
        el(parent, "LatLonBoundingBox", minx=west, miny=south, maxx=east, maxy=north)


def _layer_crs(layer: ServedLayer) -> list[str]:
    """The CRSs a layer gives a BoundingBox in: the common ones and its own GK zone."""
    from shikong.spatial.crs import gk_epsg, gk_zone

    codes = ["CRS:84", "EPSG:4490", "EPSG:4326", "EPSG:3857"]
    try:
        zone = gk_zone((layer.bbox[0] + layer.bbox[2]) / 2)
    except Exception:
        return codes
    return codes + [f"EPSG:{gk_epsg(zone, prefixed=p)}" for p in (False, True)]


def _bbox_in(bbox, code: str) -> tuple[float, float, float, float] | None:
    if ows_crs.is_storage_like(code):
        return tuple(float(v) for v in bbox)  # type: ignore[return-value]
    box = ows_crs.from_storage(code).transform_bounds(*bbox, densify_pts=21)
    return None if not all(np.isfinite(box)) else tuple(round(v, 3) for v in box)


# -- GetMap --------------------------------------------------------------------------------
class MapRequest:
    """The parts of GetMap (and GetFeatureInfo) that say what the image shows."""

    def __init__(self, server: Server, request: Request, kvp: Kvp, layer_param: str = "LAYERS"):
        self.version = version_of(kvp)
        names = kvp.names(layer_param)
        if len(names) > MAX_LAYERS:
            raise OwsError(
                "InvalidParameterValue", f"at most {MAX_LAYERS} layers per request", layer_param
            )
        self.layers = pick(server, request, served_layers(server, request), names, layer_param)
        self.styles = _styles(self.layers, kvp.get("STYLES") or "")
        crs_name = "CRS" if self.version == "1.3.0" else "SRS"
        served = ows_crs.served(kvp.required(crs_name))
        if self.version == "1.1.1" and kvp.get("SRS") is None:
            raise OwsError("MissingParameterValue", "SRS is required", "SRS")
        box = served.to_xy(kvp.bbox(), self.version)
        width = kvp.positive_int("WIDTH", MAX_SIZE)
        height = kvp.positive_int("HEIGHT", MAX_SIZE)
        self.view = render.MapView(box, served.name, width, height)
        self.time = kvp.get("TIME") or None


def _styles(layers: list[ServedLayer], text: str) -> list[str]:
    """One style per layer: STYLES= (or empty entries) is each layer's default."""
    asked = [s.strip() for s in text.split(",")] if text.strip() else [""] * len(layers)
    if len(asked) != len(layers):
        raise OwsError(
            "StyleNotDefined", "STYLES must name one style per layer (or be empty)", "STYLES"
        )
    out = []
    for layer, name in zip(layers, asked, strict=True):
        offered = style.style_ids(layer.id, layer.resource)
        if name and name not in offered:
            raise OwsError(
                "StyleNotDefined",
                f"layer {layer.id} has no style {name!r}; styles: {', '.join(offered)}",
                "STYLES",
            )
        out.append(name or "default")
    return out


def _background(kvp: Kvp) -> tuple[tuple[int, int, int, int], bool]:
    transparent = (kvp.get("TRANSPARENT") or "FALSE").upper()
    if transparent not in ("TRUE", "FALSE"):
        raise OwsError("InvalidParameterValue", "TRANSPARENT must be TRUE or FALSE", "TRANSPARENT")
    text = kvp.get("BGCOLOR") or "0xFFFFFF"
    try:
        rgb = int(text, 16) if text.lower().startswith("0x") and len(text) == 8 else None
    except ValueError:
        rgb = None
    if rgb is None:
        raise OwsError("InvalidParameterValue", "BGCOLOR must be 0xRRGGBB", "BGCOLOR")
    colour = ((rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255)
    return (*colour, 0 if transparent == "TRUE" else 255), transparent == "TRUE"


def draw(
    layers: list[ServedLayer], styles: list[str], view: render.MapView, time: str | None
) -> Image.Image:
    """The layers over a transparent canvas, first layer at the bottom."""
    canvas = Image.new("RGBA", (view.width, view.height), (0, 0, 0, 0))
    for layer, style_id in zip(layers, styles, strict=True):
        sheet = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        if layer.vector:
            opened = layer.opened(time)
            kind = render.geometry_kind(opened)
            colours = style.paint(layer.id, layer.resource, opened, kind, style_id)
            render.draw_layer(sheet, opened, colours, view)
        else:
            raster.draw(sheet, layer, view, style_id)
        canvas.alpha_composite(sheet)
    return canvas


def encode(image: Image.Image, media: str) -> bytes:
    out = io.BytesIO()
    if IMAGE_FORMATS[media] == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=85)
    else:
        image.save(out, "PNG", compress_level=1)  # speed over size: maps are drawn per request
    return out.getvalue()


def get_map(server: Server, request: Request, kvp: Kvp) -> Response:
    media = kvp.required("FORMAT").split(";")[0].strip().lower()
    if media not in IMAGE_FORMATS:
        raise OwsError(
            "InvalidFormat", f"FORMAT {media!r} is not served; use {', '.join(IMAGE_FORMATS)}"
        )
    background, _ = _background(kvp)
    wanted = MapRequest(server, request, kvp)
    image = Image.new("RGBA", (wanted.view.width, wanted.view.height), background)
    image.alpha_composite(draw(wanted.layers, wanted.styles, wanted.view, wanted.time))
    return Response(encode(image, media), media_type=media)


# -- GetFeatureInfo ------------------------------------------------------------------------
def get_feature_info(server: Server, request: Request, kvp: Kvp) -> Response:
    wanted = MapRequest(server, request, kvp)
    queried = MapRequest(server, request, kvp, "QUERY_LAYERS").layers
    drawn = {layer.id for layer in wanted.layers}
    for layer in queried:
        if layer.id not in drawn:
            raise OwsError(
                "LayerNotDefined", f"query layer {layer.id!r} is not in LAYERS", "QUERY_LAYERS"
            )
    media = (kvp.get("INFO_FORMAT") or "text/plain").split(";")[0].strip().lower()
    if media not in INFO_FORMATS:
        raise OwsError(
            "InvalidFormat",
            f"INFO_FORMAT {media!r} is not served; use {', '.join(INFO_FORMATS)}",
            "INFO_FORMAT",
        )
    i_name, j_name = ("I", "J") if wanted.version == "1.3.0" else ("X", "Y")
    view = wanted.view
    i = _pixel(kvp, i_name, view.width)
    j = _pixel(kvp, j_name, view.height)
    count_text = kvp.get("FEATURE_COUNT") or "1"
    if not (count_text.isascii() and count_text.isdigit()) or int(count_text) < 1:
        raise OwsError("InvalidParameterValue", "FEATURE_COUNT must be a positive whole number")
    features: list[dict[str, Any]] = []
    for layer in queried:
        features += features_at(layer, view, i, j, int(count_text), wanted.time)
    return _info_answer(features, media)


def _pixel(kvp: Kvp, name: str, size: int) -> int:
    text = kvp.required(name)
    if not (text.isascii() and text.isdigit()) or int(text) >= size:
        raise OwsError("InvalidPoint", f"{name} must be a pixel from 0 to {size - 1}", name)
    return int(text)


def _storage_point(view: render.MapView, i: float, j: float) -> tuple[float, float]:
    rx, ry = view.resolution
    x, y = view.bbox[0] + i * rx, view.bbox[3] - j * ry
    if ows_crs.is_storage_like(view.crs):
        return x, y
    lon, lat = ows_crs.to_storage(view.crs).transform(x, y)
    return float(lon), float(lat)


def features_at(
    layer: ServedLayer, view: render.MapView, i: int, j: int, limit: int, time: str | None
) -> list[dict[str, Any]]:
    """The layer's features under pixel (i, j), topmost (drawn last) first."""
    if not layer.vector:
        return raster.values_at(layer, *_storage_point(view, i + 0.5, j + 0.5))
    opened = layer.opened(time)
    kind = render.geometry_kind(opened)
    paint = style.paint(layer.id, layer.resource, opened, kind)
    reach = 0.5 if kind == render.POLYGON else max(paint.point_radius, paint.line_width) + 1
    if kind == render.POLYGON:
        probe = shapely.Point(_storage_point(view, i + 0.5, j + 0.5))
    else:
        corners = [
            _storage_point(view, i + 0.5 + di, j + 0.5 + dj)
            for di in (-reach, reach)
            for dj in (-reach, reach)
        ]
        xs, ys = zip(*corners, strict=True)
        probe = shapely.box(min(xs), min(ys), max(xs), max(ys))
    rows = np.sort(opened.tree.query(probe))
    if rows.size:
        rows = rows[shapely.intersects(opened.geometries(rows), probe)]
    rows = rows[::-1][:limit]
    found = []
    for record, geom in zip(opened.records(rows), opened.geometries(rows), strict=True):
        fid = record.pop(opened.id_field, None)
        for name, value in record.items():
            if hasattr(value, "isoformat"):
                record[name] = value.isoformat()
        for name, rule in layer.mask.items():
            if name in record:
                record[name] = mask_value(rule, record[name])
        found.append(
            {
                "type": "Feature",
                "id": fid,
                "layer": layer.id,
                "geometry": None if geom is None else geom.__geo_interface__,
                "properties": {opened.id_field: fid, **record},
            }
        )
    return found


def _info_answer(features: list[dict[str, Any]], media: str) -> Response:
    if media in ("application/json", "application/geo+json"):
        body = orjson.dumps({"type": "FeatureCollection", "features": features})
        return Response(body, media_type=media)
    if media == "text/html":
        parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"]
        for f in features:
            parts.append(f"<table><caption>{html.escape(f['layer'])}</caption>")
            for name, value in f["properties"].items():
                parts.append(
                    f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(str(value))}</td></tr>"
                )
            parts.append("</table>")
        parts.append("</body></html>")
        return Response("".join(parts), media_type="text/html; charset=utf-8")
    lines = []
    for f in features:
        lines.append(f"Layer '{f['layer']}'")
        lines.append(f"  Feature {f['id']}:")
        lines += [f"    {name} = '{value}'" for name, value in f["properties"].items()]
    if not features:
        lines.append("no features were found")
    return Response("\n".join(lines) + "\n", media_type="text/plain; charset=utf-8")
