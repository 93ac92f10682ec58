"""A readings collection as features: one feature per reading, at its sensor's place.

EDR (position, area, locations…) is the way to ask for series; but a collection listed
under /collections answers /items like any other (OGC API Features Part 1), so clients
that page features (GDAL, QGIS, ogctests) see readings too. Paging runs over the same
window as EDR: without ``datetime`` the 24 hours before the newest reading of the layer.
A feature's id is ``sensor~parameter~time`` so one reading can be fetched again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import shapely
from pygeoapi.crs import crs_transform
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderRequestEntityTooLargeError,
)
from shikong.catalog.opened import open_layer

from .edr import DEFAULT_WINDOW, MAX_VALUES, _when, _window_of, store

FIELDS = {
    "sensor_id": {"type": "string"},
    "parameter": {"type": "string"},
    "time": {"type": "string", "format": "date-time"},
    "value": {"type": "number"},
}
SEPARATOR = "~"


def reading_id(sensor: str, parameter: str, time: pd.Timestamp) -> str:
    return SEPARATOR.join((sensor, parameter, time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")))


class ShikongReadingsProvider(BaseProvider):
    """Readings of one sensors layer from the observation store, as GeoJSON features."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.store = store(self.data)
        self.layer_id = provider_def["store_layer"]
        self.sensors = open_layer(provider_def["sensors_path"], "sensor_id")
        self._fields = dict(FIELDS)

    def get_fields(self) -> dict[str, dict[str, str]]:
        return self._fields

    def _window(self, datetime_: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        if datetime_:
            return _window_of(datetime_)
        last = self.store.last_time(self.layer_id)
        return (last - DEFAULT_WINDOW, last) if last is not None else (None, None)

    def _sensors_in(self, bbox: list) -> list[str] | None:
        if not bbox:
            return None
        if len(bbox) == 6:
            bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
        rows = self.sensors.bbox_rows(tuple(float(v) for v in bbox))
        return [str(v) for v in self.sensors.table.column("sensor_id").take(rows).to_pylist()]

    @crs_transform
    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list | None = None,
        datetime_: str | None = None,
        properties: list | None = None,
        sortby: list | None = None,
        select_properties: list | None = None,
        skip_geometry: bool = False,
        q: str | None = None,
        filterq: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        if filterq is not None or q or sortby:
            raise ProviderInvalidQueryError(
                user_msg="readings take sensor_id=, parameter=, bbox and datetime (or EDR "
                "queries); filter, q and sortby are not supported on them"
            )
        sensors = self._sensors_in(bbox or [])
        parameters = None
        for name, value in properties or []:
            if name == "sensor_id":
                sensors = [s for s in (sensors or [value]) if s == value]
            elif name == "parameter":
                parameters = [value]
            else:
                raise ProviderInvalidQueryError(
                    user_msg=f"{name}= is not a filter on readings: use sensor_id=, parameter="
                )
        start, end = self._window(datetime_)
        if sensors == [] or (start is None and end is None and datetime_ is None):
            frame = pd.DataFrame(columns=["sensor_id", "parameter", "time", "value"])
        else:
            frame = self.store.window(self.layer_id, sensors, start, end, parameters)
        if len(frame) > MAX_VALUES:
            raise ProviderRequestEntityTooLargeError(
                user_msg=f"{len(frame)} readings: narrow the datetime or the area"
            )
        matched = len(frame)
        page = frame.iloc[offset : offset + limit] if resulttype != "hits" else frame.iloc[:0]
        features = self._features(page, select_properties or [], skip_geometry)
        return {
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": matched,
            "numberReturned": len(features),
        }

    @crs_transform
    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        parts = str(identifier).split(SEPARATOR)
        if len(parts) != 3:
            raise ProviderItemNotFoundError(
                user_msg=f"no reading {identifier!r}: ids are sensor~parameter~time"
            )
        sensor, parameter, when = parts
        try:
            instant = _when(when)
        except ProviderInvalidQueryError:
            raise ProviderItemNotFoundError(user_msg=f"no reading {identifier!r}") from None
        frame = self.store.window(self.layer_id, [sensor], instant, instant, [parameter])
        if frame.empty:
            raise ProviderItemNotFoundError(user_msg=f"no reading {identifier!r}")
        return self._features(frame.iloc[:1], [], False)[0]

    def _features(
        self, frame: pd.DataFrame, select: list[str], skip_geometry: bool
    ) -> list[dict[str, Any]]:
        if frame.empty:
            return []
        rows = np.array([self.sensors.row_of_id.get(s, -1) for s in frame["sensor_id"]])
        points = np.full(len(rows), None, dtype=object)
        known = rows >= 0
        if known.any():
            points[known] = self.sensors.geometries(rows[known])
        times = pd.to_datetime(frame["time"], utc=True)
        out = []
        for (sensor, parameter, value), time, point in zip(
            frame[["sensor_id", "parameter", "value"]].itertuples(index=False, name=None),
            times,
            points,
            strict=True,
        ):
            props = {
                "sensor_id": sensor,
                "parameter": parameter,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z"),
                "value": None if value != value else float(value),
            }
            if select:
                props = {k: v for k, v in props.items() if k in select}
            geometry = None
            if not skip_geometry and point is not None:
                geometry = shapely.geometry.mapping(point)
            out.append(
                {
                    "type": "Feature",
                    "id": reading_id(sensor, parameter, time),
                    "geometry": geometry,
                    "properties": props,
                }
            )
        return out
