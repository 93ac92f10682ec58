"""OGC API Features Part 1 core, as ogctests 0.1.15 checks it against the demo city.

ogctests pins pyarrow<18, httpx<0.28, pytest<9 and openapi-schema-validator<0.7, which
the project's own dependencies exclude, so it cannot sit in the ``test`` extra; it is
installed beside them with ``pip install --no-deps ogctests==0.1.15`` (it uses none of
the pinned packages' removed APIs). It runs as its own pytest in a subprocess, with the
schemas it fetches served from tests/conformance/schemas (see offline.py) and the API
key added to each of its httpx requests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import RunningServer, free_port

OFFLINE = Path(__file__).parent / "conformance" / "offline.py"


@pytest.fixture(scope="module")
def ogc_server(demo_data, tmp_path_factory):
    """The demo city from a copy without the per-key rate limit (the suite's bursts)."""
    import shutil

    from shikong.config import load as load_config

    data = tmp_path_factory.mktemp("ogc-conformance") / "data"
    shutil.copytree(demo_data, data)
    policy = dict(load_config("access_policy"))
    policy["limits"] = {**policy["limits"], "rate_per_second": 100_000, "rate_burst": 100_000}
    (data / "access_policy.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True))
    running = RunningServer(data, free_port())
    yield running
    running.stop()


def test_ogctests_features_core_passes(ogc_server, tester_key, tmp_path):
    spec = importlib.util.find_spec("ogctests")
    if spec is None:
        if os.environ.get("SHIKONG_REQUIRE_SERVICES"):
            pytest.fail("ogctests is not installed (pip install --no-deps ogctests==0.1.15)")
        pytest.skip("ogctests is not installed (pip install --no-deps ogctests==0.1.15)")
    suite = Path(spec.origin).parent / "features" / "core"
    env = {
        **os.environ,
        "INSTANCE_URL": ogc_server.url,
        "SHIKONG_CONFORMANCE_HEADERS": json.dumps({"X-API-Key": tester_key}),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(OFFLINE.parent), os.environ.get("PYTHONPATH")])
        ),
    }
    done = subprocess.run(
        [
            *(sys.executable, str(OFFLINE), "pytest", str(suite), "-q"),
            *("-p", "no:cacheprovider", "-p", "feature_collections"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # not this project's pytest configuration
        env=env,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-8000:]
