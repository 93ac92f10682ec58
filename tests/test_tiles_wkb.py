"""The tile renderer's two roads to the same tile (server/tiles/render.py): plain 2D
polygons inside the tile are read straight from their WKB bytes, everything else (other
byte order, Z, lines, points, clipped or detailed shapes) through shapely. Each feature
of a tile is checked against its own geometry, projected and cut here with shapely, and
decoded with an independent decoder (mapbox-vector-tile)."""

from __future__ import annotations

import json
import math

import mapbox_vector_tile
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from shikong.catalog.opened import open_layer
from shikong.server.tiles import matrix_sets
from shikong.server.tiles.render import render, selected

EXTENT = 4096
R = 6378137.0
Z, LON, LAT = 16, 113.30, 33.80


def tile_bounds(z: int, lon: float, lat: float) -> tuple[int, int, tuple[float, ...]]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    size = 2 * math.pi * R / n
    return (
        y,
        x,
        (
            -math.pi * R + x * size,
            math.pi * R - (y + 1) * size,
            -math.pi * R + (x + 1) * size,
            math.pi * R - y * size,
        ),
    )


def to_mercator(geom: shapely.Geometry) -> shapely.Geometry:
    def f(c: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [np.radians(c[:, 0]) * R, np.log(np.tan(np.pi / 4 + np.radians(c[:, 1]) / 2)) * R]
        )

    return shapely.transform(geom, f)


def shapes(
    box_lonlat: tuple[float, float, float, float],
) -> dict[int, tuple[shapely.Geometry, int]]:
    """id -> (geometry in lon/lat, WKB byte order: 1 little-endian, 0 big-endian)."""
    x0, y0, x1, y1 = box_lonlat
    w, h = x1 - x0, y1 - y0

    def at(fx: float, fy: float, fw: float, fh: float) -> shapely.Geometry:
        return shapely.box(x0 + fx * w, y0 + fy * h, x0 + (fx + fw) * w, y0 + (fy + fh) * h)

    ring = at(0.05, 0.05, 0.3, 0.3)
    hole = at(0.15, 0.15, 0.1, 0.1)
    circle = shapely.Point(x0 + 0.7 * w, y0 + 0.7 * h).buffer(0.12 * w, quad_segs=16)
    return {
        1: (shapely.Polygon(ring.exterior, [hole.exterior.coords[::-1]]), 1),  # with a hole
        2: (at(0.5, 0.1, 0.2, 0.1), 0),  # big-endian WKB
        3: (shapely.force_3d(at(0.1, 0.5, 0.1, 0.2), 7.0), 1),  # Z
        4: (shapely.MultiPolygon([at(0.4, 0.4, 0.05, 0.05), at(0.5, 0.45, 0.05, 0.05)]), 1),
        5: (at(0.9, 0.3, 0.3, 0.2), 1),  # crosses the east edge: clipped
        6: (circle, 1),  # 65 coordinates: simplified
        7: (shapely.LineString([(x0 + 0.1 * w, y0 + 0.9 * h), (x0 + 0.6 * w, y0 + 0.85 * h)]), 1),
        8: (shapely.Point(x0 + 0.3 * w, y0 + 0.8 * h), 1),
        9: (at(0.3, 0.62, 0.001, 0.001), 1),  # under one pixel: left out
    }


@pytest.fixture(scope="module")
def tile(tmp_path_factory):
    tms = matrix_sets.get("WebMercatorQuad")
    y, x, merc = tile_bounds(Z, LON, LAT)
    box = matrix_sets.tile_box(tms, Z, y, x)
    features = shapes(box.lonlat)
    ids = sorted(features)
    wkb = [shapely.to_wkb(features[i][0], byte_order=features[i][1]) for i in ids]
    table = pa.table(
        {
            "fid": pa.array(ids, pa.int64()),
            "name": [f"f{i}" for i in ids],
            "geometry": pa.array(wkb, pa.binary()),
        }
    )
    geo = {
        "version": "1.0.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": []}},
    }
    path = tmp_path_factory.mktemp("wkb") / "mixed.parquet"
    pq.write_table(table.replace_schema_metadata({"geo": json.dumps(geo)}), path)
    layer = open_layer(path, "fid")
    content = render(layer, "mixed", box, tms.id, selected(layer, None), {}, z=Z)
    decoded = mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})
    return {f["id"]: f for f in decoded["mixed"]["features"]}, features, merc


def back(geometry: dict, merc: tuple[float, ...]) -> shapely.Geometry:
    minx, miny, maxx, maxy = merc
    return shapely.transform(
        shapely.geometry.shape(geometry),
        lambda c: np.column_stack(
            [minx + c[:, 0] * (maxx - minx) / EXTENT, maxy - c[:, 1] * (maxy - miny) / EXTENT]
        ),
    )


def test_every_visible_feature_once_with_its_attributes(tile):
    got, features, _ = tile
    assert set(got) == set(features) - {9}
    for fid, feature in got.items():
        assert feature["properties"] == {"fid": fid, "name": f"f{fid}"}


def test_each_shape_is_its_true_shape_within_a_unit(tile):
    got, features, merc = tile
    unit = (merc[2] - merc[0]) / EXTENT
    grown = shapely.box(
        merc[0] - 64 * unit, merc[1] - 64 * unit, merc[2] + 64 * unit, merc[3] + 64 * unit
    )
    for fid, feature in got.items():
        true = to_mercator(shapely.force_2d(features[fid][0])).intersection(grown)
        mine = back(feature["geometry"], merc)
        assert mine.geom_type.replace("Multi", "") == true.geom_type.replace("Multi", ""), fid
        if true.geom_type.endswith("Polygon"):
            assert mine.is_valid, fid  # rings oriented so holes stay holes
            slack = 1.5 * unit * (true.length + 8 * unit)
            assert mine.symmetric_difference(true).area <= slack, fid
        else:
            assert mine.hausdorff_distance(true) <= 2 * unit, fid
    hole = shapely.get_num_interior_rings(back(got[1]["geometry"], merc))
    assert hole == 1
    assert len(shapely.get_parts(back(got[4]["geometry"], merc))) == 2
