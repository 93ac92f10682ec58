"""What a reader did to a source: shown by `shikong check`, stored with catalog items."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import geopandas as gpd


@dataclass
class ReadReport:
    """Facts found in a source and every change made while reading it."""

    source: str
    format: str
    encoding: str | None = None
    crs: str | None = None  # the source CRS, e.g. "EPSG:4526"
    crs_origin: str | None = None  # where it came from: ".prj", "declared", "detected: ..."
    layer: str | None = None
    delivery: str | None = None  # the folder or .zip the source was chosen from
    layers: list[str] = field(default_factory=list)
    feature_count: int = 0
    geometry_types: dict[str, int] = field(default_factory=dict)
    bbox: tuple[float, float, float, float] | None = None  # EPSG:4490 lon/lat
    repaired: list[tuple[str, str]] = field(default_factory=list)  # (feature, reason)
    actions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class ReadResult(NamedTuple):
    """A GeoDataFrame in EPSG:4490 and the report of how it was read."""

    frame: gpd.GeoDataFrame
    report: ReadReport
