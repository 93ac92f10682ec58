"""Property registry (不动产登记): masking, as-of queries, codes, lineage, the catalog layer.

The hand-built registry below is the oracle: its parcels, dates and changes are written
out here, so every expected answer can be read off the drawing. The demo catalog is then
checked for properties that must hold for any registry (each current parcel is found at
its own point; its changes produce events of their type).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box
from shikong.catalog import Catalog
from shikong.catalog.masking import PERSONAL_FIELDS, mask_id_number, mask_name, mask_records
from shikong.catalog.registry import PropertyRegistry
from shikong.spatial.errors import InputError
from shikong.spatial.registry import (
    UnknownUnitCode,
    parcel_by_code,
    parcel_history,
    parcels_at_point,
    property_by_owner,
    record_to_dict,
    records_to_dicts,
    valid_on,
)

# -- the hand-built registry -------------------------------------------------------------
#
#   y=10 +---------+----+---------+---------+---------+
#        |   A1    | A2 |    B    |    C    |  T (0)  |   A  = A1 + A2 (split 2020-06-01)
#        |         |    |         |  (C2 is |         |   M  = A2 + B  (merge 2022-01-01)
#        |         |    |         |  C minus|         |   C2 = C without its south strip
#   y=1  |         |    |         |  y<1)   |         |        (rebound 2023-03-15)
#   y=0  +---------+----+---------+---------+---------+
#        x=0      x=5  x=10      x=20      x=30      x=40
#
# Map units are 0.001° from (113.0°E, 33.0°N), so a unit is roughly 100 m.

PREFIX = "410402001001GB"
A, B, C, A1, A2, M, C2, T = (f"{PREFIX}{n:05d}W00000000" for n in range(1, 9))
SPLIT, MERGE, REBOUND = "2020-06-01", "2022-01-01", "2023-03-15"
ID_ZHANG = "410402196001153075"
ID_LI = "410402197203041234"
ID_WANG = "41040219851111567X"
ID_OUYANG = "410403199002022468"
ID_ZHAO = "410403200001017777"


def lon(x: float) -> float:
    return 113.0 + x * 0.001


def lat(y: float) -> float:
    return 33.0 + y * 0.001


def cell(x0: float, y0: float, x1: float, y1: float):
    return box(lon(x0), lat(y0), lon(x1), lat(y1))


def _record(code, geom, owner, idn, start, end=None, state=None, change=None, parents=None):
    return {
        "record_id": f"R{code[14:19]}",
        "unit_code": code,
        "parcel_code": code[:19],
        "location": f"新华区测试路{int(code[14:19])}号",
        "owner_name": owner,
        "id_number": idn,
        "right_type": "国有建设用地使用权",
        "right_nature": "出让",
        "land_use": "城镇住宅用地",
        "land_use_code": "0701",
        "area_m2": 6666.67,
        "term_start": start,
        "term_end": "2080-12-31",
        "registration_date": start,
        "state": state if state is not None else (1 if end is None else 2),
        "valid_from": start,
        "valid_to": end,
        "mortgaged": code == B,
        "seized": False,
        "change_type": change,
        "parent_codes": parents,
        "geometry": geom,
    }


def registry_frame() -> gpd.GeoDataFrame:
    rows = [
        _record(A, cell(0, 0, 10, 10), "张三", ID_ZHANG, "2010-01-01", SPLIT),
        _record(B, cell(10, 0, 20, 10), "李四", ID_LI, "2011-05-01", MERGE),
        _record(C, cell(20, 0, 30, 10), "欧阳娜娜", ID_OUYANG, "2012-03-01", REBOUND),
        _record(A1, cell(0, 0, 5, 10), "王五", ID_WANG, SPLIT, change="split", parents=A),
        _record(A2, cell(5, 0, 10, 10), "张三", ID_ZHANG, SPLIT, MERGE, None, "split", A),
        _record(M, cell(5, 0, 20, 10), "张三", ID_ZHANG, MERGE, None, None, "merge", f"{A2},{B}"),
        _record(C2, cell(20, 1, 30, 10), "欧阳娜娜", ID_OUYANG, REBOUND, None, None, "rebound", C),
        # a temporary record (an application, state 0): never a right on any date
        _record(T, cell(30, 0, 40, 10), "赵六", ID_ZHAO, "2024-01-01", state=0),
    ]
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4490)


@pytest.fixture
def frame() -> gpd.GeoDataFrame:
    return registry_frame()


def codes(found: gpd.GeoDataFrame) -> set[str]:
    return set(found["unit_code"])


# -- masking -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("410402196001153075", "410402****3075"),
        ("41040219851111567X", "410402****567X"),
        (" 410402196001153075 ", "410402****3075"),
        ("410402600115307", "410402****5307"),  # old 15-digit numbers: same rule
        ("12345678901", "123456****8901"),
        ("1234567890", "****"),  # the rule would show all ten characters
        ("123", "****"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_id_number(raw, masked):
    assert mask_id_number(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("张三", "张*"),
        ("王小明", "王**"),
        ("欧阳娜娜", "欧***"),
        ("王", "*"),
        (" 李四 ", "李*"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_name(raw, masked):
    assert mask_name(raw) == masked


def test_personal_fields_name_the_columns_and_their_masks():
    assert {"owner_name": mask_name, "id_number": mask_id_number} == PERSONAL_FIELDS


def test_mask_records_masks_everywhere_and_copies(frame):
    records = records_to_dicts(frame)
    before = json.dumps(records, ensure_ascii=False)
    masked = mask_records(records, grants_personal_data=False)
    dump = json.dumps(masked, ensure_ascii=False)
    for idn in (ID_ZHANG, ID_LI, ID_WANG, ID_OUYANG, ID_ZHAO):
        assert idn not in dump
        assert idn in before
    for name in ("张三", "李四", "欧阳娜娜", "王五", "赵六"):
        assert f'"{name}"' not in dump
    assert masked[0]["owners"] == [{"owner_name": "张*", "id_number": "410402****3075"}]
    assert json.dumps(records, ensure_ascii=False) == before  # the input is not touched
    granted = mask_records(records, grants_personal_data=True)
    assert granted == records and granted is not records
    granted[0]["owners"][0]["id_number"] = "changed"
    assert records[0]["owners"][0]["id_number"] == ID_ZHANG  # a deep copy
    # top-level personal columns (a raw feature's properties) are masked too
    assert mask_records([{"owner_name": "张三", "id_number": ID_ZHANG, "n": 1}], False) == [
        {"owner_name": "张*", "id_number": "410402****3075", "n": 1}
    ]
    # an ID number that was read as a number is masked all the same
    assert mask_records([{"id_number": 410402196001153075}], False) == [
        {"id_number": "410402****3075"}
    ]


def test_record_to_dict_is_the_parcel_answer(frame):
    row = record_to_dict(frame[frame["unit_code"] == B].iloc[0])
    assert row["unit_code"] == B and row["parcel_code"] == B[:19]
    assert row["location"] == "新华区测试路2号"
    assert row["land_use"] == "城镇住宅用地" and row["land_use_code"] == "0701"
    # 6666.67 m² = 0.6667 公顷 = 10 亩 (1 亩 = 10000/15 m²)
    assert row["area"] == {"m2": 6666.67, "ha": 0.6667, "mu": 10.0}
    assert row["right_type"] == "国有建设用地使用权"
    assert row["term"] == {"start": "2011-05-01", "end": "2080-12-31"}
    assert row["registration_date"] == "2011-05-01"
    assert row["state"] == 2 and row["valid_to"] == MERGE
    assert row["mortgaged"] is True and row["seized"] is False
    assert row["owners"] == [{"owner_name": "李四", "id_number": ID_LI}]
    assert row["geometry"]["type"] == "Polygon"
    lons = [p[0] for p in row["geometry"]["coordinates"][0]]
    assert min(lons) == pytest.approx(lon(10)) and max(lons) == pytest.approx(lon(20))
    json.dumps(row)  # JSON-ready: no numpy scalars, no NaN objects
    merged = record_to_dict(frame[frame["unit_code"] == M].iloc[0])
    assert merged["parent_codes"] == [A2, B] and merged["change_type"] == "merge"
    assert merged["valid_to"] is None and merged["state"] == 1


# -- validity ----------------------------------------------------------------------------


def test_valid_on_end_is_exclusive_and_temporary_never_counts(frame):
    assert codes(valid_on(frame, "2020-05-31")) == {A, B, C}
    assert codes(valid_on(frame, SPLIT)) == {A1, A2, B, C}  # the change date: new records
    assert codes(valid_on(frame, date(2021, 12, 31))) == {A1, A2, B, C}
    assert codes(valid_on(frame, datetime(2022, 1, 1, 18, 30))) == {A1, M, C}
    assert codes(valid_on(frame, "2025-01-01")) == {A1, M, C2}  # not T (state 0)
    assert codes(valid_on(frame, "2009-12-31")) == set()
    with pytest.raises(InputError, match="not an ISO date"):
        valid_on(frame, "yesterday")


# -- at a point --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y", "as_of", "expected"),
    [
        (2, 5, "2020-05-31", {A}),
        (2, 5, SPLIT, {A1}),
        (2, 5, None, {A1}),
        (7, 5, "2020-05-31", {A}),
        (7, 5, "2021-12-31", {A2}),
        (7, 5, MERGE, {M}),
        (15, 5, "2021-12-31", {B}),
        (15, 5, MERGE, {M}),
        (15, 5, None, {M}),
        (25, 0.5, "2023-03-14", {C}),  # the strip the rebound gave to the street
        (25, 0.5, REBOUND, set()),
        (25, 0.5, None, set()),
        (25, 5, "2023-03-14", {C}),
        (25, 5, REBOUND, {C2}),
        (2, 5, "2009-12-31", set()),  # before any registration
        (35, 5, "2024-06-01", set()),  # only a temporary record there
        (35, 5, None, set()),
        (50, 50, None, set()),  # outside every parcel
    ],
)
def test_parcels_at_point_on_each_side_of_each_change(frame, x, y, as_of, expected):
    assert codes(parcels_at_point(frame, lon(x), lat(y), as_of)) == expected


@pytest.mark.parametrize(
    ("x", "y", "as_of", "expected"),
    [
        (5, 5, "2021-01-01", {A1, A2}),
        (5, 5, None, {A1, M}),
        (10, 5, "2021-01-01", {A2, B}),
        (10, 5, None, {M}),  # inside the merged parcel now
        (20, 5, "2022-06-01", {M, C}),
        (20, 5, None, {M, C2}),
        (5, 10, None, {A1, M}),  # a shared corner on the outer edge
    ],
)
def test_a_point_on_a_shared_boundary_returns_both(frame, x, y, as_of, expected):
    assert codes(parcels_at_point(frame, lon(x), lat(y), as_of)) == expected


def test_parcels_at_point_rejects_what_is_not_a_lon_lat(frame):
    with pytest.raises(InputError, match="not a lon/lat"):
        parcels_at_point(frame, 500000.0, 3700000.0)
    with pytest.raises(InputError, match="finite"):
        parcels_at_point(frame, float("nan"), 33.0)


def test_parcels_at_point_in_a_projected_frame(frame):
    projected = frame.to_crs(4547)  # CGCS2000 GK zone 38 (114°E)
    assert codes(parcels_at_point(projected, lon(7), lat(5), "2021-12-31")) == {A2}


# -- by code -----------------------------------------------------------------------------


def test_parcel_by_code_old_and_new_codes(frame):
    old = parcel_by_code(frame, A)
    assert list(old["unit_code"]) == [A] and list(old["state"]) == [2]
    assert list(parcel_by_code(frame, A, "2015-01-01")["unit_code"]) == [A]
    assert list(parcel_by_code(frame, M)["unit_code"]) == [M]
    assert list(parcel_by_code(frame, f"  {M}\n", MERGE)["unit_code"]) == [M]
    assert list(parcel_by_code(frame, A2, "2021-01-01")["valid_to"]) == [MERGE]


def test_parcel_by_code_not_valid_on_the_date(frame):
    with pytest.raises(UnknownUnitCode, match=rf"{A} on 2020-06-01 \(valid 2010-01-01 – 2020"):
        parcel_by_code(frame, A, SPLIT)
    with pytest.raises(UnknownUnitCode, match="valid 2022-01-01 – now"):
        parcel_by_code(frame, M, "2021-06-01")


def test_parcel_by_code_several_records_are_sorted_by_valid_from(frame):
    later = _record(B, cell(10, 0, 20, 10), "孙七", ID_ZHAO, "2013-01-01", MERGE)
    first = frame["unit_code"] == B
    frame.loc[first, "valid_to"] = "2013-01-01"
    both = gpd.GeoDataFrame([later], geometry="geometry", crs=4490)
    frame = gpd.GeoDataFrame(
        [*both.to_dict("records"), *frame.to_dict("records")], geometry="geometry", crs=4490
    )
    found = parcel_by_code(frame, B)
    assert list(found["valid_from"]) == ["2011-05-01", "2013-01-01"]
    assert list(parcel_by_code(frame, B, "2012-01-01")["owner_name"]) == ["李四"]
    assert list(parcel_by_code(frame, B, "2013-01-01")["owner_name"]) == ["孙七"]


@pytest.mark.parametrize(
    ("code", "problem", "where"),
    [
        (A[:19], "has 19 characters, a unit code has 28", "whole code"),
        (A + "0", "has 29 characters", "whole code"),
        ("410402001001QB00001W00000000", "unknown parcel ownership letter 'Q'", "character 13"),
        ("410402001001gB00001W00000000", "upper-case 'G'", "character 13"),
        ("410402001001GB00001W00010001", "fixture code W (no fixture)", "characters 21-28"),
        ("4104020010O1GB00001W00000000", "must be 3 digits", "characters 10-12"),
    ],
)
def test_malformed_codes_say_what_is_wrong(frame, code, problem, where):
    for call in (
        lambda: parcel_by_code(frame, code),
        lambda: parcel_history(frame, code),
    ):
        with pytest.raises(InputError) as info:
            call()
        assert not isinstance(info.value, UnknownUnitCode)
        assert problem in info.value.problem
        assert info.value.where == where


def test_unknown_code_is_its_own_error(frame):
    unknown = f"{PREFIX}00099W00000000"
    for call in (lambda: parcel_by_code(frame, unknown), lambda: parcel_history(frame, unknown)):
        with pytest.raises(UnknownUnitCode, match=f"no parcel with unit code {unknown}") as info:
            call()
        assert isinstance(info.value, InputError)


# -- history -----------------------------------------------------------------------------

SPLIT_EVENT = {"date": SPLIT, "change_type": "split", "from": [A], "to": [A1, A2]}
MERGE_EVENT = {"date": MERGE, "change_type": "merge", "from": [B, A2], "to": [M]}  # sorted
REBOUND_EVENT = {"date": REBOUND, "change_type": "rebound", "from": [C], "to": [C2]}


@pytest.mark.parametrize(
    ("code", "ancestors", "descendants", "events", "involved"),
    [
        (A, [], [A1, A2, M], [SPLIT_EVENT, MERGE_EVENT], {A, A1, A2, B, M}),
        (A1, [A], [], [SPLIT_EVENT], {A, A1, A2}),
        (A2, [A], [M], [SPLIT_EVENT, MERGE_EVENT], {A, A1, A2, B, M}),
        (B, [], [M], [MERGE_EVENT], {A2, B, M}),
        (M, [A, B, A2], [], [SPLIT_EVENT, MERGE_EVENT], {A, A1, A2, B, M}),
        (C, [], [C2], [REBOUND_EVENT], {C, C2}),
        (C2, [C], [], [REBOUND_EVENT], {C, C2}),
        (T, [], [], [], {T}),
    ],
)
def test_history(frame, code, ancestors, descendants, events, involved):
    history = parcel_history(frame, code)
    assert history["unit_code"] == code
    assert history["ancestors"] == ancestors
    assert history["descendants"] == descendants
    assert history["events"] == events
    assert {r["unit_code"] for r in history["records"]} == involved
    starts = [r["valid_from"] for r in history["records"]]
    assert starts == sorted(starts)
    assert all(r["geometry"]["type"] == "Polygon" for r in history["records"])
    json.dumps(history)


def test_history_survives_cycles_and_self_references(frame):
    x, y = f"{PREFIX}00011W00000000", f"{PREFIX}00012W00000000"
    bad = [
        _record(x, cell(50, 0, 60, 10), "甲", ID_ZHAO, "2015-01-01", None, None, "rebound", y),
        _record(y, cell(60, 0, 70, 10), "乙", ID_ZHAO, "2016-01-01", None, None, "rebound", x),
        # and a record that names itself as its parent: no event, no loop
        _record(f"{PREFIX}00013W00000000", cell(70, 0, 80, 10), "丙", ID_ZHAO, "2017-01-01", None,
                None, "rebound", f"{PREFIX}00013W00000000"),
    ]  # fmt: skip
    frame = gpd.GeoDataFrame([*frame.to_dict("records"), *bad], geometry="geometry", crs=4490)
    history = parcel_history(frame, x)
    assert history["ancestors"] == [y] and history["descendants"] == [y]
    assert [(e["date"], e["from"], e["to"]) for e in history["events"]] == [
        ("2015-01-01", [y], [x]),
        ("2016-01-01", [x], [y]),
    ]
    own = parcel_history(frame, f"{PREFIX}00013W00000000")
    assert own["events"] == [] and own["ancestors"] == [] and own["descendants"] == []


# -- by owner ----------------------------------------------------------------------------


def test_property_by_owner(frame):
    assert codes(property_by_owner(frame, id_number=ID_ZHANG)) == {M}
    assert codes(property_by_owner(frame, id_number=ID_ZHANG, as_of="2021-01-01")) == {A2}
    assert codes(property_by_owner(frame, id_number=ID_ZHANG, as_of="2019-01-01")) == {A}
    assert codes(property_by_owner(frame, owner_name="欧阳娜娜")) == {C2}
    assert codes(property_by_owner(frame, id_number=ID_WANG.lower())) == {A1}  # x is X
    assert codes(property_by_owner(frame, owner_name="张三", id_number=ID_LI)) == set()
    assert codes(property_by_owner(frame, owner_name="张")) == set()  # exact only
    assert codes(property_by_owner(frame, id_number=ID_ZHAO)) == set()  # temporary only
    with pytest.raises(InputError, match="owner name or an ID number"):
        property_by_owner(frame)
    with pytest.raises(InputError, match="is not an ID number") as info:
        property_by_owner(frame, id_number="4104021960011530")
    assert "4104021960011530" not in str(info.value)  # even a wrong number is not echoed
    with pytest.raises(InputError, match="must be text") as info:
        property_by_owner(frame, id_number=int(ID_ZHANG[:17]))  # a JSON number, say
    assert ID_ZHANG[:17] not in str(info.value)


# -- through the catalog -----------------------------------------------------------------


def _ingest(cat: Catalog, frame: gpd.GeoDataFrame, path: Path, version: str, valid: str) -> None:
    frame.to_file(path, driver="GPKG")
    cat.ingest(path, department="rer", layer="parcels", version=version, valid_from=valid)


def test_property_registry_on_a_hand_built_layer(tmp_path, frame):
    cat = Catalog.open(tmp_path / "data")
    _ingest(cat, frame, tmp_path / "v1.gpkg", "2023", "2023-12-31")
    registry = PropertyRegistry(cat)

    here = registry.at_point(lon(7), lat(5), as_of="2021-12-31")
    assert [r["unit_code"] for r in here["records"]] == [A2]
    assert here["personal_data"] == "masked" and here["count"] == 1
    assert here["layer_version"] == cat.layer("rer-parcels").current.id
    assert here["records"][0]["owners"] == [{"owner_name": "张*", "id_number": "410402****3075"}]
    edge = registry.at_point(lon(5), lat(5))
    assert [r["unit_code"] for r in edge["records"]] == [A1, M]

    granted = registry.by_code(M, grants_personal_data=True)
    assert granted["records"][0]["owners"] == [{"owner_name": "张三", "id_number": ID_ZHANG}]
    with pytest.raises(UnknownUnitCode):
        registry.by_code(f"{PREFIX}00099W00000000")
    with pytest.raises(InputError, match="has 19 characters"):
        registry.by_code(A[:19])

    history = registry.history(A)
    assert history["events"] == [SPLIT_EVENT, MERGE_EVENT]
    mine = registry.by_owner(id_number=ID_ZHANG, as_of="2021-01-01")
    assert [r["unit_code"] for r in mine["records"]] == [A2]
    assert mine["query"]["id_number"] == "410402****3075"
    for answer in (here, edge, history, mine, registry.by_code(A)):
        dump = json.dumps(answer, ensure_ascii=False)
        assert not any(i in dump for i in (ID_ZHANG, ID_LI, ID_WANG, ID_OUYANG, ID_ZHAO))
        assert "张三" not in dump and "李四" not in dump
    granted_history = json.dumps(registry.history(A, grants_personal_data=True))
    assert ID_ZHANG in granted_history and ID_LI in granted_history

    # the frame is read once per layer version, and again when a new version arrives
    first_id, first = registry.frame()
    assert registry.frame()[1] is first
    newer = registry_frame()
    newer.loc[newer["unit_code"] == M, "mortgaged"] = True
    _ingest(cat, newer, tmp_path / "v2.gpkg", "2024", "2024-12-31")
    second_id, second = registry.frame()
    assert second_id != first_id and second is not first
    assert registry.by_code(M)["records"][0]["mortgaged"] is True


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Catalog:
    from shikong.catalog.bulk import ingest_entries, read_manifest
    from shikong.demo import MANIFEST, generate

    tmp = tmp_path_factory.mktemp("registry-demo")
    generate(tmp / "sources", scale="small")
    cat = Catalog.open(tmp / "data")
    ingest_entries(cat, tmp / "sources", read_manifest(tmp / "sources" / MANIFEST))
    return cat


def test_demo_every_current_parcel_is_found_at_its_own_point(demo):
    registry = PropertyRegistry(demo)
    _, frame = registry.frame()
    current = frame[(frame["state"] == 1) & frame["valid_to"].isna()]
    assert len(current) > 50
    for _, row in current.iterrows():
        point = row.geometry.representative_point()
        found = registry.at_point(point.x, point.y)["records"]
        # parcels never overlap, and a representative point is inside, not on an edge
        assert [r["unit_code"] for r in found] == [row["unit_code"]]


def test_demo_changes_make_history_events_of_their_type(demo):
    registry = PropertyRegistry(demo)
    _, frame = registry.frame()
    changed = frame[frame["change_type"].notna()]
    assert set(changed["change_type"]) == {"split", "merge", "rebound"}
    for _, row in changed.iterrows():
        parents = row["parent_codes"].split(",")
        history = registry.history(row["unit_code"])
        made = [e for e in history["events"] if row["unit_code"] in e["to"]]
        assert len(made) == 1
        event = made[0]
        assert event["change_type"] == row["change_type"]
        assert event["date"] == row["valid_from"]
        assert event["from"] == sorted(parents)
        shape = (len(event["from"]), len(event["to"]))
        assert shape == {"split": (1, 2), "merge": (2, 1), "rebound": (1, 1)}[row["change_type"]]
        for parent in parents:  # the parents were closed on the change date
            closed = registry.by_code(parent)["records"]
            assert [(r["state"], r["valid_to"]) for r in closed] == [(2, row["valid_from"])]
            with pytest.raises(UnknownUnitCode):  # ... and are not valid on it
                registry.by_code(parent, as_of=row["valid_from"])
        assert registry.by_code(row["unit_code"], as_of=row["valid_from"])["count"] == 1
        dump = json.dumps(history, ensure_ascii=False)
        assert not any(i in dump for i in frame["id_number"])


def test_demo_by_code_and_owner_agree_with_the_records(demo):
    registry = PropertyRegistry(demo)
    _, frame = registry.frame()
    row = frame[frame["state"] == 1].iloc[0]
    answer = registry.by_code(row["unit_code"])
    assert [r["record_id"] for r in answer["records"]] == [row["record_id"]]
    assert answer["records"][0]["owners"][0]["id_number"] == mask_id_number(row["id_number"])
    mine = registry.by_owner(id_number=row["id_number"], grants_personal_data=True)
    assert row["record_id"] in [r["record_id"] for r in mine["records"]]
    assert all(r["owners"][0]["id_number"] == row["id_number"] for r in mine["records"])
