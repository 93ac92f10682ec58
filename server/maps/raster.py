"""Raster tiles and maps from a layer's COG, coloured with one fixed scale per layer.

rio-tiler reads the window a tile or a map needs from the COG's tiles and overviews;
the style's ``raster`` block (``config/styles/``) fixes how values become colours, so a
map, its halves, a tile and a WMS image of the same place agree pixel for pixel:

- ``bands``: band names (or ``"auto"``: three bands as RGB when there are three or more,
  else the first band through the colour map); ``expression``: band arithmetic by name
  instead, e.g. ``"(nir-red)/(nir+red)"``;
- ``rescale``: ``[lo, hi]`` (or one per band), or ``"minmax"`` / ``"statistics"`` (the
  2nd-98th percentile): taken from the COG's statistics, computed the first time a
  process renders the asset (:func:`band_statistics`, full resolution up to 16
  megapixels, else the overview under that) and cached in the process per asset path;
  an asset never changes, so every process and every request gets the same numbers;
- ``colormap``: ``[[t, colour], ...]`` with t from 0 (lo) to 1 (hi), linear in RGBA;
- ``resampling``: ``nearest`` or ``bilinear`` (reading overviews and warping).

Nodata (and a non-finite expression result) is transparent in PNG and WebP, white in
JPEG. Stable names for the tiles and OWS packages: :func:`render_tile`, :func:`render_bbox`.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling

from .styles import colormap_array, ramp, raster_spec

FORMATS = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG", "jpg": "JPEG"}
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg", "jpg": "image/jpeg"}
STATISTICS_PIXELS = 16_000_000
RESAMPLING = ("nearest", "bilinear")


class StyleError(ValueError):
    """A raster style that does not fit the raster (a band it lacks, no scale, ...)."""


@dataclass(frozen=True, eq=False)  # hashed by identity: _resolve caches each one
class Resolved:
    """A raster style bound to one COG: what to read and how to colour it."""

    indexes: tuple[int, ...] | None
    expression: str | None
    ranges: tuple[tuple[float, float], ...]
    stops: np.ndarray | None
    colors: np.ndarray | None
    resampling: str


def asset_path(path_or_item: Any) -> str:
    """The COG of a path, a LayerVersion (``asset_path``) or a Layer (its current version)."""
    if isinstance(path_or_item, str | Path):
        return str(path_or_item)
    found = getattr(path_or_item, "asset_path", None)
    if found is None and getattr(path_or_item, "current", None) is not None:
        found = path_or_item.current.asset_path
    if found is None:
        raise TypeError(f"no raster asset in {path_or_item!r}")
    return str(found)


@lru_cache(maxsize=256)
def band_statistics(path: str) -> tuple[dict[str, float], ...]:
    """min, max, p2 and p98 of each band over its valid pixels (see the module text)."""
    with rasterio.open(path) as src:
        scale = max(1.0, (src.width * src.height / STATISTICS_PIXELS) ** 0.5)
        shape = (max(1, int(src.height / scale)), max(1, int(src.width / scale)))
        data = src.read(out_shape=(src.count, *shape), masked=True, resampling=Resampling.nearest)
    out = []
    for band in data:
        values = band.compressed().astype("float64")
        values = values[np.isfinite(values)]
        if values.size == 0:
            out.append({"min": 0.0, "max": 1.0, "p2": 0.0, "p98": 1.0})
            continue
        p2, p98 = np.percentile(values, [2, 98])
        out.append({"min": float(values.min()), "max": float(values.max()), "p2": p2, "p98": p98})
    return tuple(out)


@lru_cache(maxsize=64)
def _band_names(path: str) -> tuple[str, ...]:
    with rasterio.open(path) as src:
        return tuple(d or f"b{i + 1}" for i, d in enumerate(src.descriptions))


def _spec(style: Any) -> Mapping[str, Any]:
    if isinstance(style, str):
        return raster_spec(style)
    if isinstance(style, Mapping) and "raster" in style:
        return style["raster"]
    if isinstance(style, Mapping):
        return style
    raise StyleError(f"not a raster style: {style!r}")


def resolve(path: str, style: Any) -> Resolved:
    """Bind a raster style (its block, a style spec or a collection id) to a COG."""
    spec = _spec(style)
    return _resolve(path, json.dumps(spec, sort_keys=True))


@lru_cache(maxsize=256)
def _resolve(path: str, spec_json: str) -> Resolved:
    spec = json.loads(spec_json)
    names = _band_names(path)
    index = {name: i + 1 for i, name in enumerate(names)}
    expression = spec.get("expression")
    indexes: tuple[int, ...] | None = None
    if expression:
        for name in sorted(index, key=len, reverse=True):
            expression = re.sub(rf"\b{re.escape(name)}\b", f"b{index[name]}", expression)
        outputs = 1
    else:
        bands = spec.get("bands", "auto")
        if bands == "auto":
            indexes = (1, 2, 3) if len(names) >= 3 else (1,)
        else:
            missing = [b for b in bands if b not in index]
            if missing:
                raise StyleError(f"no band {', '.join(missing)}; bands: {', '.join(names)}")
            indexes = tuple(index[b] for b in bands)
        outputs = len(indexes)
    if outputs not in (1, 3):
        raise StyleError("a raster style draws one band through a colour map, or three as RGB")
    ranges = _ranges(path, spec.get("rescale", "statistics"), indexes, outputs)
    stops = colors = None
    if outputs == 1:
        stops, colors = colormap_array(spec.get("colormap") or [[0, "#000000"], [1, "#ffffff"]])
    resampling = spec.get("resampling", "nearest")
    if resampling not in RESAMPLING:
        raise StyleError(f"resampling {resampling!r}: one of {', '.join(RESAMPLING)}")
    return Resolved(indexes, expression, ranges, stops, colors, resampling)


def _ranges(
    path: str, rescale: Any, indexes: tuple[int, ...] | None, outputs: int
) -> tuple[tuple[float, float], ...]:
    if isinstance(rescale, str):
        if indexes is None:
            raise StyleError("an expression needs a numeric rescale [lo, hi]")
        keys = {"minmax": ("min", "max"), "statistics": ("p2", "p98")}.get(rescale)
        if keys is None:
            raise StyleError(f"rescale {rescale!r}: minmax, statistics or [lo, hi]")
        stats = band_statistics(path)
        return tuple((stats[i - 1][keys[0]], stats[i - 1][keys[1]]) for i in indexes)
    if isinstance(rescale, Sequence) and len(rescale) == 2 and not isinstance(rescale[0], list):
        return tuple((float(rescale[0]), float(rescale[1])) for _ in range(outputs))
    ranges = tuple((float(lo), float(hi)) for lo, hi in rescale)
    if len(ranges) != outputs:
        raise StyleError(f"rescale gives {len(ranges)} ranges for {outputs} bands")
    return ranges


LUT_SIZE = 4096  # ramp steps: under 0.1 of a colour level between neighbouring entries


@lru_cache(maxsize=64)
def _lookup(resolved: Resolved) -> np.ndarray:
    """The colour map sampled at LUT_SIZE steps of t, as RGBA uint8."""
    colours = ramp(np.linspace(0.0, 1.0, LUT_SIZE), resolved.stops, resolved.colors)
    colours[:, 3] *= 255
    return np.clip(np.rint(colours), 0, 255).astype(np.uint8)


OPAQUE_OFF = np.frombuffer(bytes([255, 255, 255, 0]), dtype=np.uint32)[0]  # alpha byte cleared


@lru_cache(maxsize=64)
def _lookup32(resolved: Resolved) -> np.ndarray:
    """The colour map's entries, each RGBA pixel as one uint32 (one gather per tile)."""
    return np.ascontiguousarray(_lookup(resolved)).view(np.uint32).ravel()


def colorize(data: np.ma.MaskedArray, resolved: Resolved) -> np.ndarray:
    """(h, w, 4) uint8 RGBA of the read bands; nodata and non-finite values transparent.

    On plain arrays and a mask (numpy's masked operations took most of the 2 ms a tile's
    colouring cost); the same numbers as before, float64 throughout."""
    raw = np.ma.getdata(data)
    values = raw.astype("float64", copy=False)
    good = np.isfinite(values) & ~np.ma.getmaskarray(data)
    valid = good.all(axis=0)
    filled = values if good.all() else np.where(good, values, 0.0)
    if resolved.stops is not None:
        lo, hi = resolved.ranges[0]
        t = np.subtract(filled[0], lo)
        t /= (hi - lo) or 1.0
        np.clip(t, 0.0, 1.0, out=t)
        t *= LUT_SIZE - 1
        colours = _lookup32(resolved)[np.rint(t, out=t).astype(np.intp)]  # RGBA as uint32
        return (
            np.where(valid, colours, colours & OPAQUE_OFF).view(np.uint8).reshape(*valid.shape, 4)
        )
    rgba = np.zeros((*filled.shape[1:], 4), dtype=np.uint8)
    for i, (lo, hi) in enumerate(resolved.ranges):
        t = np.clip((filled[i] - lo) / ((hi - lo) or 1.0), 0.0, 1.0)
        rgba[..., i] = np.rint(t * 255)
    rgba[..., 3] = np.where(valid, 255, 0)
    return rgba


def encode(rgba: np.ndarray, fmt: str = "png") -> bytes:
    """PNG or WebP with transparency, or JPEG (nodata white).

    A PNG takes the smallest mode that holds the pixels exactly: grey (``L``/``LA``) when
    red, green and blue agree everywhere, without alpha when every pixel is opaque. It
    decodes to the same colours, and is smaller and quicker to compress (a grey DEM
    tile: a quarter of the bytes to deflate)."""
    from PIL import Image

    kind = FORMATS.get(fmt.lower())
    if kind is None:
        raise StyleError(f"format {fmt!r}: one of png, webp, jpeg")
    buffer = io.BytesIO()
    opaque = bool((rgba[..., 3] == 255).all())
    if kind == "JPEG":
        alpha = rgba[..., 3:4].astype("float64") / 255
        rgb = np.rint(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
        Image.fromarray(rgb, "RGB").save(buffer, "JPEG", quality=88)
    elif kind == "WEBP":
        image = (
            Image.fromarray(np.ascontiguousarray(rgba[..., :3]), "RGB")
            if opaque
            else (Image.fromarray(rgba, "RGBA"))
        )
        image.save(buffer, "WEBP", lossless=True, quality=50, method=0)
    else:
        grey = bool((rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 1] == rgba[..., 2]).all())
        if grey and opaque:
            image = Image.fromarray(np.ascontiguousarray(rgba[..., 0]), "L")
        elif grey:
            image = Image.fromarray(np.ascontiguousarray(rgba[..., [0, 3]]), "LA")
        elif opaque:
            image = Image.fromarray(np.ascontiguousarray(rgba[..., :3]), "RGB")
        else:
            image = Image.fromarray(rgba, "RGBA")
        image.save(buffer, "PNG", compress_level=3)
    return buffer.getvalue()


# CGCS2000 (EPSG:4490) and WGS 84 differ by centimetres and PROJ applies no shift between
# them (DOMAIN.md), but PROJ takes ~30 ms to find the (null) operation from EPSG:4490 to Web
# Mercator, every time a transformation is created: more than a whole tile should cost.
# A CGCS2000 geographic COG is therefore read through a VRT that labels the same pixels
# EPSG:4326 (0.1 ms to Web Mercator); the VRT keeps the COG's overviews.
SAME_NUMBERS = {"EPSG:4490": "EPSG:4326"}


@lru_cache(maxsize=256)
def _relabelled(path: str) -> str | None:
    """A VRT of the COG under the EPSG:4326 label when it is EPSG:4490, else None."""
    from xml.sax.saxutils import escape

    with rasterio.open(path) as src:
        label = SAME_NUMBERS.get(src.crs.to_string()) if src.crs else None
        if label is None:
            return None
        t = src.transform
        bands = []
        for i in range(1, src.count + 1):
            nodata = f"<NoDataValue>{src.nodata!r}</NoDataValue>" if src.nodata is not None else ""
            bands.append(
                f'<VRTRasterBand dataType="{_gdal_type(src.dtypes[i - 1])}" band="{i}">{nodata}'
                f"<Description>{escape(src.descriptions[i - 1] or '')}</Description>"
                f'<SimpleSource><SourceFilename relativeToVRT="0">{escape(path)}</SourceFilename>'
                f"<SourceBand>{i}</SourceBand>"
                f'<SrcRect xOff="0" yOff="0" xSize="{src.width}" ySize="{src.height}"/>'
                f'<DstRect xOff="0" yOff="0" xSize="{src.width}" ySize="{src.height}"/>'
                f"</SimpleSource></VRTRasterBand>"
            )
        return (
            f'<VRTDataset rasterXSize="{src.width}" rasterYSize="{src.height}">'
            f"<SRS>{label}</SRS><GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, "
            f"{t.e!r}</GeoTransform>{''.join(bands)}</VRTDataset>"
        )


def _gdal_type(dtype: str) -> str:
    from rasterio.dtypes import _gdal_typename

    return _gdal_typename(dtype)


def _target_crs(path: str, crs: Any) -> Any:
    """The requested CRS, as the same-numbers label when the COG was relabelled."""
    from rasterio.crs import CRS

    target = crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    if _relabelled(path) is not None and target.to_string() in ("EPSG:4490", "OGC:CRS84"):
        return CRS.from_epsg(4326)
    return target


def _open(path: str) -> Any:
    return rasterio.open(_relabelled(path) or path)


# A tile's read spans up to four 512-pixel blocks of the COG: GDAL decodes them in
# parallel when allowed (z15 tiles of a 20,000-pixel Float32 DEM: 23.6 -> 19.7 ms).
# An operator's own GDAL_NUM_THREADS wins.
os.environ.setdefault("GDAL_NUM_THREADS", "ALL_CPUS")

READERS_PER_THREAD = 8
_per_thread = threading.local()
_every_kept: dict[int, tuple[Any, Any]] = {}  # id → (dataset, reader), of every thread
_kept_lock = threading.Lock()


@atexit.register
def _close_kept() -> None:
    """Close every kept COG before the interpreter tears down (GDAL objects freed during
    finalisation print errors)."""
    with _kept_lock:
        kept = list(_every_kept.values())
        _every_kept.clear()
    for dataset, reader in kept:
        with contextlib.suppress(Exception):
            reader.close()
            dataset.close()


def _reader(path: str, tms: Any = None) -> Any:
    """An open rio-tiler Reader of the COG, kept per thread (a few per thread, LRU).

    Opening per tile cost 2-3 ms of a z15 tile's 25 (the dataset, the VRT relabel, the
    Reader's bounds and zooms) and dropped GDAL's decoded blocks, which the next tile of
    a map often shares. Paths name immutable assets, so a kept reader is never stale.
    """
    from rio_tiler.io import Reader

    tms_id = tms.id if tms is not None else "WebMercatorQuad"
    kept: OrderedDict[tuple[str, str], tuple[Any, Any]] | None = getattr(
        _per_thread, "readers", None
    )
    if kept is None:
        kept = _per_thread.readers = OrderedDict()
    found = kept.get((path, tms_id))
    if found is not None:
        kept.move_to_end((path, tms_id))
        return found[1]
    dataset = _open(path)
    try:
        reader = (
            Reader(path, dataset=dataset, tms=tms)
            if tms is not None
            else Reader(path, dataset=dataset)
        )
    except Exception:
        dataset.close()
        raise
    kept[(path, tms_id)] = (dataset, reader)
    with _kept_lock:
        _every_kept[id(reader)] = (dataset, reader)
    while len(kept) > READERS_PER_THREAD:
        _, (old_dataset, old_reader) = kept.popitem(last=False)
        with _kept_lock:
            _every_kept.pop(id(old_reader), None)
        old_reader.close()
        old_dataset.close()
    return reader


@lru_cache(maxsize=256)
def native_zoom(path: str, tms_id: str = "WebMercatorQuad") -> tuple[int, int]:
    """(min, max) zoom of a COG in a tile matrix set: its whole extent in one tile, and the
    level where a tile pixel is no larger than a raster pixel (clients overzoom beyond)."""
    import morecantile
    from rio_tiler.io import Reader

    with (
        _open(path) as dataset,
        Reader(path, dataset=dataset, tms=morecantile.tms.get(tms_id)) as src,
    ):
        return int(src.minzoom), int(src.maxzoom)


def _read_kwargs(resolved: Resolved) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "resampling_method": resolved.resampling,
        "reproject_method": resolved.resampling,
    }
    if resolved.expression:
        kwargs["expression"] = resolved.expression
    else:
        kwargs["indexes"] = resolved.indexes
    return kwargs


def render_tile(
    path_or_item: Any,
    tms: Any,
    x: int,
    y: int,
    z: int,
    *,
    style: Any,
    fmt: str = "png",
    tilesize: int = 256,
) -> bytes | None:
    """One tile of a tile matrix set (morecantile) as an image; None when it holds no data.

    ``style`` is a raster style block, a style spec with one, or a collection id
    (see :func:`shikong.server.maps.styles.raster_spec`).
    """
    from rio_tiler.errors import TileOutsideBounds

    path = asset_path(path_or_item)
    resolved = resolve(path, style)
    try:  # outside the COG: rio-tiler's own bounds check raises
        image = _reader(path, tms).tile(x, y, z, tilesize=tilesize, **_read_kwargs(resolved))
    except TileOutsideBounds:
        return None
    rgba = colorize(image.array, resolved)
    if not rgba[..., 3].any():
        return None
    return encode(rgba, fmt)


def render_bbox(
    path_or_item: Any,
    bbox: Sequence[float],
    crs: Any,
    width: int,
    height: int,
    *,
    style: Any,
    fmt: str = "png",
    transparent: bool = True,
) -> bytes:
    """An image of a bbox (in ``crs``, x/y order) at width x height (WMS GetMap, Maps API).

    Outside the raster is transparent (white when ``transparent`` is false).
    """

    path = asset_path(path_or_item)
    resolved = resolve(path, style)
    target = _target_crs(path, crs)
    image = _reader(path).part(
        tuple(bbox),
        dst_crs=target,
        bounds_crs=target,
        width=int(width),
        height=int(height),
        max_size=None,
        **_read_kwargs(resolved),
    )
    rgba = colorize(image.array, resolved)
    if not transparent:
        alpha = rgba[..., 3:4].astype("float64") / 255
        rgba[..., :3] = np.rint(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
        rgba[..., 3] = 255
    return encode(rgba, fmt)
