"""Readers: encodings, CRS settling, repair, and clear errors for bad input."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
from pyproj import Transformer
from shapely.geometry import Point, Polygon, box
from shikong.spatial.errors import CRSError, EncodingError, FormatError, InputError
from shikong.spatial.readers import read

CHINESE = {
    "地类名称": ["水田", "旱地", "乔木林地"],
    "权属单位": ["新华区东村", "卫东区西村", "石龙区"],
}
# DBF field names hold 10 bytes: 4 Chinese characters fit in GBK (8) but not in UTF-8 (12)
CHINESE_UTF8 = {"地类名": CHINESE["地类名称"], "权属": CHINESE["权属单位"]}


def gk38_frame(prefixed: bool, columns: dict = CHINESE) -> gpd.GeoDataFrame:
    offset = 38_000_000 if prefixed else 0
    geoms = [
        box(offset + 500_000 + i * 300, 3_737_000, offset + 500_200 + i * 300, 3_737_100)
        for i in range(3)
    ]
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=4526 if prefixed else 4547)


def write_shapefile(frame: gpd.GeoDataFrame, path: Path, encoding: str, cpg: bool) -> Path:
    pyogrio.write_dataframe(frame, path, encoding=encoding)
    if not cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
        with open(path.with_suffix(".dbf"), "r+b") as dbf:  # clear the language driver id too
            dbf.seek(29)
            dbf.write(b"\x00")
    return path


@pytest.mark.parametrize(("encoding", "cpg"), [("GBK", False), ("GBK", True), ("UTF-8", True)])
def test_chinese_shapefile_roundtrip(tmp_path, encoding, cpg):
    columns = CHINESE_UTF8 if encoding == "UTF-8" else CHINESE
    shp = write_shapefile(gk38_frame(True, columns), tmp_path / "地类图斑.shp", encoding, cpg)
    frame, report = read(shp)
    assert list(frame.columns[:2]) == list(columns)
    for column, values in columns.items():
        assert frame[column].tolist() == values
    assert frame.crs.to_epsg() == 4490
    origin = ".cpg" if cpg else "detected"
    assert origin in report.encoding
    assert report.feature_count == 3


def test_undeclared_gbk_is_detected_not_latin1(tmp_path):
    shp = write_shapefile(gk38_frame(prefixed=True), tmp_path / "gbk.shp", "GBK", cpg=False)
    assert not shp.with_suffix(".cpg").exists()
    frame, report = read(shp)
    assert report.encoding.startswith("gbk")
    assert "地类名称" in frame.columns


def test_prefixed_eastings_under_unprefixed_label_are_detected(tmp_path, gk38_to_4490):
    frame = gk38_frame(prefixed=True).set_crs(4547, allow_override=True)  # mislabelled
    shp = tmp_path / "mislabelled.shp"
    pyogrio.write_dataframe(frame, shp, encoding="UTF-8")
    out, report = read(shp)
    assert report.crs == "EPSG:4526"
    assert any("zone-38 prefix" in a for a in report.actions)
    truth = gk38_to_4490(box(500_000, 3_737_000, 500_200, 3_737_100))
    np.testing.assert_allclose(
        sorted(out.geometry[0].exterior.coords), sorted(truth.exterior.coords), atol=1e-9
    )


def test_gk_vertex_lands_where_pyproj_puts_it(tmp_path):
    shp = write_shapefile(gk38_frame(prefixed=True), tmp_path / "v.shp", "GBK", cpg=False)
    out, _ = read(shp)
    lon, lat = Transformer.from_crs(4547, 4490, always_xy=True).transform(500_000, 3_737_000)
    assert (lon, lat) in [pytest.approx(c, abs=1e-9) for c in out.geometry[0].exterior.coords]
    assert lon == pytest.approx(114.0)  # the central meridian of zone 38


def test_declared_utf8_contradicted_by_gbk_bytes(tmp_path):
    shp = write_shapefile(gk38_frame(prefixed=True), tmp_path / "liar.shp", "GBK", cpg=False)
    shp.with_suffix(".cpg").write_text("UTF-8")
    with pytest.raises(EncodingError, match=r"not valid utf-8 as the \.cpg declares.*gbk"):
        read(shp)


@pytest.mark.parametrize(("sidecar", "message"), [(".shx", "shx index"), (".dbf", ".dbf")])
def test_truncated_shapefile(tmp_path, sidecar, message):
    shp = write_shapefile(gk38_frame(prefixed=True), tmp_path / "t.shp", "UTF-8", cpg=True)
    shp.with_suffix(sidecar).unlink()
    with pytest.raises(FormatError, match=f"truncated shapefile.*{message}") as info:
        read(shp)
    assert "t.shp" in str(info.value)


def test_shapefile_without_prj_needs_a_declared_crs(tmp_path):
    shp = write_shapefile(gk38_frame(prefixed=True), tmp_path / "noprj.shp", "UTF-8", cpg=True)
    shp.with_suffix(".prj").unlink()
    with pytest.raises(CRSError, match="no coordinate reference system"):
        read(shp)
    frame, report = read(shp, crs="EPSG:4526")
    assert report.crs_origin == "declared" and frame.crs.to_epsg() == 4490


def test_unknown_crs_declaration(tmp_path):
    shp = write_shapefile(gk38_frame(prefixed=True), tmp_path / "u.shp", "UTF-8", cpg=True)
    with pytest.raises(CRSError, match="unknown coordinate reference system 'EPSG:12345678'"):
        read(shp, crs="EPSG:12345678")


def test_garbage_prj(tmp_path):
    shp = write_shapefile(gk38_frame(prefixed=True), tmp_path / "g.shp", "UTF-8", cpg=True)
    shp.with_suffix(".prj").write_text("this is not a projection")
    with pytest.raises(CRSError, match=r"\.prj"):
        read(shp)


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp", ".parquet"])
def test_corrupt_files(tmp_path, suffix):
    bad = tmp_path / f"corrupt{suffix}"
    bad.write_bytes(b"\x00\x01garbage" * 20)
    if suffix == ".shp":
        bad.with_suffix(".shx").write_bytes(b"\x00" * 10)
        bad.with_suffix(".dbf").write_bytes(b"\x03" + b"\x00" * 40)
    with pytest.raises(FormatError) as info:
        read(bad)
    assert f"corrupt{suffix}" in str(info.value)


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read(tmp_path / "nope.geojson")
    other = tmp_path / "a.xyz"
    other.write_text("1")
    with pytest.raises(FormatError, match="unsupported file type '.xyz'"):
        read(other)


def test_geopackage_layers(tmp_path):
    gpkg = tmp_path / "nrp.gpkg"
    frame = gk38_frame(prefixed=False)
    pyogrio.write_dataframe(frame, gpkg, layer="永久基本农田")
    pyogrio.write_dataframe(frame.iloc[:1], gpkg, layer="生态保护红线", append=False)
    with pytest.raises(InputError, match="choose one.*永久基本农田"):
        read(gpkg)
    out, report = read(gpkg, layer="生态保护红线")
    assert len(out) == 1 and report.layer == "生态保护红线"
    with pytest.raises(InputError, match="no layer 'x'"):
        read(gpkg, layer="x")


def test_geojson_bow_tie_repaired_and_reported(tmp_path):
    bow_tie = Polygon([(113.0, 33.7), (113.01, 33.71), (113.01, 33.7), (113.0, 33.71)])
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"id": 1}, "geometry": bow_tie.__geo_interface__},
            {"type": "Feature", "properties": {"id": 2}, "geometry": None},
            {
                "type": "Feature",
                "properties": {"id": 3},
                "geometry": Point(113.2, 33.8).__geo_interface__,
            },
        ],
    }
    path = tmp_path / "mixed.geojson"
    path.write_text(json.dumps(fc))
    frame, report = read(path)
    assert len(report.repaired) == 1 and "Self-intersection" in report.repaired[0][1]
    repaired = frame.geometry[0]
    assert repaired.is_valid and repaired.geom_type == "MultiPolygon"
    assert report.geometry_types == {"MultiPolygon": 1, "Point": 1, "Empty": 1}
    assert any("no geometry" in w for w in report.warnings)


def test_outside_china_is_flagged_as_a_crs_error(tmp_path):
    path = tmp_path / "paris.geojson"
    gpd.GeoDataFrame(geometry=[Point(2.35, 48.85)], crs=4326).to_file(path)
    with pytest.raises(CRSError, match="outside China"):
        read(path)


def test_metres_labelled_as_degrees(tmp_path):
    path = tmp_path / "metres.geojson"
    gpd.GeoDataFrame(geometry=[Point(500_000, 3_737_000)], crs=4490).to_file(path)
    with pytest.raises(CRSError, match="not degrees"):
        read(path)


def test_geoparquet(tmp_path):
    path = tmp_path / "l.parquet"
    gk38_frame(prefixed=False).to_parquet(path)
    frame, report = read(path)
    assert report.format == "GeoParquet" and frame.crs.to_epsg() == 4490
    assert frame["地类名称"].tolist() == CHINESE["地类名称"]


def test_csv_lonlat_gbk(tmp_path):
    path = tmp_path / "stations.csv"
    path.write_bytes("站点,经度,纬度\n东站,113.30,33.75\n西站,113.10,33.70\n".encode("gbk"))
    frame, report = read(path)
    assert report.encoding == "gbk" and frame["站点"].tolist() == ["东站", "西站"]
    assert (frame.geometry[0].x, frame.geometry[0].y) == (113.30, 33.75)


def test_csv_survey_order_with_declared_crs(tmp_path):
    path = tmp_path / "survey.csv"
    path.write_text("name,X,Y\nJ1,3737000,38500000\n")
    frame, _ = read(path, crs="EPSG:4526", xy_order="survey")
    lon, lat = Transformer.from_crs(4547, 4490, always_xy=True).transform(500_000, 3_737_000)
    assert frame.geometry[0].x == pytest.approx(lon, abs=1e-9)
    assert frame.geometry[0].y == pytest.approx(lat, abs=1e-9)


def test_csv_errors(tmp_path):
    path = tmp_path / "xy.csv"
    path.write_text("name,x,y\na,500000,3737000\n")
    with pytest.raises(CRSError, match="need a declared coordinate reference system"):
        read(path)
    path.write_text("name,lon,lat\na,113.1,33.7\nb,abc,33.8\n")
    with pytest.raises(FormatError, match="'abc', not a number") as info:
        read(path)
    assert info.value.where == "row 3"
    path.write_text("name,value\na,1\n")
    with pytest.raises(FormatError, match="no coordinate columns"):
        read(path)


def test_utf8_names_cut_by_the_dbf_limit_are_read_and_reported(tmp_path):
    shp = write_shapefile(gk38_frame(prefixed=True), tmp_path / "cut.shp", "UTF-8", cpg=True)
    frame, report = read(shp)
    assert list(frame.columns[:2]) == ["地类名", "权属单"]  # 9 of 12 bytes survive
    assert frame["地类名"].tolist() == CHINESE["地类名称"]
    assert any("10-byte DBF limit" in w for w in report.warnings)


# Deliveries: a folder or a .zip holding the dataset, as departments send shapefiles.

GBK_STEM = "地类图斑"


def gbk_named_zip(path: Path, files: dict[str, Path]) -> Path:
    """A zip as Chinese Windows tools write it: member names in GBK, no UTF-8 flag.

    Python writes non-ASCII names as flagged UTF-8, so each member is written under an
    ASCII placeholder as long as its GBK name, then the name bytes are swapped (names are
    outside the CRC, and equal lengths keep every offset).
    """
    names = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, (name, source) in enumerate(files.items()):
            raw = name.encode("gbk")
            placeholder = chr(ord("A") + i).encode() * len(raw)  # none inside another
            names[placeholder] = raw
            zf.write(source, placeholder.decode())
    data = path.read_bytes()
    for placeholder, raw in names.items():
        assert data.count(placeholder) == 2  # local header and central directory
        data = data.replace(placeholder, raw)
    path.write_bytes(data)
    return path


def sidecars(shp: Path) -> list[Path]:
    return sorted(shp.parent.glob(f"{shp.stem}.*"))


def test_folder_holding_one_shapefile(tmp_path, gk38_to_4490):
    delivery = tmp_path / "delivery"
    (delivery / "矢量").mkdir(parents=True)
    shp = write_shapefile(gk38_frame(True), delivery / "矢量" / "地类图斑.shp", "GBK", cpg=False)
    (delivery / "说明.txt").write_text("2024年度变更调查成果", encoding="utf-8")
    frame, report = read(delivery)
    assert frame["地类名称"].tolist() == CHINESE["地类名称"]
    assert report.encoding == "gbk (detected)"
    assert report.source == str(shp) and report.delivery == str(delivery)
    assert report.actions[0] == (
        "opened 矢量/地类图斑.shp, the one dataset in delivery (not read: 说明.txt)"
    )
    truth = gk38_to_4490(box(500_000, 3_737_000, 500_200, 3_737_100))
    assert frame.geometry[0].normalize().equals_exact(truth.normalize(), tolerance=1e-9)


def test_zip_with_gbk_names_and_a_gbk_shapefile_in_a_subfolder(tmp_path, gk38_to_4490):
    made = tmp_path / "made"
    made.mkdir()
    shp = write_shapefile(gk38_frame(True), made / f"{GBK_STEM}.shp", "GBK", cpg=False)
    files = {f"成果/{GBK_STEM}{p.suffix}": p for p in sidecars(shp)}
    files[f"__MACOSX/成果/._{GBK_STEM}.shp"] = shp.with_suffix(".shx")  # a Mac's junk
    delivery = gbk_named_zip(tmp_path / "delivery.zip", files)
    with zipfile.ZipFile(delivery) as zf:
        assert not any(info.flag_bits & 0x800 for info in zf.infolist())
    frame, report = read(delivery)
    assert frame["权属单位"].tolist() == CHINESE["权属单位"]
    assert report.encoding == "gbk (detected)"  # the bytes of the .dbf decided, as for a file
    assert report.source == f"{delivery}/成果/{GBK_STEM}.shp"
    assert report.actions[0] == f"opened 成果/{GBK_STEM}.shp, the one dataset in delivery.zip"
    truth = gk38_to_4490(box(500_600, 3_737_000, 500_800, 3_737_100))
    assert frame.geometry[2].normalize().equals_exact(truth.normalize(), tolerance=1e-9)
    same, _ = read(f"{delivery}/成果/{GBK_STEM}.shp")  # GDAL's /vsizip/-style path
    assert same.geometry.geom_equals(frame.geometry).all()


def test_zip_with_several_datasets_lists_them_and_layer_chooses(tmp_path):
    made = tmp_path / "made"
    made.mkdir()
    shp = write_shapefile(gk38_frame(True), made / "parcels.shp", "UTF-8", cpg=True)
    roads = made / "roads.geojson"
    gpd.GeoDataFrame(
        {"name": ["a", "b"]}, geometry=[Point(113.3, 33.7), Point(113.4, 33.8)], crs=4490
    ).to_file(roads)
    zipped = tmp_path / "two.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for p in sidecars(shp):
            zf.write(p, f"shp/{p.name}")
        zf.write(roads, "roads.geojson")
        zf.writestr("readme.txt", "not a dataset")
    with pytest.raises(InputError, match="holds 2 datasets.*--layer") as info:
        read(zipped)
    assert "roads.geojson" in str(info.value) and "shp/parcels.shp" in str(info.value)
    frame, report = read(zipped, layer="roads")
    assert frame["name"].tolist() == ["a", "b"] and report.format == "GeoJSON"
    assert report.actions[0] == "opened roads.geojson in two.zip (chosen by layer)"
    frame, _ = read(zipped, layer="shp/parcels.shp")
    assert len(frame) == 3
    frame, _ = read(zipped / "shp" / "parcels.shp")
    assert len(frame) == 3
    with pytest.raises(InputError, match="no dataset 'rivers' in this zip: .*roads.geojson"):
        read(zipped, layer="rivers")
    with pytest.raises(InputError, match="has no 'shp/x.shp'.*shp/parcels.shp"):
        read(zipped / "shp" / "x.shp")


def test_errors_inside_a_zip_name_the_zip_not_a_temporary_folder(tmp_path):
    shp = write_shapefile(gk38_frame(True), tmp_path / "t.shp", "UTF-8", cpg=True)
    zipped = tmp_path / "broken.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for p in sidecars(shp):
            if p.suffix != ".shx":
                zf.write(p, f"sub/{p.name}")
    with pytest.raises(FormatError, match="the .shx index file is missing") as info:
        read(zipped)
    assert info.value.source == f"{zipped}/sub/t.shp"
    assert "shikong-zip" not in str(info.value)


def test_deliveries_that_hold_nothing_readable(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FormatError, match="this folder holds no dataset.*empty"):
        read(empty)
    (empty / "parcels.dbf").write_bytes(b"\x03" + b"\x00" * 40)
    with pytest.raises(FormatError, match=r"holds no dataset .*\(it holds: parcels.dbf\)"):
        read(empty)
    not_zip = tmp_path / "fake.zip"
    not_zip.write_bytes(b"PK\x03\x04 but nothing else")
    with pytest.raises(FormatError, match="not a readable zip"):
        read(not_zip)
    rar = tmp_path / "delivery.rar"
    rar.write_bytes(b"Rar!\x1a\x07\x00")
    with pytest.raises(FormatError, match=r"\.rar archives are not read.*\.zip"):
        read(rar)
