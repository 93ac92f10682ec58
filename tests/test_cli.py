"""The CLI as users run it: real subprocess for the entry point, CliRunner for the rest."""

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
from click.testing import CliRunner
from shapely.geometry import box
from shikong.server.cli import main

SHIKONG = Path(sys.executable).with_name("shikong")


def test_help_lists_commands():
    out = subprocess.run([SHIKONG, "--help"], capture_output=True, text=True, check=True).stdout
    assert "check" in out


def test_check_reports_what_it_found(tmp_path):
    path = tmp_path / "parcels.gpkg"
    frame = gpd.GeoDataFrame(
        {"地类名称": ["旱地"]},
        geometry=[box(38_500_000, 3_737_000, 38_500_100, 3_737_100)],
        crs=4526,
    )
    frame.to_file(path, layer="parcels")
    result = CliRunner().invoke(main, ["check", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["format"] == "GeoPackage" and report["crs"] == "EPSG:4526"
    assert report["feature_count"] == 1 and report["geometry_types"] == {"Polygon": 1}
    lon0, lat0, lon1, lat1 = report["bbox"]
    assert 113.99 < lon0 < lon1 < 114.01 and 33.7 < lat0 < lat1 < 33.8
    table = CliRunner().invoke(main, ["check", str(path)])
    assert table.exit_code == 0 and "地类名称" in table.output


def test_bad_input_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "broken.geojson"
    bad.write_text("{not json")
    proc = subprocess.run([SHIKONG, "check", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "broken.geojson" in proc.stderr and "Traceback" not in proc.stderr
