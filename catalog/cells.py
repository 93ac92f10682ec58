"""A spatial index as B-tree keys: a loose quadtree whose cells are numbered so that a
cell's descendants form one contiguous range of keys (the numbering of S2 cell ids, on a
plain lon/lat grid).

SQLite's R*Tree cost 8 µs per item in a bulk commit (it reads and rewrites node blobs
for every row); a key in a B-tree costs about 1 µs. An item is filed under one key: the
cell holding its bbox's centre, at the finest level whose cells are larger than the bbox,
so the bbox stays within half a cell of it (the cell's "loose" extent). A search reads,
at the level where cells are a fraction of its box, the key ranges of the cells meeting
the box grown by half a cell (every finer item), and at each coarser level the keys of
the cells meeting the box grown by half of theirs; then it compares bboxes exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_LEVEL = 30  # 360° / 2**30 ≈ 3.4e-7°, about 4 cm: finer bboxes share a level-30 cell
_SIDE = 1 << MAX_LEVEL


def _spread(n: int) -> int:
    """Bits of a 30-bit integer moved to the even positions of a 60-bit one."""
    n &= 0x3FFFFFFF
    n = (n | (n << 16)) & 0x0000FFFF0000FFFF
    n = (n | (n << 8)) & 0x00FF00FF00FF00FF
    n = (n | (n << 4)) & 0x0F0F0F0F0F0F0F0F
    n = (n | (n << 2)) & 0x3333333333333333
    return (n | (n << 1)) & 0x5555555555555555


_X_SCALE = _SIDE / 360.0
_Y_SCALE = _SIDE / 180.0


def _grid(lon: float, lat: float) -> tuple[int, int]:
    """Column and row of a point on the finest grid; the world's edges clamp inwards."""
    x = int((lon + 180.0) * _X_SCALE)
    y = int((lat + 90.0) * _Y_SCALE)
    if 0 <= x < _SIDE and 0 <= y < _SIDE:
        return x, y
    return min(max(x, 0), _SIDE - 1), min(max(y, 0), _SIDE - 1)


def _level(x0: int, y0: int, x1: int, y1: int) -> int:
    """The finest level whose cells are at least as wide and tall as the span."""
    span = max(x1 - x0, y1 - y0)
    return MAX_LEVEL - span.bit_length() if span else MAX_LEVEL


def _key(x: int, y: int, level: int) -> int:
    """Key of the level-``level`` cell holding finest-grid column x and row y."""
    shift = MAX_LEVEL - level
    path = _spread(x >> shift) | (_spread(y >> shift) << 1)
    return ((path << 1) | 1) << (2 * shift)


def _covering(x0: int, y0: int, x1: int, y1: int, level: int) -> list[int]:
    """Keys of the level's cells whose loose extent (half a cell around) meets the span."""
    shift = MAX_LEVEL - level
    grow = (1 << shift) >> 1
    cols = range(max(x0 - grow, 0) >> shift, (min(x1 + grow, _SIDE - 1) >> shift) + 1)
    rows = range(max(y0 - grow, 0) >> shift, (min(y1 + grow, _SIDE - 1) >> shift) + 1)
    return [_key(x << shift, y << shift, level) for x in cols for y in rows]


def item_key(bbox: Sequence[float]) -> int:
    """The key an item with this bbox (minx, miny, maxx, maxy) is filed under."""
    x0, y0 = _grid(bbox[0], bbox[1])
    x1, y1 = _grid(bbox[2], bbox[3])
    return _key((x0 + x1) >> 1, (y0 + y1) >> 1, _level(x0, y0, x1, y1))


def search_ranges(bbox: Sequence[float], per_side: int = 8) -> list[tuple[int, int]]:
    """Inclusive key ranges holding every item whose bbox may meet this one.

    At the search level cells are about 1/``per_side`` of the box (finer cells read
    fewer items outside it, at more ranges); coarser levels give ranges of one key.
    """
    x0, y0 = _grid(bbox[0], bbox[1])
    x1, y1 = _grid(bbox[2], bbox[3])
    level = min(MAX_LEVEL, _level(x0, y0, x1, y1) + per_side.bit_length() - 1)
    ranges: list[tuple[int, int]] = []
    for key in _covering(x0, y0, x1, y1, level):
        low = key & -key  # the cell's lowest bit: its descendants lie within ±low
        ranges.append((key - low + 1, key + low - 1))
    for coarser in range(level):
        ranges += [(key, key) for key in _covering(x0, y0, x1, y1, coarser)]
    return _merged(sorted(ranges))


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Touching or overlapping ranges as one (fewer seeks)."""
    out: list[tuple[int, int]] = []
    for low, high in ranges:
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out
