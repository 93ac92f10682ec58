"""Fired alerts as an OGC API Features collection (points at their sensors)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from pygeoapi.crs import crs_transform
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from shikong.catalog import Catalog
from shikong.catalog.live import LiveIngest

FIELDS = {
    "rule": "string",
    "layer": "string",
    "sensor_id": "string",
    "parameter": "string",
    "time": "string",
    "value": "number",
    "threshold": "number",
    "message": "string",
}


@lru_cache(maxsize=8)
def live_for(data_root: str) -> LiveIngest:
    """The sensor directory of a data directory (it reloads when the catalog moves)."""
    catalog = Catalog(Path(data_root))
    return LiveIngest(catalog.store, catalog.observations)


class ShikongAlertsProvider(BaseProvider):
    """Alerts from the observation store, newest first."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.live = live_for(self.data)
        self._fields = {k: {"type": v} for k, v in FIELDS.items()}
        # the caller's view: alerts of sensors layers it may not see are absent
        self.visible = set(provider_def.get("visible_layers", ()))

    def _alerts(self) -> pd.DataFrame:
        frame = self.live.observations.alerts(limit=1_000_000)
        return frame[frame["layer"].isin(self.visible)]

    def get_fields(self) -> dict[str, Any]:
        return self._fields

    def _features(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        sensors = self.live.sensors()
        out = []
        for row in frame.itertuples(index=False):
            sensor = sensors.get(row.sensor_id)
            point = None
            if sensor is not None:
                lon, lat = sensor.attributes.get("lon"), sensor.attributes.get("lat")
                if lon is not None and lat is not None:
                    point = {"type": "Point", "coordinates": [float(lon), float(lat)]}
            props = {k: getattr(row, k) for k in FIELDS}
            props["time"] = row.time.strftime("%Y-%m-%dT%H:%M:%SZ")
            out.append(
                {"type": "Feature", "id": int(row.id), "geometry": point, "properties": props}
            )
        return out

    @crs_transform
    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list | None = None,
        datetime_: str | None = None,
        properties: list | None = None,
        filterq: Any = None,
        skip_geometry: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        if filterq is not None:
            raise ProviderInvalidQueryError(
                user_msg="CQL2 filters are not supported on alerts; use property=value and datetime"
            )
        frame = self._alerts()
        if datetime_:
            start, _, end = datetime_.partition("/")
            try:
                if start and start != "..":
                    frame = frame[frame.time >= pd.Timestamp(start)]
                if end and end != "..":
                    frame = frame[frame.time <= pd.Timestamp(end)]
                if not end and "/" not in datetime_:
                    frame = frame[frame.time == pd.Timestamp(start)]
            except ValueError:
                raise ProviderInvalidQueryError(
                    user_msg=f"datetime {datetime_!r} is not RFC 3339"
                ) from None
        for name, value in properties or []:
            frame = frame[frame[name].astype(str) == str(value)]
        features = self._features(frame)
        if bbox:
            x0, y0, x1, y1 = bbox[0], bbox[1], bbox[-3 if len(bbox) == 6 else 2], bbox[-1]
            features = [
                f
                for f in features
                if f["geometry"]
                and x0 <= f["geometry"]["coordinates"][0] <= x1
                and y0 <= f["geometry"]["coordinates"][1] <= y1
            ]
        matched = len(features)
        page = [] if resulttype == "hits" else features[offset : offset + limit]
        if skip_geometry:
            for f in page:
                f["geometry"] = None
        return {
            "type": "FeatureCollection",
            "features": page,
            "numberMatched": matched,
            "numberReturned": len(page),
        }

    @crs_transform
    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        frame = self._alerts()
        match = frame[frame.id.astype(str) == str(identifier)]
        if match.empty:
            raise ProviderItemNotFoundError(user_msg=f"no alert {identifier!r}")
        return self._features(match)[0]
