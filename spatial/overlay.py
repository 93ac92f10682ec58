"""Overlay a proposal on a layer and measure what it takes, to the square metre.

A piece counts only if it has area: a proposal that touches a control line along an
edge takes nothing and is not a conflict. Pieces smaller than the sliver tolerance
(digitising noise between layers) are reported but flagged, so rules can ignore them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from .area import Area, ellipsoidal_area_m2, planar_area_m2, zone_for
from .crs import GKZone


@dataclass
class Piece:
    """The part of the proposal inside one feature of a layer."""

    feature_id: Any
    attributes: dict[str, Any]
    geometry: BaseGeometry
    ellipsoidal: Area
    planar: Area
    sliver: bool = False


@dataclass
class Overlay:
    """Everything a proposal takes from one layer."""

    pieces: list[Piece] = field(default_factory=list)

    def kept(self) -> list[Piece]:
        return [p for p in self.pieces if not p.sliver]

    @property
    def ellipsoidal(self) -> Area:
        return Area(sum(p.ellipsoidal.m2 for p in self.kept()))

    @property
    def planar(self) -> Area:
        return Area(sum(p.planar.m2 for p in self.kept()))

    def by(self, attribute: str) -> dict[Any, Area]:
        """Ellipsoidal area per value of an attribute (e.g. the land-use code)."""
        out: dict[Any, float] = {}
        for p in self.kept():
            key = p.attributes.get(attribute)
            out[key] = out.get(key, 0.0) + p.ellipsoidal.m2
        return {k: Area(v) for k, v in out.items()}


def polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Only the areal parts of a geometry (an intersection can add lines and points)."""
    if geom.is_empty or geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def overlay_geometries(
    proposal: BaseGeometry,
    geoms: np.ndarray,
    records: Callable[[np.ndarray], list[dict[str, Any]]],
    *,
    id_field: str | None = None,
    sliver_m2: float = 0.0,
    zone: GKZone | None = None,
) -> Overlay:
    """The core: pieces of a proposal inside candidate geometries.

    ``records(positions)`` gives the attributes of the candidates that produced a piece,
    so a caller holding attributes in Arrow (or a database) converts only those.
    """
    zone = zone or zone_for(proposal)
    result = Overlay()
    if proposal.is_empty or len(geoms) == 0:
        return result
    shapely.prepare(proposal)
    pieces = [polygonal(p) for p in shapely.intersection(proposal, geoms)]
    hits = np.array([i for i, p in enumerate(pieces) if not p.is_empty], dtype=np.int64)
    if hits.size == 0:
        return result  # touching along an edge or at a corner takes no ground
    for position, record in zip(hits, records(hits), strict=True):
        piece = pieces[position]
        ellipsoidal = Area(ellipsoidal_area_m2(piece))
        if ellipsoidal.m2 <= 0:
            continue
        result.pieces.append(
            Piece(
                feature_id=_plain(record.get(id_field)) if id_field else int(position),
                attributes={k: _plain(v) for k, v in record.items()},
                geometry=piece,
                ellipsoidal=ellipsoidal,
                planar=Area(planar_area_m2(piece, zone)),
                sliver=ellipsoidal.m2 < sliver_m2,
            )
        )
    return result


def overlay(
    proposal: BaseGeometry,
    layer: gpd.GeoDataFrame,
    *,
    id_field: str | None = None,
    attributes: list[str] | None = None,
    sliver_m2: float = 0.0,
    zone: GKZone | None = None,
) -> Overlay:
    """Pieces of a proposal (EPSG:4490) inside the features of a layer (EPSG:4490)."""
    if layer.empty or proposal.is_empty:
        return Overlay()
    rows = np.sort(layer.sindex.query(proposal, predicate="intersects"))
    keep = (
        attributes
        if attributes is not None
        else [c for c in layer.columns if c != layer.geometry.name]
    )
    columns = [c for c in keep if c in layer.columns]
    if id_field and id_field not in columns:
        columns.append(id_field)

    def records(positions: np.ndarray) -> list[dict[str, Any]]:
        return layer.iloc[rows[positions]][columns].to_dict("records")

    result = overlay_geometries(
        proposal,
        layer.geometry.values[rows],
        records,
        id_field=id_field,
        sliver_m2=sliver_m2,
        zone=zone,
    )
    if not id_field:
        for piece in result.pieces:
            piece.feature_id = _plain(layer.index[rows[piece.feature_id]])
    return result


def _plain(value: Any) -> Any:
    """numpy scalars and missing values as plain JSON-able Python values."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
