"""The bulk path's binary values are what the text rows made of them: a tsvector is the
bytes the server's ``tsvectorsend`` gives for ``item_tokens``' literal, a footprint the
EWKB shapely writes, an epoch what ``parse_instant`` reads (or its error)."""

from __future__ import annotations

import random

import orjson
import psycopg
import pytest
import shapely
from pg_cluster import pg_cluster, pg_database  # noqa: F401
from shikong.catalog.pg_copy import MAX_POSITION, ewkb, tsvector_binary
from shikong.catalog.postgres_store import _epoch, item_tokens, item_tokens_binary
from shikong.spatial.errors import InputError
from shikong.spatial.temporal import parse_instant


@pytest.fixture
def dsn(request) -> str:
    """A fresh database with PostGIS (``pg_cluster.pg_database``)."""
    return request.getfixturevalue("pg_database")


WORDS = ["土地", "地利", "利用", "nrp", "河流", "a", "b1", "x", "规划", "it's", "a\\b"]
TOKENS = [  # an item's own text: tokens as index_text writes them, and what it never writes
    "a 河流",
    "土地 地利 土地",  # a lexeme twice
    "nrp cadastre v12 金水 水宗 nrp",
    "",
    "x",
    " ".join(["y"] * 300),  # more than 256 positions: the server keeps 256
    "字" * 700 + " b",  # 2,100 bytes: cut to the longest lexeme
    "字" * 683 + " " + "a" * 600,  # 2,049 bytes (cut, not mid-character); 600 (not cut)
    "it's a\\b it's",  # quoted and escaped in the literal, as they are in binary
    "a\u3000b c\x1fd e\xa0f",  # whitespace str.split knows and bytes do not
    " ".join(f"w{i}" for i in range(1030)),  # past the positions made once (_FIRST)
    " ".join(f"w{i}" for i in range(16383)),  # up to the last position
    " ".join(f"w{i}" for i in range(16384)),  # past it: the server decides
    " ".join(["w"] * 17000),
]


def server_tsvectors(dsn: str, literals: list[str]) -> list[bytes]:
    with psycopg.connect(dsn) as db:
        rows = db.execute(
            "SELECT tsvectorsend(t::tsvector) FROM unnest(%s::text[]) WITH ORDINALITY u(t, n) "
            "ORDER BY n",
            (literals,),
        ).fetchall()
    return [bytes(r[0]) for r in rows]


def random_cases(n: int) -> list[str]:
    rng = random.Random(21)
    return [" ".join(rng.choices(WORDS, k=rng.randint(0, 30))) for _ in range(n)]


def test_tsvector_binary_is_the_servers_own_form_of_the_literal(dsn):
    cases = TOKENS + random_cases(300)
    truth = server_tsvectors(dsn, [item_tokens(own) for own in cases])
    for own, want in zip(cases, truth, strict=True):
        got = tsvector_binary(own)
        if len(own.split()) > MAX_POSITION:  # the server's own conversion
            assert got is None
            got = item_tokens_binary(own, dsn)
        assert got == want, own[:40]


GEOMETRIES = [
    {"type": "Point", "coordinates": [113.25, 33.75]},
    {"type": "Point", "coordinates": [113, 34]},  # integers
    {"type": "LineString", "coordinates": [[113.1, 33.7], [113.2, 33.8], [113.3, 33.7]]},
    {
        "type": "Polygon",
        "coordinates": [
            [[113.0, 33.0], [114.0, 33.0], [114.0, 34.0], [113.0, 34.0], [113.0, 33.0]],
            [[113.2, 33.2], [113.2, 33.4], [113.4, 33.4], [113.2, 33.2]],
        ],
    },
    {"type": "MultiPoint", "coordinates": [[113.1, 33.7], [113.2, 33.8]]},
    {"type": "MultiLineString", "coordinates": [[[1.5, 2], [3, 4]], [[5, 6], [7, 8], [9, 1]]]},
    {
        "type": "MultiPolygon",
        "coordinates": [
            [[[0, 0], [1, 0], [1, 1], [0, 0]]],
            [[[2, 2], [3, 2], [3, 3], [2, 2]], [[2.1, 2.1], [2.2, 2.1], [2.2, 2.2], [2.1, 2.1]]],
        ],
    },
    {"type": "Point", "coordinates": [113.25, 33.75, 120.5]},  # 3D: by shapely
    {"type": "Polygon", "coordinates": [[[0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 0, 1]]]},
    {"type": "LineString", "coordinates": [[0, 0], [1, 1, 2]]},  # mixed dimensions
    {"type": "Polygon", "coordinates": []},  # empty
    {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},  # 3 points: shapely's
    {"type": "MultiPolygon", "coordinates": []},
    {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 2]}]},
]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: orjson.dumps(g).decode()[:60])
def test_ewkb_is_what_shapely_writes(geometry):
    shape = shapely.set_srid(shapely.from_geojson(orjson.dumps(geometry)), 4490)
    assert ewkb(geometry, 4490) == shapely.to_wkb(shape, include_srid=True)


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},  # not closed
        {"type": "LineString", "coordinates": [[0, 0]]},
        {"type": "Point", "coordinates": ["a", "b"]},
    ],
)
def test_a_geometry_shapely_refuses_is_refused(geometry):
    with pytest.raises(shapely.errors.GEOSException):
        ewkb(geometry, 4490)


@pytest.mark.parametrize(
    "when",
    [
        "2021-06-30T08:15:27Z",
        "1969-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2024-02-29T12:00:00Z",
        "2021-06-30t08:00:00z",
        "2021-06-30T08:00:00+08:00",
        "2021-06-30T08:00:00.5Z",
        "2021-06-30",
        "2023-02-29T00:00:00Z",  # no such day
        "2021-13-01T00:00:00Z",
        "2021-06-30T24:00:00Z",
        "2021-06-30T08:60:00Z",
        "2021-06-30T08:00:60Z",
        "２０２１-06-30T08:00:00Z",  # digits of another script (regular expressions' \\d)
        "2021-06-30T+8:00:00Z",
        "2021-W26-3T08:00:00Z",
    ],
)
def test_epoch_reads_what_parse_instant_reads(when):
    try:
        want = parse_instant(when).timestamp()
    except InputError:
        with pytest.raises(InputError):
            _epoch(when)
        return
    assert _epoch(when) == want
