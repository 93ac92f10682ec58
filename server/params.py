"""Which query parameters each Features operation defines.

OGC API Features Part 1 (/req/core/query-param-unknown) wants a 400 for a parameter the
API does not define: a typo such as ``?ghfqmc=农田保护区`` must not quietly return every
feature. pygeoapi discards such parameters, so the server checks them before calling it.
A collection's own fields are parameters too (equality filters, Part 1 /rec/core/fc-filters).
"""

from __future__ import annotations

from collections.abc import Iterable

# Parameters every request may carry: output format and language negotiation.
COMMON = frozenset({"f", "lang"})

# /collections/{id}/items: Part 1 core, Part 2 crs, Part 3 filter, pygeoapi's q/sortby.
ITEMS = COMMON | {
    "bbox",
    "bbox-crs",
    "crs",
    "datetime",
    "limit",
    "offset",
    "resulttype",
    "sortby",
    "properties",
    "skipGeometry",
    "q",
    "filter",
    "filter-lang",
    "filter-crs",
}

# /collections/{id}/items/{featureId}: crs (Part 2) and datetime (our time travel).
ITEM = COMMON | {"crs", "datetime", "properties", "skipGeometry"}


def unknown_parameters(names: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """The names the operation does not define, in request order, without repeats."""
    known = set(allowed)
    out: list[str] = []
    for name in names:
        if name not in known and name not in out:
            out.append(name)
    return out


def unknown_message(unknown: list[str], fields: Iterable[str]) -> str:
    """A 400 description naming the unknown parameters and what the caller may use."""
    listed = ", ".join(repr(n) for n in unknown)
    field_names = sorted(fields)
    hint = f"; this collection's fields: {', '.join(field_names)}" if field_names else ""
    return (
        f"unknown query parameter {listed}: not defined by this API "
        f"(parameters: {', '.join(sorted(ITEMS))}){hint}"
    )
