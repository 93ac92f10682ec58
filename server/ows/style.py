"""How WMS and WMTS colour a vector layer's features: the layer's style, evaluated per row.

The styles are helper B's MapLibre documents (:mod:`shikong.server.maps.styles`); this
module asks them for each row's colours once per layer version and style and keeps the
answer (a layer's colours never change within a version). Until a layer has a style the
defaults below paint it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from shikong.catalog.opened import OpenedLayer

DEFAULT_FILL = (100, 149, 237, 255)  # polygons
DEFAULT_OUTLINE = (40, 80, 160, 255)
DEFAULT_LINE = (220, 20, 60, 255)
DEFAULT_POINT = (255, 140, 0, 255)
MAX_CACHED = 32


@dataclass(frozen=True)
class Paint:
    """Per-row colours (RGBA uint8, one row per feature) and sizes in pixels."""

    fill: np.ndarray  # (n, 4) polygons' fill, lines' colour, points' fill
    outline: np.ndarray | None  # (n, 4) polygons' outline, None for none
    line_width: float = 2.0
    point_radius: float = 4.0


_cache: OrderedDict[tuple[str, str], Paint] = OrderedDict()
_lock = threading.Lock()


def _default(opened: OpenedLayer, geometry: str) -> Paint:
    n = opened.count
    if geometry == "point":
        return Paint(np.tile(np.array(DEFAULT_POINT, np.uint8), (n, 1)), None)
    if geometry == "line":
        return Paint(np.tile(np.array(DEFAULT_LINE, np.uint8), (n, 1)), None)
    fill = np.tile(np.array(DEFAULT_FILL, np.uint8), (n, 1))
    return Paint(fill, np.tile(np.array(DEFAULT_OUTLINE, np.uint8), (n, 1)))


def paint(collection: str, opened: OpenedLayer, geometry: str, style: str = "default") -> Paint:
    """The colours of every row of an opened layer version under a style (cached)."""
    key = (f"{opened.path}::{collection}", style)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    made = _default(opened, geometry)
    with _lock:
        _cache[key] = made
        while len(_cache) > MAX_CACHED:
            _cache.popitem(last=False)
    return made
