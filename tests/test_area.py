"""Areas against independent truth: exact planar figures and an equal-area projection."""

import numpy as np
import pytest
import shapely
from pyproj import CRS, Proj, Transformer
from shapely.geometry import MultiPolygon, Polygon, box
from shikong.spatial.area import (
    ellipsoidal_area_m2,
    geodesic_length_m,
    measure,
    planar_area_m2,
    planar_length_m,
)
from shikong.spatial.units import m2_to_hectares, m2_to_mu


def laea_area(geom_4490) -> float:
    """Area in a Lambert azimuthal equal-area projection centred on the geometry (GRS80)."""
    c = geom_4490.centroid
    laea = CRS.from_proj4(f"+proj=laea +lat_0={c.y} +lon_0={c.x} +ellps=GRS80 +units=m")
    t = Transformer.from_crs(4490, laea, always_xy=True)
    dense = shapely.segmentize(geom_4490, 1e-4)  # follow the geodesic edges closely
    return shapely.transform(dense, lambda xy: np.column_stack(t.transform(*xy.T))).area


def test_square_km_in_zone_38(gk38_to_4490):
    geom = gk38_to_4490(box(520_000, 3_737_000, 521_000, 3_738_000))
    report = measure(geom)
    assert report.zone.number == 38
    assert report.planar.m2 == pytest.approx(1_000_000, abs=0.01)
    assert report.ellipsoidal.m2 == pytest.approx(1_000_000, rel=1e-3)
    assert report.ellipsoidal.m2 == pytest.approx(laea_area(geom), rel=1e-5)
    assert report.planar.hectares == pytest.approx(100.0, abs=1e-8)
    assert report.planar.mu == pytest.approx(1500.0, abs=1e-6)


def test_polygon_with_hole(gk38_to_4490):
    shell = box(500_000, 3_737_000, 501_000, 3_738_000)
    hole = box(500_200, 3_737_200, 500_500, 3_737_400)
    geom = gk38_to_4490(Polygon(shell.exterior.coords, [hole.exterior.coords]))
    assert planar_area_m2(geom) == pytest.approx(940_000, abs=0.01)
    assert ellipsoidal_area_m2(geom) == pytest.approx(laea_area(geom), rel=1e-5)


def test_hole_orientation_does_not_matter(gk38_to_4490):
    shell = box(500_000, 3_737_000, 501_000, 3_738_000)
    hole = list(box(500_200, 3_737_200, 500_500, 3_737_400).exterior.coords)
    a = gk38_to_4490(Polygon(shell.exterior.coords, [hole]))
    b = gk38_to_4490(Polygon(shell.exterior.coords[::-1], [hole[::-1]]))
    assert ellipsoidal_area_m2(a) == pytest.approx(ellipsoidal_area_m2(b), rel=1e-12)


def test_multipolygon(gk38_to_4490):
    parts = [
        box(500_000, 3_737_000, 500_100, 3_737_100),
        box(501_000, 3_737_000, 501_200, 3_737_050),
    ]
    geom = gk38_to_4490(MultiPolygon(parts))
    assert planar_area_m2(geom) == pytest.approx(10_000 + 10_000, abs=0.01)
    assert ellipsoidal_area_m2(geom) == pytest.approx(laea_area(geom), rel=1e-5)


def test_zone_edge_planar_exceeds_ellipsoidal_by_the_scale_factor(gk38_to_4490):
    # about 1.4° east of the central meridian: GK inflates areas by the areal scale k²
    geom = gk38_to_4490(box(628_000, 3_737_000, 629_000, 3_738_000))
    c = geom.centroid
    k2 = Proj("EPSG:4547").get_factors(c.x, c.y).areal_scale
    ratio = planar_area_m2(geom) / ellipsoidal_area_m2(geom)
    assert ratio == pytest.approx(k2, rel=2e-5)
    assert ratio > 1.0002


def test_lengths(gk38_to_4490):
    line = gk38_to_4490(shapely.LineString([(500_000, 3_737_000), (500_000, 3_747_000)]))
    assert planar_length_m(line) == pytest.approx(10_000, abs=1e-3)
    # along the central meridian the GK northing is the true meridian arc length
    assert geodesic_length_m(line) == pytest.approx(10_000, abs=0.01)


def test_units_follow_their_definitions():
    assert m2_to_hectares(10_000) == 1.0
    assert m2_to_mu(10_000 / 15) == pytest.approx(1.0)
    assert m2_to_mu(1_000_000) == pytest.approx(1500.0)
