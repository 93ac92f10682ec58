"""Zonal statistics kernels: polygons scanned into pixel spans, spans summed in one pass.

Zonal statistics over thousands of polygons are memory-bound. Burning a label raster per
block (GDAL rasterize, which holds the GIL) and then aggregating it with numpy made
six passes over every block and could not use the second core. Here each polygon is
scanned straight into runs of pixels ("spans": row, first column, end column) with the
pixel-centre rule, and the block's values are read once, span by span. Overlapping
polygons need no special care (each has its own spans), and the compiled kernels
release the GIL so dask's threads run blocks in parallel.

The scan follows GDAL's polygon fill, so results equal ``rasterio.features.rasterize``
(and rasterstats): scanline ``y = row + 0.5`` meets edges whose span ``[ymin, ymax)``
holds it; between each pair of crossings ``x0 < x1`` the pixels ``floor(x0 + 0.5) <= col
< floor(x1 + 0.5)`` are inside (even-odd rule, so holes stay empty).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import shapely
from affine import Affine


@dataclass(frozen=True)
class Edges:
    """Every non-horizontal polygon edge in the raster's pixel space, grouped by part.

    ``start[p]:start[p+1]`` are the edges of polygon part ``p`` sorted by ``ylo``;
    ``zone[p]`` is the index of the input polygon the part belongs to, and
    ``box[p]`` = (col min, row min, col max, row max) bounds the part.
    """

    xa: np.ndarray
    ya: np.ndarray
    xb: np.ndarray
    yb: np.ndarray
    ylo: np.ndarray
    yhi: np.ndarray
    start: np.ndarray
    zone: np.ndarray
    box: np.ndarray

    def parts_in(self, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        """Parts whose bounds reach into the window (rows/cols half-open)."""
        b = self.box
        return np.flatnonzero(
            (b[:, 1] < row1) & (b[:, 3] > row0) & (b[:, 0] < col1) & (b[:, 2] > col0)
        ).astype(np.int64)


def polygon_edges(geometries: np.ndarray, transform: Affine) -> Edges:
    """The edges of (multi)polygons in pixel coordinates of a raster with ``transform``.

    Non-polygonal parts (points, lines inside collections) are ignored: they cover no
    pixel centre.
    """
    parts, zone = shapely.get_parts(geometries, return_index=True)
    polygonal = shapely.get_type_id(parts) == 3
    parts, zone = parts[polygonal], zone[polygonal]
    rings, part_of_ring = shapely.get_rings(parts, return_index=True)
    coords, ring_of_point = shapely.get_coordinates(rings, return_index=True)
    inverse = ~transform
    cols = inverse.a * coords[:, 0] + inverse.b * coords[:, 1] + inverse.c
    rows = inverse.d * coords[:, 0] + inverse.e * coords[:, 1] + inverse.f
    same_ring = ring_of_point[:-1] == ring_of_point[1:]
    xa, ya, xb, yb = cols[:-1], rows[:-1], cols[1:], rows[1:]
    keep = same_ring & (ya != yb)
    xa, ya, xb, yb = xa[keep], ya[keep], xb[keep], yb[keep]
    part = part_of_ring[ring_of_point[:-1][keep]]
    ylo, yhi = np.minimum(ya, yb), np.maximum(ya, yb)
    order = np.lexsort((ylo, part))
    xa, ya, xb, yb, ylo, yhi, part = (a[order] for a in (xa, ya, xb, yb, ylo, yhi, part))
    n_parts = len(parts)
    start = np.searchsorted(part, np.arange(n_parts + 1)).astype(np.int64)
    box = np.empty((n_parts, 4))
    if n_parts:
        pxmin, pymin, pxmax, pymax = (
            np.full(n_parts, np.inf),
            np.full(n_parts, np.inf),
            np.full(n_parts, -np.inf),
            np.full(n_parts, -np.inf),
        )
        np.minimum.at(pxmin, part, np.minimum(xa, xb))
        np.minimum.at(pymin, part, ylo)
        np.maximum.at(pxmax, part, np.maximum(xa, xb))
        np.maximum.at(pymax, part, yhi)
        box[:] = np.column_stack([pxmin, pymin, pxmax, pymax])
    return Edges(xa, ya, xb, yb, ylo, yhi, start, zone.astype(np.int64), box)


@numba.njit(nogil=True, cache=True)
def _spans(xa, ya, xb, yb, ylo, yhi, start, parts, row0, row1, col0, col1):
    """(part, row, first col, end col) of every run of pixel centres inside each part,
    clipped to the window rows [row0, row1) x cols [col0, col1)."""
    out = np.empty((1024, 4), np.int64)
    n = 0
    active = np.empty(0, np.int64)
    xs = np.empty(0, np.float64)
    for p in parts:
        e0, e1 = start[p], start[p + 1]
        if e1 - e0 > active.size:
            active = np.empty(e1 - e0, np.int64)
            xs = np.empty(e1 - e0, np.float64)
        n_active = 0
        nxt = e0
        first = max(row0, math.ceil(ylo[e0] - 0.5)) if e1 > e0 else row1
        for r in range(first, row1):
            yc = r + 0.5
            while nxt < e1 and ylo[nxt] <= yc:
                active[n_active] = nxt
                n_active += 1
                nxt += 1
            kept = 0
            for k in range(n_active):  # drop edges that ended below this scanline
                e = active[k]
                if yhi[e] > yc:
                    active[kept] = e
                    kept += 1
            n_active = kept
            if n_active == 0:
                if nxt >= e1:
                    break
                continue
            for k in range(n_active):
                e = active[k]
                x = xa[e] + (yc - ya[e]) * (xb[e] - xa[e]) / (yb[e] - ya[e])
                j = k  # insertion sort: a scanline crosses few edges
                while j > 0 and xs[j - 1] > x:
                    xs[j] = xs[j - 1]
                    j -= 1
                xs[j] = x
            for k in range(0, n_active - 1, 2):
                c_start = max(col0, math.floor(xs[k] + 0.5))
                c_end = min(col1, math.floor(xs[k + 1] + 0.5))
                if c_start < c_end:
                    if n == out.shape[0]:
                        grown = np.empty((2 * n, 4), np.int64)
                        grown[:n] = out
                        out = grown
                    out[n, 0] = p
                    out[n, 1] = r
                    out[n, 2] = c_start
                    out[n, 3] = c_end
                    n += 1
    return out[:n]


@numba.njit(nogil=True, cache=True)
def _accumulate(values, spans, slot_of_part, n_slots, row0, col0, squares_too, extremes_too):
    count = np.zeros(n_slots, np.int64)
    total = np.zeros(n_slots, np.float64)
    squares = np.zeros(n_slots, np.float64)
    low = np.full(n_slots, np.inf)
    high = np.full(n_slots, -np.inf)
    for s in range(spans.shape[0]):
        slot = slot_of_part[spans[s, 0]]
        r = spans[s, 1] - row0
        first, end = spans[s, 2] - col0, spans[s, 3] - col0
        # a span's sums in locals, branch-free: storing into the arrays at every pixel
        # made the loop wait on memory (2.3x slower on the benchmark's spans)
        n, t = 0, 0.0
        for c in range(first, end):
            v = float(values[r, c])
            ok = math.isfinite(v)
            n += ok
            t += v if ok else 0.0
        count[slot] += n
        total[slot] += t
        if squares_too:
            q = 0.0
            for c in range(first, end):
                v = float(values[r, c])
                q += v * v if math.isfinite(v) else 0.0
            squares[slot] += q
        if extremes_too:
            lo, hi = low[slot], high[slot]
            for c in range(first, end):
                v = float(values[r, c])
                if math.isfinite(v):
                    lo = min(lo, v)
                    hi = max(hi, v)
            low[slot], high[slot] = lo, hi
    return count, total, squares, low, high


@numba.njit(nogil=True, cache=True)
def _gather(values, spans, slot_of_part, row0, col0):
    size = 0
    for s in range(spans.shape[0]):
        size += spans[s, 3] - spans[s, 2]
    slots = np.empty(size, np.int64)
    picked = np.empty(size, np.float64)
    n = 0
    for s in range(spans.shape[0]):
        slot = slot_of_part[spans[s, 0]]
        r = spans[s, 1] - row0
        for c in range(spans[s, 2] - col0, spans[s, 3] - col0):
            v = float(values[r, c])
            if math.isfinite(v):
                slots[n] = slot
                picked[n] = v
                n += 1
    return slots[:n], picked[:n]


@dataclass(frozen=True)
class BlockSpans:
    """The spans of the parts reaching into one block, and the slot (0..n-1, one per
    distinct zone in the block) each part adds into."""

    spans: np.ndarray
    slot_of_part: np.ndarray
    zones: np.ndarray  # zone index of each slot
    row0: int
    col0: int


def block_spans(edges: Edges, row0: int, col0: int, height: int, width: int) -> BlockSpans:
    """Scan the parts that reach into a block (pixel window of the whole raster)."""
    parts = edges.parts_in(row0, row0 + height, col0, col0 + width)
    zones, slots = np.unique(edges.zone[parts], return_inverse=True)
    slot_of_part = np.zeros(len(edges.zone), np.int64)
    slot_of_part[parts] = slots
    spans = _spans(
        edges.xa,
        edges.ya,
        edges.xb,
        edges.yb,
        edges.ylo,
        edges.yhi,
        edges.start,
        parts,
        row0,
        row0 + height,
        col0,
        col0 + width,
    )
    return BlockSpans(spans, slot_of_part, zones, row0, col0)


def accumulate(
    values: np.ndarray, block: BlockSpans, squares: bool = True, extremes: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(count, sum, sum of squares, min, max) per slot of a block's values.

    NaN (nodata) and infinite values count for no zone; any integer or float dtype is
    read as it is (no copy). Without ``squares`` or ``extremes`` those arrays come back
    unfilled (zeros, ±inf), which saves time.
    """
    return _accumulate(
        values,
        block.spans,
        block.slot_of_part,
        len(block.zones),
        block.row0,
        block.col0,
        bool(squares),
        bool(extremes),
    )


def gather(values: np.ndarray, block: BlockSpans) -> tuple[np.ndarray, np.ndarray]:
    """(slot, value) of every valid pixel of every zone in the block, for percentiles."""
    return _gather(values, block.spans, block.slot_of_part, block.row0, block.col0)
