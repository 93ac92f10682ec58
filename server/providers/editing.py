"""Transactions on editable layers: each accepted edit is a new version of the layer.

An edit reads the current version, changes one feature and ingests the result through
the catalog (atomic asset, one index commit), under the catalog's writer lock so two
edits never both start from the same version. The edited GeoParquet is kept under
``edits/`` as the new version's source: who changed what stays traceable.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderItemNotFoundError
from shapely.geometry import shape
from shikong.catalog import Catalog


def parse_feature(payload: bytes | str | dict) -> dict[str, Any]:
    """A GeoJSON Feature with a valid geometry, or a 400 naming what is wrong."""
    try:
        feature = payload if isinstance(payload, dict) else json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProviderInvalidQueryError(user_msg=f"body is not JSON: {exc}") from None
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise ProviderInvalidQueryError(user_msg="body must be a GeoJSON Feature")
    try:
        geometry = shape(feature["geometry"]) if feature.get("geometry") else None
    except Exception as exc:
        raise ProviderInvalidQueryError(user_msg=f"geometry is not GeoJSON: {exc}") from None
    if geometry is not None and not geometry.is_valid:
        raise ProviderInvalidQueryError(
            user_msg=f"geometry is invalid: {shapely.is_valid_reason(geometry)}"
        )
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise ProviderInvalidQueryError(user_msg="properties must be an object")
    if geometry is not None:
        geometry = shapely.orient_polygons(geometry, exterior_cw=False)  # RFC 7946
    return {"id": feature.get("id"), "geometry": geometry, "properties": props}


class LayerEditor:
    """Read-modify-write of one layer through the catalog."""

    def __init__(self, data_root: str, collection_id: str, id_field: str) -> None:
        self.catalog = Catalog(Path(data_root))
        self.collection_id = collection_id
        self.id_field = id_field

    def _commit(self, frame: gpd.GeoDataFrame, what: str) -> None:
        layer = self.catalog.layer(self.collection_id)
        stamp = datetime.now(UTC)
        folder = self.catalog.paths.root / "edits" / self.collection_id
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
            raise ProviderItemNotFoundError(user_msg=f"no feature {identifier!r}")
        return int(matches.to_numpy().nonzero()[0][0])

    def _check_fields(self, frame: gpd.GeoDataFrame, props: dict[str, Any]) -> None:
        unknown = sorted(set(props) - set(frame.columns))
        if unknown:
            raise ProviderInvalidQueryError(user_msg=f"unknown properties {', '.join(unknown)}")

    def create(self, payload: bytes) -> Any:
        feature = parse_feature(payload)
        with self.catalog.writing():
            frame = self._current()
            self._check_fields(frame, feature["properties"])
            given = feature["properties"].get(self.id_field, feature["id"])
            if given is None:
                numeric = frame[self.id_field].dtype.kind in "iu"
                if not numeric:
                    raise ProviderInvalidQueryError(
                        user_msg=f"give the new feature an id ({self.id_field})"
                    )
                given = int(frame[self.id_field].max()) + 1 if len(frame) else 0
            elif (frame[self.id_field].astype(str) == str(given)).any():
                raise ProviderInvalidQueryError(user_msg=f"feature {given!r} exists already")
            row = {**feature["properties"], self.id_field: given}
            new = gpd.GeoDataFrame([row], geometry=[feature["geometry"]], crs=frame.crs)
            frame = gpd.GeoDataFrame(
                __import__("pandas").concat([frame, new], ignore_index=True), crs=frame.crs
            )
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
