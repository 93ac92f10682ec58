"""Chinese aliases and units of attribute fields (``config/field_aliases.yaml``).

One home for them: the workbench shows them when a feature is clicked, the resource
directory lists them with each layer's fields. A collection's own entry (under
``collections:``) wins over the shared ``fields:`` entry of the same name.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from shikong.config import load as load_config


@cache
def field_aliases() -> dict[str, Any]:
    """{fields: {name: {alias, unit}}, collections: {collection: {name: {...}}}}."""
    data = load_config("field_aliases")
    return {"fields": data.get("fields") or {}, "collections": data.get("collections") or {}}


def alias_of(collection: str, field: str) -> dict[str, str]:
    """``{"alias": …, "unit": …}`` (either may be absent) of one field of a collection."""
    aliases = field_aliases()
    own = (aliases["collections"].get(collection) or {}).get(field)
    found = own if own is not None else aliases["fields"].get(field)
    return {k: str(v) for k, v in (found or {}).items() if k in ("alias", "unit")}
