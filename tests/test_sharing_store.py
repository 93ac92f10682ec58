"""The access-request store's contract, on SQLite and on PostgreSQL (issue 22 on issue 21).

Each case runs on both backends: a request is stored as given; a decision moves only a
request still ``requested`` and bumps the version that nodes poll; an expiry moves only
approved requests, and of two stores on one database exactly one moves each.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pg_cluster import pg_cluster, pg_database  # noqa: F401  (fixtures)
from shikong.catalog.sharing import SqliteSharingStore


def _sqlite(tmp_path: Path, request) -> tuple:
    path = tmp_path / "grants.sqlite"
    return SqliteSharingStore(path), lambda: SqliteSharingStore(path)


def _postgres(tmp_path: Path, request) -> tuple:
    from shikong.catalog.postgres_sharing import PostgresSharingStore
    from shikong.catalog.postgres_store import PostgresCatalogStore
    from shikong.catalog.storage import DataDir

    dsn = request.getfixturevalue("pg_database")
    opened = []

    def make():
        store = PostgresCatalogStore(dsn, DataDir(tmp_path / f"node{len(opened)}"))
        opened.append(store)
        return PostgresSharingStore(store)

    request.addfinalizer(lambda: [s.close() for s in opened])
    return make(), make


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request, tmp_path):
    return {"sqlite": _sqlite, "postgres": _postgres}[request.param](tmp_path, request)


def _ask(store, collection="rer-parcels", rights=("read",)):
    return store.add("nrp", "planner", "rer", collection, rights, "land approval",
                     date(2026, 12, 31), "2026-06-01T08:00:00Z")  # fmt: skip


def test_a_request_is_kept_as_given(stores):
    store, _ = stores
    assert store.version() == 0 and store.list() == [] and store.get(1) is None
    made = _ask(store, rights=("read", "personal-data"))
    assert store.get(made.id) == made
    assert (made.department, made.user, made.owner, made.collection) == (
        "nrp", "planner", "rer", "rer-parcels",
    )  # fmt: skip
    assert made.rights == ("read", "personal-data") and made.until == date(2026, 12, 31)
    assert made.state == "requested" and made.decided_by is None
    other = _ask(store, collection="nrp-landuse")
    assert [r.id for r in store.list()] == [made.id, other.id]
    assert [r.id for r in store.list(collection="nrp-landuse")] == [other.id]
    assert [r.id for r in store.list(owner="rer", department="nrp")] == [made.id, other.id]
    assert store.list(department="wat") == []


def test_a_decision_moves_a_pending_request_once_and_bumps_the_version(stores):
    store, another = stores
    made = _ask(store)
    narrowed = store.decide(made.id, "approved", "rer-admin", "2026-06-02T09:00:00Z",
                            None, ("read",), date(2026, 9, 30))  # fmt: skip
    assert narrowed.state == "approved" and narrowed.granted_rights == ("read",)
    assert narrowed.granted_until == date(2026, 9, 30) and narrowed.decided_by == "rer-admin"
    assert store.version() == 1
    again = another().decide(made.id, "refused", "x", "2026-06-03T00:00:00Z", "no", None, None)
    assert again is None and store.get(made.id).state == "approved" and store.version() == 1
    assert [r.id for r in another().approved()] == [made.id]


def test_each_expiry_is_moved_by_exactly_one_store(stores):
    store, another = stores
    first, second, pending = _ask(store), _ask(store), _ask(store)
    for r in (first, second):
        store.decide(r.id, "approved", "rer-admin", "2026-06-02T00:00:00Z", None, None, None)
    one, two = store, another()
    moved = one.expire([first.id, pending.id]) + two.expire([first.id, second.id])
    assert sorted(moved) == [first.id, second.id]  # each once; a pending one never
    assert store.get(pending.id).state == "requested"
    assert store.approved() == [] and one.expire([]) == []
