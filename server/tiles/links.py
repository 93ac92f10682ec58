"""The links a collection document carries to its tiles (OGC API Tiles, collection level).

GDAL's OGCAPI driver and QGIS find a collection's vector tiles through the link with
``rel=http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector``; server/publish.py adds
these links to each vector, sensors and readings collection it publishes. Hrefs are
relative to the server root (publish makes them absolute per base URL).
"""

from __future__ import annotations

TILED_KINDS = ("vector", "sensors", "readings")
REL = "http://www.opengis.net/def/rel/ogc/1.0/"


def tile_links(collection_id: str, kind: str) -> list[dict[str, str]]:
    """Links to a collection's tilesets, or none for a kind without vector tiles."""
    if kind not in TILED_KINDS:
        return []
    return [
        {
            "type": "application/json",
            "rel": f"{REL}tilesets-vector",
            "title": "Vector tilesets (MVT)",
            "href": f"collections/{collection_id}/tiles",
        },
        {
            "type": "application/vnd.mapbox.tile+json",
            "rel": "alternate",
            "title": "TileJSON (WebMercatorQuad)",
            "href": f"collections/{collection_id}/tiles/WebMercatorQuad?f=tilejson",
        },
    ]
