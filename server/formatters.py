"""Output formats pygeoapi does not have: EDR answers as GeoJSON (``f=GeoJSON``)."""

from __future__ import annotations

from typing import Any

import orjson
from pygeoapi.formatter.base import BaseFormatter
from shikong.catalog.extension import ShikongExtension


def coveragejson_to_geojson(data: dict[str, Any]) -> dict[str, Any]:
    """Point series (one coverage or a collection) as one point feature per time step."""
    if data.get("type") == "FeatureCollection":
        return data
    coverages = data.get("coverages", [data])
    features = []
    for cov in coverages:
        axes = cov["domain"]["axes"]
        x, y = axes["x"]["values"][0], axes["y"]["values"][0]
        for i, t in enumerate(axes["t"]["values"]):
            props: dict[str, Any] = {"time": t}
            sensor = ShikongExtension.ext(cov).sensor
            if sensor is not None:
                props["sensor_id"] = sensor
            for name, rng in cov["ranges"].items():
                props[name] = rng["values"][i]
            features.append(
                {
                    "type": "Feature",
                    "properties": props,
                    "geometry": {"type": "Point", "coordinates": [x, y]},
                }
            )
    return {"type": "FeatureCollection", "features": features}


class GeoJSONFormatter(BaseFormatter):
    """``f=GeoJSON`` for EDR queries."""

    def __init__(self, formatter_def: dict[str, Any]) -> None:
        super().__init__(formatter_def)
        self.name = "GeoJSON"  # pygeoapi checks f= against the lower-cased name
        self.f = "geojson"  # ... and picks the formatter whose f equals it exactly
        self.mimetype = "application/geo+json"
        self.extension = "geojson"

    def write(self, options: dict | None = None, data: dict | None = None) -> bytes:
        return orjson.dumps(coveragejson_to_geojson(data or {}))
