"""Drawing a vector layer into an image: Pillow's ImageDraw with shapely 2 array operations.

A dense layer seen whole (a million parcels in 1024×768) is mostly features smaller than a
pixel. Those are never decoded: their bounding boxes (kept by the opened layer) give
their centre, which is moved to the map's CRS in one vectorised pyproj call and set as
one pixel of the feature's colour (numpy indexing). Only features a pixel or larger are
decoded from WKB, transformed (shapely.transform over all coordinates at once), moved to
pixel space, simplified at half a pixel and drawn by Pillow, one C call per ring.
Pillow does not anti-alias, so a polygon covers the pixels whose centres it holds plus
its rasterised outline, as GDAL's rasterize (pixel-centre rule) would give up to the
boundary pixels.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numba
import numpy as np
import shapely
from PIL import Image, ImageDraw
from shikong.catalog.opened import OpenedLayer

from . import crs as ows_crs
from .style import Paint

POINT, LINE, POLYGON = "point", "line", "polygon"
_KINDS = {0: POINT, 4: POINT, 1: LINE, 2: LINE, 5: LINE, 3: POLYGON, 6: POLYGON}
_geometry_kind: dict[str, str] = {}


@dataclass(frozen=True)
class MapView:
    """The image asked for: bbox (x = east, y = north) in a served CRS, size in pixels."""

    bbox: tuple[float, float, float, float]
    crs: str
    width: int
    height: int

    @property
    def resolution(self) -> tuple[float, float]:
        minx, miny, maxx, maxy = self.bbox
        return (maxx - minx) / self.width, (maxy - miny) / self.height

    def storage_bbox(self) -> tuple[float, float, float, float]:
        """The view's extent in CGCS2000 lon/lat (densified edges for projected CRSs)."""
        if ows_crs.is_storage_like(self.crs):
            return self.bbox
        return ows_crs.to_storage(self.crs).transform_bounds(*self.bbox, densify_pts=21)

    def to_pixels(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Storage lon/lat → continuous pixel coordinates (column, row; 0 = left/top edge)."""
        if not ows_crs.is_storage_like(self.crs):
            x, y = ows_crs.from_storage(self.crs).transform(x, y)
        rx, ry = self.resolution
        return (np.asarray(x) - self.bbox[0]) / rx, (self.bbox[3] - np.asarray(y)) / ry


def geometry_kind(opened: OpenedLayer) -> str:
    """point, line or polygon: what most of a layer's first geometries are."""
    key = str(opened.path)
    found = _geometry_kind.get(key)
    if found is None:
        sample = opened.geometries(np.arange(min(opened.count, 200)))
        ids = shapely.get_type_id(sample[~shapely.is_missing(sample)])
        kinds = [_KINDS.get(int(i), POLYGON) for i in ids] or [POLYGON]
        found = max(set(kinds), key=kinds.count)
        _geometry_kind[key] = found
    return found


def rows_in_view(opened: OpenedLayer, view: MapView) -> np.ndarray:
    """Rows whose bounding box meets the view's storage extent, in layer order."""
    minx, miny, maxx, maxy = view.storage_bbox()
    b = opened.bounds
    lx0, ly0 = np.nanmin(b[:, 0], initial=np.inf), np.nanmin(b[:, 1], initial=np.inf)
    lx1, ly1 = np.nanmax(b[:, 2], initial=-np.inf), np.nanmax(b[:, 3], initial=-np.inf)
    overlap = max(0.0, min(maxx, lx1) - max(minx, lx0)) * max(0.0, min(maxy, ly1) - max(miny, ly0))
    whole = max((lx1 - lx0) * (ly1 - ly0), 1e-300)
    if overlap / whole > 0.2:  # a large share: one vectorised pass beats the tree
        hit = (b[:, 0] <= maxx) & (b[:, 2] >= minx) & (b[:, 1] <= maxy) & (b[:, 3] >= miny)
        return np.flatnonzero(hit)
    return np.sort(opened.tree.query(shapely.box(minx, miny, maxx, maxy)))


TINY_PX = 3.0  # up to this size: their bounding box, filled by the pixel-centre rule
MAX_CACHED_CRS = 4
_projected: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_projected_lock = threading.Lock()


def projected_bounds(opened: OpenedLayer, crs: str) -> np.ndarray:
    """Every row's bounding box corners moved to a served CRS, (n, 4) with x = east.

    Computed once per layer version and CRS (a client draws in one CRS), so a request
    drawing a million small features transforms none of them.
    """
    if ows_crs.is_storage_like(crs):
        return opened.bounds
    key = (str(opened.path), crs)
    with _projected_lock:
        found = _projected.get(key)
        if found is not None:
            _projected.move_to_end(key)
            return found
    b = opened.bounds
    move = ows_crs.from_storage(crs)
    x0, y0 = move.transform(b[:, 0], b[:, 1])
    x1, y1 = move.transform(b[:, 2], b[:, 3])
    found = np.column_stack(
        [np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)]
    )
    with _projected_lock:
        _projected[key] = found
        while len(_projected) > MAX_CACHED_CRS:
            _projected.popitem(last=False)
    return found


def draw_layer(image: Image.Image, opened: OpenedLayer, paint: Paint, view: MapView) -> None:
    """Draw one layer version's features in the view onto an RGBA image."""
    rows = rows_in_view(opened, view)
    if rows.size == 0:
        return
    kind = geometry_kind(opened)
    if kind == POINT:
        _draw_shapes(image, opened, rows, paint, view, kind)
        return
    pixels = np.asarray(image).copy()
    rx, ry = view.resolution
    big = np.empty(rows.size, np.int64)
    n_big = _fill_boxes(
        projected_bounds(opened, view.crs),
        rows.astype(np.int64),
        paint.fill,
        view.bbox[0],
        view.bbox[3],
        rx,
        ry,
        TINY_PX,
        pixels,
        big,
    )
    image.paste(Image.fromarray(pixels, "RGBA"))
    if n_big:
        _draw_shapes(image, opened, big[:n_big], paint, view, kind)


@numba.njit(nogil=True, cache=True)
def _fill_boxes(bounds, rows, fill, x0, y1, rx, ry, tiny, pixels, big):  # pragma: no cover
    """Features up to ``tiny`` pixels: the pixels whose centres their box holds (at least
    the pixel of its centre, so none vanishes); the larger ones' rows go to ``big``.

    One pass in compiled code: a million boxes take a few milliseconds, where the same
    in numpy array operations took 150 ms (a dozen passes over a million values).
    """
    h, w = pixels.shape[0], pixels.shape[1]
    n_big = 0
    for k in range(rows.size):
        i = rows[k]
        left = (bounds[i, 0] - x0) / rx
        right = (bounds[i, 2] - x0) / rx
        top = (y1 - bounds[i, 3]) / ry
        bottom = (y1 - bounds[i, 1]) / ry
        if np.isnan(left):  # an empty geometry: nothing to draw
            continue
        if right - left > tiny or bottom - top > tiny:
            big[n_big] = i
            n_big += 1
            continue
        cc = np.floor((left + right) / 2)
        cr = np.floor((top + bottom) / 2)
        c0 = min(np.ceil(left - 0.5), cc)
        c1 = max(np.floor(right - 0.5), cc)
        r0 = min(np.ceil(top - 0.5), cr)
        r1 = max(np.floor(bottom - 0.5), cr)
        for r in range(max(int(r0), 0), min(int(r1), h - 1) + 1):
            for c in range(max(int(c0), 0), min(int(c1), w - 1) + 1):
                for band in range(4):
                    pixels[r, c, band] = fill[i, band]
    return n_big


def _pixel_geometries(opened: OpenedLayer, rows: np.ndarray, view: MapView) -> np.ndarray:
    """The rows' geometries in Pillow's pixel space (a pixel's centre at integer values)."""

    def move(xy: np.ndarray) -> np.ndarray:
        col, row = view.to_pixels(xy[:, 0], xy[:, 1])
        return np.column_stack([col - 0.5, row - 0.5])

    geoms = shapely.transform(opened.geometries(rows), move)
    heavy = shapely.get_num_coordinates(geoms) > 16  # simplifying a few points costs more
    if heavy.any():
        geoms[heavy] = shapely.simplify(geoms[heavy], 0.5, preserve_topology=False)
    return geoms


class _Inks(dict):
    """Pillow's ink of each colour, looked up once per colour rather than per ring."""

    def __init__(self, draw: ImageDraw.ImageDraw) -> None:
        super().__init__()
        self.draw = draw

    def __missing__(self, colour: tuple[int, ...]) -> int:
        ink = self.draw._getink(colour)[0]
        self[colour] = ink
        return ink


def _flat(coords: np.ndarray, counts: np.ndarray) -> tuple[list[float], np.ndarray]:
    """All coordinates as one flat list, and where each part starts in it."""
    starts = np.zeros(counts.size + 1, np.int64)
    np.cumsum(counts * 2, out=starts[1:])
    return coords.ravel().tolist(), starts


def _draw_shapes(
    image: Image.Image,
    opened: OpenedLayer,
    rows: np.ndarray,
    paint: Paint,
    view: MapView,
    kind: str,
) -> None:
    geoms = _pixel_geometries(opened, rows, view)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    geoms, rows = geoms[keep], rows[keep]
    draw = ImageDraw.Draw(image)
    inks = _Inks(draw)
    fills = [tuple(c) for c in paint.fill[rows].tolist()]
    if kind == POINT:
        xy = shapely.get_coordinates(geoms)
        which = shapely.get_coordinates(geoms, return_index=True)[1]
        r = paint.point_radius
        rims = None if paint.outline is None else [tuple(c) for c in paint.outline[rows].tolist()]
        for (x, y), i in zip(xy.tolist(), which.tolist(), strict=True):
            rim = rims[i] if rims else None
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fills[i], outline=rim)
        return
    parts, owner = shapely.get_parts(geoms, return_index=True)
    if kind == LINE:
        lines = shapely.get_exterior_ring(parts)
        lines = np.where(shapely.get_type_id(parts) == 3, lines, parts)
        counts = shapely.get_num_coordinates(lines)
        flat, starts = _flat(shapely.get_coordinates(lines), counts)
        width = max(1, round(paint.line_width))
        for k, i in enumerate(owner.tolist()):
            draw.line(flat[starts[k] : starts[k + 1]], fill=fills[i], width=width, joint="curve")
        return
    polygons = parts[shapely.get_type_id(parts) == 3]
    owner = owner[shapely.get_type_id(parts) == 3]
    outlines = None if paint.outline is None else [tuple(c) for c in paint.outline[rows].tolist()]
    core = draw.draw  # ImageDraw.polygon's own calls, without its colour lookup per ring
    holes = shapely.get_num_interior_rings(polygons)
    shells = shapely.get_exterior_ring(polygons)
    flat, starts = _flat(shapely.get_coordinates(shells), shapely.get_num_coordinates(shells))
    for k, (i, n_holes) in enumerate(zip(owner.tolist(), holes.tolist(), strict=True)):
        ring = flat[starts[k] : starts[k + 1]]
        if len(ring) < 6:
            continue
        outline = outlines[i] if outlines else None
        if n_holes:
            _polygon_with_holes(image, polygons[k], fills[i], outline)
            continue
        core.draw_polygon(ring, inks[fills[i]], 1)
        if outline is not None and outline != fills[i]:
            core.draw_polygon(ring, inks[outline], 0, 1)


def _polygon_with_holes(image: Image.Image, polygon, fill, outline) -> None:
    """A polygon with holes: its shape as a mask over its own box (shell in, holes out),
    then its colour through the mask (holes keep what lies under them)."""
    x0, y0, x1, y1 = (int(v) for v in np.floor(shapely.bounds(polygon)))
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1 + 2, image.width), min(y1 + 2, image.height)
    if x1 <= x0 or y1 <= y0:
        return
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(mask)
    shifted = shapely.transform(polygon, lambda xy: xy - np.array([x0, y0]))
    draw.polygon(shapely.get_coordinates(shifted.exterior).ravel().tolist(), fill=255)
    for hole in shifted.interiors:
        draw.polygon(shapely.get_coordinates(hole).ravel().tolist(), fill=0)
    image.paste(Image.new("RGBA", mask.size, fill), (x0, y0), mask)
    if outline is not None:
        lines = ImageDraw.Draw(image)
        for ring in (polygon.exterior, *polygon.interiors):
            lines.line(shapely.get_coordinates(ring).ravel().tolist(), fill=outline, width=1)
