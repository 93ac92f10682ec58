"""The resource directory (数据资源目录): every layer's metadata, never its data.

Any signed-in department may discover every layer here, including layers it may not read:
that is what the directory is for (it then asks for access, :mod:`sharing`). A record
holds what describes a layer (title, owner department and its contact point from
``config/departments.yaml``, classification, kind, extent, versions and how often they
come, its fields' names, types, Chinese aliases and units) and nothing of its features;
the names of personal-data fields are left out too, a record only says that the layer has
some.

``update_frequency`` is an ISO 19115 maintenance frequency code, read from the layer's
history: ``continual`` for sensor readings, else the median gap between its versions'
``valid_from`` dates (``daily`` under 2 days, ``weekly`` under 10, ``monthly`` under 45,
``quarterly`` under 120, ``biannually`` under 240, ``annually`` under 500, else
``irregular``), ``asNeeded`` with fewer than three versions to tell from.
Records are GeoJSON features shaped as OGC API Records records, so the server's Records
collection and the library give the same.

Search (:func:`search`): ``q`` matches text case-insensitively as substrings (Chinese has no
spaces between words): terms separated by commas are alternatives, by spaces all
required; ``department``, ``kind`` and ``classification`` match exactly; ``bbox`` keeps
layers whose extent intersects it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .departments import departments
from .extension import ShikongExtension
from .field_aliases import alias_of

if TYPE_CHECKING:
    from .catalog import Catalog
    from .layer import Layer


def record(layer: Layer, personal: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """One layer's directory record."""
    collection = layer.collection
    code = layer.department
    name = departments().get(code, {}).get("name", code)
    versions = layer.versions
    current = versions[-1].item if versions else {}
    props = current.get("properties", {})
    hidden = set(personal.get(layer.id, {}))
    fields = [
        {"name": c["name"], "type": c.get("type"), **alias_of(layer.id, c["name"])}
        for c in props.get("table:columns") or []
        if c.get("name") not in hidden
    ]
    office = departments().get(code, {})
    bbox = (collection.get("extent", {}).get("spatial", {}).get("bbox") or [None])[0]
    interval = (collection.get("extent", {}).get("temporal", {}).get("interval") or [None])[0]
    return {
        "type": "Feature",
        "id": layer.id,
        "geometry": _box(bbox),
        "properties": {
            "type": "dataset",
            "title": collection.get("title"),
            "title_en": ShikongExtension.ext(collection).title_en,
            "description": collection.get("description"),
            "keywords": collection.get("keywords") or [],
            "department": code,
            "department_name": name,
            "contacts": [_contact(name, office.get("contact") or {})],
            "classification": layer.classification,
            "kind": layer.kind,
            "versions": [v.version for v in versions],
            "updated": props.get("updated"),
            "update_frequency": update_frequency(layer),
            "time": interval,
            "fields": fields,
            "personal_data": bool(hidden),
        },
    }


FREQUENCIES = (  # (median gap under, in days; ISO 19115 MD_MaintenanceFrequencyCode)
    (2, "daily"),
    (10, "weekly"),
    (45, "monthly"),
    (120, "quarterly"),
    (240, "biannually"),
    (500, "annually"),
)


def update_frequency(layer: Layer) -> str:
    """How often the layer gets a new version (see the module docstring)."""
    from itertools import pairwise
    from statistics import median

    if layer.kind == "readings":
        return "continual"
    starts = sorted(version.valid_from for version in layer.versions)
    if len(starts) < 3:
        return "asNeeded"
    gap = median((b - a).total_seconds() / 86400 for a, b in pairwise(starts))
    return next((code for limit, code in FREQUENCIES if gap < limit), "irregular")


def _contact(name: str, contact: Mapping[str, Any]) -> dict[str, Any]:
    """An OGC API Records contact: the owner department and its data office's details."""
    out: dict[str, Any] = {"organization": name, "roles": ["pointOfContact", "owner"]}
    if contact.get("name"):
        out["name"] = contact["name"]
    if contact.get("phone"):
        out["phones"] = [{"value": str(contact["phone"])}]
    if contact.get("email"):
        out["emails"] = [{"value": str(contact["email"])}]
    return out


def _box(bbox: Sequence[float] | None) -> dict[str, Any] | None:
    if not bbox or len(bbox) < 4:
        return None
    w, s, e, n = bbox[0], bbox[1], bbox[-2], bbox[-1]
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def records(catalog: Catalog, personal: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    """Every layer's record, by collection id."""
    return sorted((record(layer, personal) for layer in catalog.collections()), key=_id)


def _id(rec: dict[str, Any]) -> str:
    return rec["id"]


def _text(rec: dict[str, Any]) -> str:
    p = rec["properties"]
    parts = [rec["id"], p.get("title"), p.get("title_en"), p.get("description"),
             p.get("department_name"), *p.get("keywords", []),
             *(f["name"] for f in p.get("fields", []))]  # fmt: skip
    return " ".join(str(x) for x in parts if x).casefold()


def _intersects(rec: dict[str, Any], bbox: Sequence[float]) -> bool:
    geometry = rec.get("geometry")
    if geometry is None:
        return False
    ring = geometry["coordinates"][0]
    w, s, e, n = ring[0][0], ring[0][1], ring[2][0], ring[2][1]
    bw, bs, be, bn = bbox[0], bbox[1], bbox[-2], bbox[-1]
    return w <= be and bw <= e and s <= bn and bs <= n


def search(
    found: list[dict[str, Any]],
    q: str | None = None,
    department: str | None = None,
    kind: str | None = None,
    classification: str | None = None,
    bbox: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """The records matching every criterion given (see the module docstring)."""
    alternatives = [a.casefold().split() for a in (q or "").split(",") if a.strip()]
    out = []
    for rec in found:
        p = rec["properties"]
        if department and p["department"] != department:
            continue
        if kind and p["kind"] != kind:
            continue
        if classification and p["classification"] != classification:
            continue
        if bbox and not _intersects(rec, bbox):
            continue
        if alternatives:
            text = _text(rec)
            if not any(all(term in text for term in terms) for terms in alternatives):
                continue
        out.append(rec)
    return out
