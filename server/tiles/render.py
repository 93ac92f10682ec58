"""Vector tiles of a collection, for one caller: ``vector_tile(...) -> TileResult``.

Stable entry point (WMTS GetTile in server/ows calls it too)::

    vector_tile(server, access, collection_id, tms_id, z, y, x, *, datetime=None,
                properties=None) -> TileResult(content, etag, media_type, ...)

``access`` is the caller's :class:`shikong.catalog.policy.Access` (``server.access(caller)``):
a collection it may not see is a 404 exactly as a missing one, and its masked personal
fields leave masked. ``datetime`` picks the layer version as Features does
(:func:`shikong.server.providers.features.pick_version`). The features come from the
opened GeoParquet asset (:func:`shikong.catalog.opened.open_layer`: Arrow table, bounds,
STRtree), never a second copy.

What a tile holds (documented in docs-draft/tiles.md):

- extent 4096 units, buffer 64 units: a feature is in the tile when its geometry
  intersects the tile grown by the buffer, clipped to that rectangle;
- generalisation by size: a line or polygon whose bounding box is under ``min_size(z)``
  units on both sides in this zoom is left out (points never are), so low zooms carry
  the large features, as map clients expect: one pixel of a 512-pixel tile (8 units)
  from z13, one pixel of a 256-pixel tile (16 units) at z12 and below, where a city's
  cadastre would otherwise put 100,000 sub-pixel parcels in one z11 tile;
- coordinates snapped to whole units (shared vertices of a coverage stay shared), repeated
  points dropped, then Douglas-Peucker at SIMPLIFY units (1/8 pixel) with topology kept;
- the id field's value as the MVT feature id when it is a non-negative integer, and as a
  property always; ``properties`` selects the other attributes;
- an empty tile is ``content == b""`` (the API answers 204 No Content).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderItemNotFoundError
from shikong.catalog.opened import OpenedLayer, open_layer
from shikong.catalog.policy import Access, mask_value

from ..problems import Problem
from ..providers.features import pick_version
from ..providers.versions import PublishedVersions
from . import matrix_sets, mvt
from .cache import TileCache, tile_key
from .links import TILED_KINDS

if TYPE_CHECKING:
    from ..app import Server

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
EXTENT = 4096
BUFFER = 64
MIN_SIZE = 8.0  # units: one pixel of a 512-pixel tile
LOW_ZOOM_MIN_SIZE = 16.0  # units: one pixel of a 256-pixel tile, at z <= LOW_ZOOM
LOW_ZOOM = 12
SIMPLIFY = 0.5
SIMPLIFY_FROM = 16  # coordinates: simpler geometries are only snapped to the grid
ENCODER = "shikong-mvt-3"  # part of every cache key: bump when tiles change for the same data


@dataclass(frozen=True)
class TileResult:
    """A rendered (or cached) tile; ``content`` empty for an empty tile."""

    content: bytes
    etag: str
    media_type: str = MVT_MEDIA_TYPE
    immutable: bool = False  # the request named a closed version: the tile never changes
    public: bool = False  # the collection is public (shared caches may keep it)
    # a fresh tile's cache write, left for after the response when the caller asked
    # (``defer_store``): a file created on a slow disk costs the first reader nothing
    store: Callable[[], None] | None = None
    encoding: str | None = None  # "gzip": content is the gzip form (Content-Encoding)


@dataclass(frozen=True)
class TileSource:
    """Where a collection's tiles come from: its versions and id field."""

    collection: str
    kind: str
    versions: PublishedVersions
    id_field: str
    classification: str


def tile_source(server: Server, access: Access, collection_id: str) -> TileSource:
    """The vector source of a collection the caller may see; 404 otherwise."""
    snapshot = server.publisher.snapshot
    resource = snapshot.resources.get(collection_id)
    if (
        resource is None
        or collection_id not in access.visible
        or resource.get("type") != "collection"
    ):
        raise Problem(404, f"no collection {collection_id!r}")
    kind = resource.get("shikong", {}).get("kind", "")
    providers = resource.get("providers", [])
    if kind == "readings":  # point tiles of the stations of a readings collection
        edr = next((p for p in providers if p["type"] == "edr"), None)
        sensors = snapshot.resources.get(edr["store_layer"]) if edr else None
        providers = sensors.get("providers", []) if sensors else []
    feature = next((p for p in providers if p["type"] == "feature" and "current" in p), None)
    if kind not in TILED_KINDS or feature is None:
        raise Problem(404, f"collection {collection_id!r} ({kind}) has no vector tiles")
    return TileSource(
        collection_id,
        kind,
        PublishedVersions.of(feature),
        feature["id_field"],
        resource["shikong"]["classification"],
    )


def pick(source: TileSource, datetime_: str | None) -> dict[str, Any]:
    """The version for ``datetime`` (Features' own picker); bad or no version is 4xx."""
    try:
        return pick_version(source.versions, datetime_)
    except ProviderInvalidQueryError as exc:
        raise Problem(400, exc.message) from None
    except ProviderItemNotFoundError as exc:
        raise Problem(404, exc.message) from None


def selected(layer: OpenedLayer, properties: list[str] | None) -> list[str]:
    """Attribute names of the tile: the id field, then those asked for (or all)."""
    if properties is not None:
        unknown = [p for p in properties if p not in layer.fields]
        if unknown:
            raise Problem(
                400,
                f"unknown properties {', '.join(unknown)}; properties: {', '.join(layer.fields)}",
            )
    return list(dict.fromkeys([layer.id_field, *(properties or layer.fields)]))


def _cache(server: Server) -> TileCache:
    cache = getattr(server, "_tile_cache", None)
    if cache is None:
        cache = TileCache(server.catalog.paths.tile_cache)
        server._tile_cache = cache  # type: ignore[attr-defined]
    return cache


@dataclass(frozen=True)
class _Request:
    """One caller's tile, named without opening the layer (so a cache hit never does)."""

    source: TileSource
    version: dict[str, Any]
    tms: Any
    box: matrix_sets.TileBox
    masks: dict[str, str]
    key: str
    etag: str
    immutable: bool
    public: bool


def _request(
    server: Server,
    access: Access,
    collection_id: str,
    tms_id: str,
    z: int,
    y: int,
    x: int,
    datetime: str | None,
    properties: list[str] | None,
) -> _Request:
    source = tile_source(server, access, collection_id)
    version = pick(source, datetime)
    tms = matrix_sets.get(tms_id)
    box = matrix_sets.tile_box(tms, z, y, x)
    masks = access.masked_fields(collection_id)
    key = tile_key(
        ENCODER,
        str(version["path"]),
        source.id_field,
        collection_id,
        tms.id,
        z,
        y,
        x,
        properties,  # as asked (None: all); a version's fields never change
        sorted(masks.items()),
        "",  # style: vector tiles carry data, styles apply in the client
    )
    return _Request(
        source,
        version,
        tms,
        box,
        masks,
        key,
        f'"{key[:32]}"',
        bool(datetime) and version["valid_to"] is not None,
        source.classification == "public",
    )


def gzip_etag(etag: str) -> str:
    """The ETag of a tile's gzip form: another representation, another strong validator."""
    return etag[:-1] + '-gzip"'


def _not_modified(req: _Request, if_none_match: str | None) -> bool:
    """The client holds this tile in either form (a 304 names the form it matched)."""
    if not if_none_match:
        return False
    held = [t.strip() for t in if_none_match.split(",")]
    return req.etag in held or gzip_etag(req.etag) in held


def cached_vector_tile(
    server: Server,
    access: Access,
    collection_id: str,
    tms_id: str,
    z: int,
    y: int,
    x: int,
    *,
    datetime: str | None = None,
    properties: list[str] | None = None,
    if_none_match: str | None = None,
    gzip_ok: bool = False,
) -> TileResult | None:
    """The tile if the cache holds it (or a 304), else None; never opens the layer.

    Cheap enough for the event loop (a small file read): the API answers cache hits
    without a thread hop and sends misses to :func:`vector_tile` in a thread.
    ``gzip_ok``: the client takes gzip, so the cache's gzip form is answered (its own
    ETag, as a representation of its own).
    """
    req = _request(server, access, collection_id, tms_id, z, y, x, datetime, properties)
    if _not_modified(req, if_none_match):
        matched = req.etag if req.etag in if_none_match else gzip_etag(req.etag)
        return TileResult(b"", matched, immutable=req.immutable, public=req.public)
    found = _cache(server).get_encoded(req.key, gzip_ok)
    if found is None:
        return None
    content, encoding = found
    etag = gzip_etag(req.etag) if encoding else req.etag
    return TileResult(content, etag, immutable=req.immutable, public=req.public, encoding=encoding)


def vector_tile(
    server: Server,
    access: Access,
    collection_id: str,
    tms_id: str,
    z: int,
    y: int,
    x: int,
    *,
    datetime: str | None = None,
    properties: list[str] | None = None,
    if_none_match: str | None = None,
    defer_store: bool = False,
) -> TileResult:
    """The MVT of one collection's tile for this caller (from the cache when there).

    With ``if_none_match`` equal to the tile's ETag the content is not rendered (b"").
    ``defer_store``: a fresh tile is not written to the cache here but by the result's
    ``store``, which the caller runs after answering.
    """
    req = _request(server, access, collection_id, tms_id, z, y, x, datetime, properties)
    if _not_modified(req, if_none_match):
        return TileResult(b"", req.etag, immutable=req.immutable, public=req.public)
    cache = _cache(server)
    content = cache.get(req.key)
    if content is None:
        layer = open_layer(req.version["path"], req.source.id_field)
        names = selected(layer, properties)  # unknown properties: 400 (never cached)
        content = render(layer, collection_id, req.box, req.tms.id, names, req.masks, z=z)
        store = partial(cache.put, req.key, content)
        if not defer_store:
            store()
            store = None
        return TileResult(
            content, req.etag, immutable=req.immutable, public=req.public, store=store
        )
    return TileResult(content, req.etag, immutable=req.immutable, public=req.public)


def _to_tile_units(box: matrix_sets.TileBox, tms_id: str) -> Any:
    minx, miny, maxx, maxy = box.xy
    sx, sy = EXTENT / (maxx - minx), EXTENT / (maxy - miny)
    mercator = tms_id not in matrix_sets.GEOGRAPHIC

    def transform(coords: np.ndarray) -> np.ndarray:
        x, y = coords[:, 0], coords[:, 1]
        if mercator:
            x, y = matrix_sets.to_mercator(x, y)
        return np.column_stack([(x - minx) * sx, (maxy - y) * sy])

    return transform


def min_size(z: int) -> float:
    """Tile units under which a line or polygon is left out of zoom ``z``."""
    return LOW_ZOOM_MIN_SIZE if z <= LOW_ZOOM else MIN_SIZE


def _unit_bounds(
    layer: OpenedLayer, rows: np.ndarray, box: matrix_sets.TileBox, tms_id: str
) -> np.ndarray:
    """Bounding boxes of rows in tile units (x0, y0, x1, y1; y down, so y0 > y1)."""
    b = layer.bounds[rows]
    to_units = _to_tile_units(box, tms_id)
    return np.column_stack([to_units(b[:, [0, 1]]), to_units(b[:, [2, 3]])])


def candidate_rows(layer: OpenedLayer, box: matrix_sets.TileBox, tms_id: str, z: int) -> np.ndarray:
    """Rows whose bounding box meets the buffered tile and is not too small to show."""
    minx, miny, maxx, maxy = box.xy
    bx, by = BUFFER * (maxx - minx) / EXTENT, BUFFER * (maxy - miny) / EXTENT
    lo = (minx - bx, miny - by)
    hi = (maxx + bx, maxy + by)
    if tms_id not in matrix_sets.GEOGRAPHIC:
        lo = matrix_sets.from_mercator(*lo)
        hi = matrix_sets.from_mercator(*hi)
    rows = np.sort(layer.tree.query(shapely.box(lo[0], lo[1], hi[0], hi[1])))
    if rows.size == 0:
        return rows
    u = _unit_bounds(layer, rows, box, tms_id)
    size = np.maximum(np.abs(u[:, 2] - u[:, 0]), np.abs(u[:, 3] - u[:, 1]))
    b = layer.bounds[rows]
    point_like = (b[:, 0] == b[:, 2]) & (b[:, 1] == b[:, 3])
    return rows[point_like | (size >= min_size(z))]


def _straight_from_wkb(
    layer: OpenedLayer, rows: np.ndarray, box: matrix_sets.TileBox, tms_id: str
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """The rows that need no shapely geometry, and their MVT commands.

    Plain (multi)polygons wholly inside the buffered tile (nothing to clip) and small
    enough not to be simplified are read from their WKB bytes straight into coordinate
    arrays, transformed with numpy and encoded: at z12 a cadastre's 28,700 parcels skip
    28,700 shapely objects made, transformed and taken apart again.
    """
    u = _unit_bounds(layer, rows, box, tms_id)
    lo, hi = -BUFFER + 1, EXTENT + BUFFER - 1  # a unit of margin for the bbox's rounding
    inside = (
        (np.minimum(u[:, 0], u[:, 2]) >= lo)
        & (np.maximum(u[:, 0], u[:, 2]) <= hi)
        & (np.minimum(u[:, 1], u[:, 3]) >= lo)
        & (np.maximum(u[:, 1], u[:, 3]) <= hi)
    )
    wanted = rows[inside]
    chunked = layer.table.column(layer.geometry_column)
    column = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
    for _ in range(2):
        ok, coords, offsets = mvt.wkb_polygons(column, wanted)
        ring_off, poly_off, geom_off = offsets
        per_geom = ring_off[poly_off[geom_off]]
        simple = np.diff(per_geom) <= SIMPLIFY_FROM
        if simple.all():
            break
        chosen = wanted[ok]
        wanted = chosen[simple]  # the detailed ones go the shapely way (simplified)
    else:
        return np.zeros(0, rows.dtype), None
    fast = wanted[ok]
    if fast.size == 0:
        return fast, None
    units = _to_tile_units(box, tms_id)(coords)
    return fast, mvt.polygon_features(units, offsets)


def render(
    layer: OpenedLayer,
    name: str,
    box: matrix_sets.TileBox,
    tms_id: str,
    names: list[str],
    masks: dict[str, str],
    *,
    z: int,
) -> bytes:
    """Encode the tile: select, transform, clip, simplify, attributes, MVT."""
    rows = candidate_rows(layer, box, tms_id, z)
    if rows.size == 0:
        return b""
    fast, commands = _straight_from_wkb(layer, rows, box, tms_id)
    rows = np.setdiff1d(rows, fast, assume_unique=True)
    geoms = shapely.transform(layer.geometries(rows), _to_tile_units(box, tms_id))
    lo, hi = -BUFFER, EXTENT + BUFFER
    b = shapely.bounds(geoms)
    edge = ~((b[:, 0] >= lo) & (b[:, 1] >= lo) & (b[:, 2] <= hi) & (b[:, 3] <= hi))
    if edge.any():
        geoms[edge] = shapely.clip_by_rect(geoms[edge], lo, lo, hi, hi)
    keep = ~shapely.is_empty(geoms)
    rows, geoms = rows[keep], geoms[keep]
    if rows.size == 0 and fast.size == 0:
        return b""
    detailed = shapely.get_num_coordinates(geoms) > SIMPLIFY_FROM
    if detailed.any():  # small rings have nothing to lose at a sub-pixel tolerance
        geoms[detailed] = shapely.simplify(geoms[detailed], SIMPLIFY, preserve_topology=True)
    rows = np.concatenate([fast, rows])  # the WKB-read features come first
    table = layer.table.select(names).take(pa.array(rows, pa.int64()))
    columns = [_masked(table.column(n).combine_chunks(), masks.get(n)) for n in names]
    ids = _feature_ids(table.column(layer.id_field).combine_chunks())
    return mvt.encode_layer(name, geoms, names, columns, ids=ids, extent=EXTENT, commands=commands)


def _masked(column: pa.Array, rule: str | None) -> pa.Array:
    if rule is None:
        return column
    encoded = column.dictionary_encode()
    shown = [mask_value(rule, v) for v in encoded.dictionary.to_pylist()]
    return pa.array(shown, pa.string()).take(encoded.indices)


def _feature_ids(column: pa.Array) -> np.ndarray | None:
    """Integer ids ≥ 0 as MVT feature ids; other ids travel as the property only."""
    if not pa.types.is_integer(column.type) or column.null_count:
        return None
    if len(column) and pc.min(column).as_py() < 0:
        return None
    return column.to_numpy().astype(np.uint64)


RASTER_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def raster_tile(
    server: Server,
    access: Access,
    collection_id: str,
    tms_id: str,
    z: int,
    y: int,
    x: int,
    *,
    fmt: str = "png",
    if_none_match: str | None = None,
    defer_store: bool = False,
) -> TileResult:
    """A raster collection's map tile, drawn by server/maps (its style: the collection's).

    The current version only; cached like vector tiles (key: the COG, grid, tile, format);
    ``defer_store`` as for :func:`vector_tile`.
    """
    from ..maps.raster import render_tile

    resource = server.publisher.snapshot.resources.get(collection_id)
    if resource is None or collection_id not in access.visible:
        raise Problem(404, f"no collection {collection_id!r}")
    coverage = next((p for p in resource["providers"] if p["type"] == "coverage"), None)
    if resource.get("shikong", {}).get("kind") != "raster" or coverage is None:
        raise Problem(404, f"collection {collection_id!r} has no map tiles")
    if fmt not in RASTER_FORMATS:
        raise Problem(400, f"f={fmt!r}: raster tiles are {', '.join(RASTER_FORMATS)}")
    tms = matrix_sets.get(tms_id)
    matrix_sets.tile_box(tms, z, y, x)  # 400 outside the grid
    key = tile_key(ENCODER, str(coverage["data"]), collection_id, tms.id, z, y, x, fmt)
    etag = f'"{key[:32]}"'
    public = resource["shikong"]["classification"] == "public"
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return TileResult(b"", etag, RASTER_FORMATS[fmt], public=public)
    cache = _cache(server)
    content = cache.get(key)
    if content is None:
        content = render_tile(coverage["data"], tms, x, y, z, style=collection_id, fmt=fmt) or b""
        store = partial(cache.put, key, content, gzip_too=False)
        if not defer_store:
            store()
            store = None
        return TileResult(content, etag, RASTER_FORMATS[fmt], public=public, store=store)
    return TileResult(content, etag, RASTER_FORMATS[fmt], public=public)
