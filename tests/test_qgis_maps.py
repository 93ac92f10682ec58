"""Headless QGIS 3.22 draws our map services (issue 19, item 5): a WMS layer (and a
restricted one signed in with a Basic auth config), a WMTS layer, a vector-tile layer on
the OGC API Tiles URL, and the DEM coverage through GDAL.

QGIS runs under the system python3 (``python3-qgis``) as tests/test_qgis.py runs it; it
renders each layer over the city into an image, and the test checks the pixels: the
planning zones' colours from their style file (computed here over white), the tiles'
features, the DEM's many shades.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from conftest import RunningServer, free_port
from PIL import Image
from shikong.server.identity import KeyStore
from test_qgis import SYSTEM_PYTHON, require_qgis
from test_wms import _zone_colours

# Runs under QGIS's python: {"profile", "out", "layers": [{"name", "provider", "uri",
# "extent": [x0, y0, x1, y1], "crs", "key"?}]} on stdin; renders each valid layer to
# out/<name>.png (300 x 200, white background) and prints what it found as JSON.
QGIS_SCRIPT = r"""
import json, sys
from qgis.core import (QgsApplication, QgsAuthMethodConfig, QgsCoordinateReferenceSystem,
    QgsMapRendererSequentialJob, QgsMapSettings, QgsRasterLayer, QgsRectangle,
    QgsVectorTileLayer)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

spec = json.load(sys.stdin)
app = QgsApplication([], False, spec["profile"])
app.initQgis()
auth = QgsApplication.authManager()
if not auth.setMasterPassword("shikong-test-master", True):
    sys.exit("could not set the QGIS master password")
out = []
for want in spec["layers"]:
    uri = want["uri"]
    if want.get("key"):
        cfg = QgsAuthMethodConfig("Basic")
        cfg.setName(want["name"])
        cfg.setConfig("username", want.get("user", ""))
        cfg.setConfig("password", want["key"])
        if not auth.storeAuthenticationConfig(cfg)[0]:
            sys.exit("could not store the auth config")
        uri = f"authcfg={cfg.id()}&{uri}"
    if want["provider"] == "vectortile":
        layer = QgsVectorTileLayer(uri, want["name"])
    else:
        layer = QgsRasterLayer(uri, want["name"], want["provider"])
    got = {"name": want["name"], "valid": layer.isValid()}
    if layer.isValid():
        settings = QgsMapSettings()
        settings.setLayers([layer])
        settings.setDestinationCrs(QgsCoordinateReferenceSystem(want["crs"]))
        settings.setExtent(QgsRectangle(*want["extent"]))
        settings.setOutputSize(QSize(300, 200))
        settings.setBackgroundColor(QColor(255, 255, 255))
        job = QgsMapRendererSequentialJob(settings)
        job.start()
        job.waitForFinished()
        path = f"{spec['out']}/{want['name']}.png"
        job.renderedImage().save(path)
        errors = [str(e.message) for e in job.errors()]
        got.update(image=path, crs=layer.crs().authid(), errors=errors)
    else:
        got["error"] = layer.error().summary() if hasattr(layer, "error") else ""
    out.append(got)
    del layer
print(json.dumps(out, ensure_ascii=False))
app.exitQgis()
"""

CITY_4490 = [113.05, 33.65, 113.55, 33.95]  # lon/lat: QGIS keeps x = longitude


@pytest.fixture(scope="module")
def qgis_maps(demo_data, tmp_path_factory):
    require_qgis()
    root = tmp_path_factory.mktemp("qgis-maps")
    data = root / "data"
    shutil.copytree(demo_data, data)
    rer, _ = KeyStore(data).create("rer", "qgis-maps")
    server = RunningServer(data, free_port())
    url = server.url
    images = root / "images"
    images.mkdir()
    wms = f"contextualWMSLegend=0&crs=EPSG:4490&dpiMode=7&format=image/png&styles=&url={url}/wms"
    wmts = (
        "contextualWMSLegend=0&crs=EPSG:3857&dpiMode=7&format=image/png&styles=default"
        f"&tileMatrixSet=WebMercatorQuad&url={url}/wmts/1.0.0/WMTSCapabilities.xml"
    )
    tiles = f"{url}/collections/tra-roads/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}"
    layers = [
        {"name": "wms", "provider": "wms", "uri": f"layers=nrp-planning_zones&{wms}"},
        {"name": "wms-hidden", "provider": "wms", "uri": f"layers=rer-parcels&{wms}"},
        # QGIS caches capabilities by URL whatever the auth config: another URL (an extra
        # parameter WMS ignores) keeps the anonymous answer above from standing in
        {
            "name": "wms-owner",
            "provider": "wms",
            "uri": f"layers=rer-parcels&{wms}?signed=1",
            "key": rer,
            "user": "qgis-maps",
        },
        {"name": "wmts", "provider": "wms", "uri": f"layers=nrp-planning_zones&{wmts}"},
        {"name": "vt", "provider": "vectortile", "uri": f"type=xyz&url={tiles}&zmin=0&zmax=15"},
        {
            "name": "dem",
            "provider": "gdal",
            "uri": f"/vsicurl_streaming/{url}/collections/nrp-dem/coverage?f=GTiff",
        },
    ]
    for layer in layers:
        layer.setdefault("extent", CITY_4490)
        layer.setdefault("crs", "EPSG:4490")
    layers[2]["extent"] = [113.2915, 33.7826, 113.3081, 33.7897]  # the parcels
    spec = {"profile": str(root / "profile"), "out": str(images), "layers": layers}
    runtime = root / "xdg-runtime"
    runtime.mkdir(mode=0o700)
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
            timeout=300,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {layer["name"]: layer for layer in found}


def _image(layer: dict) -> np.ndarray:
    assert layer["valid"], layer
    return np.asarray(Image.open(layer["image"]).convert("RGB")).astype(int)


def _zone_share(image: np.ndarray) -> float:
    """Share of pixels coloured as some planning zone (over white, ±3 per channel)."""
    colours = np.array(list(_zone_colours().values()))
    near = (np.abs(image[:, :, None, :] - colours[None, None]) <= 3).all(axis=-1).any(axis=-1)
    return float(near.mean())


def test_qgis_draws_a_wms_layer_in_the_style_colours(qgis_maps):
    assert _zone_share(_image(qgis_maps["wms"])) > 0.8  # outlines are the rest


def test_qgis_draws_a_wmts_layer_in_the_style_colours(qgis_maps):
    assert _zone_share(_image(qgis_maps["wmts"])) > 0.8


def test_qgis_wms_restricted_layer_needs_the_basic_auth_config(qgis_maps):
    assert not qgis_maps["wms-hidden"]["valid"]  # anonymous capabilities do not list it
    image = _image(qgis_maps["wms-owner"])
    assert (image != 255).any(axis=-1).mean() > 0.05  # parcels drawn


def test_qgis_draws_vector_tiles(qgis_maps):
    image = _image(qgis_maps["vt"])
    assert (image != 255).any(axis=-1).mean() > 0.002  # roads: thin lines over white


def test_qgis_draws_the_dem_coverage_through_gdal(qgis_maps):
    image = _image(qgis_maps["dem"])
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # a grey ramp of heights
