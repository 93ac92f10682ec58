"""Headless QGIS (Debian 12's 3.22) signs in with a Basic auth config and reads restricted
layers through its OAPIF provider (issue 16, item 20).

QGIS's Python bindings are built for the system python3, so QGIS runs in a subprocess
(``/usr/bin/python3``, ``QT_QPA_PLATFORM=offscreen``) with a throw-away profile and auth
database. The truth is each layer's GeoParquet read here directly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import pytest
from conftest import RunningServer, free_port
from shikong.server.identity import KeyStore

SYSTEM_PYTHON = "/usr/bin/python3"

# Runs under QGIS's python: reads {"url", "layers": [{"typename", "user", "key"}]} on stdin,
# prints one JSON object per layer: validity, CRS, extent, and every feature's attributes
# with the Python type QGIS gave them.
QGIS_SCRIPT = r"""
import json, sys
from qgis.core import QgsApplication, QgsAuthMethodConfig, QgsVectorLayer

spec = json.load(sys.stdin)
app = QgsApplication([], False, spec["profile"])
app.initQgis()
auth = QgsApplication.authManager()
if not auth.setMasterPassword("shikong-test-master", True):
    sys.exit("could not set the QGIS master password")
out = []
for want in spec["layers"]:
    authcfg = ""
    if want.get("key"):
        cfg = QgsAuthMethodConfig("Basic")
        cfg.setName(want["typename"])
        cfg.setConfig("username", want["user"])
        cfg.setConfig("password", want["key"])
        if not auth.storeAuthenticationConfig(cfg)[0]:
            sys.exit("could not store the auth config")
        authcfg = f" authcfg={cfg.id()}"
    uri = f"url='{spec['url']}' typename='{want['typename']}'{authcfg}"
    layer = QgsVectorLayer(uri, want["typename"], "OAPIF")
    got = {"typename": want["typename"], "valid": layer.isValid()}
    if layer.isValid():
        e = layer.extent()
        got.update(
            crs=layer.crs().authid(),
            geographic=layer.crs().isGeographic(),
            extent=[e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()],
            count=layer.featureCount(),
            fields={f.name(): f.typeName() for f in layer.fields()},
            features=[
                {n: [str(v), type(v).__name__] for n, v in zip(f.fields().names(), f.attributes())}
                for f in layer.getFeatures()
            ],
        )
    out.append(got)
    del layer  # before exitQgis: a layer outliving the registries crashes at exit
print(json.dumps(out, ensure_ascii=False))
app.exitQgis()
"""


def truth_of(data: Path, department: str, layer: str) -> gpd.GeoDataFrame:
    """The layer's one stored version, read from its GeoParquet without shikong."""
    versions = sorted((data / "assets" / department / layer).glob("*/data.parquet"))
    assert len(versions) == 1, f"the demo's {department}-{layer} has one version: {versions}"
    return gpd.read_parquet(versions[0])


def require_qgis() -> None:
    found = (
        os.path.exists(SYSTEM_PYTHON)
        and subprocess.run(
            [SYSTEM_PYTHON, "-c", "import qgis.core"],
            capture_output=True,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        ).returncode
        == 0
    )
    if not found:
        if os.environ.get("SHIKONG_REQUIRE_SERVICES"):
            pytest.fail("QGIS's python3-qgis is not installed and SHIKONG_REQUIRE_SERVICES is set")
        pytest.skip("QGIS is not installed (apt-get install python3-qgis)")


@pytest.fixture(scope="module")
def qgis_run(demo_data, tmp_path_factory):
    """One QGIS session over a served copy of the demo city: each layer as its caller."""
    require_qgis()
    root = tmp_path_factory.mktemp("qgis")
    data = root / "data"
    shutil.copytree(demo_data, data)
    keys = KeyStore(data)
    rer, _ = keys.create("rer", "alice")
    psb, _ = keys.create("psb", "wang")
    server = RunningServer(data, free_port())
    runtime = root / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    spec = {
        "url": server.url,
        "profile": str(root / "profile"),
        "layers": [
            # first: QGIS caches responses per URL whatever the auth config, so a layer
            # opened without one after another with one would be served from that cache
            {"typename": "rer-parcels"},  # no auth config: the public
            {"typename": "rer-parcels", "user": "alice", "key": rer},
            {"typename": "psb-camera_sites", "user": "wang", "key": psb},
        ],
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GDAL_HTTP", "PYTHON"))},
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": str(runtime),
        "QGIS_AUTH_DB_DIR_PATH": str(root / "profile"),
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    try:
        done = subprocess.run(
            [SYSTEM_PYTHON, "-c", QGIS_SCRIPT],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    layers = json.loads(done.stdout.strip().splitlines()[-1])
    pairs = zip(layers, spec["layers"], strict=True)
    return data, {(got["typename"], "key" in want): got for got, want in pairs}


def test_qgis_basic_auth_config_loads_a_restricted_layer(qgis_run):
    data, layers = qgis_run
    truth = truth_of(data, "rer", "parcels")
    parcels = layers[("rer-parcels", True)]
    assert parcels["valid"]
    print(f"QGIS 3.22 OAPIF rer-parcels CRS: {parcels['crs']}")  # EPSG:4490 once item 4 lands
    assert parcels["geographic"]
    assert parcels["count"] == len(parcels["features"]) == len(truth)
    assert sorted(int(f["fid"][0]) for f in parcels["features"]) == sorted(truth["fid"])
    xmin, ymin, xmax, ymax = truth.total_bounds  # lon/lat: QGIS keeps x = longitude
    assert parcels["extent"] == pytest.approx([xmin, ymin, xmax, ymax], abs=1e-6)
    # the owner sees personal data as stored
    by_fid = truth.set_index("fid")
    assert all(
        f["id_number"][0] == by_fid.at[int(f["fid"][0]), "id_number"] for f in parcels["features"]
    )


def test_qgis_without_an_auth_config_cannot_see_a_restricted_layer(qgis_run):
    _, layers = qgis_run
    assert not layers[("rer-parcels", False)]["valid"]  # a 404, as if absent


def test_qgis_sees_numbers_as_numbers(qgis_run):
    data, layers = qgis_run
    truth = truth_of(data, "rer", "parcels").set_index("fid")
    parcels = layers[("rer-parcels", True)]
    assert parcels["fields"]["area_m2"] == "Real" and parcels["fields"]["state"] == "Integer"
    for f in parcels["features"]:
        fid = int(f["fid"][0])
        area, area_type = f["area_m2"]
        assert area_type == "float" and float(area) == pytest.approx(truth.at[fid, "area_m2"])
        state, state_type = f["state"]
        assert state_type == "int" and int(state) == truth.at[fid, "state"]


def test_qgis_sees_csv_coordinates_as_numbers(qgis_run):
    """psb's camera table came as CSV: its plane coordinates are numbers (issue 16, item 9)."""
    data, layers = qgis_run
    truth = truth_of(data, "psb", "camera_sites").set_index("fid")
    cameras = layers[("psb-camera_sites", True)]
    assert cameras["valid"] and cameras["count"] == len(truth)
    assert cameras["fields"]["x"] == "Real" and cameras["fields"]["y"] == "Real", cameras["fields"]
    for f in cameras["features"]:
        fid = int(f["fid"][0])
        for column in ("x", "y"):
            value, kind = f[column]
            assert kind == "float" and float(value) == pytest.approx(float(truth.at[fid, column]))
