"""Edits of editable layers, with the catalog's other write operations: each accepted
edit is a new version of the layer.

An edit reads the current version, changes one feature and ingests the result through
the catalog (atomic asset, one index commit), under the catalog's writer lock so two
edits never both start from the same version. The edited GeoParquet is kept under
``edits/`` as the new version's source: who changed what stays traceable. The server's
Features transactions call :class:`LayerEditor`; its errors are :class:`InputError`
(400) and :class:`FeatureNotFound` (404).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry import shape
from shikong.spatial.errors import InputError

from .catalog import Catalog


class FeatureNotFound(InputError):
    """No feature with that id in the layer's current version."""


def parse_feature(payload: bytes | str | dict) -> dict[str, Any]:
    """A GeoJSON Feature with a valid geometry, or a 400 naming what is wrong."""
    try:
        feature = payload if isinstance(payload, dict) else json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("feature", f"body is not JSON: {exc}") from None
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise InputError("feature", "body must be a GeoJSON Feature")
    try:
        geometry = shape(feature["geometry"]) if feature.get("geometry") else None
    except Exception as exc:
        raise InputError("feature", f"geometry is not GeoJSON: {exc}") from None
    if geometry is not None and not geometry.is_valid:
        raise InputError("feature", f"geometry is invalid: {shapely.is_valid_reason(geometry)}")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise InputError("feature", "properties must be an object")
    if geometry is not None:
        geometry = shapely.orient_polygons(geometry, exterior_cw=False)  # RFC 7946
    return {"id": feature.get("id"), "geometry": geometry, "properties": props}


class LayerEditor:
    """Read-modify-write of one layer through the catalog."""

    def __init__(self, catalog: Catalog, collection_id: str, id_field: str) -> None:
        self.catalog = catalog
        self.collection_id = collection_id
        self.id_field = id_field

    def _commit(self, frame: gpd.GeoDataFrame, what: str) -> None:
        layer = self.catalog.layer(self.collection_id)
        stamp = datetime.now(UTC)
        folder = self.catalog.paths.edits(self.collection_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stamp.strftime('%Y%m%dT%H%M%S%fZ')}-{what}.parquet"
        frame.to_parquet(path)
        self.catalog.ingest(
            path,
            department=layer.department,
            layer=layer.name,
            id_field=self.id_field,
            valid_from=stamp,
        )

    def _current(self) -> gpd.GeoDataFrame:
        return self.catalog.layer(self.collection_id).to_geodataframe()

    def _row(self, frame: gpd.GeoDataFrame, identifier: Any) -> int:
        column = frame[self.id_field]
        matches = column.astype(str) == str(identifier)
        if not matches.any():
            raise FeatureNotFound("feature", f"no feature {identifier!r}")
        return int(matches.to_numpy().nonzero()[0][0])

    def _check_fields(self, frame: gpd.GeoDataFrame, props: dict[str, Any]) -> None:
        unknown = sorted(set(props) - set(frame.columns))
        if unknown:
            raise InputError("feature", f"unknown properties {', '.join(unknown)}")

    def create(self, payload: bytes) -> Any:
        feature = parse_feature(payload)
        with self.catalog.writing():
            frame = self._current()
            self._check_fields(frame, feature["properties"])
            given = feature["properties"].get(self.id_field, feature["id"])
            if given is None:
                numeric = frame[self.id_field].dtype.kind in "iu"
                if not numeric:
                    raise InputError("feature", f"give the new feature an id ({self.id_field})")
                given = int(frame[self.id_field].max()) + 1 if len(frame) else 0
            elif (frame[self.id_field].astype(str) == str(given)).any():
                raise InputError("feature", f"feature {given!r} exists already")
            row = {**feature["properties"], self.id_field: given}
            new = gpd.GeoDataFrame([row], geometry=[feature["geometry"]], crs=frame.crs)
            frame = gpd.GeoDataFrame(pd.concat([frame, new], ignore_index=True), crs=frame.crs)
            frame[self.id_field] = frame[self.id_field].astype(
                type(given) if not isinstance(given, str) else str
            )
            self._commit(frame, "create")
        return given

    def update(self, identifier: Any, payload: bytes) -> bool:
        feature = parse_feature(payload)
        with self.catalog.writing():
            frame = self._current()
            self._check_fields(frame, feature["properties"])
            pos = self._row(frame, identifier)
            for key, value in feature["properties"].items():
                if key != self.id_field:
                    frame.loc[frame.index[pos], key] = value
            if feature["geometry"] is not None:
                frame.loc[frame.index[pos], frame.geometry.name] = feature["geometry"]
            self._commit(frame, "update")
        return True

    def delete(self, identifier: Any) -> bool:
        with self.catalog.writing():
            frame = self._current()
            pos = self._row(frame, identifier)
            frame = frame.drop(index=frame.index[pos])
            self._commit(frame, "delete")
        return True
