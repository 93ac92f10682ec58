"""Hostile requests (issue 17, class 6 and the 405 shape): each wrong body, parameter or
path is a 4xx JSON problem naming what is wrong, never a 500, and leaves the server
serving with no traceback in its log. A real `shikong serve`, real HTTP."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import RunningServer, free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PROBLEM_KEYS = {"code", "type", "description"}


def unthrottled_copy(demo_data: Path, folder: Path) -> Path:
    """The demo city in ``folder`` with the per-caller rate limit lifted in its own policy:
    these tests send hundreds of requests a second and check answers, not the limiter."""
    data = folder / "data"
    shutil.copytree(demo_data, data)
    shipped = resources.files("shikong.config").joinpath("access_policy.yaml")
    policy = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    policy["limits"].update(rate_per_second=1_000_000, rate_burst=1_000_000)
    (data / "access_policy.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True))
    return data


@pytest.fixture(scope="module")
def served(demo_data, tmp_path_factory):
    running = RunningServer(
        unthrottled_copy(demo_data, tmp_path_factory.mktemp("hostile")), free_port()
    )
    with httpx.Client(base_url=running.url, timeout=30) as client:
        yield running, client
    running.stop()


def assert_problem(response: httpx.Response, status: int | None = None, *names: str) -> dict:
    """A 4xx whose JSON body is the problem shape; its description names each of names."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= PROBLEM_KEYS, body
    assert all(isinstance(body[k], str) and body[k] for k in PROBLEM_KEYS), body
    for name in names:
        assert name in body["description"], (name, body["description"])
    return body


def assert_healthy(served) -> None:
    """Still serving, and nothing in the log but one-line refusals."""
    running, client = served
    assert client.get("/stac").status_code == 200
    log = Path(running.log.name).read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:3000]
    assert "unhandled error" not in log


def post_search(client: httpx.Client, body: str | bytes) -> httpx.Response:
    return client.post("/stac/search", content=body, headers={"content-type": "application/json"})


# -- POST /stac/search: a wrong JSON type for each field -----------------------------
WRONG_TYPES = [
    ("collections", 5),
    ("collections", {"a": 1}),
    ("collections", [1, 2]),
    ("collections", []),
    ("ids", 3),
    ("ids", [[1]]),
    ("ids", [str(i) for i in range(1001)]),
    ("sortby", 5),
    ("sortby", [1]),
    ("sortby", [{"x": 1}]),
    ("sortby", {"field": "id"}),
    ("sortby", [{"field": "id", "direction": "up"}]),
    ("sortby", "nonsense"),
    ("fields", 3),
    ("fields", {"include": 5}),
    ("filter", 3),
    ("filter", [1]),
    ("filter", "id = "),
    ("filter-lang", 3),
    ("filter-lang", "sql"),
    ("q", 5),
    ("q", [1, 2]),
    ("q", {"a": 1}),
    ("q", "词 " * 600),
    ("limit", "abc"),
    ("limit", 1.5),
    ("limit", True),
    ("limit", [1]),
    ("limit", 0),
    ("token", [1]),
    ("token", {"a": 1}),
    ("token", -1),
    ("token", 2**60),
    ("intersects", 5),
    ("intersects", "x"),
    ("intersects", {"type": "Blob", "coordinates": [1, 2]}),
    ("intersects", {"type": "Polygon", "coordinates": [[1, 2]]}),
    ("datetime", 5),
    ("datetime", ["2020-01-01T00:00:00Z"]),
    ("datetime", "yesterday"),
    ("bbox", 5),
    ("bbox", "1,2,3,4"),
    ("bbox", ["a", 0, 1, 1]),
    ("bbox", [True, 0, 1, 1]),
    ("bbox", [1, 2, 3]),
    ("bbox", [0, 0, 181, 1]),
    ("bbox", [2, 0, 1, 1]),
    ("filter-crs", "EPSG:4326"),
]


@pytest.mark.parametrize(("field", "value"), WRONG_TYPES, ids=lambda v: repr(v)[:30])
def test_wrong_field_type_is_a_400_naming_it(served, field, value):
    _, client = served
    body = {field: value}
    if field == "filter-lang":
        body["filter"] = "id = 'x'"
    if field == "filter-crs":
        body["filter"] = "id = 'x'"
    assert_problem(post_search(client, json.dumps(body)), 400, field)
    assert_healthy(served)


NOT_JSON = {
    "nan in bbox": '{"bbox": [NaN, 0, 1, 1]}',
    "infinity in bbox": '{"bbox": [0, 0, Infinity, 1]}',
    "1e999 in bbox": '{"bbox": [0, 0, 1e999, 1]}',
    "nan in a geometry": '{"intersects": {"type": "Point", "coordinates": [NaN, 1]}}',
    "lone surrogate": '{"q": "\\ud800"}',
    "truncated": '{"collections": ["a"',
    "not json": "collections=a",
    "latin-1 bytes": b'{"q": "\xe9"}',
    "empty": "",
    "nested lists 100000": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("body", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_body_that_is_not_strict_json_is_a_400(served, body):
    _, client = served
    assert_problem(post_search(client, body), 400, "search body")
    assert_healthy(served)


@pytest.mark.parametrize("body", ["[]", "5", "null", '"x"', "true", '[{"limit": 1}]'])
def test_body_that_is_not_an_object_is_a_400(served, body):
    _, client = served
    assert_problem(post_search(client, body), 400, "JSON object")
    assert_healthy(served)


def nested_not(levels: int) -> dict:
    """A CQL2 JSON filter: ``levels`` NOTs around one comparison (built without recursion)."""
    node: dict = {"op": "=", "args": [{"property": "id"}, "x"]}
    for _ in range(levels):
        node = {"op": "not", "args": [node]}
    return node


def deep_json(levels: int) -> str:
    """nested_not(levels) as text (json.dumps would recurse too deep itself)."""
    inner = '{"op":"=","args":[{"property":"id"},"x"]}'
    return '{"op":"not","args":[' * levels + inner + "]}" * levels


@pytest.mark.parametrize("levels", [101, 127, 3000], ids=lambda n: f"{n} levels")
def test_deeply_nested_cql2_json_is_a_400(served, levels):
    _, client = served
    body = '{"filter-lang": "cql2-json", "filter": ' + deep_json(levels) + "}"
    assert_problem(post_search(client, body), 400, "nested")
    assert_healthy(served)


def test_nested_cql2_json_within_the_limit_is_evaluated(served):
    """The guard refuses depth, not filters: 20 NOTs (even: the comparison itself)."""
    _, client = served
    every = client.get("/stac/search", params={"limit": 1000}).json()["features"]
    target = every[0]["id"]
    node = nested_not(20)
    inner = node
    for _ in range(20):
        inner = inner["args"][0]
    inner["args"][1] = target
    found = client.post("/stac/search", json={"filter": node, "filter-lang": "cql2-json"})
    assert found.status_code == 200, found.text
    assert [f["id"] for f in found.json()["features"]] == [target]


@pytest.mark.parametrize(
    "text",
    [
        "(" * 5000 + "id = 'x'" + ")" * 5000,
        "NOT " * 3000 + "id = 'x'",
        " AND ".join(["id = 'x'"] * 2000),
    ],
    ids=["5000 parentheses", "3000 NOTs", "2000 ANDs"],
)
def test_deeply_nested_cql2_text_is_a_400(served, text):
    _, client = served
    assert_problem(post_search(client, json.dumps({"filter": text})), 400, "filter")
    assert_healthy(served)


# -- GET /stac/search: repeated, empty and non-finite parameters ----------------------
GET_CASES = [
    ("limit=1&limit=2", "limit"),
    ("ids=a&ids=b", "ids"),
    ("bbox=1,2,3,4&bbox=1,2,3,4", "bbox"),
    ("collections=", "collections"),
    ("bbox=", "bbox"),
    ("limit=", "limit"),
    ("token=", "token"),
    ("sortby=", "sortby"),
    ("q=", "q"),
    ("datetime=", "datetime"),
    ("filter=", "filter"),
    ("intersects=", "intersects"),
    ("ids=,,", "ids"),
    ("sortby=,", "sortby"),
    ("bbox=nan,0,1,1", "bbox"),
    ("bbox=0,0,inf,1", "bbox"),
    ("bbox=0,0,1", "bbox"),
    ("limit=1.5", "limit"),
    ("token=99999999999999999999", "token"),
    ("filter-lang=sql&filter=id%3D%27x%27", "filter-lang"),
    ("filter-lang=cql2-json&filter=5", "filter"),
    ("filter-lang=cql2-json&filter=%5B", "filter"),
    ("intersects=%7B%22type%22%3A%22Point%22%7D", "intersects"),
    ("intersects=%7B%22type%22%3A%22Point%22%2C%22coordinates%22%3A%5BNaN%2C1%5D%7D", "intersects"),
]


@pytest.mark.parametrize(("query", "name"), GET_CASES, ids=[q for q, _ in GET_CASES])
def test_bad_get_parameter_is_a_400_naming_it(served, query, name):
    _, client = served
    assert_problem(client.get(f"/stac/search?{query}"), 400, name)
    assert_problem(client.get(f"/stac/collections/nrp-dem/items?{query}"), 400, name)
    assert_healthy(served)


# -- /assets: paths no file can have ---------------------------------------------------
ASSET_PATHS = [
    "a%00b",
    "%00",
    "nrp/landuse/%00/data.parquet",
    "nrp/landuse/2020/data.parquet%00.txt",
    "a%0Ab",
    "a%7Fb",
    "a" * 300,
    "/".join(["abcdefgh"] * 200),
    "%ED%A0%80",
    "%FF%FE",
    "..%2F..%2Fetc%2Fpasswd",
]


@pytest.mark.parametrize("path", ASSET_PATHS, ids=lambda p: p[:30])
def test_unusable_asset_path_is_a_4xx_problem(served, path):
    _, client = served
    response = client.get(f"/assets/{path}")
    assert response.status_code in (400, 404), response.text[:300]
    assert_problem(response)
    assert_healthy(served)


# -- 405 and other routing refusals: the problem shape, Allow kept --------------------
WRONG_METHODS = [
    ("PUT", "/stac/search", {"GET", "POST"}),
    ("DELETE", "/collections", {"GET"}),
    ("POST", "/conformance", {"GET"}),
    ("PATCH", "/processes/area-by-class", {"GET"}),
    ("GET", "/processes/area-by-class/execution", {"POST"}),
    ("DELETE", "/stac", {"GET"}),
    ("PUT", "/readings", {"POST"}),
]


# ids sorted: a set's order changes with the hash seed, and every xdist worker must collect
# the same ids
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    WRONG_METHODS,
    ids=lambda v: str(sorted(v)) if isinstance(v, set) else str(v),
)
def test_method_not_allowed_is_a_json_problem_with_allow(served, method, path, allowed):
    _, client = served
    response = client.request(method, path)
    body = assert_problem(response, 405, method)
    assert body["code"] == "MethodNotAllowed"
    assert allowed <= {m.strip() for m in response.headers["allow"].split(",")}
    assert_healthy(served)


# -- generated search bodies -----------------------------------------------------------
FIELDS = [
    "collections",
    "ids",
    "bbox",
    "intersects",
    "datetime",
    "limit",
    "token",
    "sortby",
    "fields",
    "filter",
    "filter-lang",
    "q",
]
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
PLAUSIBLE = {
    "collections": st.lists(st.sampled_from(["nrp-landuse", "wat-rivers", "x"]), max_size=3),
    "bbox": st.lists(st.floats(-200, 200), min_size=3, max_size=7),
    "limit": st.integers(-5, 20_000),
    "sortby": st.lists(
        st.fixed_dictionaries(
            {"field": st.sampled_from(["id", "datetime", "x", ""])},
            optional={"direction": st.sampled_from(["asc", "desc", "up"])},
        ),
        max_size=3,
    ),
    "datetime": st.sampled_from(["2021-06-30T00:00:00Z", "../2021-01-01T00:00:00Z", "2021", "/"]),
    "filter": st.sampled_from(["id = 'x'", "collection LIKE 'nrp%'", "id =", "1 = 1"]),
}
BODIES = st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=4) | st.fixed_dictionaries(
    {}, optional=PLAUSIBLE
)


def test_generated_search_bodies_never_5xx(served):
    _, client = served

    @given(body=BODIES)
    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(body):
        response = client.post("/stac/search", json=body)
        assert response.status_code in (200, 400), (body, response.text[:300])
        if response.status_code == 400:
            assert_problem(response, 400)
        else:
            assert response.json()["type"] == "FeatureCollection"

    check()
    assert_healthy(served)
