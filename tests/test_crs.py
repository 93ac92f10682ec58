import pytest
from pyproj import CRS
from shikong.spatial.crs import (
    GKZone,
    as_crs,
    detect_prefixed_zone,
    gk_epsg,
    gk_zone,
    survey_to_xy,
    zone_from_prefixed_easting,
    zone_of_epsg,
)
from shikong.spatial.errors import CRSError


@pytest.mark.parametrize(
    ("lon", "zone", "prefixed", "plain", "cm"),
    [
        (112.4, 37, 4525, 4546, 111),
        (113.2, 38, 4526, 4547, 114),
        (114.0, 38, 4526, 4547, 114),
        (115.6, 39, 4527, 4548, 117),
    ],
)
def test_three_degree_zone_table(lon, zone, prefixed, plain, cm):
    z = gk_zone(lon)
    assert z == GKZone(3, zone)
    assert z.central_meridian == cm
    assert gk_epsg(z, prefixed=True) == prefixed
    assert gk_epsg(z, prefixed=False) == plain
    # the EPSG registry itself agrees on the central meridian
    params = CRS.from_epsg(plain).to_dict()
    assert params["lon_0"] == cm
    assert CRS.from_epsg(prefixed).to_dict()["x_0"] == zone * 1_000_000 + 500_000


def test_six_degree_zone():
    z = gk_zone(113.2, width=6)
    assert z == GKZone(6, 19) and z.central_meridian == 111
    assert CRS.from_epsg(z.epsg()).to_dict()["lon_0"] == 111
    assert CRS.from_epsg(z.epsg(prefixed=True)).to_dict()["x_0"] == 19_500_000


def test_zone_edge_goes_east():
    assert gk_zone(112.5).number == 38
    assert gk_zone(112.4999).number == 37


def test_prefixed_easting_detection():
    assert zone_from_prefixed_easting(38_500_000) == GKZone(3, 38)
    assert zone_from_prefixed_easting(19_400_000) == GKZone(6, 19)
    assert zone_from_prefixed_easting(500_000) is None
    assert detect_prefixed_zone([38_499_000.0, 38_501_000.5]) == GKZone(3, 38)
    with pytest.raises(CRSError, match="different zone prefixes"):
        detect_prefixed_zone([38_500_000.0, 39_500_000.0])


def test_epsg_roundtrip_over_all_codes():
    for code in range(4491, 4555):
        zone, prefixed = zone_of_epsg(code)
        assert gk_epsg(zone, prefixed=prefixed) == code
    assert zone_of_epsg(4490) is None


def test_survey_order_is_explicit():
    easting, northing = survey_to_xy(3_737_000.0, 38_500_000.0)
    assert (easting, northing) == (38_500_000.0, 3_737_000.0)


def test_unknown_crs_is_a_clear_error():
    with pytest.raises(CRSError, match="unknown coordinate reference system"):
        as_crs("EPSG:999999")
    assert as_crs("http://www.opengis.net/def/crs/EPSG/0/4547").to_epsg() == 4547


def test_longitude_outside_china_zones():
    with pytest.raises(CRSError, match="outside China"):
        gk_zone(10.0)
