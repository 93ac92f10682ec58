"""What the landing page and /conformance say about the map services beside pygeoapi's
APIs (OGC API Tiles and Styles, WMS, WMTS: routes of the tiles, maps and ows packages),
so clients that start from the landing page find them."""

from __future__ import annotations

from typing import Any

TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf"
CONFORMANCE = [
    f"{TILES}/{name}"
    for name in (
        "core",
        "tileset",
        "tilesets-list",
        "geodata-tilesets",
        "dataset-tilesets",
        "geodata-selection",
        "datetime",
        "mvt",
        "png",
        "jpeg",
        "tmxs",
    )
] + ["http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset"]

REL = "http://www.opengis.net/def/rel/ogc/1.0"


def landing_links(base: str) -> list[dict[str, str]]:
    """Links to the dataset tilesets, the styles and the WMS/WMTS capabilities."""
    return [
        {
            "rel": f"{REL}/tilesets-vector",
            "type": "application/json",
            "title": "Vector tiles of every layer you may see (dataset tilesets)",
            "href": f"{base}/tiles",
        },
        {
            "rel": f"{REL}/styles",
            "type": "application/json",
            "title": "Map styles (MapLibre style documents)",
            "href": f"{base}/styles",
        },
        {
            "rel": "related",
            "type": "application/vnd.ogc.wms_xml",
            "title": "WMS 1.3.0 capabilities",
            "href": f"{base}/wms?service=WMS&request=GetCapabilities&version=1.3.0",
        },
        {
            "rel": "related",
            "type": "application/xml",
            "title": "WMTS 1.0.0 capabilities",
            "href": f"{base}/wmts/1.0.0/WMTSCapabilities.xml",
        },
    ]


def advertise_on_landing(body: dict[str, Any], base: str) -> None:
    """Add the map services' links to pygeoapi's landing page (JSON)."""
    known = {link.get("href") for link in body.get("links", [])}
    body.setdefault("links", []).extend(
        link for link in landing_links(base) if link["href"] not in known
    )


def advertise_conformance(body: dict[str, Any]) -> None:
    """Add the conformance classes the tiles routes implement."""
    classes = body.setdefault("conformsTo", [])
    classes.extend(c for c in CONFORMANCE if c not in classes)
