"""Shared fixtures: small hand-built geometries with known truth."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from browser import browser, pytest_runtest_teardown  # noqa: F401 (one Chromium: tests/browser.py)
from pyproj import Transformer

GK38 = 4547  # CGCS2000 3° GK CM 114E, no prefix
GK38_PREFIXED = 4526


@pytest.fixture
def gk38_to_4490():
    """An independent transformer from zone-38 GK to CGCS2000 lon/lat."""
    t = Transformer.from_crs(GK38, 4490, always_xy=True)
    return lambda geom: shapely.transform(geom, lambda xy: np.column_stack(t.transform(*xy.T)))


# The longest modules (seconds in one whole run on 2 loaded cores), run first: with
# pytest-xdist (make test: --no-loadscope-reorder keeps this order) a long module that is
# handed out last keeps one worker busy after the other has finished.
SLOW_FIRST = [
    "test_hostile_ingest.py",  # 355 s: every corrupt source through two CLI processes
    "test_bench_smoke.py",  # 280 s
    "test_readme.py",  # 161 s
    "test_live.py",  # 150 s
    "test_rasterjobs.py",  # 123 s
    "test_observations_pg.py",  # 97 s
    "test_schemathesis.py",  # 92 s
    "test_notebooks.py",  # 86 s
    "test_observation_contract.py",  # 76 s
    "test_cloud_catalog.py",  # 73 s
    "test_hostile_readings.py",  # 65 s
    "test_qgis_maps.py",  # 61 s
    "test_cloud_nodes.py",  # 58 s
]


def pytest_collection_modifyitems(config, items) -> None:
    """The modules of SLOW_FIRST first, in its order; the others after, as collected."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """`shikong serve` in a subprocess on a free loopback port."""

    def __init__(self, data, port: int, mqtt: str | None = None, workers: int = 1) -> None:
        import subprocess
        import sys
        from pathlib import Path

        self.data, self.port = data, port
        self.url = f"http://127.0.0.1:{port}"
        exe = Path(sys.executable).with_name("shikong")
        self.log = open(Path(data).parent / f"server-{port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                exe,
                "serve",
                "--data",
                str(data),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--url",
                self.url,
                *(["--mqtt", mqtt] if mqtt else []),
                *(["--workers", str(workers)] if workers > 1 else []),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        import time
        from pathlib import Path

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = Path(self.log.name).read_text()[-2000:]
                raise RuntimeError(f"server exited: {log}")
            try:
                if httpx.get(f"{self.url}/conformance?f=json", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's output: what a failed assertion shows of a 5xx."""
        from pathlib import Path

        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
        self.log.close()


def build_demo(root) -> None:
    """The small demo city: its sources in root/sources, its catalog in root/data."""
    from shikong.catalog import Catalog
    from shikong.catalog.bulk import ingest_entries, read_manifest
    from shikong.demo import MANIFEST, generate

    generate(root / "sources", scale="small")
    ingest_entries(
        Catalog.open(root / "data"), root / "sources", read_manifest(root / "sources" / MANIFEST)
    )


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """The small demo city, built once per test session. Under pytest-xdist the first
    worker builds it once for the run and every worker takes its own copy (tests write
    keys, readings and audit logs into it: workers must not share one)."""
    import fcntl
    import os
    import shutil

    root = tmp_path_factory.mktemp("demo")
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        build_demo(root)
        return root / "data"
    built = tmp_path_factory.getbasetemp().parent / "demo-city"  # shared by the workers
    with open(f"{built}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (built / "done").exists():
            shutil.rmtree(built, ignore_errors=True)
            built.mkdir()
            build_demo(built)
            (built / "done").touch()
    shutil.copytree(built / "sources", root / "sources")
    shutil.copytree(built / "data", root / "data")
    return root / "data"


def share_keys(source, target) -> None:
    """Give a fresh data directory the API keys of another (the tester's among them);
    nothing to copy when the source keeps its keys in PostgreSQL (shared already)."""
    import shutil
    from pathlib import Path

    keys = Path(source) / "access" / "keys.sqlite"
    if keys.exists():
        (Path(target) / "access").mkdir(parents=True, exist_ok=True)
        shutil.copy(keys, Path(target) / "access" / "keys.sqlite")


@pytest.fixture(scope="session")
def tester_key(demo_data) -> str:
    """An API key of the functional tests' caller: an nrp user with the gateway role
    (it reads what nrp may, parcels masked, and may post any sensor's readings)."""
    from shikong.server.identity import KeyStore

    key, _ = KeyStore(demo_data).create("nrp", "tester", role="gateway")
    return key


@pytest.fixture
def as_tester(tester_key, monkeypatch):
    """Every HTTP client of a test sends the tester's key unless it sets its own: httpx,
    requests (under OWSLib and pystac-client) and GDAL (OAPIF driver, geopandas)."""
    import httpx
    import requests

    header = {"X-API-Key": tester_key}
    httpx_init = httpx.Client.__init__

    def httpx_with_key(self, *args, headers=None, **kwargs):
        httpx_init(self, *args, headers={**header, **dict(headers or {})}, **kwargs)

    requests_init = requests.Session.__init__

    def requests_with_key(self, *args, **kwargs):
        requests_init(self, *args, **kwargs)
        self.headers.update(header)

    import urllib.request

    opener = urllib.request.build_opener()  # geopandas.read_file(url) uses urllib
    opener.addheaders = [("X-API-Key", tester_key)]
    monkeypatch.setattr(urllib.request, "_opener", opener)
    monkeypatch.setattr(httpx.Client, "__init__", httpx_with_key)
    monkeypatch.setattr(requests.Session, "__init__", requests_with_key)
    monkeypatch.setenv("GDAL_HTTP_AUTH", "BEARER")  # GDAL sends keys as bearer tokens
    monkeypatch.setenv("GDAL_HTTP_BEARER", tester_key)
    return tester_key


@pytest.fixture(scope="session")
def server(demo_data, tester_key):
    running = RunningServer(demo_data, free_port())
    yield running
    running.stop()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory):
    """A real Mosquitto broker on a free loopback port (binary from the system)."""
    import os
    import shutil
    import socket
    import subprocess
    import time

    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if binary is None:
        if os.environ.get("SHIKONG_REQUIRE_SERVICES"):
            pytest.fail("mosquitto is not installed and SHIKONG_REQUIRE_SERVICES is set")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    folder = tmp_path_factory.mktemp("mosquitto")
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"max_queued_messages 100000\n"
    )
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("mosquitto did not start")
    yield f"mqtt://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(5)


def version_item(req, k: int, bbox, valid_from, title: str) -> dict:
    """Version ``k`` of a layer as a STAC item, for tests that commit items directly."""
    from shapely.geometry import box as make_box
    from shikong.catalog.stac import item_dict

    return item_dict(
        item_id=f"{req.collection_id}-v{k}",
        collection_id=req.collection_id,
        department=req.department,
        layer=req.layer,
        kind="vector",
        classification="shared",
        version=str(k),
        valid_from=valid_from,
        title=title,
        geometry=make_box(*bbox),
        assets={},
        properties={},
        source=None,
        created=valid_from,
    )
