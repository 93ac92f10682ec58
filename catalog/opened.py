"""Opened vector layers, shared by every request of the process.

pygeoapi builds a provider object per request, and analyses read the same
layers again and again; opening a GeoParquet file, building its
spatial index and its id lookup per request would cost more than answering. Assets are
immutable (a new version is a new file), so an opened layer is cached by its path for
the life of the process, bounded by an LRU.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from .asset_store import is_remote, read_table

MAX_OPEN_LAYERS = 64


@dataclass
class OpenedLayer:
    """A GeoParquet asset in memory: attributes as Arrow, bounds, an STRtree, an id map."""

    path: Path | str  # a local file or an s3:// URL (asset_store)
    table: pa.Table  # attribute columns and WKB geometry, no bbox column
    geometry_column: str
    id_field: str
    bounds: np.ndarray  # (n, 4) minx, miny, maxx, maxy
    tree: shapely.STRtree  # over the bounding boxes (each row's diagonal: its envelope)
    fields: dict[str, dict[str, str]]

    @property
    def count(self) -> int:
        return self.table.num_rows

    @functools.cached_property
    def row_of_id(self) -> dict[Any, int]:
        """Row of each feature id: made on the first lookup by id, not when the layer is
        opened (a million ids take about as long as the spatial index)."""
        ids = self.table.column(self.id_field).to_pylist()
        return {v: i for i, v in enumerate(ids)}

    def geometries(self, rows: np.ndarray) -> np.ndarray:
        """Shapely geometries of some rows (decoded on demand, never all at once)."""
        wkb = self.table.column(self.geometry_column).take(pa.array(rows, pa.int64()))
        return shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))

    def frame(self, rows: np.ndarray) -> gpd.GeoDataFrame:
        """Some rows as a GeoDataFrame (EPSG:4490)."""
        taken = self.table.take(pa.array(rows, pa.int64()))
        attributes = taken.drop_columns([self.geometry_column]).to_pandas()
        geoms = shapely.from_wkb(taken.column(self.geometry_column).to_numpy(zero_copy_only=False))
        return gpd.GeoDataFrame(attributes, geometry=geoms, crs=4490)

    def records(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """Attributes of some rows as plain dicts (no geometry)."""
        names = [n for n in self.table.column_names if n != self.geometry_column]
        return self.table.select(names).take(pa.array(rows, pa.int64())).to_pylist()

    def bbox_rows(self, bbox: tuple[float, float, float, float]) -> np.ndarray:
        """Rows whose geometry intersects a bbox: the index narrows, geometry decides.

        Rows whose bounds lie inside the bbox match without decoding their geometry.
        """
        minx, miny, maxx, maxy = bbox
        query = shapely.box(minx, miny, maxx, maxy)
        rows = np.sort(self.tree.query(query))
        if rows.size == 0:
            return rows
        b = self.bounds[rows]
        inside = (b[:, 0] >= minx) & (b[:, 1] >= miny) & (b[:, 2] <= maxx) & (b[:, 3] <= maxy)
        edge = rows[~inside]
        if edge.size:
            hit = shapely.intersects(self.geometries(edge), query)
            rows = np.sort(np.concatenate([rows[inside], edge[hit]]))
        return rows


_ARROW_TYPES = [
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_integer, "integer"),
    (pa.types.is_floating, "number"),
    (pa.types.is_temporal, "string"),
]


def _field_type(arrow_type: pa.DataType) -> dict[str, str]:
    for test, name in _ARROW_TYPES:
        if test(arrow_type):
            out = {"type": name}
            if pa.types.is_date(arrow_type):
                out["format"] = "date"
            elif pa.types.is_timestamp(arrow_type):
                out["format"] = "date-time"
            return out
    return {"type": "string"}


def _open(path: Path | str, id_field: str) -> OpenedLayer:
    table = read_table(path).combine_chunks()  # take() on one chunk is much faster
    meta = table.schema.metadata or {}
    import json

    geo = json.loads(meta.get(b"geo", b"{}"))
    geometry_column = geo.get("primary_column", "geometry")
    if "bbox" in table.column_names:
        box = table.column("bbox")
        bounds = np.column_stack(
            [
                pc.struct_field(box, name).to_numpy(zero_copy_only=False)
                for name in ("xmin", "ymin", "xmax", "ymax")
            ]
        ).astype("float64")
        table = table.drop_columns(["bbox"])
    else:
        geoms = shapely.from_wkb(
            np.asarray(table.column(geometry_column).to_pylist(), dtype=object)
        )
        bounds = shapely.bounds(geoms)
    # the tree holds each row's diagonal (xmin, ymin)-(xmax, ymax): its envelope is the
    # row's bounds, which is all the tree's queries compare (none passes a predicate),
    # and a million segments are made in a third of the time of a million boxes
    present = ~np.isnan(bounds).any(axis=1)
    keys = np.full(len(bounds), None, dtype=object)
    keys[present] = shapely.linestrings(bounds[present].reshape(-1, 2, 2))
    tree = shapely.STRtree(keys)
    fields = {
        name: _field_type(table.schema.field(name).type)
        for name in table.column_names
        if name != geometry_column
    }
    return OpenedLayer(
        path,
        table,
        geometry_column,
        id_field,
        bounds,
        tree,
        fields,
    )


_cache: OrderedDict[str, OpenedLayer] = OrderedDict()
_lock = threading.Lock()
_opening: dict[str, threading.Lock] = {}


def open_layer(path: str | Path, id_field: str) -> OpenedLayer:
    """The opened layer of an asset, from the process-wide cache (opened once)."""
    key = f"{path}::{id_field}"
    with _lock:
        layer = _cache.get(key)
        if layer is not None:
            _cache.move_to_end(key)
            return layer
        gate = _opening.setdefault(key, threading.Lock())
    with gate:  # one thread opens; others wait for it rather than opening again
        with _lock:
            if key in _cache:
                return _cache[key]
        layer = _open(path if is_remote(path) else Path(path), id_field)
        with _lock:
            _cache[key] = layer
            while len(_cache) > MAX_OPEN_LAYERS:
                _cache.popitem(last=False)
            _opening.pop(key, None)
        return layer
