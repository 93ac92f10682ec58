"""Hostile ingests (issue 17, classes 4 and 5): corrupt sources are refused before anything
is written, and what a killed or refused ingest leaves is never served and is cleaned up.

Every case runs the real command line (`shikong check`, `shikong ingest`) in a subprocess
with a timeout, so a hang (a FIFO opened for reading) fails instead of blocking the suite.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from subprocess import PIPE

import geopandas as gpd
import httpx
import numpy as np
import pytest
import rasterio
import xarray as xr
from conftest import RunningServer, free_port
from rasterio.transform import from_origin
from shapely.geometry import Point, box
from shikong.catalog import Catalog
from shikong.spatial.raster import open_raster, write_cog

SHIKONG = Path(sys.executable).with_name("shikong")
TIMEOUT = 120  # seconds: far above any honest answer, so only a hang reaches it


# -- the malformed-file factory ---------------------------------------------------------
def frame(n: int = 5, missing: tuple[int, ...] = ()) -> gpd.GeoDataFrame:
    """n small squares near 113.1E 33.7N (the demo city), None where ``missing``."""
    return gpd.GeoDataFrame(
        {"name": [f"图斑{i}" for i in range(n)], "n": list(range(n))},
        geometry=[
            None if i in missing else box(113 + i * 0.01, 33.7, 113.005 + i * 0.01, 33.705)
            for i in range(n)
        ],
        crs=4490,
    )


def shapefile(folder: Path, n: int = 5, missing: tuple[int, ...] = ()) -> Path:
    folder.mkdir(parents=True)
    path = folder / "x.shp"
    frame(n, missing).to_file(path, engine="pyogrio", encoding="utf-8")
    return path


def shape_offset(shp: Path, k: int) -> int:
    """Byte offset of shape record k in the .shp, from the .shx (big-endian 16-bit words)."""
    index = shp.with_suffix(".shx").read_bytes()
    return struct.unpack(">i", index[100 + 8 * k : 104 + 8 * k])[0] * 2


def cut(path: Path, keep: int | float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(keep if keep >= 1 else len(data) * keep)])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _truncated_tail(d: Path) -> Path:
    p = shapefile(d)
    cut(p, p.stat().st_size - 60)  # the last shape loses its end
    return p


def _truncated_half(d: Path) -> Path:
    p = shapefile(d)
    cut(p, 0.5)
    return p


def _header_only(d: Path) -> Path:
    p = shapefile(d)
    cut(p, 100)  # the header says 5 shapes follow; none do
    return p


def _dbf_of(d: Path, shapes: int, records: int) -> Path:
    p = shapefile(d / "a", shapes)
    other = shapefile(d / "b", records)
    shutil.copy(other.with_suffix(".dbf"), p.with_suffix(".dbf"))
    return p


def _shx_cut(d: Path) -> Path:
    p = shapefile(d)
    cut(p.with_suffix(".shx"), p.with_suffix(".shx").stat().st_size - 16)
    return p


def _dbf_cut(d: Path) -> Path:
    p = shapefile(d)
    cut(p.with_suffix(".dbf"), p.with_suffix(".dbf").stat().st_size - 30)
    return p


def _record_garbage(d: Path) -> Path:
    """Shape 3 keeps its place but claims 99,999 parts and points: GDAL cannot decode it."""
    p = shapefile(d)
    at = shape_offset(p, 2) + 8 + 4 + 32  # record header, shape type, bbox
    data = bytearray(p.read_bytes())
    data[at : at + 8] = struct.pack("<ii", 99_999, 99_999)
    p.write_bytes(bytes(data))
    return p


def _record_bad_type(d: Path) -> Path:
    p = shapefile(d)
    at = shape_offset(p, 2) + 8
    data = bytearray(p.read_bytes())
    data[at : at + 4] = struct.pack("<i", 77)  # no such shape type
    p.write_bytes(bytes(data))
    return p


def _nan_vertex(d: Path) -> Path:
    """Vertex 2 of shape 2 has X = NaN: a double a .shp can hold, no coordinate."""
    p = shapefile(d)
    at = shape_offset(p, 1) + 8 + 4 + 32 + 4 + 4 + 4 + 16  # header, type, bbox, counts, part
    data = bytearray(p.read_bytes())
    data[at : at + 8] = struct.pack("<d", float("nan"))
    p.write_bytes(bytes(data))
    return p


def _prj(text: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        p = shapefile(d)
        p.with_suffix(".prj").write_text(text)
        return p

    return build


def _zero(suffix: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        p = shapefile(d)
        p.with_suffix(suffix).write_bytes(b"")
        return p

    return build


def _zero_file(name: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        d.mkdir(parents=True)
        (d / name).write_bytes(b"")
        return d / name

    return build


def _fifo_sidecar(d: Path) -> Path:
    p = shapefile(d)
    p.with_suffix(".dbf").unlink()
    fifo(p.with_suffix(".dbf"))
    return p


def _folder_named_shp(d: Path) -> Path:
    write(d / "x.shp" / "readme.md", "a folder, not a shapefile")
    return d / "x.shp"


def _geojson(coordinates: str, kind: str = "Point") -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        good = '{"type":"Point","coordinates":[113.1,33.7]}'
        bad = f'{{"type":"{kind}","coordinates":{coordinates}}}'
        features = ",".join(
            f'{{"type":"Feature","properties":{{"n":{n}}},"geometry":{g}}}'
            for n, g in enumerate((good, bad))
        )
        return write(d / "x.geojson", f'{{"type":"FeatureCollection","features":[{features}]}}')

    return build


def _csv(text: str, name: str = "x.csv") -> Callable[[Path], Path]:
    return lambda d: write(d / name, text)


def _parquet_nan(d: Path) -> Path:
    d.mkdir(parents=True)
    gpd.GeoDataFrame(
        {"n": [1, 2]}, geometry=[Point(113.1, 33.7), Point(113.2, float("nan"))], crs=4490
    ).to_parquet(d / "x.parquet")
    return d / "x.parquet"


def _gpkg_cut(d: Path) -> Path:
    d.mkdir(parents=True)
    frame().to_file(d / "x.gpkg", driver="GPKG")
    cut(d / "x.gpkg", 0.4)
    return d / "x.gpkg"


def _zip_cut(d: Path) -> Path:
    p = shapefile(d / "src")
    with zipfile.ZipFile(d / "x.zip", "w") as zf:
        for part in p.parent.iterdir():
            zf.write(part, part.name)
    cut(d / "x.zip", 0.5)
    return d / "x.zip"


def _coordinate_nan(d: Path) -> Path:
    text = (
        "[属性描述]\n坐标系=2000国家大地坐标系\n几度分带=3\n投影类型=高斯克吕格\n计量单位=米\n"
        "带号=38\n精度=0.001\n[地块坐标]\n4,1.0000,D01,甲地块,面,,工业用地,,@\n"
        "J1,1,3737000.000,38500000.000\nJ2,1,nan,38500100.000\n"
        "J3,1,3737100.000,38500100.000\nJ1,1,3737000.000,38500000.000\n"
    )
    return write(d / "x.txt", text)


LONLAT = "lon,lat,n\n113.1,33.7,1\n"
CASES: dict[str, tuple[Callable[[Path], Path], list[str]]] = {
    # truncated or mismatched shapefiles (GDAL reads these "successfully")
    "shp cut at the last shape": (_truncated_tail, []),
    "shp cut in half": (_truncated_half, []),
    "shp header only": (_header_only, []),
    "dbf with more rows than shapes": (lambda d: _dbf_of(d, 5, 8), []),
    "dbf with fewer rows than shapes": (lambda d: _dbf_of(d, 8, 5), []),
    "shx cut": (_shx_cut, []),
    "dbf cut": (_dbf_cut, []),
    "shape record with garbage counts": (_record_garbage, []),
    "shape record of no known type": (_record_bad_type, []),
    "shape with a NaN vertex": (_nan_vertex, []),
    "prj of garbage": (_prj("this is not a coordinate system"), []),
    "prj of half a WKT": (_prj('GEOGCS["China Geodetic Coordinate System 2000",DATUM['), []),
    "prj empty": (_prj(""), []),
    # zero-byte files
    "shp zero bytes": (_zero(".shp"), []),
    "dbf zero bytes": (_zero(".dbf"), []),
    "shx zero bytes": (_zero(".shx"), []),
    "geojson zero bytes": (_zero_file("x.geojson"), []),
    "csv zero bytes": (_zero_file("x.csv"), []),
    "coordinate text zero bytes": (_zero_file("x.txt"), []),
    "zip zero bytes": (_zero_file("x.zip"), []),
    # special files: must not block
    "fifo named .geojson": (lambda d: fifo(d / "x.geojson"), []),
    "fifo named .csv": (lambda d: fifo(d / "x.csv"), []),
    "fifo named .shp": (lambda d: fifo(d / "x.shp"), []),
    "fifo named .zip": (lambda d: fifo(d / "x.zip"), []),
    "fifo as the .dbf of a shapefile": (_fifo_sidecar, []),
    "folder named x.shp": (_folder_named_shp, []),
    # NaN and infinite coordinates
    "geojson point NaN": (_geojson("[NaN, 33.7]"), []),
    "geojson point Infinity": (_geojson("[113.2, Infinity]"), []),
    "geojson polygon with a NaN vertex": (
        _geojson("[[[113.1,33.7],[113.2,NaN],[113.2,33.8],[113.1,33.7]]]", "Polygon"),
        [],
    ),
    "geojson number overflowing to inf": (_geojson("[1e400, 33.7]"), []),
    # geometries GDAL reads as null without a word, or cannot build
    "geojson Point without coordinates": (_geojson("[]", "Point"), []),
    "geojson geometry of no known type": (_geojson("[113.1, 33.7]", "Blob"), []),
    "geojson ring that does not close": (
        _geojson("[[[113.1,33.7],[113.2,33.7],[113.2,33.8]]]", "Polygon"),
        [],
    ),
    "csv lon nan": (_csv(LONLAT + "nan,33.8,2\n"), []),
    "csv lon inf": (_csv(LONLAT + "inf,33.8,2\n"), []),
    "csv lat -inf": (_csv(LONLAT + "113.2,-inf,2\n"), []),
    "csv wkt with nan": (_csv('wkt,n\n"POINT (113.1 33.7)",1\n"POINT (nan 33.7)",2\n'), []),
    "csv x/y NaN with a CRS": (
        _csv("x,y,n\n500000,3737000,1\nNaN,3737010,2\n"),
        ["--crs", "EPSG:4547"],
    ),
    "geoparquet with a NaN point": (_parquet_nan, []),
    "coordinate text with nan": (_coordinate_nan, []),
    # other corruption
    "geojson cut mid-array": (
        lambda d: write(d / "x.geojson", '{"type": "FeatureCollection", "features": ['),
        [],
    ),
    "csv header only, no coordinates": (_csv("name,value\n"), []),
    "gpkg cut": (_gpkg_cut, []),
    "zip cut": (_zip_cut, []),
    # a wrong CRS: every feature lands outside China
    "lon/lat declared as a GK zone": (_csv(LONLAT), ["--crs", "EPSG:4547"]),
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, tuple[Path, list[str]]]:
    root = tmp_path_factory.mktemp("hostile")
    built = {}
    for i, (name, (build, args)) in enumerate(CASES.items()):
        built[name] = (build(root / f"case{i:02d}"), args)
    return built


# -- a small catalog and what "unchanged" means ------------------------------------------
def tree_digest(folder: Path) -> dict[str, str]:
    """Every entry under a folder: files by content hash, folders by name."""
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        )
        for p in sorted(folder.rglob("*"))
    }


def state(data: Path) -> tuple:
    """What a refused ingest must leave as it was: the assets and STAC trees, the catalog
    version and every item."""
    cat = Catalog.open(data)
    items = sorted(i["id"] for c in cat.store.collections() for i in cat.store.items_of(c["id"]))
    return tree_digest(data / "assets"), tree_digest(data / "stac"), cat.version, items


def good_geojson(path: Path, n: int = 3) -> Path:
    frame(n).to_file(path)
    return path


def run(*args: object, timeout: float = TIMEOUT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SHIKONG), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def finish(proc: subprocess.Popen, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """Wait for a started command; a hang is killed and fails the test."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_refused(proc: subprocess.CompletedProcess, what: str) -> None:
    err = proc.stderr.strip()
    assert proc.returncode == 2, f"{what}: exit {proc.returncode}\n{proc.stdout}\n{err}"
    assert "Traceback" not in err, f"{what}: {err}"
    assert len(err.splitlines()) == 1, f"{what}: not one line:\n{err}"
    assert err.startswith("error: "), f"{what}: {err}"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A catalog with one committed, public layer nrp-landuse (version 1)."""
    root = tmp_path_factory.mktemp("hostile-data")
    good = good_geojson(root / "good.geojson")
    Catalog.open(root / "data").ingest(
        good, department="nrp", layer="landuse", version="1", classification="public"
    )
    return root / "data"


# -- class 5: corrupt sources are refused, with one line, before anything is written -----
@pytest.mark.parametrize("name", list(CASES))
def test_corrupt_source_is_refused_by_check_and_ingest(name, cases, data):
    source, args = cases[name]
    before = state(data)
    check = subprocess.Popen(  # beside the ingest: check writes nothing, so they are apart
        [SHIKONG, "check", source, *args], stdout=PIPE, stderr=PIPE, text=True
    )
    proc = run("ingest", source, "-d", "nrp", "-l", "landuse", "--data", data, *args)
    assert_refused(finish(check), f"check {name}")
    assert_refused(proc, f"ingest {name}")
    assert state(data) == before, f"ingest {name} changed the catalog"


def test_features_without_geometry_in_a_valid_file_are_kept_with_a_warning(tmp_path):
    """The rule: a record the file itself declares null (a null shape, "geometry": null)
    is a feature without geometry, kept and warned about; a shape that is missing or
    cannot be decoded (the cases above) makes the file corrupt."""
    shp = shapefile(tmp_path / "shp", 5, missing=(1, 3))
    geojson = write(
        tmp_path / "nulls.geojson",
        '{"type":"FeatureCollection","features":['
        '{"type":"Feature","properties":{"n":1},"geometry":null},'
        '{"type":"Feature","properties":{"n":2},"geometry":{"type":"Point","coordinates":[113.1,33.7]}}]}',
    )
    for source, count, missing in ((shp, 5, 2), (geojson, 2, 1)):
        proc = run("check", source, "--json")
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["feature_count"] == count
        assert report["geometry_types"]["Empty"] == missing
        assert f"{missing} features have no geometry (kept)" in report["warnings"]


# -- refusals that come after the source was read ----------------------------------------
def _raster(path: Path, cog: bool) -> Path:
    profile = dict(
        driver="GTiff",
        width=600,
        height=600,
        count=1,
        dtype="float32",
        crs="EPSG:4490",
        transform=from_origin(113.0, 34.0, 0.0005, 0.0005),
        compress="deflate",
    )
    rng = np.random.default_rng(7)
    plain = path.with_name(f"plain-{path.name}")
    with rasterio.open(plain, "w", **profile) as dst:
        dst.write(rng.random((1, 600, 600), dtype="float32"))
    if cog:
        write_cog(open_raster(plain), path)
        plain.unlink()
    else:
        plain.rename(path)
    return path


LATE = {
    # read fine, refused by the writer or the commit: the asset folder was already made
    "duplicate --id-field": (lambda d: _duplicates(d / "dup.geojson"), ["--id-field", "name"]),
    "garbage --valid-from": (lambda d: good_geojson(d / "v.geojson"), ["--valid-from", "soon"]),
    "GeoTIFF cut short": (lambda d: _cut_raster(d / "r.tif", cog=False), []),
    "COG cut short": (lambda d: _cut_raster(d / "c.tif", cog=True), []),
    "GeoTIFF zero bytes": (lambda d: write(d / "z.tif", ""), []),
    "NetCDF cut in half": (lambda d: _cut_cube(d / "cube.nc"), []),
}


def _cut_cube(path: Path) -> Path:
    rng = np.random.default_rng(5)
    xr.Dataset(
        {"rain": (("time", "lat", "lon"), rng.random((10, 40, 40), dtype="float32"))},
        coords={
            "time": np.arange("2024-01-01", "2024-01-11", dtype="datetime64[D]"),
            "lat": np.linspace(33.6, 34.0, 40),
            "lon": np.linspace(113.0, 113.6, 40),
        },
    ).to_netcdf(path)
    cut(path, 0.5)
    return path


def _duplicates(path: Path) -> Path:
    """Two features with the same name: refused when name is the id field."""
    gpd.GeoDataFrame(
        {"name": ["甲", "甲"]}, geometry=[Point(113.1, 33.7), Point(113.2, 33.8)], crs=4490
    ).to_file(path)
    return path


def _cut_raster(path: Path, cog: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _raster(path, cog)
    cut(path, path.stat().st_size - 2000)
    return path


@pytest.mark.parametrize("name", list(LATE))
def test_a_refused_ingest_leaves_no_file_behind(name, data, tmp_path):
    build, args = LATE[name]
    source = build(tmp_path)
    layer = {".geojson": "landuse", ".tif": "dem_hostile"}.get(source.suffix, "rain_hostile")
    before = state(data)
    proc = run("ingest", source, "-d", "nrp", "-l", layer, "--data", data, *args)
    assert_refused(proc, name)
    assert state(data) == before


# -- class 4: a killed ingest is never served, and the next writer removes its residue ---
@pytest.fixture(scope="module")
def served(data):
    running = RunningServer(data, free_port())
    yield running
    running.stop()


def asset_status(served: RunningServer, relative: str) -> int:
    return httpx.get(f"{served.url}/assets/{relative}", timeout=30).status_code


def big_points(path: Path, n: int) -> Path:
    rng = np.random.default_rng(3)
    gpd.GeoDataFrame(
        {"v": np.arange(n)},
        geometry=gpd.points_from_xy(rng.uniform(113, 113.6, n), rng.uniform(33.6, 34, n)),
        crs=4490,
    ).to_parquet(path)
    return path


def test_an_ingest_killed_after_its_asset_is_not_served_and_is_cleaned(data, served, tmp_path):
    v1 = Catalog.open(data).layer("nrp-landuse").as_of("2100-01-01")
    committed = v1.asset_path.relative_to(data / "assets").as_posix()
    assert asset_status(served, committed) == 200  # the control: committed files are served
    source = good_geojson(tmp_path / "killed.geojson", 4)
    proc = run(
        "ingest", source, "-d", "nrp", "-l", "landuse", "--version", "killed", "--data", data,
        env={**os.environ, "SHIKONG_FAULT": "after-asset"},
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL
    residue = data / "assets" / "nrp" / "landuse" / "killed"
    assert (residue / "data.parquet").is_file()  # the dead ingest's file is on disk...
    assert asset_status(served, "nrp/landuse/killed/data.parquet") == 404  # ...and not served
    assert run("catalog", "validate", "--data", data).returncode == 0
    assert "nrp-landuse-vkilled" not in [v.id for v in Catalog.open(data)["nrp-landuse"].versions]
    # the next writer, even of another layer, removes it
    other = good_geojson(tmp_path / "other.geojson", 2)
    done = run("ingest", other, "-d", "nrp", "-l", "hostile_other", "--data", data)
    assert done.returncode == 0, done.stderr
    assert not residue.exists()
    # and the killed version can be ingested again, whole
    again = run(
        "ingest", source, "-d", "nrp", "-l", "landuse", "--version", "killed", "--data", data
    )
    assert again.returncode == 0, again.stderr
    assert len(Catalog.open(data)["nrp-landuse"].as_of("2100-01-01").to_geodataframe()) == 4
    assert asset_status(served, "nrp/landuse/killed/data.parquet") == 200


def test_an_ingest_killed_from_outside_mid_write(data, served, tmp_path):
    """SIGKILL as soon as the new version's folder holds a file: whatever the moment, the
    catalog validates, an uncommitted file is 404, and the next ingest removes it."""
    source = big_points(tmp_path / "big.parquet", 400_000)
    folder = data / "assets" / "nrp" / "landuse" / "big"
    proc = subprocess.Popen(
        [
            SHIKONG,
            "ingest",
            source,
            "-d",
            "nrp",
            "-l",
            "landuse",
            "--version",
            "big",
            "--data",
            data,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + TIMEOUT
    while not (folder.is_dir() and any(folder.iterdir())):
        assert proc.poll() is None, "the ingest ended before writing its asset"
        assert time.monotonic() < deadline, "the asset never appeared"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    files = [p.relative_to(data / "assets").as_posix() for p in folder.rglob("*") if p.is_file()]
    assert files, "killed before any file was written"
    assert run("catalog", "validate", "--data", data).returncode == 0
    committed = "nrp-landuse-vbig" in [v.id for v in Catalog.open(data)["nrp-landuse"].versions]
    for relative in files:
        named = relative.endswith("/data.parquet") and committed
        assert asset_status(served, relative) == (200 if named else 404), relative
    other = good_geojson(tmp_path / "x.geojson", 1)
    done = run("ingest", other, "-d", "nrp", "-l", "hostile_x", "--data", data)
    assert done.returncode == 0, done.stderr
    left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert left == (["data.parquet"] if committed else [])


def test_asset_paths_that_name_no_committed_file(data):
    """committed_asset, the check /assets makes, in process: odd paths are None, not errors."""
    from shikong.catalog.assets import committed_asset

    cat = Catalog.open(data)
    v1 = cat.layer("nrp-landuse").versions[0].asset_path
    relative = v1.relative_to(data / "assets").as_posix()
    assert committed_asset(cat.store, relative) == v1
    for odd in (
        relative + "\x00",
        relative.replace("/1/", "/../"),
        relative.replace("nrp/", "nrp//"),
        relative.replace("landuse", "nope"),
        "nrp/landuse/1",
        "",
        "/etc/passwd",
    ):
        assert committed_asset(cat.store, odd) is None, odd


def test_only_committed_files_are_served(data, served):
    """Files an ingest did not commit are 404 wherever they lie, and odd paths are 404s."""
    stray = data / "assets" / "nrp" / "landuse" / "stray"
    stray.mkdir(parents=True)
    (stray / "data.parquet").write_bytes(b"PAR1 not committed")
    v1 = Catalog.open(data).layer("nrp-landuse").as_of("2100-01-01").asset_path
    tmp = v1.with_name(".data.parquet.123.tmp")
    tmp.write_bytes(b"half")
    try:
        for relative in (
            "nrp/landuse/stray/data.parquet",
            tmp.relative_to(data / "assets").as_posix(),
            "nrp/landuse/1/../stray/data.parquet",
            "nrp/landuse",
            "nrp/landuse/1",
        ):
            assert asset_status(served, relative) == 404, relative
        # a NUL byte: a 4xx (refused before routing, or not found), never a 500
        assert 400 <= asset_status(served, "nrp/landuse/1/data.parquet%00.txt") < 500
    finally:
        shutil.rmtree(stray)
        tmp.unlink()
