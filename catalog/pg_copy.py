"""Values in the server's binary forms, for the catalog's binary ``COPY`` (bulk writes).

Why binary: with text ``COPY`` the server parsed every double, the footprint's hex EWKB
and the tokens' ``tsvector`` literal of each item again (measured on a bulk load: 24 µs
of server time an item for its row, 13 µs in binary). psycopg writes texts, doubles and
integers in binary itself (``Copy.set_types``); here are the two it has no dumper for,
handed to it as ``bytea`` (a binary ``COPY`` carries the bytes as they are, and the
column's type reads them). Both are the values the text rows carried, so what is stored
does not change: the footprint's EWKB as shapely wrote it (plain 2D geometries straight
from their GeoJSON, without the round trip through GEOS; anything else still by
shapely), and the tokens' ``tsvector`` as the server's ``tsvectorsend`` writes what it
makes of the literal (:func:`tsvector_binary`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from itertools import chain
from typing import Any

import orjson
import shapely

MAX_POSITION = 16383  # tsvector positions stop here (later tokens share it)
MAX_POSITIONS = 256  # positions a lexeme keeps (the server drops later ones)
MAX_LEXEME_BYTES = 2046
JSONB_VERSION = b"\x01"  # a binary jsonb value: this, then the JSON text
_A = 3 << 14  # weight A: a position's top two bits
_LENGTH = struct.Struct(">i")

# EWKB, little-endian as shapely writes it: type with the SRID flag, then the SRID
_SRID_FLAG = 0x20000000
_KINDS = {
    "Point": 1,
    "LineString": 2,
    "Polygon": 3,
    "MultiPoint": 4,
    "MultiLineString": 5,
    "MultiPolygon": 6,
}


# -- footprints ---------------------------------------------------------------------------
def _points(points: Any) -> bytes | None:
    """A point list (count, then x y doubles), or None if it is not plain 2D."""
    if not points or set(map(len, points)) != {2}:
        return None
    flat = list(chain.from_iterable(points))
    return struct.pack(f"<I{len(flat)}d", len(points), *flat)


def _rings(rings: Any) -> bytes | None:
    """A polygon's rings, or None unless each is closed with at least 4 points."""
    if not rings:
        return None
    out = [struct.pack("<I", len(rings))]
    for ring in rings:
        if len(ring) < 4 or ring[0] != ring[-1]:
            return None  # shapely refuses it, as it did
        points = _points(ring)
        if points is None:
            return None
        out.append(points)
    return b"".join(out)


def _body(kind: str, coordinates: Any) -> bytes | None:
    """WKB coordinates of a GeoJSON geometry's ``coordinates`` (None: not plain 2D)."""
    if kind == "Point":
        if type(coordinates) is not list or len(coordinates) != 2:
            return None
        return struct.pack("<2d", *coordinates)
    if kind == "LineString":
        return _points(coordinates) if coordinates and len(coordinates) >= 2 else None
    if kind == "Polygon":
        return _rings(coordinates)
    if not coordinates:
        return None
    part = {"MultiPoint": "Point", "MultiLineString": "LineString"}.get(kind, "Polygon")
    header = struct.pack("<BI", 1, _KINDS[part])
    out = [struct.pack("<I", len(coordinates))]
    for member in coordinates:
        body = _body(part, member)
        if body is None:
            return None
        out += (header, body)
    return b"".join(out)


def ewkb(geometry: dict[str, Any] | None, srid: int) -> bytes | None:
    """A GeoJSON geometry as the EWKB (with ``srid``) that shapely writes for it: plain 2D
    geometries directly, anything else (3D, empty, collections, invalid) through shapely
    (which raises where it did)."""
    if not geometry:
        return None
    kind = geometry.get("type")
    if kind in _KINDS:
        try:
            body = _body(kind, geometry.get("coordinates"))
        except (TypeError, struct.error):  # not numbers where they belong: shapely says
            body = None
        if body is not None:
            return struct.pack("<BII", 1, _KINDS[kind] | _SRID_FLAG, srid) + body
    shape = shapely.set_srid(shapely.from_geojson(orjson.dumps(geometry)), srid)
    return bytes(shapely.to_wkb(shape, include_srid=True))


# -- tokens -------------------------------------------------------------------------------
def lexeme(token: str) -> str:
    """A token cut to the longest lexeme the server takes."""
    if len(token) > MAX_LEXEME_BYTES // 4:
        token = token.encode()[:MAX_LEXEME_BYTES].decode(errors="ignore")
    return token


_ONE_POSITION = struct.Struct(">xHH")  # NUL, one position, the position


def _entry(key: bytes, positions: list[int]) -> bytes:
    """One lexeme of a binary tsvector: its bytes, a NUL, its positions (at most 256).
    Entries sort as their lexemes do (a lexeme's NUL sorts before any character)."""
    if len(positions) == 1:
        return key + _ONE_POSITION.pack(1, positions[0])
    if len(positions) > MAX_POSITIONS:
        positions = positions[:MAX_POSITIONS]
    return key + struct.pack(f">xH{len(positions)}H", len(positions), *positions)


def _positions(tokens: Sequence[str]) -> dict[bytes, list[int]]:
    """Each lexeme's positions (weight A) of tokens from position 1."""
    found: dict[bytes, list[int]] = {}
    for position, token in enumerate(tokens, 1):
        key = (token if len(token) <= MAX_LEXEME_BYTES // 4 else lexeme(token)).encode()
        if key in found:
            found[key].append(position | _A)
        else:
            found[key] = [position | _A]
    return found


def tsvector_binary(text: str) -> bytes | None:
    """The tsvector of the tokens of ``text`` (weight A, positions from 1):
    ``item_tokens``' literal as the server's ``tsvectorsend`` writes what it makes of it
    (lexemes sorted, a lexeme's positions merged and ascending, at most 256). None if a
    position would pass ``MAX_POSITION`` (tokens then share it, and the server decides
    what it keeps there): the caller asks the server."""
    keys = text.encode().split() if not _OTHER_SPACE.search(text) else _encoded(text.split())
    if len(keys) > MAX_POSITION:
        return None
    if len(keys) >= len(_FIRST) or len(set(keys)) < len(keys) or not _short(keys):
        entries = [_entry(k, p) for k, p in _positions(text.split()).items()]
    else:  # each lexeme once, at its position
        entries = list(map(bytes.__add__, keys, _FIRST))
    entries.sort()
    return _LENGTH.pack(len(entries)) + b"".join(entries)


# what follows a lexeme found once, at position 1, 2, … with weight A
_FIRST = tuple(_ONE_POSITION.pack(1, position | _A) for position in range(1, 1024))
_OTHER_SPACE = re.compile(r"[^\S ]")  # whitespace but a space: str.split's, not bytes'


def _encoded(tokens: list[str]) -> list[bytes]:
    return [token.encode() for token in tokens]


def _short(keys: list[bytes]) -> bool:
    """No lexeme is cut (see :func:`lexeme`)."""
    return not keys or max(map(len, keys)) <= MAX_LEXEME_BYTES
