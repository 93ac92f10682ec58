"""The property registry (不动产登记) served from the catalog's ``rer-parcels`` layer.

The layer's current version holds every registration record, historical ones included,
so "as of D" is answered by filtering records (shikong.spatial.registry), not by picking
an older layer version. The records are read once per layer version and kept with their
spatial index: every map click and code lookup reads the same frame. Personal fields are
masked here unless the caller is granted them, so no answer leaves unmasked by accident.
"""

from __future__ import annotations

import threading
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import geopandas as gpd
from shikong.spatial import registry as reg

from .masking import mask_id_number, mask_name, mask_records

if TYPE_CHECKING:
    from .catalog import Catalog

When = str | date | datetime | None


class PropertyRegistry:
    """Parcel queries on a catalog's registry layer, answers as JSON-ready dicts."""

    def __init__(self, catalog: Catalog, layer_id: str = "rer-parcels") -> None:
        self.catalog = catalog
        self.layer_id = layer_id
        self._lock = threading.Lock()
        self._item_id: str | None = None
        self._frame: gpd.GeoDataFrame | None = None

    def frame(self) -> tuple[str, gpd.GeoDataFrame]:
        """(item id, records) of the layer's current version, read once per version.

        The layer is looked up afresh on every call (``Layer.versions`` is cached per Layer
        object, so a kept Layer would never see a new version); the parquet is read only
        when the current item id changed. LayerNotFound propagates (HTTP 404).
        """
        version = self.catalog.layer(self.layer_id).current
        with self._lock:
            if self._frame is None or self._item_id != version.id:
                frame = version.to_geodataframe()
                frame.sindex  # noqa: B018 - build the spatial index once, under the lock
                self._item_id, self._frame = version.id, frame
            return self._item_id, self._frame

    def _answer(
        self,
        item_id: str,
        records: gpd.GeoDataFrame,
        grants_personal_data: bool,
        **query: Any,
    ) -> dict[str, Any]:
        rows = mask_records(reg.records_to_dicts(records), grants_personal_data)
        return {
            "query": {k: _json_value(v) for k, v in query.items()},
            "layer": self.layer_id,
            "layer_version": item_id,
            "personal_data": "full" if grants_personal_data else "masked",
            "count": len(rows),
            "records": rows,
        }

    def at_point(
        self, lon: float, lat: float, as_of: When = None, grants_personal_data: bool = False
    ) -> dict[str, Any]:
        """Records of the parcel(s) covering a lon/lat (two on a shared boundary)."""
        item_id, frame = self.frame()
        found = reg.parcels_at_point(frame, lon, lat, as_of)
        return self._answer(item_id, found, grants_personal_data, lon=lon, lat=lat, as_of=as_of)

    def by_code(
        self, code: str, as_of: When = None, grants_personal_data: bool = False
    ) -> dict[str, Any]:
        """The record(s) of a unit code; InputError if malformed, UnknownUnitCode if unknown."""
        item_id, frame = self.frame()
        found = reg.parcel_by_code(frame, code, as_of)
        return self._answer(item_id, found, grants_personal_data, code=code, as_of=as_of)

    def history(self, code: str, grants_personal_data: bool = False) -> dict[str, Any]:
        """The parcel's lineage: change events by date and every record they involve."""
        item_id, frame = self.frame()
        lineage = reg.parcel_history(frame, code)
        lineage["records"] = mask_records(lineage["records"], grants_personal_data)
        return {
            **lineage,
            "layer": self.layer_id,
            "layer_version": item_id,
            "personal_data": "full" if grants_personal_data else "masked",
        }

    def by_owner(
        self,
        owner_name: str | None = None,
        id_number: str | None = None,
        as_of: When = None,
        grants_personal_data: bool = False,
    ) -> dict[str, Any]:
        """A person's property: a restricted operation the caller must audit.

        The query is echoed masked like the records, so a log of answers does not hold
        the ID number searched for when the caller was not granted personal data.
        """
        item_id, frame = self.frame()
        found = reg.property_by_owner(frame, owner_name, id_number, as_of)
        if not grants_personal_data:
            owner_name, id_number = mask_name(owner_name), mask_id_number(id_number)
        return self._answer(
            item_id,
            found,
            grants_personal_data,
            owner_name=owner_name,
            id_number=id_number,
            as_of=as_of,
        )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
