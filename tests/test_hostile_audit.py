"""Hostile cases for the audit log (issue 17, classes 2, 3 and part of 7).

Class 2: personal values sent in requests (ID numbers and names of the demo's real
rer-parcels owners, read from its GeoParquet) never reach an auditor without the
personal-data grant, over GET /audit or `shikong audit query`, while the entries stay.
Class 3: a cut, emptied, replaced or reordered log, or a deleted head, fails
`shikong audit verify` naming the problem; a log written by two worker processes
verifies. Class 7: a since/until that is not RFC 3339 is a 400 naming the parameter.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote, unquote, unquote_plus, urlencode

import geopandas as gpd
import httpx
import orjson
import pytest
from conftest import RunningServer, free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shikong.server.app import create_app
from shikong.server.audit import AuditLog, _hash
from shikong.server.audit_mask import Redactor
from shikong.server.identity import KeyStore
from starlette.testclient import TestClient

PERSONAL = {"rer-parcels": {"owner_name": "name", "id_number": "id_number"}}


def shikong(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("shikong")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def masked_id(value: str) -> str:
    """The policy's rule, computed here independently: first 6, ****, last 4."""
    return value[:6] + "****" + value[-4:]


def masked_name(value: str) -> str:
    return value[0] + "*" * (len(value) - 1)


def leaks(text: str, ids: list[str], names: list[str]) -> list[str]:
    """Personal values readable in an answer, raw, percent- or JSON-decoded."""
    views = [text, unquote(text), unquote_plus(text)]
    try:
        decoded = json.dumps(json.loads(text), ensure_ascii=False)
        views += [decoded, unquote(decoded)]
    except ValueError:
        pass
    found = []
    for view in views:
        for value in ids:
            if value in view or value[6:14] in view:  # the whole, or what its mask hides
                found.append(value)
        for value in names:
            if value in view or (len(value) >= 3 and value[1:] in view):
                found.append(value)
    return sorted(set(found))


# -- class 2: no personal value in what an auditor reads --------------------------------


@pytest.fixture(scope="module")
def env(demo_data, tmp_path_factory):
    data = tmp_path_factory.mktemp("hostile-audit") / "data"
    shutil.copytree(demo_data, data, ignore=shutil.ignore_patterns("audit"))
    parcels = gpd.read_parquet(next((data / "assets" / "rer" / "parcels").glob("*/data.parquet")))
    with_x = parcels[parcels.id_number.str.upper().str.endswith("X")]
    plain = parcels[~parcels.id_number.str.upper().str.endswith("X")]
    rows = [*plain.head(4).itertuples(), *with_x.head(2).itertuples()]
    keys = KeyStore(data)
    return {
        "data": data,
        "ids": [str(r.id_number) for r in rows],
        "names": [str(r.owner_name) for r in rows],
        "rer": keys.create("rer", "wang")[0],  # owner: sees personal data whole
        "psb": keys.create("psb", "chen")[0],  # holds the personal-data grant
        "nrp": keys.create("nrp", "liu")[0],  # reads parcels masked
        "tra": keys.create("tra", "zhao")[0],  # may not see parcels at all
        "auditor": keys.create("ema", "inspector", role="auditor")[0],  # no grant
    }


ALWAYS, VISIBLE, MAYBE = "always", "visible", "maybe"  # which probes must leave an entry


def probes(ids: list[str], names: list[str]) -> list[tuple[str, str, dict, str]]:
    """(method, url, request kwargs, audited): every way a request can carry a personal
    value. ``always``: a parcels path or the search by person, audited for every caller;
    ``visible``: audited for callers who see parcels (their answer holds a parcels item);
    ``maybe``: audited only if the answer touches shared data."""
    i, x, n = ids[0], ids[-1], names[0]
    items = "/collections/rer-parcels/items"
    by_owner = "/processes/property-by-owner/execution"
    version = "rer-parcels-v2024"
    either = {
        "op": "or",
        "args": [
            {"op": "=", "args": [{"property": "id"}, version]},
            {"op": "=", "args": [{"property": "id"}, ids[1]]},
        ],
    }
    encoded = "".join(f"%{ord(c):02X}" for c in ids[2])  # digits sent percent-encoded
    cql_json = json.dumps(
        {"op": "=", "args": [{"property": "owner_name"}, names[3]]}, ensure_ascii=False
    )
    return [
        ("GET", items, {"params": {"filter": f"id_number = '{i}'", "f": "json"}}, ALWAYS),
        ("GET", items, {"params": {"filter": f"id_number='{x.lower()}'"}}, ALWAYS),
        ("GET", items, {"params": {"filter": f"owner_name = '{n}'", "f": "json"}}, ALWAYS),
        ("GET", items, {"params": {"filter": f"owner_name LIKE '{names[1]}%'"}}, ALWAYS),
        ("GET", items, {"params": {"filter": f"owner_name = {names[2]} AND"}}, ALWAYS),
        ("GET", items, {"params": {"filter": f"id_number = '{ids[3]}"}}, ALWAYS),  # open quote
        ("GET", items, {"params": {"filter": f"id_number = {ids[3]}"}}, ALWAYS),  # a number
        ("GET", items, {"params": {"filter-lang": "cql2-json", "filter": cql_json}}, ALWAYS),
        ("GET", items, {"params": {"q": n, "f": "json"}}, ALWAYS),
        ("GET", items, {"params": {"q": f"{i},{names[4]}"}}, ALWAYS),
        ("GET", items, {"params": {"id_number": i, "f": "json"}}, ALWAYS),
        ("GET", items, {"params": {"owner_name": names[5], "f": "json"}}, ALWAYS),
        ("GET", items, {"params": {"Owner_Name": n}}, ALWAYS),  # a case the API refuses
        ("GET", items, {"params": {"owner": names[1]}}, ALWAYS),  # not a field: refused
        ("GET", f"{items}?id_number={encoded}&f=json", {}, ALWAYS),
        ("GET", f"{items}/{i}", {"params": {"f": "json"}}, ALWAYS),
        ("GET", f"{items}/{quote(n)}", {"params": {"f": "json"}}, ALWAYS),
        ("GET", f"/stac/collections/rer-parcels/items?q={quote(n)}", {}, ALWAYS),
        ("GET", "/stac/search", {"params": {"ids": f"{version},{i}"}}, VISIBLE),
        (
            "GET",
            "/stac/search",
            {"params": {"filter": f"id = '{version}' OR id = '{x}' OR owner_name = '{n}'"}},
            VISIBLE,
        ),
        ("POST", "/stac/search", {"json": {"ids": [version, x]}}, VISIBLE),
        (
            "POST",
            "/stac/search",
            {
                "json": {
                    "collections": ["rer-parcels"],
                    "filter-lang": "cql2-json",
                    "filter": either,
                }
            },
            VISIBLE,
        ),
        (
            "POST",
            "/stac/search",
            {"json": {"filter": f"id = '{version}' OR owner_name = '{names[3]}'"}},
            VISIBLE,
        ),
        ("GET", "/stac/search", {"params": {"collections": "rer-parcels", "q": n}}, MAYBE),
        ("POST", "/stac/search", {"json": {"q": [names[2]], "limit": 5}}, MAYBE),
        ("POST", "/stac/search", {"json": {"ids": [ids[4]], "collections": ["tra-roads"]}}, MAYBE),
        ("POST", by_owner, {"json": {"inputs": {"id_number": i}}}, ALWAYS),
        ("POST", by_owner, {"json": {"inputs": {"owner_name": names[4]}}}, ALWAYS),
        ("POST", by_owner, {"json": {"inputs": {"id_number": int(ids[1])}}}, ALWAYS),  # number
        ("POST", by_owner, {"json": {"inputs": {"x": x}}}, ALWAYS),
        ("POST", "/processes/parcel-history/execution", {"json": {"inputs": {"code": i}}}, VISIBLE),
    ]


SEES_PARCELS = ("rer", "psb", "nrp")
USERS = {"rer": "wang", "psb": "chen", "nrp": "liu", "tra": "zhao", "anonymous": None}


@pytest.fixture(scope="module")
def probed(env):
    """Send every probe as each kind of caller; the auditor then reads the log."""
    sent = []
    with TestClient(create_app(env["data"], "http://testserver", watch=False)) as client:
        for who in USERS:
            headers = {} if who == "anonymous" else {"X-API-Key": env[who]}
            for method, url, kwargs, audited in probes(env["ids"], env["names"]):
                reply = client.request(method, url, headers=headers, **kwargs)
                body = orjson.dumps(kwargs["json"]) if "json" in kwargs else b""
                sent.append(
                    {"who": who, "method": method, "url": url, "kwargs": kwargs,
                     "audited": audited, "status": reply.status_code, "body": body}
                )  # fmt: skip
        # a Basic user name that is someone's ID number: a 401 whose note quotes it
        # (a tuple: the TestClient may be httpx's or httpx2's, each with its own BasicAuth)
        refused = client.get("/collections/rer-parcels/items", auth=(env["ids"][0], env["rer"]))
        assert refused.status_code == 401
        audit = client.get("/audit?limit=100000", headers={"X-API-Key": env["auditor"]})
    assert audit.status_code == 200
    return {"sent": sent, "audit": audit}


def test_probes_reached_the_server_as_meant(env, probed):
    """The probes are real: the owner's filter by ID finds the parcel, the masked
    caller's is refused, the hidden caller's is a 404, and the search by person answers
    the owner (so granted and refused probes are both in the log)."""

    def status(who: str, n: int) -> int:
        return [p for p in probed["sent"] if p["who"] == who][n]["status"]

    assert status("rer", 0) == 200 and status("psb", 0) == 200
    assert status("nrp", 0) == 400 and status("tra", 0) == 404
    assert status("anonymous", 0) == 404
    assert status("rer", 26) == 200  # property-by-owner by ID number
    assert status("rer", 18) == 200  # the STAC search that names parcels


def test_http_audit_answer_holds_no_personal_value(env, probed):
    text = probed["audit"].text
    assert leaks(text, env["ids"], env["names"]) == []
    assert env["ids"][0] not in text and masked_id(env["ids"][0]) in unquote(text)


def test_every_probe_is_still_an_entry_with_user_path_and_status(env, probed):
    entries = probed["audit"].json()["entries"]
    for probe in probed["sent"]:
        must = probe["audited"] == ALWAYS or (
            probe["audited"] == VISIBLE and probe["who"] in SEES_PARCELS
        )
        if not must:
            continue
        path = unquote(probe["url"].split("?")[0])
        matching = [
            e
            for e in entries
            if e["user"] == USERS[probe["who"]]
            and e["method"] == probe["method"]
            and e["status"] == probe["status"]
            and e["path"].split("/")[:4] == path.split("/")[:4]
        ]
        assert matching, probe
    # an item id that is an ID number or a name is logged masked, not dropped
    i, n = env["ids"][0], env["names"][0]
    paths = {e["path"] for e in entries}
    assert f"/collections/rer-parcels/items/{masked_id(i)}" in paths
    assert f"/collections/rer-parcels/items/{masked_name(n)}" in paths
    refused = [e for e in entries if e.get("denied") and e["user"] == "zhao"]
    assert refused and all(e["collections"] == ["rer-parcels"] for e in refused)
    assert any(e["status"] == 401 and masked_id(i) in e.get("note", "") for e in entries)


def test_masked_values_show_what_the_policy_shows(env, probed):
    """Useful to the auditor: a probe by ID reads as 410402****3075, a name as 张*."""
    entries = probed["audit"].json()["entries"]
    i, n = env["ids"][0], env["names"][0]
    queries = " ".join(unquote(e.get("query") or "") for e in entries)
    assert f"id_number = '{masked_id(i)}'" in queries
    assert f"owner_name = '{masked_name(n)}'" in queries
    assert f"id_number={masked_id(i)}" in queries
    bodies = [e["body"] for e in entries if "body" in e]
    assert {"inputs": {"id_number": masked_id(i)}} in bodies
    assert {"inputs": {"owner_name": masked_name(env["names"][4])}} in bodies
    assert {"inputs": {"id_number": masked_id(env["ids"][1])}} in bodies  # sent as a number
    searched = [b for b in bodies if isinstance(b.get("filter"), dict)]
    assert searched, bodies  # the CQL2 JSON search: item ids readable, the ID number masked
    args = [a["args"][1] for a in searched[0]["filter"]["args"]]
    assert args == ["rer-parcels-v2024", masked_id(env["ids"][1])]


def test_input_digest_cannot_be_reversed_by_trying_id_numbers(env, probed):
    """A bare SHA-256 of {"inputs": {"id_number": …}} falls to a search over birth dates;
    the logged digest is keyed, so the body's own hash is not in the log."""
    text = probed["audit"].text
    bodies = [p["body"] for p in probed["sent"] if p["body"]]
    assert bodies
    for body in bodies:
        assert hashlib.sha256(body).hexdigest() not in text
    digests = [e["input_digest"] for e in probed["audit"].json()["entries"] if "input_digest" in e]
    assert digests and all(d.startswith("hmac-sha256:") for d in digests)


def test_log_file_and_cli_hold_no_personal_value(env, probed):
    data = env["data"]
    raw = (data / "audit" / "audit.jsonl").read_text(encoding="utf-8")
    assert leaks(raw, env["ids"], env["names"]) == []
    as_json = shikong("audit", "query", "--json", "--limit", "100000", "--data", str(data))
    assert as_json.returncode == 0, as_json.stderr
    assert len(as_json.stdout.splitlines()) == len(probed["audit"].json()["entries"]) + 1
    assert leaks(as_json.stdout, env["ids"], env["names"]) == []
    exe = Path(sys.executable).with_name("shikong")
    table = subprocess.run(
        [exe, "audit", "query", "--limit", "100000", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "400"},  # a table as wide as its rows: nothing cut
    )
    assert table.returncode == 0 and "rer-parcels" in table.stdout
    assert leaks(table.stdout, env["ids"], env["names"]) == []
    assert shikong("audit", "verify", "--data", str(data)).returncode == 0


def test_entries_of_an_older_log_are_masked_on_the_way_out(env, tmp_path):
    """Entries written before masking (raw values in the file) are masked when read."""
    data = tmp_path / "data"
    shutil.copytree(env["data"], data, ignore=shutil.ignore_patterns("audit"))
    old = AuditLog(data)
    old.redactor = Redactor({})
    old.redactor.entry = lambda entry: entry  # as a log written before masking
    i, n = env["ids"][0], env["names"][0]
    old.append(
        {
            "user": "wang",
            "method": "GET",
            "path": f"/collections/rer-parcels/items/{i}",
            "query": urlencode({"filter": f"owner_name = '{n}'"}),
            "collections": ["rer-parcels"],
            "status": 200,
        }
    )
    assert i in (data / "audit" / "audit.jsonl").read_text(encoding="utf-8")
    with TestClient(create_app(data, "http://testserver", watch=False)) as client:
        reply = client.get("/audit", headers={"X-API-Key": env["auditor"]})
    assert reply.status_code == 200 and reply.json()["numberReturned"] >= 1
    assert leaks(reply.text, [i], [n]) == []
    cli = shikong("audit", "query", "--json", "--data", str(data))
    assert cli.returncode == 0 and leaks(cli.stdout, [i], [n]) == []


def _id_number(draw_digits: str) -> str:
    """A well-formed 18-character ID number (GB 11643 check character)."""
    body = draw_digits[:17]
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


id_numbers = st.text("0123456789", min_size=17, max_size=17).map(_id_number)
names = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=2, max_size=4)
wrappers = st.sampled_from(
    [
        "id_number = '{v}'",
        "{v}",
        "x{v}y",
        "owner_name='{n}' OR id_number='{v}'",
        "id_number IN ('{v}','{v}')",
        "{v}{v}",
        '{{"op":"=","args":[{{"property":"owner_name"}},"{n}"]}}',
    ]
)
params = st.sampled_from(["filter", "q", "id_number", "owner_name", "owner", "ids", "bbox"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(id_numbers, names, wrappers, params, st.booleans())
def test_generated_probes_are_masked(value, name, wrapper, param, with_collection):
    """Any parameter, any wrapping: in a request about parcels (or a search across every
    collection) neither the ID number nor the name survives masking."""
    redactor = Redactor(PERSONAL)
    text = wrapper.format(v=value, n=name)
    path = "/collections/rer-parcels/items" if with_collection else "/stac/search"
    entry = {
        "path": path,
        "query": urlencode({param: text}),
        "collections": ["rer-parcels"] if with_collection else [],
        "items": [value],
        "note": f"user {value!r}",
        "body": {param: text, "inputs": {param: [text]}},
    }
    out = json.dumps(redactor.entry(entry), ensure_ascii=False)
    assert leaks(out, [value], [name] if len(name) >= 3 else []) == []
    assert name not in unquote(out)
    assert redactor.entry(redactor.entry(entry)) == redactor.entry(entry)  # idempotent


def test_values_that_are_not_personal_stay_readable():
    redactor = Redactor(PERSONAL)
    entry = {
        "path": "/collections/nrp-landuse/items",
        "query": "bbox=113.2000000000000001,33.7,113.4,33.9&DLMC=%E6%97%B1%E5%9C%B0&limit=10",
        "collections": ["nrp-landuse"],
    }
    assert redactor.entry(entry) == entry
    dated = {
        "path": "/collections/rer-parcels/items",
        "query": urlencode({"filter": "valid_from > '2020-01-01' AND state = 1"}),
        "collections": ["rer-parcels"],
    }
    assert redactor.entry(dated) == dated


# -- class 3: what verify detects -------------------------------------------------------


def _log(tmp_path: Path, n: int = 12) -> tuple[Path, Path]:
    data = tmp_path / "data"
    log = AuditLog(data)
    for k in range(n):
        log.append({"user": f"u{k}", "method": "GET", "path": "/x", "status": 200})
    return data, log.path


def _verify(data: Path) -> subprocess.CompletedProcess:
    return shikong("audit", "verify", "--data", str(data))


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_intact_log_verifies(tmp_path):
    data, _ = _log(tmp_path)
    result = _verify(data)
    assert result.returncode == 0 and "12 entries" in result.stdout


@pytest.mark.parametrize("cut", [1, 2, 5, 11])
def test_cut_tail_is_detected(tmp_path, cut):
    data, path = _log(tmp_path)
    path.write_text("".join(_lines(path)[:-cut]), encoding="utf-8")
    result = _verify(data)
    assert result.returncode == 1
    assert f"line {12 - cut + 1}" in result.stderr and "records 12" in result.stderr
    assert f"the last {cut} line" in result.stderr and "removed" in result.stderr


def test_truncated_to_empty_is_detected(tmp_path):
    data, path = _log(tmp_path)
    path.write_bytes(b"")
    result = _verify(data)
    assert result.returncode == 1 and "ends after 0 entries" in result.stderr


def test_deleted_log_file_is_detected(tmp_path):
    data, path = _log(tmp_path)
    path.unlink()
    result = _verify(data)
    assert result.returncode == 1 and "log file is missing" in result.stderr


def test_cut_mid_line_is_detected(tmp_path):
    data, path = _log(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 30])
    result = _verify(data)
    assert result.returncode == 1 and "line 12" in result.stderr
    assert "not an audit entry" in result.stderr
    listed = shikong("audit", "query", "--json", "--data", str(data))  # still readable
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 11


def test_deleted_head_is_named(tmp_path):
    data, path = _log(tmp_path)
    (path.parent / "head.json").unlink()
    result = _verify(data)
    assert result.returncode == 1
    assert "head.json is missing" in result.stderr and "cut from its end" in result.stderr


def test_recreated_head_stays_reported(tmp_path):
    """Cut the tail, delete the head, let the server write on: the new head is recorded
    in the chain itself, and verify warns about it from then on."""
    data, path = _log(tmp_path)
    path.write_text("".join(_lines(path)[:-3]), encoding="utf-8")
    (path.parent / "head.json").unlink()
    AuditLog(data).append({"user": "later", "path": "/y", "status": 200})
    result = _verify(data)
    assert result.returncode == 0
    assert "warning" in result.stderr and "recreated over the 9 lines" in result.stderr
    assert "line 10" in result.stderr


def test_writing_on_after_a_cut_keeps_the_cut_visible(tmp_path):
    data, path = _log(tmp_path)
    path.write_text("".join(_lines(path)[:-4]), encoding="utf-8")
    AuditLog(data).append({"user": "later", "path": "/y", "status": 200})
    result = _verify(data)
    assert result.returncode == 1 and "line 9" in result.stderr and "broken" in result.stderr


def test_edited_line_is_detected(tmp_path):
    data, path = _log(tmp_path)
    lines = _lines(path)
    entry = json.loads(lines[4])
    entry["user"] = "nobody"
    lines[4] = json.dumps(entry, separators=(",", ":")) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    result = _verify(data)
    assert result.returncode == 1 and "line 5" in result.stderr and "edited" in result.stderr


def test_edited_last_line_with_its_hash_recomputed_is_detected(tmp_path):
    """Rewriting the last entry and its own hash keeps the chain whole: the head shows it."""
    data, path = _log(tmp_path)
    lines = _lines(path)
    entry = json.loads(lines[-1])
    entry.pop("hash")
    entry["user"] = "nobody"
    entry["hash"] = _hash(entry["prev"], entry)
    lines[-1] = orjson.dumps(entry).decode() + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    result = _verify(data)
    assert result.returncode == 1 and "not the one" in result.stderr


def test_reordered_lines_are_detected(tmp_path):
    data, path = _log(tmp_path)
    lines = _lines(path)
    lines[3], lines[4] = lines[4], lines[3]
    path.write_text("".join(lines), encoding="utf-8")
    result = _verify(data)
    assert result.returncode == 1 and "line 4" in result.stderr and "moved" in result.stderr


def test_replaced_log_is_detected(tmp_path):
    """A whole other log of the same length (a valid chain of its own) is not this one."""
    data, path = _log(tmp_path / "a")
    _, other = _log(tmp_path / "b")
    shutil.copy(other, path)
    result = _verify(data)
    assert result.returncode == 1 and "not the one" in result.stderr


def test_lines_appended_by_hand_are_detected(tmp_path):
    data, path = _log(tmp_path)
    last = json.loads(_lines(path)[-1])
    extra = {"time": last["time"], "user": "ghost", "path": "/z", "status": 200}
    extra["prev"] = last["hash"]
    extra["hash"] = _hash(last["hash"], extra)
    with path.open("ab") as fh:
        fh.write(orjson.dumps(extra) + b"\n")
    result = _verify(data)
    assert result.returncode == 1 and "1 line after the 12 entries" in result.stderr


def test_lines_a_crash_left_past_the_head_are_adopted_by_the_next_append(tmp_path):
    """A power cut can keep fsynced lines but lose the head's latest writes: verify says
    so, and the server's next entry continues the chain instead of breaking it."""
    data, path = _log(tmp_path, 9)
    head = path.parent / "head.json"
    stale = head.read_bytes()
    log = AuditLog(data)
    for k in range(3):
        log.append({"user": f"late{k}", "path": "/x", "status": 200})
    head.write_bytes(stale)
    result = _verify(data)
    assert result.returncode == 1 and "3 lines after the 9 entries" in result.stderr
    log.append({"user": "after", "path": "/x", "status": 200})
    result = _verify(data)
    assert result.returncode == 0 and "13 entries" in result.stdout


def test_unreadable_head_is_named(tmp_path):
    data, path = _log(tmp_path)
    (path.parent / "head.json").write_text("[1, 2]")
    result = _verify(data)
    assert result.returncode == 1 and "not a head" in result.stderr


def test_two_worker_processes_append_one_intact_chain(demo_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data, ignore=shutil.ignore_patterns("audit"))
    keys = [KeyStore(data).create("rer", f"w{k}")[0] for k in range(6)]
    server = RunningServer(data, free_port(), workers=2)
    statuses: list[int] = []
    try:
        children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
        assert len(children.read_text().split()) >= 2  # uvicorn's two worker processes

        def hammer(key: str) -> None:
            with httpx.Client(base_url=server.url, headers={"X-API-Key": key}) as client:
                for k in range(40):
                    reply = client.get(f"/collections/rer-parcels/items?f=json&limit=1&offset={k}")
                    statuses.append(reply.status_code)

        threads = [threading.Thread(target=hammer, args=(key,)) for key in keys]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()
    assert len(statuses) == 240 and set(statuses) == {200}
    result = _verify(data)
    assert result.returncode == 0, result.stderr
    assert "240 entries" in result.stdout
    head = json.loads((data / "audit" / "head.json").read_text())
    assert head["entries"] == 240


# -- class 7 part: since/until -----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("since=garbage", "since"),
        ("until=garbage", "until"),
        ("since=2026-13-45", "since"),
        ("since=2026-11-25T08:00:00", "since"),  # no offset
        ("until=2026-11-25T25:00:00Z", "until"),
        ("since=20261125", "since"),
        ("since=2026-11-25%2008:00Z", "since"),
        ("until=%00", "until"),
        ("since=2026-11-25&until=nope", "until"),
        ("since=2026-11-01/2026-11-30", "since"),  # an interval is not an instant
        ("since=2026-02-30", "since"),
    ],
)
def test_bad_times_are_400_naming_the_parameter(env, query, name):
    with TestClient(create_app(env["data"], "http://testserver", watch=False)) as client:
        reply = client.get(f"/audit?{query}", headers={"X-API-Key": env["auditor"]})
    assert reply.status_code == 400
    assert reply.json()["description"].startswith(f"{name}: ")


@pytest.mark.parametrize(
    "query",
    ["status=abc", "limit=-1", "limit=0", "denied=maybe", "colection=rer-parcels"],
)
def test_other_bad_audit_parameters_are_400(env, query):
    with TestClient(create_app(env["data"], "http://testserver", watch=False)) as client:
        reply = client.get(f"/audit?{query}", headers={"X-API-Key": env["auditor"]})
    assert reply.status_code == 400
    assert query.split("=")[0] in reply.json()["description"]


def test_times_with_offsets_and_dates_select_by_the_instant(tmp_path, env):
    data = tmp_path / "data"
    shutil.copytree(env["data"], data, ignore=shutil.ignore_patterns("audit"))
    path = data / "audit" / "audit.jsonl"
    log = AuditLog(data)
    for k in range(3):
        log.append({"user": f"u{k}", "path": "/x", "status": 200})
    lines = [json.loads(line) for line in _lines(path)]
    # rewrite the times to known instants, chaining again (a log of three known days)
    times = ["2026-11-24T23:30:00.000000Z", "2026-11-25T01:00:00.000000Z",
             "2026-11-25T16:30:00.000000Z"]  # fmt: skip
    prev = "0" * 64
    with path.open("wb") as fh:
        for entry, when in zip(lines, times, strict=True):
            entry.pop("hash")
            entry["time"], entry["prev"] = when, prev
            entry["hash"] = prev = _hash(prev, entry)
            fh.write(orjson.dumps(entry) + b"\n")
    (data / "audit" / "head.json").write_bytes(orjson.dumps({"entries": 3, "hash": prev}))
    assert _verify(data).returncode == 0
    with TestClient(create_app(data, "http://testserver", watch=False)) as client:

        def users(query: str) -> list[str]:
            reply = client.get(f"/audit?{query}", headers={"X-API-Key": env["auditor"]})
            assert reply.status_code == 200, reply.text
            return [e["user"] for e in reply.json()["entries"] if e["path"] == "/x"]

        assert users("since=2026-11-25") == ["u1", "u2"]
        assert users("until=2026-11-25") == ["u0", "u1", "u2"]  # a date includes its day
        assert users("until=2026-11-24") == ["u0"]
        # 08:00 in Beijing is 00:00 UTC: the first entry (23:30 UTC the day before) is out
        assert users("since=" + quote("2026-11-25T08:00:00+08:00")) == ["u1", "u2"]
        assert users("until=2026-11-25T09:00:00%2B08:00") == ["u0", "u1"]
    cli = shikong("audit", "query", "--since", "garbage", "--data", str(data))
    assert cli.returncode == 2 and "since: 'garbage'" in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1 and "Traceback" not in cli.stderr
