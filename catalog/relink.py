"""What a commit does to a layer, whatever stores it: its versions relinked and its
collection document rebuilt. Pure functions (a bulk commit runs them in a prefetch
thread), shared by every :class:`~shikong.catalog.store.CatalogStore`."""

from __future__ import annotations

from typing import Any

from .departments import department_name
from .extension import Field, ShikongExtension
from .stac import collection_dict, relink_versions
from .store import LayerBatch


def relink_layer(
    batch: LayerBatch, old: dict[str, Any], existing: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The layer's collection after adding the batch's items to its ``existing`` ones
    (``old`` is its stored collection document, or empty), and the items that changed."""
    target = batch.target
    cid = target.collection_id
    if batch.replace:
        new_ids = {i["id"] for i in batch.items}
        existing = [i for i in existing if i["id"] not in new_ids]
    was = ShikongExtension.ext(old) if old else None  # the layer's collection, if stored
    classification = target.classification or (was and was.classification) or "shared"
    # a stored version changes when its validity ends or its links do: a new latest
    # version, or one arriving between two others, relinks versions it does not close
    # per-item loops of a bulk commit: fields by name on the dict (see relink_versions)
    before = {i["id"]: (i["properties"][Field.VALID_TO], i["links"]) for i in existing}
    items = relink_versions(existing + batch.items, cid)
    for item in items:  # policy is per layer: every version follows the layer
        item["properties"][Field.CLASSIFICATION] = classification
    reclassified = was is not None and was.classification != classification
    changed = [
        i
        for i in items
        if i["id"] not in before
        or reclassified
        or before[i["id"]] != (i["properties"][Field.VALID_TO], i["links"])
    ]
    editable = target.editable if target.editable is not None else was and was.editable
    collection = collection_dict(
        collection_id=cid,
        department=target.department,
        department_name=department_name(target.department),
        layer=target.layer,
        kind=batch.kind,
        classification=classification,
        title=target.title or old.get("title") or target.layer,
        title_en=target.title_en or (was and was.title_en),
        description=target.description or old.get("description", ""),
        keywords=list(target.keywords) or old.get("keywords", []),
        items=items,
        extra={Field.EDITABLE: bool(editable)},
    )
    return collection, changed
