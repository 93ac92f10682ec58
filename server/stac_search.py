"""What a STAC item search may send, checked before any of it is used.

A POST body is decoded strictly (no NaN or Infinity, no lone surrogates, at most
:data:`MAX_JSON_DEPTH` levels), then validated against :data:`SEARCH_BODY`, the JSON
Schema of the item-search body with the sort, filter, fields and free-text extensions,
so a wrong type is a 400 naming the field instead of a TypeError deep in the search.
GET parameters are strings: a repeated or empty one is a 400 too, since a server that
silently picks one of ``limit=1&limit=2`` answers a question the client did not ask.
The same schema is served as the OpenAPI request body of ``POST /stac/search``.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from starlette.requests import Request


class BadRequest(Exception):
    """A search parameter that cannot be understood: answered 400 naming it."""


MAX_JSON_DEPTH = 256  # nesting of a request body (a CQL2 JSON NOT costs two levels)
MAX_FILTER_DEPTH = 100  # nesting of a filter's expression tree (an AND chain: one per term)
MAX_NAMES = 1000  # collections or ids in one search
MAX_TOKEN = 2**53  # a page offset (SQLite takes 64-bit integers)
MAX_TEXT = 1000  # characters of a free-text query
FILTER_LANGS = ("cql2-text", "cql2-json")
GEOMETRY_TYPES = (
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
)

_NAMES = {
    "description": "Names, as a JSON array (or one comma-separated string)",
    "oneOf": [
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
        {"type": "string", "minLength": 1},
    ],
}
_STRINGS = {"type": "array", "items": {"type": "string"}}

SEARCH_BODY: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "STAC item search (POST body)",
    "type": "object",
    "properties": {
        "collections": {**_NAMES, "description": "Collection ids"},
        "ids": {**_NAMES, "description": "Item ids"},
        "bbox": {
            "description": "minx, miny, maxx, maxy (or 6 numbers with heights), CRS84",
            "type": "array",
            "items": {"type": "number"},
            "minItems": 4,
            "maxItems": 6,
        },
        "intersects": {
            "description": "A GeoJSON geometry",
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": list(GEOMETRY_TYPES)}},
        },
        "datetime": {"description": "RFC 3339 instant or start/end", "type": "string"},
        "limit": {"type": "integer", "minimum": 1},
        "token": {
            "description": "Page offset, from a next link",
            "oneOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_TOKEN},
                {"type": "string", "pattern": "^[0-9]{1,16}$"},
            ],
        },
        "sortby": {
            "oneOf": [
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["field"],
                        "properties": {
                            "field": {"type": "string", "minLength": 1},
                            "direction": {"enum": ["asc", "desc"]},
                        },
                        "additionalProperties": False,
                    },
                },
                {"type": "string", "minLength": 1},
            ]
        },
        "fields": {
            "description": "Accepted and ignored: items are always whole",
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"include": _STRINGS, "exclude": _STRINGS},
                    "additionalProperties": False,
                },
                {"type": "string"},
            ],
        },
        "filter": {
            "description": "CQL2 text, or CQL2 JSON",
            "oneOf": [{"type": "object"}, {"type": "string", "minLength": 1}],
        },
        "filter-lang": {"enum": list(FILTER_LANGS)},
        "filter-crs": {"enum": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]},
        "q": {
            "description": "Free-text terms",
            "oneOf": [
                {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
                {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
                    "minItems": 1,
                    "maxItems": 50,
                },
            ],
        },
    },
}
_VALIDATOR = Draft202012Validator(SEARCH_BODY)


def openapi_paths() -> dict[str, Any]:
    """``/stac/search`` as OpenAPI 3.0 paths (SEARCH_BODY keeps to the subset of JSON
    Schema that OpenAPI 3.0 shares), so clients and fuzzers see what is validated."""
    body = {k: v for k, v in SEARCH_BODY.items() if k != "$schema"}
    answers = {
        "200": {"description": "Matching items", "content": {"application/geo+json": {}}},
        "400": {"description": "A parameter that cannot be understood, named"},
    }
    params = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in SEARCH_BODY["properties"]
    ]
    return {
        "/stac/search": {
            "get": {"operationId": "getStacSearch", "parameters": params, "responses": answers},
            "post": {
                "operationId": "postStacSearch",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": answers,
            },
        }
    }


def json_value(raw: bytes | str, what: str) -> Any:
    """Strict JSON (what Python's json module lets through, NaN and 1e999, is refused),
    at most MAX_JSON_DEPTH levels deep; a BadRequest naming ``what`` otherwise."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson stops at 1024 levels
            raise BadRequest(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels") from None
        raise BadRequest(f"{what} is not JSON: {short(str(exc))}") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise BadRequest(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                break
            stack.extend((child, depth + 1) for child in node)
    return deepest


def search_body(raw: bytes) -> dict[str, Any]:
    """A POST /stac/search body, decoded and validated against SEARCH_BODY."""
    body = json_value(raw, "search body")
    if not isinstance(body, dict):
        raise BadRequest("search body must be a JSON object")
    error = best_match(_VALIDATOR.iter_errors(body))
    if error is not None:
        field = "/".join(str(p) for p in error.absolute_path) or "search body"
        message = error.message
        if error.validator == "oneOf":  # "is not valid under any of the given schemas"
            wanted = " or ".join(_kind(choice) for choice in error.validator_value)
            message = f"{short(repr(error.instance), 60)} is not {wanted}"
        raise BadRequest(f"{field}: {short(message)} (see the POST /stac/search schema)")
    return body


def _kind(schema: dict[str, Any]) -> str:
    """A schema's type in words: 'an array of string', 'an integer'."""
    kind = schema.get("type", "value")
    if kind == "array":
        return f"an array of {schema.get('items', {}).get('type', 'value')}"
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def single_params(request: Request) -> dict[str, str]:
    """GET parameters, each given once and not empty."""
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in out:
            raise BadRequest(f"parameter {key!r} is given more than once: give it once")
        if not value.strip():
            raise BadRequest(f"parameter {key!r} is empty: give a value or leave it out")
        out[key] = value
    return out


def names(key: str, value: Any) -> list[str]:
    """collections or ids: a list, or a comma-separated string."""
    found = value.split(",") if isinstance(value, str) else value
    if not isinstance(found, list) or not all(isinstance(n, str) for n in found):
        raise BadRequest(f"{key} must be an array of strings or a comma-separated string")
    found = [n.strip() for n in found if n.strip()]
    if not found:
        raise BadRequest(f"{key} names nothing: give at least one or leave it out")
    if len(found) > MAX_NAMES:
        raise BadRequest(f"{key} names {len(found)}; at most {MAX_NAMES} in one search")
    return found


def bbox(raw: Any) -> list[float]:
    """minx, miny, maxx, maxy in CRS84, finite and in range (6 numbers: heights dropped)."""
    values = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(values, list) or any(isinstance(v, bool) for v in values):
        raise BadRequest(f"bbox {short(repr(raw))} is not a list of numbers")
    try:
        box = [float(v) for v in values]
    except (TypeError, ValueError):
        raise BadRequest(f"bbox {short(repr(raw))} is not a list of numbers") from None
    if not all(math.isfinite(v) for v in box):
        raise BadRequest(f"bbox {short(repr(raw))} holds a value that is not a finite number")
    if len(box) == 6:
        box = [box[0], box[1], box[3], box[4]]
    if len(box) != 4 or box[0] > box[2] or box[1] > box[3]:
        raise BadRequest(f"bbox {short(repr(raw))} is not minx,miny,maxx,maxy")
    if not (box[0] >= -180 and box[2] <= 180 and box[1] >= -90 and box[3] <= 90):
        raise BadRequest(f"bbox {short(repr(raw))} is outside -180..180, -90..90 (CRS84)")
    return box


def whole(value: Any, name: str) -> int:
    """limit or token: an integer (a string of digits from a GET or a next link)."""
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be an integer")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value)
    raise BadRequest(f"{name} must be an integer, not {short(repr(value))}")


def text(value: Any) -> str:
    """Free-text terms: a string, or a list of them (joined: every term must match)."""
    terms = [value] if isinstance(value, str) else value
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise BadRequest("q must be a string or an array of strings")
    joined = " ".join(terms)
    if not joined.strip() or len(joined) > MAX_TEXT:
        raise BadRequest(f"q must hold 1 to {MAX_TEXT} characters of search terms")
    return joined


def short(message: str, limit: int = 200) -> str:
    """A message cut to a length fit for an answer (a repr may hold a whole body)."""
    message = message.replace("\n", " ")
    return message if len(message) <= limit else message[: limit - 1] + "…"
