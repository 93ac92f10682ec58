"""A layer (STAC collection) and its versions (items), opened as GeoDataFrame or xarray."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import xarray as xr
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shikong.spatial.errors import InputError
from shikong.spatial.raster import open_raster
from shikong.spatial.temporal import parse_instant

from .asset_store import gdal_path, is_remote, locate, open_zarr, parquet_source
from .extension import ShikongExtension
from .opened import open_layer
from .store import CatalogStore

if TYPE_CHECKING:
    from .observations import ObservationStore


class LayerNotFound(InputError):
    """No collection with that id: the server answers 404."""


@dataclass
class LayerVersion:
    """One version of a layer: a STAC item and its asset."""

    store: CatalogStore
    item: dict[str, Any]

    @property
    def id(self) -> str:
        return self.item["id"]

    @property
    def version(self) -> str:
        return self.item["properties"]["version"]

    @property
    def valid_from(self) -> datetime:
        return ShikongExtension.ext(self.item).valid_from

    @property
    def valid_to(self) -> datetime | None:
        return ShikongExtension.ext(self.item).valid_to

    @property
    def id_field(self) -> str:
        """The column that identifies the version's features."""
        return ShikongExtension.ext(self.item).id_field

    @property
    def footprint(self) -> BaseGeometry | None:
        return shape(self.item["geometry"]) if self.item.get("geometry") else None

    @property
    def asset_location(self) -> Path | str:
        """Where the asset is: a local path, or its ``s3://`` URL (``asset_store``)."""
        return locate(self.store.paths, self.item)

    @property
    def asset_path(self) -> Path | str:
        """What a reader opens: the local path; in object storage a COG's GDAL path
        (``/vsis3/…``, which rasterio opens as it is) and any other asset's URL."""
        where = self.asset_location
        if is_remote(where) and ShikongExtension.ext(self.item).kind == "raster":
            return gdal_path(where)
        return where

    def to_geodataframe(
        self,
        bbox: tuple[float, float, float, float] | None = None,
        columns: list[str] | None = None,
    ) -> gpd.GeoDataFrame:
        """Features (EPSG:4490); with ``bbox`` only the row groups that can match are read."""
        path, filesystem = parquet_source(self.asset_location)
        frame = gpd.read_parquet(path, bbox=bbox, columns=columns, filesystem=filesystem)
        return frame.drop(columns=["bbox"], errors="ignore")

    def features(self, bbox: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
        """Features intersecting a bbox, from the process-wide opened-layer cache.

        For repeated questions on the same layer (analyses, servers): the first call opens
        the layer and builds its index; later calls answer from memory.
        """
        opened = open_layer(self.asset_path, self.id_field)
        return opened.frame(opened.bbox_rows(tuple(bbox)))

    def to_xarray(self, masked: bool = True) -> xr.DataArray | xr.Dataset:
        """Rasters as a lazy DataArray, data cubes as a lazy Dataset.

        ``masked=False`` reads a raster's integer values raw, its nodata in ``rio.nodata``
        (what ``ndvi`` reads fastest).
        """
        kind = ShikongExtension.ext(self.item).kind
        if kind == "raster":
            return open_raster(self.asset_path, masked=masked)
        if kind == "datacube":
            return open_zarr(self.asset_location)
        raise InputError(self.id, f"a {kind} layer has no raster form; use to_geodataframe()")

    def __repr__(self) -> str:
        to = self.valid_to.date() if self.valid_to else "now"
        return f"LayerVersion({self.id}, valid {self.valid_from.date()} → {to})"


class Layer:
    """A department's layer: every version, the current one and time travel."""

    def __init__(
        self,
        store: CatalogStore,
        collection: dict[str, Any],
        observations: Callable[[], ObservationStore],
    ) -> None:
        self.store = store
        self.collection = collection
        self._observations = observations  # opened on first use: most layers have none

    id = property(lambda self: self.collection["id"])
    department = property(lambda self: ShikongExtension.ext(self.collection).department)
    name = property(lambda self: ShikongExtension.ext(self.collection).layer)
    kind = property(lambda self: ShikongExtension.ext(self.collection).kind)
    classification = property(lambda self: ShikongExtension.ext(self.collection).classification)
    title = property(lambda self: self.collection.get("title"))

    @cached_property
    def versions(self) -> list[LayerVersion]:
        """Versions in order of validity."""
        return [LayerVersion(self.store, i) for i in self.store.items_of(self.id)]

    @cached_property
    def current(self) -> LayerVersion:
        """The version valid now (the last by validity): read alone unless :attr:`versions`
        was (a layer may have thousands of versions)."""
        if "versions" in self.__dict__:
            if not self.versions:
                raise InputError(self.id, "the layer has no versions")
            return self.versions[-1]
        found = self.store.item_during(self.id, None, None)
        if found is None:
            raise InputError(self.id, "the layer has no versions")
        return LayerVersion(self.store, found)

    def as_of(self, when: str | date | datetime) -> LayerVersion:
        """The version valid at an instant: valid_from <= when < valid_to."""
        t = parse_instant(when)
        found = self.store.item_at(self.id, t)
        if found is not None:
            return LayerVersion(self.store, found)
        first = self.versions[0].valid_from.date() if self.versions else "never"
        raise InputError(self.id, f"no version was valid on {t.date()} (first valid {first})")

    def version(self, label: str) -> LayerVersion:
        for v in self.versions:
            if v.version == label:
                return v
        raise InputError(
            self.id,
            f"no version {label!r}; versions: {', '.join(v.version for v in self.versions)}",
        )

    def _pick(self, as_of: str | date | datetime | None) -> LayerVersion:
        return self.as_of(as_of) if as_of is not None else self.current

    def to_geodataframe(
        self,
        bbox: tuple[float, float, float, float] | None = None,
        as_of: str | date | datetime | None = None,
        columns: list[str] | None = None,
    ) -> gpd.GeoDataFrame:
        """Features of the current version, or of the version valid at ``as_of``."""
        return self._pick(as_of).to_geodataframe(bbox=bbox, columns=columns)

    def to_xarray(self, as_of: str | date | datetime | None = None) -> xr.DataArray | xr.Dataset:
        """Raster or data cube of the current version (or at ``as_of``); readings as a
        (sensor, time) array."""
        if self.kind in ("sensors", "readings"):
            frame = self.readings()
            return frame.set_index(["sensor_id", "parameter", "time"])["value"].to_xarray()
        return self._pick(as_of).to_xarray()

    def stack(self, versions: list[str] | None = None) -> xr.DataArray:
        """Raster versions stacked on a ``time`` axis (their valid_from), on one grid.

        Versions on another grid are reprojected onto the first one's (nearest for
        integers, bilinear for floats), lazily.
        """
        if self.kind != "raster":
            raise InputError(self.id, f"a {self.kind} layer cannot be stacked")
        chosen = [self.version(v) for v in versions] if versions else self.versions
        arrays = []
        for v in chosen:
            arr = v.to_xarray()
            if arrays and (
                arr.shape != arrays[0].shape
                or arr.rio.transform() != arrays[0].rio.transform()
                or arr.rio.crs != arrays[0].rio.crs
            ):
                from rasterio.enums import Resampling

                method = Resampling.bilinear if arr.dtype.kind == "f" else Resampling.nearest
                arr = arr.rio.reproject_match(arrays[0], resampling=method)
            arrays.append(arr.expand_dims(time=[pd.Timestamp(v.valid_from).tz_localize(None)]))
        return xr.concat(arrays, dim="time")

    @property
    def observations(self) -> ObservationStore:
        """The readings of the catalog this layer belongs to."""
        return self._observations()

    def sensors(self) -> Layer:
        """The sensors layer whose readings this layer shows (itself for a sensors layer)."""
        return find_layer(self.store, self.sensors_layer, self._observations)

    @property
    def sensors_layer(self) -> str:
        if self.kind == "sensors":
            return self.id
        if self.kind == "readings":
            return ShikongExtension.ext(self.current.item).sensor_collection
        raise InputError(self.id, f"a {self.kind} layer has no readings")

    def readings(
        self,
        sensors: list[str] | None = None,
        start: Any = None,
        end: Any = None,
        parameters: list[str] | None = None,
    ) -> pd.DataFrame:
        """Readings of this sensor layer (or of the sensors a readings layer belongs to)."""
        return self.observations.window(
            self.sensors_layer,
            sensors,
            pd.Timestamp(start) if start else None,
            pd.Timestamp(end) if end else None,
            parameters,
        )

    def resample(
        self,
        freq: str = "1h",
        how: str = "mean",
        sensors: list[str] | None = None,
        start: Any = None,
        end: Any = None,
        parameters: list[str] | None = None,
    ) -> pd.DataFrame:
        """Aggregated readings: ``resample("1h")`` hourly means, ``("1D", "max")`` daily max."""
        return self.observations.resample(
            self.sensors_layer,
            sensors,
            pd.Timestamp(start) if start else None,
            pd.Timestamp(end) if end else None,
            freq,
            how,
            parameters,
        )

    def latest(self, sensors: list[str] | None = None) -> pd.DataFrame:
        return self.observations.latest(self.sensors_layer, sensors)

    def __repr__(self) -> str:
        return (
            f"Layer({self.id} {self.title!r}, {self.kind}, {self.classification}, "
            f"versions {[v.version for v in self.versions]})"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{escape(v.version)}</td><td>{v.valid_from.date()}</td>"
            f"<td>{v.valid_to.date() if v.valid_to else '—'}</td></tr>"
            for v in self.versions
        )
        return (
            f"<b>{escape(self.id)}</b> {escape(str(self.title))} · {self.kind} · "
            f"{self.classification}<table><tr><th>version</th><th>valid from</th>"
            f"<th>valid to</th></tr>{rows}</table>"
        )


def find_layer(
    store: CatalogStore, collection_id: str, observations: Callable[[], ObservationStore]
) -> Layer:
    """A layer by collection id; :class:`LayerNotFound` if the store has none."""
    collection = store.collection(collection_id)
    if collection is None:
        raise LayerNotFound("collection", f"no layer {collection_id!r} in the catalog")
    return Layer(store, collection, observations)
