"""OGC API EDR over the observation store: sensors' readings as CoverageJSON or GeoJSON.

Position, radius, area and cube queries select sensors by place; locations lists the
sensors and returns one sensor's series. Without ``datetime`` a query returns the last
24 hours before the newest reading of the layer, so a client polling a live layer gets
what just arrived without asking for months of history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pygeoapi.provider.base import (
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderRequestEntityTooLargeError,
)
from pygeoapi.provider.base_edr import BaseEDRProvider
from pyproj import Geod
from shikong.catalog.extension import Field
from shikong.catalog.observation_store import ReadingStore
from shikong.catalog.opened import open_layer
from shikong.catalog.stores import observation_store_at
from shikong.spatial.errors import InputError
from shikong.spatial.temporal import parse_datetime

from .nothing import NothingMatched

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
POSITION_TOLERANCE_M = 1000.0
GEOD = Geod(ellps="GRS80")  # the CGCS2000 ellipsoid
DEFAULT_WINDOW = timedelta(hours=24)
MAX_VALUES = 1_000_000
METRES_PER_DEGREE = 111_320.0
UNITS_TO_METRES = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "ft": 0.3048}


@lru_cache(maxsize=16)
def store(path: str) -> ReadingStore:
    """One store object per process: it keeps a connection per thread (the readings in
    PostgreSQL when the app bound the data directory to a database)."""
    return observation_store_at(path)


def _when(text: str) -> pd.Timestamp:
    """One instant of a query (the start of a bare date's day), via the one parser."""
    return _window_of(text)[0]


def _window_of(text: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """A ``datetime`` as UTC timestamps, ends inclusive (a bare date is its whole day)."""
    try:
        window = parse_datetime(text)
    except InputError as exc:
        raise ProviderInvalidQueryError(user_msg=str(exc)) from None
    return tuple(None if t is None else pd.Timestamp(t) for t in (window.start, window.end))


class ShikongEDRProvider(BaseEDRProvider):
    """Readings of one sensors layer from the observation store."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.store = store(self.data)
        self.layer_id = provider_def["store_layer"]
        self.sensors = open_layer(provider_def["sensors_path"], "sensor_id")
        units = provider_def.get("parameters", {"value": ""})
        self._fields = {
            name: {"type": "number", "title": name, "x-ogc-unit": unit or "1"}
            for name, unit in units.items()
        }

    def get_fields(self) -> dict[str, Any]:
        return self._fields

    # -- query types -----------------------------------------------------------------
    def position(self, **kwargs: Any) -> dict[str, Any]:
        point = kwargs.get("wkt")
        if point is None or point.geom_type != "Point":
            raise ProviderInvalidQueryError(user_msg="position needs coords=POINT(lon lat)")
        rows = self._nearest(point, POSITION_TOLERANCE_M)
        if rows.size == 0:
            raise NothingMatched(user_msg=self._nothing_near(point))
        return self._answer(rows, **kwargs)

    def radius(self, **kwargs: Any) -> dict[str, Any]:
        point = kwargs.get("wkt")
        if point is None or point.geom_type != "Point":
            raise ProviderInvalidQueryError(user_msg="radius needs coords=POINT(lon lat)")
        try:
            distance = float(kwargs.get("within") or "")
        except ValueError:
            raise ProviderInvalidQueryError(user_msg="radius needs within=<distance>") from None
        units = (kwargs.get("within_units") or "km").lower()
        if units not in UNITS_TO_METRES:
            raise ProviderInvalidQueryError(
                user_msg=f"within-units {units!r} is not one of {', '.join(UNITS_TO_METRES)}"
            )
        metres = distance * UNITS_TO_METRES[units]
        if not (np.isfinite(metres) and metres > 0):  # a negative buffer selects nothing
            raise ProviderInvalidQueryError(
                user_msg=f"within={kwargs.get('within')} is not a positive, finite distance"
            )
        rows = self._within_distance(point, metres)
        return self._answer(rows, **kwargs)

    def area(self, **kwargs: Any) -> dict[str, Any]:
        polygon = kwargs.get("wkt")
        if polygon is None or polygon.geom_type not in ("Polygon", "MultiPolygon"):
            raise ProviderInvalidQueryError(user_msg="area needs coords=POLYGON((...))")
        return self._answer(self._inside(polygon), **kwargs)

    def cube(self, **kwargs: Any) -> dict[str, Any]:
        bbox = kwargs.get("bbox") or []
        if len(bbox) == 6:
            bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
        if len(bbox) != 4:
            raise ProviderInvalidQueryError(user_msg="cube needs bbox=minx,miny,maxx,maxy")
        return self._answer(self._inside(shapely.box(*bbox)), **kwargs)

    def locations(self, **kwargs: Any) -> dict[str, Any]:
        location = kwargs.get("location_id")
        if location is None:
            return self._sensor_features(np.arange(self.sensors.count))
        row = self.sensors.row_of_id.get(location)
        if row is None:
            raise ProviderItemNotFoundError(user_msg=f"no sensor {location!r} in this layer")
        return self._answer(np.array([row]), **kwargs)

    # -- selection -------------------------------------------------------------------
    def _points(self, rows: np.ndarray) -> np.ndarray:
        return self.sensors.geometries(rows)

    def _inside(self, geometry: Any) -> np.ndarray:
        rows = np.sort(self.sensors.tree.query(geometry))
        if rows.size:
            rows = rows[shapely.intersects(geometry, self._points(rows))]
        return rows

    def _within_distance(self, point: Any, metres: float) -> np.ndarray:
        degrees = metres / (METRES_PER_DEGREE * max(np.cos(np.radians(point.y)), 0.1))
        rows = self._inside(point.buffer(degrees))
        return rows

    def _nearest(self, point: Any, metres: float) -> np.ndarray:
        rows = self._within_distance(point, metres)
        if rows.size == 0:
            return rows
        distance = shapely.distance(point, self._points(rows))
        return rows[distance <= distance.min() + 1e-12]

    def _window(self, datetime_: str | None) -> tuple[pd.Timestamp, pd.Timestamp]:
        if datetime_:
            return _window_of(datetime_)
        last = self.store.last_time(self.layer_id)  # not extent(): that counts every row
        last = last or pd.Timestamp(datetime.now(UTC))
        return last - DEFAULT_WINDOW, last

    def _nothing_near(self, point: Any) -> str:
        """Why a position matched no sensor, naming the nearest one and its distance."""
        where = f"POINT({point.x:g} {point.y:g})"
        if self.sensors.count == 0:
            return f"{self.layer_id} has no sensors"
        points = self._points(np.arange(self.sensors.count))
        xs, ys = shapely.get_x(points), shapely.get_y(points)
        _, _, metres = GEOD.inv(np.full(len(xs), point.x), np.full(len(ys), point.y), xs, ys)
        nearest = int(np.nanargmin(metres))
        name = self.sensors.table.column("sensor_id")[nearest].as_py()
        return (
            f"no sensor of {self.layer_id} within {POSITION_TOLERANCE_M:,.0f} m of {where}; "
            f"the nearest is {name}, {metres[nearest] / 1000:,.2f} km away "
            f"(…/locations lists every sensor)"
        )

    def _answer(self, rows: np.ndarray, **kwargs: Any) -> dict[str, Any]:
        if rows.size == 0:
            raise NothingMatched(user_msg=f"no sensor of {self.layer_id} in the requested area")
        wanted = kwargs.get("select_properties") or list(self._fields)
        unknown = [p for p in wanted if p not in self._fields]
        if unknown:
            raise ProviderInvalidQueryError(
                user_msg=f"unknown parameter-name "
                f"{', '.join(unknown)}; parameters: "
                f"{', '.join(self._fields)}"
            )
        start, end = self._window(kwargs.get("datetime_"))
        ids = self.sensors.table.column("sensor_id").take(rows).to_pylist()
        readings = self.store.window(self.layer_id, [str(i) for i in ids], start, end, wanted)
        if len(readings) > MAX_VALUES:
            raise ProviderRequestEntityTooLargeError(
                user_msg=f"{len(readings)} values: narrow the datetime or the area"
            )
        if readings.empty:
            raise NothingMatched(user_msg=self._no_readings(ids, start, end))
        return self._coveragejson(ids, self._points(rows), readings, wanted)

    def _no_readings(self, ids: list, start: Any, end: Any) -> str:
        window = f"{start.isoformat() if start is not None else '..'}/" + (
            end.isoformat() if end is not None else ".."
        )
        chosen = ", ".join(str(i) for i in ids[:5]) + (" …" if len(ids) > 5 else "")
        last = self.store.last_time(self.layer_id)
        newest = f"; the newest reading of {self.layer_id} is at {last.isoformat()}" if last else ""
        return f"no readings of {chosen} in {window}{newest}"

    # -- encodings -------------------------------------------------------------------
    def _parameters(self, names: list[str]) -> dict[str, Any]:
        return {
            n: {
                "type": "Parameter",
                "description": {"en": n},
                "unit": {"symbol": self._fields[n]["x-ogc-unit"]},
                "observedProperty": {"id": n, "label": {"en": n}},
            }
            for n in names
        }

    def _coveragejson(
        self, ids: list, points: np.ndarray, readings: pd.DataFrame, names: list[str]
    ) -> dict[str, Any]:
        coverages = []
        by_sensor = _split_by_sensor(readings)
        for sensor_id, point in zip(ids, points, strict=True):
            found = by_sensor.get(str(sensor_id))
            if found is None:
                continue
            times, columns = _time_by_parameter(*found, names)
            ranges = {
                name: {
                    "type": "NdArray",
                    "dataType": "float",
                    "axisNames": ["t"],
                    "shape": [len(times)],
                    "values": [None if v != v else v for v in columns[name].tolist()],
                }
                for name in names
            }
            coverages.append(
                {
                    "type": "Coverage",
                    "domain": {
                        "type": "Domain",
                        "domainType": "PointSeries",
                        "axes": {
                            "x": {"values": [point.x]},
                            "y": {"values": [point.y]},
                            "t": {"values": times},
                        },
                    },
                    "ranges": ranges,
                    Field.SENSOR: str(sensor_id),
                }
            )
        if not coverages:
            raise NothingMatched(user_msg="no readings in the requested time")
        referencing = [
            {"coordinates": ["x", "y"], "system": {"type": "GeographicCRS", "id": CRS84}},
            {"coordinates": ["t"], "system": {"type": "TemporalRS", "calendar": "Gregorian"}},
        ]
        parameters = self._parameters(names)
        if len(coverages) == 1:
            cov = coverages[0]
            cov["domain"]["referencing"] = referencing
            cov["parameters"] = parameters
            return cov
        return {
            "type": "CoverageCollection",
            "domainType": "PointSeries",
            "parameters": parameters,
            "referencing": referencing,
            "coverages": coverages,
        }

    def _sensor_features(self, rows: np.ndarray) -> dict[str, Any]:
        table = self.sensors.table.take(rows)
        props = table.drop_columns([self.sensors.geometry_column]).to_pylist()
        features = [
            {
                "type": "Feature",
                "id": p["sensor_id"],
                "geometry": g.__geo_interface__,
                "properties": {k: v for k, v in p.items() if not hasattr(v, "isoformat")},
            }
            for p, g in zip(props, self._points(rows), strict=True)
        ]
        return {"type": "FeatureCollection", "features": features}


def _split_by_sensor(
    readings: pd.DataFrame,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(epoch-ms times, parameters, values) per sensor of the store's window, which comes
    sorted by sensor (pandas' groupby and pivot_table cost more than the query itself)."""
    if not len(readings):
        return {}
    sensor = readings["sensor_id"].to_numpy(dtype=object)
    t_ms = readings["time"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    parameter = readings["parameter"].to_numpy(dtype=object)
    value = readings["value"].to_numpy(dtype=float)
    starts = np.flatnonzero(np.r_[True, sensor[1:] != sensor[:-1]])
    ends = np.r_[starts[1:], len(sensor)]
    return {
        str(sensor[a]): (t_ms[a:b], parameter[a:b], value[a:b])
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
    }


def _time_by_parameter(
    t_ms: np.ndarray, parameter: np.ndarray, value: np.ndarray, names: list[str]
) -> tuple[list[str], dict[str, np.ndarray]]:
    """RFC 3339 times (the union over parameters) and one value column per parameter
    aligned to them, NaN where a parameter has no reading at that time."""
    times, at = np.unique(t_ms, return_inverse=True)
    columns = {}
    for name in names:
        column = np.full(times.size, np.nan)
        picked = parameter == name
        column[at[picked]] = value[picked]
        columns[name] = column
    text = np.datetime_as_string(times.astype("datetime64[ms]").astype("datetime64[s]"))
    return [f"{t}Z" for t in text.tolist()], columns
