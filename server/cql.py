"""CQL2 filters on opened layers: checked against the layer's fields, evaluated on rows.

pygeoapi parses CQL2 text and JSON into a pygeofilter AST; a provider that ignores it
returns unfiltered data. We reject unknown attributes with a 400 naming them, narrow
spatial predicates with the layer's STRtree, and evaluate the rest with pygeofilter's
GeoPandas backend on the candidate rows only.
"""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pyarrow as pa
import shapely
from pygeoapi.provider.base import ProviderInvalidQueryError
from pygeofilter import ast, values
from pygeofilter.backends.geopandas.evaluate import to_filter
from shikong.catalog.opened import OpenedLayer

NARROWING = {"INTERSECTS", "WITHIN", "CONTAINS", "OVERLAPS", "CROSSES", "TOUCHES", "EQUALS"}
GEOMETRY_NAMES = {"geometry", "geom", "the_geom"}


def _walk(node: object) -> Iterator[object]:
    yield node
    for child in getattr(node, "get_sub_nodes", lambda: [])() or []:
        yield from _walk(child)


def attributes(node: ast.Node) -> set[str]:
    """The property names a filter uses (a name that is not text is a 400, e.g. CQL2 JSON
    ``{"property": {...}}``, which pygeofilter passes through as it is)."""
    names = [n.name for n in _walk(node) if isinstance(n, ast.Attribute)]
    odd = [n for n in names if not isinstance(n, str)]
    if odd:
        raise ProviderInvalidQueryError(
            user_msg=f"a filter property name must be text, not {type(odd[0]).__name__}"
        )
    return set(names)


def check(node: ast.Node, layer: OpenedLayer) -> None:
    """400 for attributes the layer does not have (pygeofilter would raise KeyError)."""
    unknown = sorted(
        a
        for a in attributes(node)
        if a not in layer.fields and a not in GEOMETRY_NAMES and a != layer.geometry_column
    )
    if unknown:
        raise ProviderInvalidQueryError(
            user_msg=f"filter names unknown properties {', '.join(unknown)}; queryables: "
            f"{', '.join(sorted(layer.fields))}"
        )
    for n in _walk(node):
        if isinstance(n, ast.TemporalPredicate):
            raise ProviderInvalidQueryError(
                user_msg="temporal CQL2 predicates (T_*) are not supported on this layer; "
                "use datetime= to choose the version"
            )


def _narrowing_boxes(node: ast.Node) -> list[tuple[float, ...]]:
    """Bounds that every match must intersect: spatial predicates under AND only."""
    if isinstance(node, ast.And):
        return _narrowing_boxes(node.lhs) + _narrowing_boxes(node.rhs)
    if isinstance(node, ast.SpatialComparisonPredicate) and node.op.name in NARROWING:
        for side in (node.lhs, node.rhs):
            if isinstance(side, values.Geometry):
                return [tuple(shapely.bounds(shapely.geometry.shape(side)))]
            if isinstance(side, values.Envelope):
                return [(side.x1, side.y1, side.x2, side.y2)]
    if isinstance(node, ast.BBox):
        return [(node.minx, node.miny, node.maxx, node.maxy)]
    return []


def evaluate(node: ast.Node, layer: OpenedLayer, rows: np.ndarray) -> np.ndarray:
    """The rows (of those given) that satisfy the filter."""
    check(node, layer)
    for box in _narrowing_boxes(node):
        near = layer.tree.query(shapely.box(*box))
        rows = rows[np.isin(rows, near, assume_unique=False)]
    if rows.size == 0:
        return rows
    names = [a for a in attributes(node) if a in layer.fields]
    frame = layer.table.select(names).take(pa.array(rows, pa.int64())).to_pandas()
    mapping = {}
    if attributes(node) - set(names):
        frame = gpd.GeoDataFrame(frame, geometry=layer.geometries(rows), crs=4326)
        mapping = dict.fromkeys(GEOMETRY_NAMES | {layer.geometry_column}, "geometry")
    try:
        mask = to_filter(frame, node, mapping or None)
    except (TypeError, ValueError, KeyError, shapely.errors.GEOSException) as exc:
        raise ProviderInvalidQueryError(user_msg=f"filter cannot be evaluated: {exc}") from exc
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != rows.shape:  # a literal-only filter such as TRUE
        mask = np.broadcast_to(mask, rows.shape)
    return rows[mask]
