"""OGC API Features over a layer's GeoParquet versions.

The provider is built per request by pygeoapi; everything heavy comes from the
process-wide cache in :mod:`shikong.server.layers`. ``datetime`` picks the version of
the layer valid at that time, so clients time-travel with a standard parameter: the
definition holds the current version only, an older one is asked of the catalog store
(:mod:`.versions`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pygeoapi.crs import crs_transform
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from shikong.catalog import Catalog
from shikong.catalog.editing import FeatureNotFound, LayerEditor
from shikong.catalog.opened import OpenedLayer, open_layer
from shikong.catalog.policy import mask_value
from shikong.spatial.errors import InputError

from .. import cql
from .versions import PublishedVersions


def pick_version(versions: PublishedVersions, datetime_: str | None) -> dict[str, Any]:
    """The version valid at an instant, or the latest valid in an interval (a bare date is
    its whole UTC day: :mod:`shikong.spatial.temporal`); older ones come from the store."""
    return versions.pick(datetime_)


class ShikongFeatureProvider(BaseProvider):
    """Features of a shikong vector layer (GeoParquet asset per version).

    ``mask`` ({field: rule}) is set by the caller's view for personal fields it may not
    see: their values leave masked, and filtering, sorting or text search on them is
    refused, so a caller cannot recover a value by probing with queries.
    """

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.versions = PublishedVersions.of(provider_def)
        self.layer = open_layer(self.versions.current["path"], self.id_field)
        self._fields = self.layer.fields
        self.mask: dict[str, str] = provider_def.get("mask") or {}

    def _refuse_masked(self, names: list[str], how: str) -> None:
        hit = sorted(set(names) & set(self.mask))
        if hit:
            raise ProviderInvalidQueryError(
                user_msg=f"{', '.join(hit)} is personal data; {how} on it needs the "
                "personal-data grant"
            )

    def get_fields(self) -> dict[str, dict[str, str]]:
        return self._fields

    # -- transactions (layers marked editable) ---------------------------------------
    def _editor(self) -> LayerEditor:
        catalog = Catalog(Path(self.options["data_root"]))
        return LayerEditor(catalog, self.options["collection"], self.id_field)

    def create(self, item: bytes) -> Any:
        return _translated(self._editor().create, item)

    def update(self, identifier: Any, item: bytes) -> bool:
        return _translated(self._editor().update, identifier, item)

    def delete(self, identifier: Any) -> bool:
        return _translated(self._editor().delete, identifier)

    def _layer_at(self, datetime_: str | None) -> OpenedLayer:
        version = pick_version(self.versions, datetime_)
        return open_layer(version["path"], self.id_field)

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
        crs_transform_spec: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        layer = self._layer_at(datetime_)
        if self.mask:
            self._refuse_masked([name for name, _ in properties or []], "filtering")
            self._refuse_masked([s["property"] for s in sortby or []], "sorting")
            if filterq is not None:
                self._refuse_masked(sorted(cql.attributes(filterq)), "filtering")
        rows = self._select(layer, bbox or [], properties or [], filterq, q)
        matched = int(rows.size)
        if resulttype == "hits":
            return {
                "type": "FeatureCollection",
                "features": [],
                "numberMatched": matched,
                "numberReturned": 0,
            }
        if sortby:
            rows = self._sort(layer, rows, sortby)
        page = rows[offset : offset + limit]
        features = self._masked(self._features(layer, page, select_properties or [], skip_geometry))
        return {
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": matched,
            "numberReturned": len(features),
        }

    @crs_transform
    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        layer = self.layer
        row = layer.row_of_id.get(identifier)
        if row is None and isinstance(identifier, str):
            try:
                row = layer.row_of_id.get(int(identifier))
            except ValueError:
                row = None
        if row is None:
            raise ProviderItemNotFoundError(
                user_msg=f"no feature {identifier!r} in this collection"
            )
        return self._masked(self._features(layer, np.array([row]), [], False))[0]

    # -- selection -------------------------------------------------------------------
    def _select(
        self, layer: OpenedLayer, bbox: list, properties: list, filterq: Any, q: str | None
    ) -> np.ndarray:
        if bbox:
            if len(bbox) == 6:
                bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
            if not all(np.isfinite(bbox)):
                raise ProviderInvalidQueryError(
                    user_msg="bbox holds a value that is not a finite number"
                )
            rows = layer.bbox_rows(tuple(bbox))
        else:
            rows = np.arange(layer.count)
        for name, value in properties:
            column = layer.table.column(name).take(pa.array(rows, pa.int64()))
            as_text = pc.cast(column, pa.string())
            rows = rows[np.asarray(pc.equal(as_text, str(value)).fill_null(False))]
        if filterq is not None:
            rows = cql.evaluate(filterq, layer, rows)
        if q:
            rows = self._text(layer, rows, q, exclude=set(self.mask))
        return rows

    def _masked(self, features: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.mask:
            for feature in features:
                props = feature["properties"]
                for name, rule in self.mask.items():
                    if name in props:
                        props[name] = mask_value(rule, props[name])
        return features

    @staticmethod
    def _text(
        layer: OpenedLayer, rows: np.ndarray, q: str, exclude: set[str] = frozenset()
    ) -> np.ndarray:
        """Rows where any text field contains every word of q (case-insensitive)."""
        words = [w.lower() for w in q.replace(",", " ").split()]
        taken = layer.table.take(pa.array(rows, pa.int64()))
        keep = np.ones(rows.size, dtype=bool)
        for word in words:
            hit = np.zeros(rows.size, dtype=bool)
            for name in layer.fields:
                if name in exclude:  # personal fields the caller sees masked
                    continue
                col = taken.column(name)
                if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                    found = pc.match_substring(pc.utf8_lower(col), word).fill_null(False)
                    hit |= np.asarray(found)
            keep &= hit
        return rows[keep]

    @staticmethod
    def _sort(layer: OpenedLayer, rows: np.ndarray, sortby: list) -> np.ndarray:
        keys = [
            (s["property"], "ascending" if s.get("order", "+") == "+" else "descending")
            for s in sortby
        ]
        table = layer.table.select([k for k, _ in keys]).take(pa.array(rows, pa.int64()))
        order = pc.sort_indices(table, sort_keys=keys)
        return rows[np.asarray(order)]

    @staticmethod
    def _features(
        layer: OpenedLayer, rows: np.ndarray, select: list, skip_geometry: bool
    ) -> list[dict[str, Any]]:
        names = list(dict.fromkeys([layer.id_field, *(select or layer.fields)]))
        if not skip_geometry:
            names.append(layer.geometry_column)
        taken = layer.table.select(names).take(pa.array(rows, pa.int64()))
        geoms = (
            [None] * len(rows)
            if skip_geometry
            else shapely.from_wkb(
                taken.column(layer.geometry_column).to_numpy(zero_copy_only=False)
            )
        )
        ids = taken.column(layer.id_field).to_pylist()
        attributes = taken.select([n for n in (select or layer.fields)]).to_pylist()
        features = []
        for fid, props, geom in zip(ids, attributes, geoms, strict=True):
            for key, value in props.items():
                if hasattr(value, "isoformat"):
                    props[key] = value.isoformat()
            features.append(
                {
                    "type": "Feature",
                    "id": fid,
                    "geometry": None if geom is None else geom.__geo_interface__,
                    "properties": props,
                }
            )
        return features


def _translated(edit: Callable[..., Any], *args: Any) -> Any:
    """An edit, its errors as pygeoapi's (which answer 404 and 400 with the message)."""
    try:
        return edit(*args)
    except FeatureNotFound as exc:
        raise ProviderItemNotFoundError(user_msg=exc.problem) from None
    except InputError as exc:
        raise ProviderInvalidQueryError(user_msg=exc.problem) from None
