"""OGC API Coverages over a layer's Cloud-Optimized GeoTIFF (its maps: providers/maps.py).

Reads only the window asked for, at the resolution asked for (``scale-size``,
``scale-factor``), from the COG's tiles and overviews: a map of a gigapixel raster reads
a few hundred kilobytes.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import rasterio
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderRequestEntityTooLargeError,
)
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from rasterio.windows import from_bounds as window_from_bounds

from .nothing import NothingMatched

MAX_PIXELS = 4096 * 4096  # per band and request; ask for a scale-size beyond it
# scale-size / scale-factor of the current request (pygeoapi does not pass them on)
SCALING: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "scaling", default=None
)


@dataclass(frozen=True)
class RasterInfo:
    width: int
    height: int
    count: int
    crs: Any
    transform: Any
    bounds: tuple[float, float, float, float]
    bounds_4490: tuple[float, float, float, float]
    dtypes: tuple[str, ...]
    nodata: float | None
    names: tuple[str, ...]
    units: tuple[str, ...]


@lru_cache(maxsize=256)
def raster_info(path: str) -> RasterInfo:
    """Header facts of a COG, read once per process (assets never change)."""
    with rasterio.open(path) as src:
        names = tuple(d or f"b{i + 1}" for i, d in enumerate(src.descriptions))
        return RasterInfo(
            src.width,
            src.height,
            src.count,
            src.crs,
            src.transform,
            tuple(src.bounds),
            tuple(transform_bounds(src.crs, "EPSG:4490", *src.bounds)),
            tuple(src.dtypes),
            src.nodata,
            names,
            # a band's own unit, else the dataset's ``units`` tag (the demo DEM: m)
            tuple(u or src.tags().get("units", "") for u in (src.units or ("",) * src.count)),
        )


def _bands(info: RasterInfo, properties: list[str] | None) -> list[int]:
    if not properties:
        return list(range(1, info.count + 1))
    index = {name: i + 1 for i, name in enumerate(info.names)}
    missing = [p for p in properties if p not in index]
    if missing:
        raise ProviderInvalidQueryError(
            user_msg=f"no band {', '.join(missing)}; bands: {', '.join(info.names)}"
        )
    return [index[p] for p in properties]


def _window(info: RasterInfo, bbox: list[float], subsets: dict[str, list]) -> Window:
    """The pixel window of a lon/lat bbox and/or x/y subsets, clipped to the raster."""
    west, south, east, north = info.bounds
    if bbox:
        if len(bbox) == 6:
            bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
        west, south, east, north = transform_bounds("EPSG:4326", info.crs, *bbox)
    for axis, (lo, hi) in ((a, subsets[a]) for a in subsets):
        if axis in ("x", "lon", "Lon", "longitude"):
            west, east = max(west, lo), min(east, hi)
        elif axis in ("y", "lat", "Lat", "latitude"):
            south, north = max(south, lo), min(north, hi)
    window = window_from_bounds(west, south, east, north, info.transform)
    window = (
        window.intersection(Window(0, 0, info.width, info.height))
        if _overlaps(window, info)
        else None
    )
    if window is None or window.width < 1 or window.height < 1:
        raise NothingMatched(user_msg="the requested area does not overlap the raster")
    return window.round_offsets().round_lengths()


def _overlaps(window: Window, info: RasterInfo) -> bool:
    return (
        window.col_off < info.width
        and window.row_off < info.height
        and window.col_off + window.width > 0
        and window.row_off + window.height > 0
    )


def _out_shape(window: Window, scaling: dict[str, str]) -> tuple[int, int]:
    """(height, width) after scale-size=x(W),y(H) or scale-factor=F."""
    height, width = int(window.height), int(window.width)
    if "scale-factor" in scaling:
        try:
            factor = float(scaling["scale-factor"])
        except ValueError:
            raise ProviderInvalidQueryError(user_msg="scale-factor must be a number") from None
        if factor <= 0:
            raise ProviderInvalidQueryError(user_msg="scale-factor must be positive")
        height, width = max(1, round(height / factor)), max(1, round(width / factor))
    if "scale-size" in scaling:
        sizes = {}
        for part in scaling["scale-size"].split(","):
            axis, _, rest = part.partition("(")
            try:
                sizes[axis.strip()] = int(rest.rstrip(")"))
            except ValueError:
                raise ProviderInvalidQueryError(
                    user_msg=f"scale-size {scaling['scale-size']!r} is not axis(n),axis(n)"
                ) from None
        if any(v < 1 for v in sizes.values()):
            raise ProviderInvalidQueryError(user_msg="scale-size values must be positive")
        width = sizes.get("x", sizes.get("Lon", width))
        height = sizes.get("y", sizes.get("Lat", height))
    return height, width


def read_window(
    path: str, bands: list[int], window: Window, out_shape: tuple[int, int]
) -> tuple[np.ndarray, Any]:
    """Read bands of a window resampled to out_shape; overviews serve small outputs."""
    if out_shape[0] * out_shape[1] > MAX_PIXELS:
        raise ProviderRequestEntityTooLargeError(
            user_msg=f"{out_shape[1]}x{out_shape[0]} pixels is over the limit of "
            f"{MAX_PIXELS} per band: narrow the bbox or use scale-size"
        )
    with rasterio.open(path) as src:
        resampling = Resampling.average if out_shape[0] < window.height else Resampling.nearest
        data = src.read(
            bands,
            window=window,
            out_shape=(len(bands), *out_shape),
            resampling=resampling,
            masked=True,
        )
        transform = src.window_transform(window) * rasterio.Affine.scale(
            window.width / out_shape[1], window.height / out_shape[0]
        )
    return data, transform


class ShikongCoverageProvider(BaseProvider):
    """Coverages of a shikong raster layer (COG asset of the current version)."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.info = raster_info(self.data)
        self.axes = ["x", "y", "Lon", "Lat"]  # Lon/Lat: the domain set's axis labels
        self._fields = {
            name: {"type": "number", "title": name, "x-ogc-unit": unit or "1"}
            for name, unit in zip(self.info.names, self.info.units, strict=True)
        }
        res = self.info.transform
        self._coverage_properties = {
            "width": self.info.width,
            "height": self.info.height,
            "resx": abs(res.a),
            "resy": abs(res.e),
            "bbox": list(self.info.bounds_4490),
        }

    def get_fields(self) -> dict[str, Any]:
        return self._fields

    def query(
        self,
        properties: list[str] | None = None,
        subsets: dict | None = None,
        bbox: list | None = None,
        datetime_: str | None = None,
        format_: str = "json",
        **kwargs: Any,
    ) -> Any:
        bands = _bands(self.info, properties)
        window = _window(self.info, bbox or [], subsets or {})
        out_shape = _out_shape(window, SCALING.get() or {})
        data, transform = read_window(self.data, bands, window, out_shape)
        if format_ in ("json", "covjson", "CoverageJSON"):
            return self._coveragejson(data, transform, [self.info.names[b - 1] for b in bands])
        return self._geotiff(data, transform, bands)

    def _geotiff(self, data: np.ma.MaskedArray, transform: Any, bands: list[int]) -> bytes:
        nodata = self.info.nodata
        fill = nodata if nodata is not None else (np.nan if data.dtype.kind == "f" else 0)
        with MemoryFile() as memfile:
            with memfile.open(
                driver="GTiff",
                width=data.shape[2],
                height=data.shape[1],
                count=data.shape[0],
                dtype=data.dtype,
                crs=self.info.crs,
                transform=transform,
                nodata=fill,
                compress="deflate",
                tiled=data.shape[1] >= 256 and data.shape[2] >= 256,
            ) as dst:
                dst.write(data.filled(fill))
                for i, b in enumerate(bands, start=1):
                    dst.set_band_description(i, self.info.names[b - 1])
            return memfile.read()

    def _coveragejson(
        self, data: np.ma.MaskedArray, transform: Any, names: list[str]
    ) -> dict[str, Any]:
        height, width = data.shape[1:]
        x0 = transform.c + transform.a / 2
        y0 = transform.f + transform.e / 2
        epsg = self.info.crs.to_epsg()
        crs_uri = (
            f"http://www.opengis.net/def/crs/EPSG/0/{epsg}" if epsg else self.info.crs.to_wkt()
        )
        ranges, parameters = {}, {}
        for i, name in enumerate(names):
            values = data[i].astype("float64").filled(np.nan).ravel()
            ranges[name] = {
                "type": "NdArray",
                "dataType": "float",
                "axisNames": ["y", "x"],
                "shape": [height, width],
                "values": [None if np.isnan(v) else float(v) for v in values],
            }
            unit = self._fields[name]["x-ogc-unit"]
            parameters[name] = {
                "type": "Parameter",
                "description": {"en": name},
                "unit": {"symbol": unit},
                "observedProperty": {"label": {"en": name}},
            }
        return {
            "type": "Coverage",
            "domain": {
                "type": "Domain",
                "domainType": "Grid",
                "axes": {
                    "x": {"start": x0, "stop": x0 + transform.a * (width - 1), "num": width},
                    "y": {"start": y0, "stop": y0 + transform.e * (height - 1), "num": height},
                },
                "referencing": [
                    {
                        "coordinates": ["x", "y"],
                        "system": {
                            "type": "GeographicCRS"
                            if self.info.crs.is_geographic
                            else "ProjectedCRS",
                            "id": crs_uri,
                        },
                    }
                ],
            },
            "parameters": parameters,
            "ranges": ranges,
        }


# OGC data type names of the range type (GDAL's OGCAPI driver maps them to its types)
OGC_TYPES = {
    "uint8": "ogcType:unsignedByte",
    "int8": "ogcType:signedByte",
    "uint16": "ogcType:unsignedShort",
    "int16": "ogcType:signedShort",
    "uint32": "ogcType:unsignedInt",
    "int32": "ogcType:signedInt",
    "float32": "ogcType:float32",
    "float64": "ogcType:float64",
}


def domainset(info: RasterInfo) -> dict[str, Any]:
    """The coverage's grid as an OGC API Coverages domain set (CIS 1.1 JSON).

    Axes in EPSG:4490's own order (latitude first), as the CRS defines them; subsets
    name them Lat and Lon (or y and x).
    """
    west, south, east, north = info.bounds_4490
    res = info.transform
    return {
        "type": "DomainSet",
        "generalGrid": {
            "type": "GeneralGridCoverage",
            "srsName": "http://www.opengis.net/def/crs/EPSG/0/4490",
            "axisLabels": ["Lat", "Lon"],
            "axis": [
                {
                    "type": "RegularAxis",
                    "axisLabel": "Lat",
                    "lowerBound": south,
                    "upperBound": north,
                    "uomLabel": "deg",
                    "resolution": abs(res.e),
                },
                {
                    "type": "RegularAxis",
                    "axisLabel": "Lon",
                    "lowerBound": west,
                    "upperBound": east,
                    "uomLabel": "deg",
                    "resolution": abs(res.a),
                },
            ],
            "gridLimits": {
                "type": "GridLimits",
                "srsName": "http://www.opengis.net/def/crs/OGC/0/Index2D",
                "axisLabels": ["j", "i"],
                "axis": [
                    {
                        "type": "IndexAxis",
                        "axisLabel": "j",
                        "lowerBound": 0,
                        "upperBound": info.height - 1,
                    },
                    {
                        "type": "IndexAxis",
                        "axisLabel": "i",
                        "lowerBound": 0,
                        "upperBound": info.width - 1,
                    },
                ],
            },
        },
    }


def rangetype(info: RasterInfo) -> dict[str, Any]:
    """The coverage's bands as an OGC API Coverages range type (SWE Common DataRecord)."""
    fields = []
    for name, unit, dtype in zip(info.names, info.units, info.dtypes, strict=True):
        field: dict[str, Any] = {
            "type": "Quantity",
            "name": name,
            "definition": OGC_TYPES.get(dtype, dtype),
            "uom": {"type": "UnitReference", "code": unit or "1"},
        }
        if info.nodata is not None:
            field["nilValues"] = [{"value": info.nodata, "reason": "nodata"}]
        fields.append(field)
    return {"type": "DataRecord", "field": fields}
