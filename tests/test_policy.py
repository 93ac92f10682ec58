"""The access policy's decisions, against a truth table written out by hand."""

from __future__ import annotations

import pytest
from shikong.catalog.policy import Caller, CollectionMeta, Policy
from shikong.spatial.errors import InputError

POLICY = Policy.from_dict(
    {
        "grants": [
            {"owner": "rer", "layers": ["parcels"], "to": ["nrp"], "rights": ["read"]},
            {"owner": "rer", "layers": ["parcels"], "to": ["psb"], "rights": ["personal-data"]},
            {"owner": "nrp", "layers": ["*"], "to": ["agr"], "rights": ["write"]},
        ],
        "personal_data": {"rer-parcels": {"owner_name": "name", "id_number": "id_number"}},
    }
)
PARCELS = CollectionMeta("rer-parcels", "rer", "restricted")
LANDUSE = CollectionMeta("nrp-landuse", "nrp", "shared")
ROADS = CollectionMeta("tra-roads", "tra", "public")
ANON, NRP, PSB, RER, WAT, AGR = (
    Caller(),
    Caller("a", "nrp"),
    Caller("b", "psb"),
    Caller("c", "rer"),
    Caller("d", "wat"),
    Caller("e", "agr"),
)
AUDITOR = Caller("f", "rer", role="auditor")


@pytest.mark.parametrize(
    ("caller", "collection", "read", "write", "personal"),
    [
        (ANON, ROADS, True, False, False),
        (ANON, LANDUSE, False, False, False),
        (ANON, PARCELS, False, False, False),
        (WAT, ROADS, True, False, False),
        (WAT, LANDUSE, True, False, False),
        (WAT, PARCELS, False, False, False),
        (NRP, PARCELS, True, False, False),  # read grant
        (PSB, PARCELS, True, False, True),  # personal-data implies read
        (RER, PARCELS, True, True, True),  # owner
        (AUDITOR, PARCELS, True, False, True),  # auditors never write
        (AGR, LANDUSE, True, True, False),  # write grant on every nrp layer
        (NRP, LANDUSE, True, True, True),  # the owner holds every right
        (
            Caller("g", "wat", grants=frozenset({("rer-parcels", "read")})),
            PARCELS,
            True,
            False,
            False,
        ),
        (
            Caller("h", "sta", grants=frozenset({("rer-parcels", "personal-data")})),
            PARCELS,
            True,
            False,
            True,
        ),
    ],
)
def test_decisions(caller, collection, read, write, personal):
    assert POLICY.allows(caller, collection, "read") is read
    assert POLICY.allows(caller, collection, "write") is write
    assert POLICY.allows(caller, collection, "personal-data") is personal


def test_access_view_and_masks():
    every = [PARCELS, LANDUSE, ROADS]
    assert POLICY.access(ANON, every).visible == {"tra-roads"}
    nrp = POLICY.access(NRP, every)
    assert nrp.visible == {"rer-parcels", "nrp-landuse", "tra-roads"}
    assert nrp.writable == {"nrp-landuse"}
    assert nrp.masked_fields("rer-parcels") == {"owner_name": "name", "id_number": "id_number"}
    assert POLICY.access(PSB, every).masked_fields("rer-parcels") == {}
    # two callers with the same rights share one view (one built API)
    assert POLICY.access(Caller("x", "wat"), every) == POLICY.access(Caller("y", "hud"), every)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"grants": [{"owner": "rer", "to": ["nrp"], "rights": ["delete"]}]}, "unknown: delete"),
        ({"grants": [{"owner": "rer", "rights": ["read"]}]}, "needs owner, to"),
        ({"personal_data": {"rer-parcels": {"owner_name": "blur"}}}, "unknown mask rule"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_problem(raw, words):
    with pytest.raises(InputError, match=words):
        Policy.from_dict(raw)
