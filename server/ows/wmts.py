"""WMTS 1.0.0: capabilities and tiles (KVP and RESTful) over the OGC API Tiles grids.

The tile matrix sets are the tiles package's (:mod:`shikong.server.tiles.matrix_sets`:
WebMercatorQuad, WorldCRS84Quad, CGCS2000Quad for 天地图-style clients), so a WMTS tile and
an OGC API tile of the same z/y/x cover the same ground. Formats per layer:

- vector layers: ``image/png`` drawn by the WMS renderer with the layer's style (what
  GDAL's WMTS driver, QGIS and ArcGIS read), and ``application/vnd.mapbox-vector-tile``:
  the very tiles of ``/collections/{id}/tiles`` (:func:`shikong.server.tiles.render.vector_tile`,
  masks and cache included);
- raster layers: ``image/png`` from :func:`shikong.server.maps.raster.render_tile`.

TopLeftCorner is written in the CRS's axis order (latitude first for EPSG:4490, as the
tile matrix set document orders it), as WMTS 1.0.0 requires.
"""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING

from lxml import etree
from PIL import Image
from starlette.requests import Request
from starlette.responses import Response

from ..problems import Problem
from . import render, style
from .errors import OwsError
from .kvp import Kvp
from .layers import ServedLayer, pick, served_layers

if TYPE_CHECKING:
    from ..app import Server

WMTS_NS = "http://www.opengis.net/wmts/1.0"
OWS_NS = "http://www.opengis.net/ows/1.1"
XLINK = "http://www.w3.org/1999/xlink"
PNG = "image/png"
MVT = "application/vnd.mapbox-vector-tile"
EXTENSIONS = {"png": PNG, "mvt": MVT, "pbf": MVT}
SUFFIX = {PNG: "png", MVT: "mvt"}
# the WMS CRS name of each tile matrix set's CRS (x = east in the renderer)
VIEW_CRS = {"WebMercatorQuad": "EPSG:3857", "WorldCRS84Quad": "CRS:84", "CGCS2000Quad": "EPSG:4490"}
WELL_KNOWN = {"WebMercatorQuad": "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible"}
RENDERER = "shikong-wmts-png-1"  # part of the ETag: bump when drawing changes


def _matrix_sets():
    from ..tiles import matrix_sets

    return matrix_sets


def _urn(uri: str) -> str:
    """http://www.opengis.net/def/crs/EPSG/0/3857 → urn:ogc:def:crs:EPSG::3857."""
    parts = uri.rstrip("/").split("/")
    authority, version, code = parts[-3], parts[-2], parts[-1]
    return f"urn:ogc:def:crs:{authority}:{'' if version == '0' else version}:{code}"


def formats(layer: ServedLayer) -> list[str]:
    return [PNG, MVT] if layer.vector else [PNG]


def capabilities(server: Server, request: Request, base: str) -> Response:
    layers = served_layers(server, request)
    sets = _matrix_sets().all()
    ows, wmts = f"{{{OWS_NS}}}", f"{{{WMTS_NS}}}"
    nsmap = {None: WMTS_NS, "ows": OWS_NS, "xlink": XLINK}
    root = etree.Element(wmts + "Capabilities", nsmap=nsmap, version="1.0.0")

    def el(parent, tag: str, text: str | None = None, **attrs: str):
        child = etree.SubElement(parent, tag, {k: str(v) for k, v in attrs.items()})
        if text is not None:
            child.text = text
        return child

    ident = el(root, ows + "ServiceIdentification")
    el(ident, ows + "Title", "shikong 时空信息云平台")
    el(ident, ows + "ServiceType", "OGC WMTS")
    el(ident, ows + "ServiceTypeVersion", "1.0.0")
    meta = el(root, ows + "OperationsMetadata")
    for operation in ("GetCapabilities", "GetTile"):
        op = el(meta, ows + "Operation", name=operation)
        get = el(
            el(el(op, ows + "DCP"), ows + "HTTP"),
            ows + "Get",
            **{f"{{{XLINK}}}href": f"{base}/wmts?"},
        )
        constraint = el(get, ows + "Constraint", name="GetEncoding")
        el(el(constraint, ows + "AllowedValues"), ows + "Value", "KVP")
    contents = el(root, wmts + "Contents")
    for layer in layers.values():
        node = el(contents, wmts + "Layer")
        el(node, ows + "Title", layer.title)
        el(node, ows + "Abstract", layer.abstract)
        box = el(node, ows + "WGS84BoundingBox")
        el(box, ows + "LowerCorner", f"{layer.bbox[0]!r} {layer.bbox[1]!r}")
        el(box, ows + "UpperCorner", f"{layer.bbox[2]!r} {layer.bbox[3]!r}")
        el(node, ows + "Identifier", layer.id)
        for k, style_id in enumerate(style.style_ids(layer.id, layer.resource)):
            st = el(node, wmts + "Style", isDefault="true" if k == 0 else "false")
            el(st, ows + "Identifier", style_id)
        for media in formats(layer):
            el(node, wmts + "Format", media)
        for tms_id in sets:
            el(el(node, wmts + "TileMatrixSetLink"), wmts + "TileMatrixSet", tms_id)
        for media in formats(layer):
            template = (
                f"{base}/wmts/1.0.0/{layer.id}/{{Style}}/{{TileMatrixSet}}/{{TileMatrix}}/"
                f"{{TileRow}}/{{TileCol}}.{SUFFIX[media]}"
            )
            el(node, wmts + "ResourceURL", format=media, resourceType="tile", template=template)
    for tms_id, tms in sets.items():
        node = el(contents, wmts + "TileMatrixSet")
        el(node, ows + "Identifier", tms_id)
        el(node, ows + "SupportedCRS", _urn(tms.crs.srs))
        if tms_id in WELL_KNOWN:
            el(node, wmts + "WellKnownScaleSet", WELL_KNOWN[tms_id])
        for matrix in tms.tileMatrices:
            m = el(node, wmts + "TileMatrix")
            el(m, ows + "Identifier", str(matrix.id))
            el(m, wmts + "ScaleDenominator", repr(float(matrix.scaleDenominator)))
            corner = " ".join(repr(float(v)) for v in matrix.pointOfOrigin)
            el(m, wmts + "TopLeftCorner", corner)  # in the CRS's axis order
            el(m, wmts + "TileWidth", str(matrix.tileWidth))
            el(m, wmts + "TileHeight", str(matrix.tileHeight))
            el(m, wmts + "MatrixWidth", str(matrix.matrixWidth))
            el(m, wmts + "MatrixHeight", str(matrix.matrixHeight))
    el(
        root,
        wmts + "ServiceMetadataURL",
        **{f"{{{XLINK}}}href": f"{base}/wmts/1.0.0/WMTSCapabilities.xml"},
    )
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Response(body, media_type="application/xml")


def _tile_index(tms_id: str, matrix: str, row: str, col: str):
    """The tile matrix set and z/y/x, or the OWS exception naming what is out of range."""
    sets = _matrix_sets().all()
    tms = sets.get(tms_id)
    if tms is None:
        raise OwsError(
            "InvalidParameterValue",
            f"no tile matrix set {tms_id!r}; tile matrix sets: {', '.join(sets)}",
            "TileMatrixSet",
        )
    ids = [str(m.id) for m in tms.tileMatrices]
    if matrix not in ids:
        raise OwsError(
            "InvalidParameterValue",
            f"no tile matrix {matrix!r} in {tms_id} (tile matrices {ids[0]} to {ids[-1]})",
            "TileMatrix",
        )
    z = int(matrix)
    m = tms.matrix(z)
    for name, text, size in (("TileRow", row, m.matrixHeight), ("TileCol", col, m.matrixWidth)):
        if not (text.isascii() and text.isdigit()):
            raise OwsError("InvalidParameterValue", f"{name} must be a whole number", name)
        if int(text) >= size:
            raise OwsError(
                "TileOutOfRange",
                f"{name} {text} is outside tile matrix {z} (0 to {size - 1})",
                name,
            )
    return tms, z, int(row), int(col)


def get_tile(
    server: Server,
    request: Request,
    layer_id: str,
    style_id: str,
    tms_id: str,
    matrix: str,
    row: str,
    col: str,
    media: str,
    time: str | None = None,
) -> Response:
    (layer,) = pick(server, request, served_layers(server, request), [layer_id], "Layer")
    if media not in formats(layer):
        raise OwsError(
            "InvalidParameterValue",
            f"format {media!r} is not served for {layer_id}; formats: {', '.join(formats(layer))}",
            "Format",
        )
    offered = style.style_ids(layer.id, layer.resource)
    style_id = style_id or "default"
    if style_id not in offered:
        raise OwsError(
            "InvalidParameterValue",
            f"layer {layer_id} has no style {style_id!r}; styles: {', '.join(offered)}",
            "Style",
        )
    tms, z, y, x = _tile_index(tms_id, matrix, row, col)
    if media == MVT:
        return _vector_tile(server, request, layer, tms_id, z, y, x, time)
    if layer.vector:
        opened = layer.opened(time)
        key = f"{RENDERER}|{opened.path}|{layer.id}|{style_id}|{sorted(layer.mask.items())}"
    else:
        key = f"{RENDERER}|{layer.raster_path}|{layer.id}|{style_id}"
    etag = '"' + hashlib.sha256(f"{key}|{tms_id}|{z}|{y}|{x}".encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": _cache_control(server, layer.id)}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    if layer.vector:
        box = _matrix_sets().tile_box(tms, z, y, x)
        m = tms.matrix(z)
        view = render.MapView(box.xy, VIEW_CRS.get(tms_id, "EPSG:3857"), m.tileWidth, m.tileHeight)
        image = Image.new("RGBA", (m.tileWidth, m.tileHeight), (0, 0, 0, 0))
        kind = render.geometry_kind(opened)
        render.draw_layer(
            image, opened, style.paint(layer.id, layer.resource, opened, kind, style_id), view
        )
        out = io.BytesIO()
        image.save(out, "PNG", compress_level=1)
        content = out.getvalue()
    else:
        content = _raster_tile(layer, tms, z, y, x, style_id)
    return Response(content, media_type=PNG, headers=headers)


def _cache_control(server: Server, layer_id: str) -> str:
    public = server.classification(layer_id) == "public"
    return "public, max-age=60" if public else "private, max-age=60"


def _raster_tile(layer: ServedLayer, tms, z: int, y: int, x: int, style_id: str) -> bytes:
    from ..maps.raster import render_tile
    from ..maps.styles import raster_spec

    spec = raster_spec(style.facts(layer.id, layer.resource), style_id)
    m = tms.matrix(z)
    content = render_tile(
        layer.raster_path, tms, x, y, z, style=spec, fmt="png", tilesize=m.tileWidth
    )
    if content is None:  # no data here: a transparent tile, as clients expect an image
        out = io.BytesIO()
        Image.new("RGBA", (m.tileWidth, m.tileHeight), (0, 0, 0, 0)).save(out, "PNG")
        content = out.getvalue()
    return content


def _vector_tile(
    server: Server, request: Request, layer: ServedLayer, tms_id: str, z: int, y: int, x: int, time
) -> Response:
    from ..app import context
    from ..tiles.render import vector_tile

    access = server.access(context(request).caller)
    try:
        tile = vector_tile(
            server,
            access,
            layer.id,
            tms_id,
            z,
            y,
            x,
            datetime=time,
            if_none_match=request.headers.get("if-none-match"),
        )
    except Problem as exc:
        code = "InvalidParameterValue" if exc.status == 400 else "LayerNotDefined"
        raise OwsError(code, exc.description) from None
    headers = {"ETag": tile.etag, "Cache-Control": _cache_control(server, layer.id)}
    if (
        request.headers.get("if-none-match")
        and tile.content == b""
        and tile.etag in request.headers["if-none-match"]
    ):
        return Response(status_code=304, headers=headers)
    if not tile.content:
        return Response(status_code=204, headers=headers)
    return Response(tile.content, media_type=MVT, headers=headers)


def kvp_tile(server: Server, request: Request, kvp: Kvp) -> Response:
    """GetTile in KVP: LAYER, STYLE, FORMAT, TILEMATRIXSET, TILEMATRIX, TILEROW, TILECOL."""
    media = kvp.required("FORMAT").split(";")[0].strip()
    return get_tile(
        server,
        request,
        kvp.required("LAYER"),
        kvp.get("STYLE") or "default",
        kvp.required("TILEMATRIXSET"),
        kvp.required("TILEMATRIX"),
        kvp.required("TILEROW"),
        kvp.required("TILECOL"),
        media,
        kvp.get("TIME"),
    )
