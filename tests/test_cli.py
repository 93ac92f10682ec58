"""The CLI as users run it: real subprocess for the entry point, CliRunner for the rest."""

import json
import os
import subprocess
import sys
import zipfile
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


def zipped_delivery(tmp_path: Path) -> tuple[Path, gpd.GeoDataFrame]:
    """A department's zip: a GBK shapefile (no .cpg) in a subfolder, and a note."""
    made = tmp_path / "made"
    made.mkdir()
    frame = gpd.GeoDataFrame(
        {"地类名称": ["水田", "旱地"], "面积": [1.5, 2.5]},
        geometry=[box(38_500_000, 3_737_000, 38_500_100, 3_737_100)] * 2,
        crs=4526,
    )
    frame.to_file(made / "地类图斑.shp", encoding="GBK")
    (made / "地类图斑.cpg").unlink(missing_ok=True)
    delivery = tmp_path / "地类图斑_2024.zip"
    with zipfile.ZipFile(delivery, "w") as zf:
        for part in sorted(made.iterdir()):
            zf.write(part, f"成果/{part.name}")
        zf.writestr("说明.txt", "2024年度")
    return delivery, frame


def test_check_and_ingest_a_zip_say_which_dataset_was_taken(tmp_path):
    delivery, frame = zipped_delivery(tmp_path)
    proc = subprocess.run([SHIKONG, "check", str(delivery)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "opened 成果/地类图斑.shp, the one dataset in 地类图斑_2024.zip" in proc.stdout
    assert "gbk (detected)" in proc.stdout
    data = tmp_path / "data"
    args = ["ingest", str(delivery), "-d", "nrp", "-l", "landuse", "--data", str(data)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "created nrp-landuse-v1" in result.output
    assert "opened 成果/地类图斑.shp" in result.output
    from shikong.catalog import Catalog

    stored = Catalog.open(data)["nrp-landuse"].to_geodataframe()
    assert stored["地类名称"].tolist() == frame["地类名称"].tolist()
    truth = frame.to_crs(4490).geometry[0]
    assert stored.geometry[0].normalize().equals_exact(truth.normalize(), tolerance=1e-9)


def test_a_folder_of_several_datasets_is_refused_listing_them(tmp_path):
    folder = tmp_path / "delivery"
    folder.mkdir()
    frame = gpd.GeoDataFrame({"n": [1]}, geometry=[box(113.3, 33.7, 113.4, 33.8)], crs=4490)
    frame.to_file(folder / "a.geojson")
    frame.to_file(folder / "b.gpkg", layer="b")
    proc = subprocess.run([SHIKONG, "check", str(folder)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "holds 2 datasets" in proc.stderr and "a.geojson, b.gpkg" in proc.stderr
    data = tmp_path / "data"
    args = ["ingest", str(folder), "-d", "nrp", "-l", "b", "--source-layer", "b.gpkg"]
    result = CliRunner().invoke(main, [*args, "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert "opened b.gpkg in delivery (chosen by layer)" in result.output


GROUPS = (
    "audit", "catalog", "check", "demo", "ingest", "keys", "migrate", "raster", "serve",
    "sharing", "simulate", "stats", "tiles",
)  # fmt: skip


def python_m(*args: str) -> subprocess.CompletedProcess:
    """`python -m shikong.server.cli ARGS` as `demo run` starts its server."""
    env = {**os.environ, "COLUMNS": "200"}  # rich tables unfolded
    return subprocess.run(
        [sys.executable, "-m", "shikong.server.cli", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_python_m_runs_every_command_group(tmp_path):
    """Every group answers under `python -m` (the `__main__` guard once sat mid-file, so
    the groups defined after it were unknown there), and `keys list` lists a real key."""
    from shikong.server.identity import KeyStore

    top = python_m("--help")
    assert top.returncode == 0, top.stderr
    listed = {line.split()[0] for line in top.stdout.split("Commands:")[1].splitlines() if line}
    assert listed == set(GROUPS)
    for group in GROUPS:
        proc = python_m(group, "--help")
        assert proc.returncode == 0 and "Usage:" in proc.stdout, (group, proc.stderr)
    _, record = KeyStore(tmp_path).create("wat", "li")
    keys = python_m("keys", "list", "--data", str(tmp_path))
    assert keys.returncode == 0, keys.stderr
    row = next(line for line in keys.stdout.splitlines() if record.key_id in line)
    assert "wat" in row and "li" in row and "user" in row
    revoked = python_m("keys", "revoke", record.key_id, "--data", str(tmp_path))
    assert revoked.returncode == 0 and f"revoked {record.key_id}" in revoked.stdout
    assert KeyStore(tmp_path).list()[0].revoked


def test_catalog_directory_finds_layers_by_chinese_text_as_the_stac_files_say(demo_data):
    """`catalog directory -q 宗地` lists exactly the layers whose collection (read from the
    STAC JSON on disk) mentions 宗地 in its title, description or keywords."""
    expected = set()
    for path in (demo_data / "stac").glob("*/*/collection.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        words = " ".join(
            [doc.get("title") or "", doc.get("description") or "", *doc.get("keywords", [])]
        )
        if "宗地" in words:
            expected.add(doc["id"])
    result = CliRunner().invoke(
        main, ["catalog", "directory", "-q", "宗地", "--json", "--data", str(demo_data)]
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert expected and {rec["id"] for rec in found} == expected
    restricted = [rec for rec in found if rec["properties"]["classification"] == "restricted"]
    assert all("owner_name" not in json.dumps(rec, ensure_ascii=False) for rec in restricted)
    bad = CliRunner().invoke(
        main, ["catalog", "directory", "--bbox", "1,2", "--data", str(demo_data)]
    )
    assert bad.exit_code == 2 and "four numbers" in bad.output


def test_catalog_search_takes_a_cql2_filter(demo_data):
    """`catalog search --filter`: the versions whose properties match, as the STAC files
    say (read here directly); a filter that is not CQL2 is one line and exit status 2."""
    truth = set()
    for path in (demo_data / "stac").rglob("*.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("type") == "Feature" and doc["properties"].get("version") == "2020":
            truth.add(doc["id"])
    assert truth
    args = ["catalog", "search", "--data", str(demo_data), "--limit", "1000"]
    result = CliRunner().invoke(main, [*args, "--filter", "version = '2020'"])
    assert result.exit_code == 0, result.output
    listed = {line.split()[0] for line in result.output.splitlines()[:-1] if line.strip()}
    assert listed == truth
    assert result.output.splitlines()[-1] == f"{len(truth)} of {len(truth)} items"
    bad = CliRunner().invoke(main, [*args, "--filter", "version =="])
    assert bad.exit_code == 2 and "--filter" in bad.output and "Traceback" not in bad.output
