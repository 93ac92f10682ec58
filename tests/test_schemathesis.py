"""Property-based requests from the OpenAPI document (schemathesis), as anonymous and as a
department: no 5xx anywhere, and no restricted collection the caller may not see is named
in any response body."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from shikong.catalog import Catalog
from shikong.server.app import create_app
from shikong.server.identity import KeyStore
from starlette.testclient import TestClient
from test_server_openapi import localise

EXAMPLES_PER_OPERATION = 4


@pytest.fixture(scope="module")
def app(demo_data):
    application = create_app(demo_data, "http://testserver", watch=False)
    with TestClient(application):  # run the lifespan once
        yield application


def operations_for(app, headers: dict) -> list:
    with TestClient(app) as client:
        document = client.get("/openapi?f=json", headers=headers).json()
    schema = schemathesis.openapi.from_dict(localise(document))
    schema.app = app
    schema.location = "/openapi"
    return [op.ok() for op in schema.get_all_operations()]


@pytest.mark.parametrize("caller", ["anonymous", "wat"])
def test_no_5xx_and_no_hidden_collection_named(app, demo_data, caller):
    headers = {}
    if caller != "anonymous":
        headers = {"X-API-Key": KeyStore(demo_data).create(caller, "fuzz")[0]}
    restricted = {
        layer.id
        for layer in Catalog.open(demo_data).collections()
        if layer.classification == "restricted" and layer.department != caller
    }
    pattern = re.compile("|".join(re.escape(r) for r in sorted(restricted)))
    failures: list[str] = []
    operations = operations_for(app, headers)
    assert len(operations) > 50
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query}: 5xx")
            if pattern.search(response.content.decode("utf-8", "replace")):
                failures.append(f"{case.method} {case.formatted_path}: names a hidden collection")

        check()
    assert not failures, failures[:10]
