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

from .stac import parse_when


def parse_interval(value: str | date | datetime | tuple) -> tuple[float | None, float | None]:
    """A STAC datetime (instant, 'a/b', open ends '..' or '') as epoch seconds (start, end).

    A bare date as an instant means that whole day.
    """
    if isinstance(value, tuple):
        parts = list(value)
    elif isinstance(value, datetime):
        t = parse_when(value).timestamp()
        return t, t
    elif isinstance(value, date):
        t = parse_when(value).timestamp()
        return t, t + 86_400 - 1e-6
    else:
        text = str(value).strip()
        if "/" not in text:
            t = parse_when(text).timestamp()
            whole_day = len(text) == 10
            return t, t + 86_400 - 1e-6 if whole_day else t
        parts = text.split("/")
        if len(parts) != 2:
            raise InputError("datetime", f"{value!r} is not an instant or an interval a/b")
    start, end = (None if p in (None, "", "..") else p for p in parts)
    s = parse_when(start).timestamp() if start is not None else None
    e = parse_when(end).timestamp() if end is not None else None
    if end is not None and len(str(end)) == 10:
        e += 86_400 - 1e-6  # an end date includes its whole day
    if s is not None and e is not None and s > e:
        raise InputError("datetime", f"{value!r}: the interval starts after it ends")
    return s, e


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
            f"</td><td>{i['properties'].get('shikong:valid_from')}</td>"
            f"<td>{i['properties'].get('shikong:valid_to') or '—'}</td></tr>"
            for i in self.items[:50]
        )
        return (
            f"<b>{len(self.items)} of {self.matched} items</b><table><tr><th>id</th>"
            f"<th>title</th><th>valid from</th><th>valid to</th></tr>{rows}</table>"
        )
