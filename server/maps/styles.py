"""Styles as data: MapLibre style documents from ``config/styles/``, and their colours.

One JSON file per style in ``config/styles/``; each holds a MapLibre layer list without
ids or sources (they are added per collection), a title, what it applies to
(``{"collection": id}`` or ``{"kind": polygon|line|point|raster|readings}``), optional
``metadata`` and, for rasters, a ``raster`` block (bands or expression, the fixed scale,
the colour map, the resampling; see :mod:`.raster`). ``alternates`` name further styles
of the same collection (``/collections/{id}/styles/{styleId}``).

Stable names other packages use (WMS, tiles): :func:`style_for`, :func:`fill_colors`,
:func:`parse_color`, :class:`LayerFacts`, :func:`facts_from_resource`, :func:`raster_spec`.

The expression subset :func:`fill_colors` evaluates (the one our styles use), vectorised
over a whole table: ``["get", name]``, ``["slice", expr, start, end]`` (text),
``["match", input, label(s), output, ..., fallback]``, ``["step", input, out0, stop1,
out1, ...]``, ``["interpolate", ["linear"], input, stop, output, ...]`` (colours
interpolated in RGBA), ``["literal", value]``, and plain colours (``#rgb``, ``#rgba``,
``#rrggbb``, ``#rrggbbaa``, ``rgb()``, ``rgba()``, CSS names) and numbers. Anything else
raises :class:`UnsupportedExpression` naming it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

STYLES_DIR = Path(__file__).resolve().parents[2] / "config" / "styles"
TMS_ID = "WebMercatorQuad"
KINDS = ("polygon", "line", "point", "raster", "readings")
# the paint property that carries a layer type's colour, and the one that scales its alpha
COLOR_PAINT = {"fill": "fill-color", "line": "line-color", "circle": "circle-color"}
OPACITY_PAINT = {"fill": "fill-opacity", "line": "line-opacity", "circle": "circle-opacity"}
DEFAULT_COLOR = "#000000"

# Keys of a style document's ``metadata`` (MapLibre leaves that object to the producer and
# asks for namespaced keys). They are not STAC fields: tests/test_extension_accessor.py
# lets them be spelt here.
STYLE_RASTER = "shikong:raster"  # a raster layer's colouring: bands, rescale, colormap
STYLE_COLLECTIONS = "shikong:collections"  # per collection: style id, title, raster block
STYLE_METADATA_KEYS = frozenset({STYLE_RASTER, STYLE_COLLECTIONS})


class UnsupportedExpression(ValueError):
    """An expression outside the subset the evaluator knows."""


# -- the style files -------------------------------------------------------------------
@lru_cache(maxsize=4)
def load_styles(folder: str | None = None) -> dict[str, dict[str, Any]]:
    """Every style file of the folder by its id (read once per process)."""
    root = Path(folder) if folder else STYLES_DIR
    styles = {}
    for path in sorted(root.glob("*.json")):
        spec = json.loads(path.read_text(encoding="utf-8"))
        styles[spec["id"]] = spec
    return styles


@dataclass(frozen=True)
class LayerFacts:
    """What choosing and writing a collection's style needs to know about it."""

    id: str
    kind: str  # a catalog kind: vector, sensors, readings, raster, datacube, alerts
    geometry: str | None = None  # polygon, line or point for vector-like collections
    path: str | None = None  # the asset of a raster or vector layer
    title: str | None = None
    bbox: tuple[float, float, float, float] | None = None

    @property
    def style_kind(self) -> str:
        """The default style's kind: polygon, line, point, raster or readings."""
        if self.kind in ("raster", "datacube"):
            return "raster"
        if self.kind == "readings":
            return "readings"
        return self.geometry or ("point" if self.kind in ("sensors", "alerts") else "polygon")


@lru_cache(maxsize=512)
def geometry_kind(path: str) -> str | None:
    """polygon, line or point from a GeoParquet file's own metadata (no rows read)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path).metadata or {}
        geo = json.loads(meta.get(b"geo", b"{}"))
    except (OSError, ValueError):
        return None
    column = geo.get("columns", {}).get(geo.get("primary_column", "geometry"), {})
    types = " ".join(column.get("geometry_types", [])).lower()
    for word, kind in (("polygon", "polygon"), ("line", "line"), ("point", "point")):
        if word in types:
            return kind
    return None


def facts_from_resource(collection_id: str, resource: Mapping[str, Any]) -> LayerFacts:
    """LayerFacts of a published pygeoapi resource (server/publish.py builds them)."""
    kind = resource.get("shikong", {}).get("kind", "vector")
    providers = resource.get("providers", [])
    path = None
    for wanted in ("coverage", "feature"):
        found = next((p for p in providers if p.get("type") == wanted), None)
        if found is not None:
            path = found.get("sensors_path") or found.get("data")
            break
    geometry = None
    if kind in ("vector", "sensors") and path and str(path).endswith(".parquet"):
        geometry = geometry_kind(str(path))
    title = resource.get("title")
    if isinstance(title, Mapping):
        title = title.get("en") or next(iter(title.values()), None)
    bbox = resource.get("extents", {}).get("spatial", {}).get("bbox")
    return LayerFacts(
        collection_id,
        kind,
        geometry,
        str(path) if path else None,
        title,
        tuple(bbox[:4]) if bbox else None,
    )


def spec_for(facts: LayerFacts | str, style_id: str = "default") -> dict[str, Any]:
    """The style spec of a collection: its own file, else its kind's default.

    Raises KeyError for a style id the collection does not have.
    """
    styles = load_styles()
    cid = facts if isinstance(facts, str) else facts.id
    spec = next(
        (s for s in styles.values() if s.get("applies_to", {}).get("collection") == cid), None
    )
    if spec is None:
        if isinstance(facts, str):
            raise KeyError(f"no style for collection {cid}")
        spec = next(
            s for s in styles.values() if s.get("applies_to", {}).get("kind") == facts.style_kind
        )
    if style_id == "default":
        return spec
    alternate = spec.get("alternates", {}).get(style_id)
    if alternate is None:
        raise KeyError(f"collection {cid} has no style {style_id!r}")
    return {**spec, **alternate, "id": f"{spec['id']}:{style_id}"}


def style_ids(facts: LayerFacts | str) -> list[str]:
    """The styles a collection offers, its default first."""
    return ["default", *spec_for(facts).get("alternates", {})]


def raster_spec(facts: LayerFacts | str, style_id: str = "default") -> dict[str, Any]:
    """The ``raster`` block of a raster collection's style (bands, scale, colour map)."""
    if isinstance(facts, str) and not any(
        s.get("applies_to", {}).get("collection") == facts for s in load_styles().values()
    ):
        facts = LayerFacts(facts, "raster")
    spec = spec_for(facts, style_id)
    if "raster" not in spec:
        raise KeyError("not a raster style")
    return spec["raster"]


def tiles_url(base_url: str, collection_id: str, style_id: str = "default") -> str:
    """Our own tiles URL template for a collection (served by server/tiles/)."""
    url = f"{base_url.rstrip('/')}/collections/{collection_id}/tiles/{TMS_ID}/{{z}}/{{y}}/{{x}}"
    return url if style_id == "default" else f"{url}?style={style_id}"


def style_for(
    collection: LayerFacts | str,
    style_id: str = "default",
    base_url: str = "",
    *,
    minzoom: int = 0,
    maxzoom: int = 22,
) -> dict[str, Any]:
    """The MapLibre style document (spec v8) of one collection, sources on our tiles."""
    return combined_style(
        [collection], base_url, style_id=style_id, minzoom=minzoom, maxzoom=maxzoom, name=None
    )


def combined_style(
    collections: Iterable[LayerFacts | str],
    base_url: str = "",
    *,
    style_id: str = "default",
    name: str | None = "shikong",
    minzoom: int = 0,
    maxzoom: int = 22,
) -> dict[str, Any]:
    """One MapLibre style drawing several collections: rasters first, points on top."""
    order = {"raster": 0, "polygon": 1, "line": 2, "point": 3, "readings": 4}
    items = []
    for collection in collections:
        facts = collection if isinstance(collection, LayerFacts) else None
        spec = spec_for(collection, style_id)
        kind = facts.style_kind if facts else spec.get("applies_to", {}).get("kind", "raster")
        if facts is None and "raster" not in spec:
            kind = _kind_of_layers(spec["layers"])
        items.append((order.get(kind, 1), collection, spec))
    items.sort(key=lambda item: item[0])
    sources: dict[str, Any] = {}
    layers: list[dict[str, Any]] = []
    metadata: dict[str, Any] = {}
    for _, collection, spec in items:
        cid = collection if isinstance(collection, str) else collection.id
        raster = "raster" in spec
        source: dict[str, Any] = {
            "type": "raster" if raster else "vector",
            "tiles": [tiles_url(base_url, cid, style_id)],
            "minzoom": minzoom,
            "maxzoom": maxzoom,
        }
        if raster:
            source["tileSize"] = 256
            if isinstance(collection, LayerFacts) and collection.path:
                from .raster import native_zoom  # raster reads the styles: imported late

                source["maxzoom"] = min(maxzoom, native_zoom(collection.path)[1] + 1)
        if isinstance(collection, LayerFacts) and collection.bbox:
            source["bounds"] = list(collection.bbox)
        sources[cid] = source
        for i, layer in enumerate(spec["layers"]):
            out = {"id": f"{cid}-{i}-{layer['type']}", "source": cid, **copy.deepcopy(layer)}
            if not raster:
                out["source-layer"] = cid
            layers.append(out)
        metadata[cid] = {"style": spec["id"], "title": spec.get("title", "")}
        if raster:
            metadata[cid][STYLE_RASTER] = spec["raster"]
        if spec.get("metadata"):
            metadata[cid].update(spec["metadata"])
    title = name or (items[0][2].get("title") if items else "shikong")
    return {
        "version": 8,
        "name": title,
        "metadata": {STYLE_COLLECTIONS: metadata},
        "sources": sources,
        "layers": layers,
    }


def _kind_of_layers(layers: Sequence[Mapping[str, Any]]) -> str:
    types = {layer["type"] for layer in layers}
    return "polygon" if "fill" in types else "line" if "line" in types else "point"


# -- colours ---------------------------------------------------------------------------
HEX = re.compile(r"^#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
FUNC = re.compile(r"^rgba?\(\s*([^)]*)\)$")


@lru_cache(maxsize=4096)
def parse_color(text: str) -> tuple[float, float, float, float]:
    """A CSS colour as (r, g, b, a) with r, g, b in 0-255 and a in 0-1; ValueError if not one."""
    value = text.strip()
    found = HEX.match(value)
    if found:
        digits = found.group(1)
        if len(digits) in (3, 4):
            digits = "".join(ch * 2 for ch in digits)
        channels = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
        alpha = channels[3] / 255 if len(channels) == 4 else 1.0
        return (float(channels[0]), float(channels[1]), float(channels[2]), alpha)
    found = FUNC.match(value)
    if found:
        parts = [p.strip() for p in found.group(1).split(",")]
        if len(parts) not in (3, 4):
            raise ValueError(f"{text!r} is not a colour")
        rgb = [float(p[:-1]) * 2.55 if p.endswith("%") else float(p) for p in parts[:3]]
        alpha = float(parts[3]) if len(parts) == 4 else 1.0
        if not all(0 <= c <= 255 for c in rgb) or not 0 <= alpha <= 1:
            raise ValueError(f"{text!r} is not a colour")
        return (rgb[0], rgb[1], rgb[2], alpha)
    from PIL import ImageColor

    try:
        r, g, b, *a = ImageColor.getrgb(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a colour") from None
    return (float(r), float(g), float(b), (a[0] / 255) if a else 1.0)


def _is_color(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_color(value)
    except ValueError:
        return False
    return True


class _Color:
    """A colour result: an (n, 4) float array of r, g, b in 0-255 and a in 0-1."""

    def __init__(self, rgba: np.ndarray) -> None:
        self.rgba = rgba


def _columns(table: Any) -> tuple[Any, int]:
    """(a column getter, row count) for a pyarrow Table, a DataFrame or a list of dicts."""
    if hasattr(table, "column_names") and hasattr(table, "num_rows"):  # pyarrow
        names = set(table.column_names)  # columns stay Arrow: text ops run in Arrow's kernels
        return (lambda name: table.column(name) if name in names else None), table.num_rows
    if hasattr(table, "columns") and hasattr(table, "__len__") and hasattr(table, "iloc"):
        return (lambda name: table[name].to_numpy() if name in table.columns else None), len(table)
    records = list(table)
    return (
        lambda name: (
            np.array([r.get(name) for r in records], dtype=object)
            if any(name in r for r in records)
            else None
        )
    ), len(records)


def _evaluate(expr: Any, column: Any, n: int) -> Any:
    """An expression over n rows: a numpy array of values, or a _Color."""
    if isinstance(expr, str):
        if _is_color(expr):
            return _Color(np.tile(np.array(parse_color(expr)), (n, 1)))
        return np.full(n, expr, dtype=object)
    if isinstance(expr, bool) or expr is None:
        return np.full(n, expr, dtype=object)
    if isinstance(expr, int | float):
        return np.full(n, float(expr))
    if not isinstance(expr, list) or not expr or not isinstance(expr[0], str):
        raise UnsupportedExpression(f"cannot evaluate {expr!r}")
    op, args = expr[0], expr[1:]
    if op == "literal":
        return _evaluate(args[0], column, n)
    if op == "get":
        values = column(args[0])
        if values is None:
            return np.full(n, None, dtype=object)
        return values if _is_arrow(values) else np.asarray(values)
    if op == "slice":
        values = _evaluate(args[0], column, n)
        start = int(args[1])
        end = int(args[2]) if len(args) > 2 else None
        if _is_arrow(values) and _arrow_text(values):
            import pyarrow.compute as pc

            return pc.utf8_slice_codeunits(values, start, end if end is not None else 2**31 - 1)
        codes, uniques = _factorize(values)
        sliced = np.array([v[start:end] if isinstance(v, str) else None for v in uniques], object)
        return np.append(sliced, None)[codes]
    if op == "match":
        return _match(args, column, n)
    if op == "step":
        return _step(args, column, n)
    if op == "interpolate":
        return _interpolate(args, column, n)
    raise UnsupportedExpression(f"expression {op!r} is outside the supported subset")


def _select(conditions: list[np.ndarray], outputs: list[Any], fallback: Any, n: int) -> Any:
    if isinstance(fallback, _Color) or any(isinstance(o, _Color) for o in outputs):
        result = fallback.rgba.copy()
        for cond, out in zip(conditions, outputs, strict=True):
            result[cond] = out.rgba[cond]
        return _Color(result)
    result = np.array(fallback, dtype=object if fallback.dtype == object else float)
    for cond, out in zip(conditions, outputs, strict=True):
        result[cond] = out[cond]
    return result


def _match(args: list[Any], column: Any, n: int) -> Any:
    codes, uniques = _factorize(_evaluate(args[0], column, n))
    pairs, fallback = args[1:-1], args[-1]
    conditions, outputs = [], []
    taken = np.zeros(len(uniques) + 1, dtype=bool)  # the last slot: a missing value
    for label, output in zip(pairs[::2], pairs[1::2], strict=True):
        labels = label if isinstance(label, list) else [label]
        hit = np.array([any(_same(u, one) for one in labels) for u in uniques] + [False])
        hit &= ~taken  # the first label that matches wins
        taken |= hit
        conditions.append(hit)
        outputs.append(output)
    if all(_is_literal(o) for o in [*outputs, fallback]):  # a lookup table over distinct values
        table = _evaluate_literals([*outputs, fallback])
        index = np.full(len(uniques) + 1, len(outputs))
        for i, hit in enumerate(conditions):
            index[hit] = i
        return _take(table, index[codes])
    return _select(
        [hit[codes] for hit in conditions],
        [_evaluate(o, column, n) for o in outputs],
        _evaluate(fallback, column, n),
        n,
    )


def _is_literal(expr: Any) -> bool:
    return isinstance(expr, str | int | float) and not isinstance(expr, bool)


def _evaluate_literals(values: list[Any]) -> Any:
    """Literal outputs as one table: a _Color of k colours or an array of k values."""
    if all(_is_color(v) for v in values):
        return _Color(np.array([parse_color(v) for v in values]))
    if all(isinstance(v, int | float) for v in values):
        return np.array(values, dtype=float)
    return np.array(values, dtype=object)


def _take(table: Any, index: np.ndarray) -> Any:
    return _Color(table.rgba[index]) if isinstance(table, _Color) else table[index]


def _numbers(values: np.ndarray) -> np.ndarray:
    """Values as floats, NaN where one is not a number (MapLibre's fallback case)."""
    if _is_arrow(values):
        values = values.to_numpy(zero_copy_only=False)
    if values.dtype != object:
        return values.astype(float)
    import pandas as pd

    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)


def _is_arrow(values: Any) -> bool:
    return type(values).__module__.startswith("pyarrow")


def _arrow_text(values: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(values.type) or pa.types.is_large_string(values.type)


def _factorize(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values); a missing value gets the code len(distinct)."""
    import pandas as pd

    if _is_arrow(values):
        import pyarrow as pa

        array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        encoded = array.dictionary_encode()
        uniques = np.array(encoded.dictionary.to_pylist(), dtype=object)
        codes = encoded.indices.fill_null(len(uniques)).to_numpy(zero_copy_only=False)
        return codes.astype(np.intp), uniques

    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    codes = np.where(codes < 0, len(uniques), codes)
    return codes, uniques


def _same(value: Any, label: Any) -> bool:
    """match compares like MapLibre: a number label matches the same number, text text."""
    if isinstance(label, str) or isinstance(value, str):
        return isinstance(value, str) and isinstance(label, str) and value == label
    try:
        return float(value) == float(label)
    except (TypeError, ValueError):
        return False


def _step(args: list[Any], column: Any, n: int) -> Any:
    x = _numbers(_evaluate(args[0], column, n))
    stops = [float(s) for s in args[2::2]]
    outputs = [_evaluate(o, column, n) for o in [args[1], *args[3::2]]]
    index = np.searchsorted(np.array(stops), x, side="right")
    conditions = [index == i for i in range(1, len(outputs))]
    return _missing_as_default(_select(conditions, outputs[1:], outputs[0], n), x)


def _missing_as_default(result: Any, x: np.ndarray) -> Any:
    """A row whose input is not a number takes the paint property's default, as in MapLibre."""
    missing = np.isnan(x)
    if isinstance(result, _Color) and missing.any():
        result.rgba[missing] = parse_color(DEFAULT_COLOR)
    return result


def _interpolate(args: list[Any], column: Any, n: int) -> Any:
    if args[0] != ["linear"]:
        raise UnsupportedExpression(f"interpolation {args[0]!r}: only ['linear']")
    x = _numbers(_evaluate(args[1], column, n))
    stops = np.array([float(s) for s in args[2::2]])
    outputs = args[3::2]
    if all(_is_color(o) for o in outputs):
        colors = _Color(ramp(x, stops, np.array([parse_color(o) for o in outputs])))
        return _missing_as_default(colors, x)
    values = np.array([float(o) for o in outputs])
    return np.interp(x, stops, values)


def ramp(x: np.ndarray, stops: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Colours (n, 4) linearly interpolated between stops, clamped at both ends."""
    out = np.empty((*np.shape(x), 4))
    for channel in range(4):
        out[..., channel] = np.interp(x, stops, colors[:, channel])
    return out


def fill_colors(style_layer: Mapping[str, Any], table_or_records: Any) -> np.ndarray:
    """RGBA (n, 4) uint8 of each feature as the style layer paints it.

    ``style_layer`` is one MapLibre layer of a style document (fill, line or circle);
    ``table_or_records`` a pyarrow Table, a pandas/GeoPandas frame or a list of dicts.
    The layer's opacity property multiplies the alpha. A feature whose value is missing
    takes the expression's fallback, as MapLibre does.
    """
    kind = style_layer["type"]
    paint = style_layer.get("paint", {})
    column, n = _columns(table_or_records)
    result = _evaluate(paint.get(COLOR_PAINT.get(kind, ""), DEFAULT_COLOR), column, n)
    if not isinstance(result, _Color):
        raise UnsupportedExpression(f"{COLOR_PAINT.get(kind)} does not give colours")
    rgba = result.rgba.copy()
    opacity = paint.get(OPACITY_PAINT.get(kind, ""), 1)
    alpha = (
        opacity
        if isinstance(opacity, int | float)
        else _numbers(np.asarray(_evaluate(opacity, column, n)))
    )
    rgba[:, 3] = rgba[:, 3] * alpha
    out = np.empty((n, 4), dtype=np.uint8)
    out[:, :3] = np.clip(np.rint(rgba[:, :3]), 0, 255)
    out[:, 3] = np.clip(np.rint(rgba[:, 3] * 255), 0, 255)
    return out


def colormap_array(colormap: Sequence[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(stops, colours) of a raster style's ``colormap`` ([[t, colour], ...], t in 0-1)."""
    stops = np.array([float(t) for t, _ in colormap])
    colors = np.array([parse_color(c) for _, c in colormap])
    return stops, colors
