"""Property-based requests from the OpenAPI document (schemathesis), as anonymous and as a
department: no 5xx anywhere, and no restricted collection the caller may not see is named
in any response body. Request bodies too (issue 17): POST /stac/search (its fragment is
the schema the server validates with), POST /readings and process executions (inputs
from each process's own description), with valid and with schema-breaking data."""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode
from shikong.catalog import Catalog
from shikong.server.app import create_app
from shikong.server.identity import KeyStore
from shikong.server.processes import wants_async
from shikong.server.stac_search import openapi_paths
from starlette.testclient import TestClient
from test_hostile_requests import unthrottled_copy
from test_server_openapi import localise

EXAMPLES_PER_OPERATION = 4
# examples per generation mode (valid, schema-breaking) for the request-body operations
BODY_EXAMPLES = {"postStacSearch": 60, "getStacSearch": 25, "postReadings": 40}
EXECUTION_EXAMPLES = 8
REGION = {  # a small square inside the demo city
    "type": "Polygon",
    "coordinates": [
        [[113.25, 33.75], [113.3, 33.75], [113.3, 33.8], [113.25, 33.8], [113.25, 33.75]]
    ],
}


@pytest.fixture(scope="module")
def data(demo_data, tmp_path_factory):
    """A copy of the demo city: fuzzed readings and edits must not reach other tests (and
    the rate limiter, which answers 429 to bursts, is lifted)."""
    return unthrottled_copy(demo_data, tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def app(data):
    application = create_app(data, "http://testserver", watch=False)
    with TestClient(application):  # run the lifespan once
        yield application


def readings_paths(sensors: list[str]) -> dict[str, Any]:
    """POST /readings as OpenAPI (the document pygeoapi writes does not hold it)."""
    reading = {
        "type": "object",
        "properties": {
            "sensor_id": {"anyOf": [{"type": "string", "enum": sensors}, {"type": "string"}]},
            "parameter": {"type": "string", "enum": ["water_level", "pm25", "rainfall", "x"]},
            "time": {"type": "string", "format": "date-time"},
            "value": {"type": "number"},
        },
        "required": ["sensor_id", "time", "value"],
    }
    body = {"oneOf": [{"type": "array", "items": reading, "maxItems": 20}, reading]}
    return {
        "/readings": {
            "post": {
                "operationId": "postReadings",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": {"200": {"description": "What was stored and refused"}},
            }
        }
    }


def execution_body(description: dict[str, Any]) -> dict[str, Any]:
    """An execute request whose inputs follow the process's own description; geometry and
    layer inputs also offer real values, so valid runs reach the computation."""
    inputs: dict[str, Any] = {}
    for name, spec in description["inputs"].items():
        schema = spec.get("schema", {})
        if name in ("region", "proposal"):  # valid: a real polygon (text is tested elsewhere)
            schema = {"enum": [REGION, {"type": "Feature", "properties": {}, "geometry": REGION}]}
        if name in ("raster", "zones", "collection"):
            layers = {"raster": "nrp-dem", "zones": "nrp-mining_rights"}.get(name, "nrp-landuse")
            schema = {"anyOf": [{"type": "string", "enum": [layers]}, schema]}
        inputs[name] = schema
    required = [n for n, spec in description["inputs"].items() if spec.get("minOccurs", 1) > 0]
    return {
        "type": "object",
        "properties": {
            "inputs": {
                "type": "object",
                "properties": inputs,
                "required": required,
                "additionalProperties": False,
            }
        },
        "required": ["inputs"],
    }


def load_schema(app, headers: dict):
    with TestClient(app) as client:
        document = client.get("/openapi?f=json", headers=headers).json()
        for path, operations in document["paths"].items():
            if path.endswith("/execution") and "post" in operations:
                pid = path.split("/")[2]
                described = client.get(f"/processes/{pid}?f=json", headers=headers).json()
                content = operations["post"]["requestBody"]["content"]["application/json"]
                content["schema"] = execution_body(described)
                content.pop("example", None)
                # no Prefer: run synchronously, so a failure is in the answer, not a job
                operations["post"].pop("parameters", None)
    sensors = Catalog.open(app.state.server.catalog.paths.root)["wat-water_level_sensors"]
    ids = sorted(sensors.to_geodataframe()["sensor_id"])
    document["paths"].update(openapi_paths())
    document["paths"].update(readings_paths(ids))
    schema = schemathesis.openapi.from_dict(localise(document))
    schema.app = app
    schema.location = "/openapi"
    return schema


def operations_for(app, headers: dict) -> list:
    return [op.ok() for op in load_schema(app, headers).get_all_operations()]


@pytest.mark.parametrize("caller", ["anonymous", "wat"])
def test_no_5xx_and_no_hidden_collection_named(app, data, caller):
    headers = {}
    if caller != "anonymous":
        headers = {"X-API-Key": KeyStore(data).create(caller, "fuzz")[0]}
    restricted = {
        layer.id
        for layer in Catalog.open(data).collections()
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


def body_operations(app, headers: dict) -> list[tuple[Any, int]]:
    """The operations that take a request body (and GET search), with their example counts."""
    out = []
    for op in operations_for(app, headers):
        if op.path.endswith("/execution"):  # jobs (raster processes) run in the background
            pid = op.path.split("/")[2]
            out.append((op, 3 if wants_async(pid, "") else EXECUTION_EXAMPLES))
        elif op.definition.raw.get("operationId") in BODY_EXAMPLES:
            out.append((op, BODY_EXAMPLES[op.definition.raw["operationId"]]))
    return out


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_request_bodies_no_5xx(app, data, mode):
    """Valid and schema-breaking bodies as a gateway (it may post any sensor's readings):
    never a 5xx; a refused STAC search is the JSON problem shape."""
    headers = {"X-API-Key": KeyStore(data).create("wat", "fuzz-bodies", role="gateway")[0]}
    operations = body_operations(app, headers)
    names = {op.definition.raw.get("operationId") for op, _ in operations}
    assert set(BODY_EXAMPLES) <= names, names
    assert sum(op.path.endswith("/execution") for op, _ in operations) >= 3
    failures: list[str] = []
    for operation, examples in operations:

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            response = case.call(headers={**(case.headers or {}), **headers})
            where = f"{case.method} {case.formatted_path} {str(case.body)[:200]}"
            if response.status_code >= 500:
                failures.append(f"{where}: {response.status_code} {response.text[:200]}")
            elif response.status_code >= 400 and case.path == "/stac/search":
                body = response.json()
                if not {"code", "type", "description"} <= set(body):
                    failures.append(f"{where}: not the problem shape: {body}")

        check()
    assert not failures, failures[:10]
