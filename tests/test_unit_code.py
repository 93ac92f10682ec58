"""不动产单元代码 (GB/T 37346-2019): parsing, validation and building."""

from __future__ import annotations

import pytest
from shikong.spatial.errors import InputError
from shikong.spatial.unit_code import (
    DEMO_COUNTIES,
    UnitCode,
    is_valid_unit_code,
    make_unit_code,
    parse_unit_code,
)

EXAMPLE = "410402001001GB00001F00010001"


def test_parses_the_standard_example() -> None:
    code = parse_unit_code(EXAMPLE)
    assert code == UnitCode("410402", "001", "001", "G", "B", 1, "F", 1, 1)
    assert str(code) == code.code == EXAMPLE
    assert code.parcel_code == "410402001001GB00001"
    assert len(code.parcel_code) == 19
    assert code.ownership == "国有"
    assert code.right_type == "建设用地使用权（地表）"
    assert code.fixture_type == "房屋（构筑物）"
    assert code.county_name == "新华区"
    assert is_valid_unit_code(EXAMPLE)


@pytest.mark.parametrize(("letter", "ownership"), [("G", "国有"), ("J", "集体"), ("Z", "待定")])
def test_ownership_letters(letter: str, ownership: str) -> None:
    code = parse_unit_code(f"410403002003{letter}C00042W00000000")
    assert code.ownership == ownership
    assert code.right_type == "宅基地使用权"
    assert code.fixture == "W" and code.building == 0 and code.unit == 0


def test_surrounding_whitespace_is_dropped() -> None:
    assert parse_unit_code(f"  {EXAMPLE}\n").code == EXAMPLE


def test_county_outside_the_demo_city_is_accepted() -> None:
    assert "110101" not in DEMO_COUNTIES
    assert is_valid_unit_code("110101001001GB00001W00000000")
    assert parse_unit_code("110101001001GB00001W00000000").county_name is None


def _problem(text: str) -> InputError:
    with pytest.raises(InputError) as info:
        parse_unit_code(text)
    assert not is_valid_unit_code(text)
    assert info.value.source == "unit code"
    return info.value


@pytest.mark.parametrize("text", [EXAMPLE[:-1], EXAMPLE + "1", ""])
def test_wrong_length_says_the_length_found(text: str) -> None:
    err = _problem(text)
    assert f"has {len(text)} characters" in err.problem
    assert "28" in err.problem


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("41040A001001GB00001F00010001", "characters 1-6", "county code"),
        ("990402001001GB00001F00010001", "characters 1-2", "province"),
        ("4104020X1001GB00001F00010001", "characters 7-9", "cadastral district"),
        ("410402001 01GB00001F00010001", "characters 10-12", "sub-district"),
        ("410402001001XB00001F00010001", "character 13", "ownership letter 'X'"),
        ("410402001001gB00001F00010001", "character 13", "upper-case 'G'"),
        ("410402001001GK00001F00010001", "character 14", "right-type letter 'K'"),
        ("410402001001GB0000AF00010001", "characters 15-19", "parcel sequence"),
        ("410402001001GB00000F00010001", "characters 15-19", "00000 is not allowed"),
        ("410402001001GB00001P00010001", "character 20", "fixture code 'P'"),
        ("410402001001GB00001F0001000x", "characters 21-28", "fixture unit number"),
        ("410402001001GB00001W00010001", "characters 21-28", "must be followed by 00000000"),
    ],
)
def test_malformed_codes_name_the_place_and_problem(text: str, where: str, words: str) -> None:
    assert len(text) == 28
    err = _problem(text)
    assert err.where == where
    assert words in err.problem
    assert where in str(err)


def test_full_width_digits_are_not_digits() -> None:
    err = _problem("４10402001001GB00001F00010001")
    assert err.where == "characters 1-6"


def test_non_text_is_invalid() -> None:
    assert not is_valid_unit_code(None)
    assert not is_valid_unit_code(410402001001)


def test_make_builds_valid_codes() -> None:
    assert make_unit_code("410402", 1, 1, "G", "B", 1, "F", 1, 1) == EXAMPLE
    code = make_unit_code(410411, 12, 3, "J", "C", 123)
    assert code == "410411012003JC00123W00000000"
    assert is_valid_unit_code(code)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"sequence": 0}, "parcel sequence 0 is outside 1-99999"),
        ({"sequence": 100000}, "outside 1-99999"),
        ({"district": 1000}, "cadastral district 1000"),
        ({"county": "4104"}, "county code '4104' must be 6 digits"),
        ({"county": "41040x"}, "county code"),
        ({"ownership_letter": "GB"}, "must be one letter"),
        ({"right_letter": "Q"}, "right-type letter 'Q'"),
        ({"building": 1}, "takes no building/unit number"),
        ({"fixture": "F", "building": 10000}, "building number 10000"),
    ],
)
def test_make_refuses_parts_that_do_not_fit(kwargs: dict, words: str) -> None:
    args = {
        "county": "410402",
        "district": 1,
        "subdistrict": 1,
        "ownership_letter": "G",
        "right_letter": "B",
        "sequence": 1,
    } | kwargs
    with pytest.raises(InputError) as info:
        make_unit_code(**args)
    assert words in info.value.problem
