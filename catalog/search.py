"""Search results with the views analysts want: ids, STAC objects, a table, a map."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from html import escape
from typing import Any

import geopandas as gpd
import pystac
from shapely.geometry import shape
from shikong.spatial.errors import InputError
from shikong.spatial.temporal import TimeWindow, parse_datetime

from .extension import ShikongExtension


def parse_interval(value: str | date | datetime | tuple) -> tuple[float | None, float | None]:
    """A ``datetime`` (instant, 'a/b', open ends '..' or '') as epoch seconds (start, end),
    ends inclusive; a bare date is its whole UTC day (:mod:`shikong.spatial.temporal`)."""
    if isinstance(value, tuple):
        if len(value) != 2:
            raise InputError("datetime", f"{value!r} is not a (start, end) pair")
        first, last = value
        start = None if first in (None, "", "..") else parse_datetime(first).start
        end = None if last in (None, "", "..") else parse_datetime(last).end
        if start is not None and end is not None and start > end:
            raise InputError("datetime", f"{value!r}: the interval starts after it ends")
        return TimeWindow(start, end).timestamps()
    return parse_datetime(value).timestamps()


@dataclass
class SearchResult:
    """Matching items (STAC dicts) of one page, and how many matched in all."""

    items: list[dict[str, Any]]
    matched: int

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    @property
    def ids(self) -> list[str]:
        return [i["id"] for i in self.items]

    def item_collection(self) -> pystac.ItemCollection:
        return pystac.ItemCollection([pystac.Item.from_dict(i) for i in self.items])

    def to_geodataframe(self) -> gpd.GeoDataFrame:
        """Footprints with the searchable properties, e.g. to plot coverage."""
        rows = [
            {
                "id": i["id"],
                "collection": i["collection"],
                **{k: v for k, v in i["properties"].items() if not isinstance(v, (dict, list))},
            }
            for i in self.items
        ]
        geoms = [shape(i["geometry"]) if i.get("geometry") else None for i in self.items]
        return gpd.GeoDataFrame(rows, geometry=geoms, crs=4490)

    def __repr__(self) -> str:
        return f"SearchResult({len(self.items)} of {self.matched} items: {self.ids[:5]}…)"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{escape(i['id'])}</td><td>{escape(str(i['properties'].get('title')))}"
            f"</td><td>{ShikongExtension.ext(i).valid_from_iso}</td>"
            f"<td>{ShikongExtension.ext(i).valid_to_iso or '—'}</td></tr>"
            for i in self.items[:50]
        )
        return (
            f"<b>{len(self.items)} of {self.matched} items</b><table><tr><th>id</th>"
            f"<th>title</th><th>valid from</th><th>valid to</th></tr>{rows}</table>"
        )
