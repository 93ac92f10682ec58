"""Install and start-up: the wheel ships every source file, the CLI starts without the data
stack, and `serve` refuses a busy port before announcing.

Start-up is checked by what gets imported (`PYTHONPROFILEIMPORTTIME` on the real console
script), not by a stopwatch: the data stack is what made `shikong --help` take seconds.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SHIKONG = Path(sys.executable).with_name("shikong")
HEAVY = (
    "numpy",
    "pandas",
    "geopandas",
    "shapely",
    "pyproj",
    "pyogrio",
    "rasterio",
    "xarray",
    "dask",
    "pygeoapi",
    "uvicorn",
    "starlette",
    "shikong.catalog",
    "shikong.server.app",
)


def imported_modules(*args: str) -> tuple[set[str], str]:
    """Modules the console script imports for these arguments, and its stdout."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.run([SHIKONG, *args], capture_output=True, text=True, env=env, check=True)
    names = {
        line.split("|")[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return names, proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("check", "--help"),
        ("ingest", "--help"),
        ("serve", "--help"),
        ("demo", "build", "--help"),
        ("keys", "create", "--help"),
        ("raster", "zonal-stats", "--help"),
    ],
)
def test_help_does_not_import_the_data_stack(args):
    names, out = imported_modules(*args)
    assert "Usage: shikong" in out
    assert "shikong.server.cli" in names  # the profile did record the imports
    loaded = sorted(n for n in names if any(n == h or n.startswith(f"{h}.") for h in HEAVY))
    assert loaded == [], f"`shikong {' '.join(args)}` imported {loaded[:10]}"


def test_bad_role_is_refused_in_one_line(tmp_path):
    proc = subprocess.run(
        [SHIKONG, "keys", "create", "--department", "nrp", "--user", "li", "--role", "boss",
         "--data", str(tmp_path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "unknown role 'boss'" in proc.stderr and "gateway" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [("serve",), ("demo", "run")])
def test_busy_port_is_refused_before_announcing(tmp_path, command):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = subprocess.run(
            [SHIKONG, *command, "--port", str(port), "--data", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert "serving" not in proc.stdout and "live" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"port {port} is in use" in lines[0] and "--port" in lines[0]


REPO = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("spatial", "catalog", "server", "config")  # installed as shikong.<folder>


def test_wheel_ships_every_source_file_without_setuptools_warnings(tmp_path):
    """A wheel built from the tracked files holds each of them under shikong/, and
    setuptools has nothing to warn about (data folders are declared packages)."""
    git = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    tracked = [f for f in git.split("\0") if f and (REPO / f).is_file()]
    src = tmp_path / "src"
    for name in tracked:  # a clean copy: no build/ or egg-info left in the working tree
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    out = tmp_path / "wheel"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", out, src],
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-3000:]
    assert "is absent from the `packages` configuration" not in log
    (wheel,) = out.glob("shikong-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"shikong/{f}" for f in tracked if f.split("/")[0] in SOURCE_FOLDERS}
    assert len(expected) > 60
    assert sorted(expected - shipped) == []
