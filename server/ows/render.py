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

from dataclasses import dataclass

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


def draw_layer(image: Image.Image, opened: OpenedLayer, paint: Paint, view: MapView) -> None:
    """Draw one layer version's features in the view onto an RGBA image."""
    rows = rows_in_view(opened, view)
    if rows.size == 0:
        return
    kind = geometry_kind(opened)
    b = opened.bounds[rows]
    if kind == POINT:
        small = np.zeros(rows.size, bool)
    else:
        minx, miny, maxx, maxy = view.storage_bbox()
        px, py = (maxx - minx) / view.width, (maxy - miny) / view.height
        small = ((b[:, 2] - b[:, 0]) <= px) & ((b[:, 3] - b[:, 1]) <= py)
    if small.any():
        _splat(image, b[small], paint.fill[rows[small]], view)
    big = rows[~small]
    if big.size:
        _draw_shapes(image, opened, big, paint, view, kind)


def _splat(image: Image.Image, bounds: np.ndarray, colours: np.ndarray, view: MapView) -> None:
    """Features under a pixel: the pixel holding each bounding box's centre, its colour."""
    cx = (bounds[:, 0] + bounds[:, 2]) / 2
    cy = (bounds[:, 1] + bounds[:, 3]) / 2
    col, row = view.to_pixels(cx, cy)
    col, row = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
    inside = (col >= 0) & (col < view.width) & (row >= 0) & (row < view.height)
    pixels = np.asarray(image).copy()
    pixels[row[inside], col[inside]] = colours[inside]
    image.paste(Image.fromarray(pixels, "RGBA"))


def _pixel_geometries(opened: OpenedLayer, rows: np.ndarray, view: MapView) -> np.ndarray:
    """The rows' geometries in Pillow's pixel space (a pixel's centre at integer values)."""

    def move(xy: np.ndarray) -> np.ndarray:
        col, row = view.to_pixels(xy[:, 0], xy[:, 1])
        return np.column_stack([col - 0.5, row - 0.5])

    geoms = shapely.transform(opened.geometries(rows), move)
    return shapely.simplify(geoms, 0.5, preserve_topology=False)


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
    fills = [tuple(c) for c in paint.fill[rows].tolist()]
    if kind == POINT:
        xy = shapely.get_coordinates(geoms)
        which = shapely.get_coordinates(geoms, return_index=True)[1]
        r = paint.point_radius
        for (x, y), i in zip(xy.tolist(), which.tolist(), strict=True):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fills[i])
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
        else:
            draw.polygon(ring, fill=fills[i], outline=outline)


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
