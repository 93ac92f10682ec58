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
from typing import Any

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


def _number(value: Any, default: float) -> float:
    """A width or radius: a plain number; an expression (per-feature widths) → its
    largest output, so thin and thick features alike stay visible."""
    if isinstance(value, int | float):
        return float(value)
    numbers = [v for v in _flatten(value) if isinstance(v, int | float)]
    return float(max(numbers)) if numbers else default


def _flatten(value: Any):
    if isinstance(value, list):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


def facts(collection: str, resource: dict[str, Any]):
    """What helper B's styles need to know of a collection (its kind, geometry, asset)."""
    from ..maps.styles import facts_from_resource

    return facts_from_resource(collection, resource)


def style_ids(collection: str, resource: dict[str, Any]) -> list[str]:
    """The styles a layer offers, "default" first."""
    from ..maps.styles import style_ids as ids

    try:
        return ids(facts(collection, resource))
    except (KeyError, StopIteration):
        return ["default"]


def _styled(
    collection: str, resource: dict[str, Any], opened: OpenedLayer, geometry: str, style: str
) -> Paint:
    """The style's colours: its fill/line/circle layers evaluated over the whole table."""
    from ..maps.styles import fill_colors, spec_for

    spec = spec_for(facts(collection, resource), style)
    table = opened.table.drop_columns([opened.geometry_column])
    by_type = {layer["type"]: layer for layer in spec.get("layers", [])}
    fill = outline = None
    line_width, radius = 2.0, 4.0
    if geometry == "polygon":
        if "fill" in by_type:
            fill = fill_colors(by_type["fill"], table)
        if "line" in by_type:
            outline = fill_colors(by_type["line"], table)
            if fill is None:
                fill = np.zeros_like(outline)
    elif geometry == "line" and "line" in by_type:
        fill = fill_colors(by_type["line"], table)
        line_width = _number(by_type["line"].get("paint", {}).get("line-width"), 2.0)
    elif geometry == "point" and "circle" in by_type:
        circle = by_type["circle"].get("paint", {})
        fill = fill_colors(by_type["circle"], table)
        radius = _number(circle.get("circle-radius"), 4.0)
        if circle.get("circle-stroke-color") and circle.get("circle-stroke-width", 0):
            stroke = {"type": "circle", "paint": {"circle-color": circle["circle-stroke-color"]}}
            outline = fill_colors(stroke, table)
    if fill is None:
        return _default(opened, geometry)
    return Paint(fill, outline, line_width, radius)


def paint(
    collection: str,
    resource: dict[str, Any],
    opened: OpenedLayer,
    geometry: str,
    style: str = "default",
) -> Paint:
    """The colours of every row of an opened layer version under a style (cached)."""
    key = (f"{opened.path}::{collection}", style)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    try:
        made = _styled(collection, resource, opened, geometry, style)
    except ImportError:  # the maps package without its styles: the defaults
        made = _default(opened, geometry)
    with _lock:
        _cache[key] = made
        while len(_cache) > MAX_CACHED:
            _cache.popitem(last=False)
    return made
