"""不动产单元代码 (real-estate unit codes, GB/T 37346-2019): parse, validate and build.

A unit code has 28 characters::

    410402 001 001 GB 00001 F 0001 0001
    county  |   |  |   |    |  |    └ unit number (4 digits)
            |   |  |   |    |  └ building number (4 digits)
            |   |  |   |    └ fixture feature code: F building, L trees, Q other, W none
            |   |  |   └ parcel sequence in the sub-district (00001-99999)
            |   |  └ parcel feature code: ownership letter + right-type letter
            |   └ cadastral sub-district (地籍子区)
            └ cadastral district (地籍区)

The first 19 characters are the parcel code (宗地代码). Registers key property records by
this code, so a code that is silently wrong attaches a right to the wrong parcel: every
problem is reported with the 1-based character positions it concerns. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

LENGTH = 28
PARCEL_CODE_LENGTH = 19
SOURCE = "unit code"

# The counties of the demo city (GB/T 2260). Informative only: codes are NOT checked
# against it, any county of a real province is accepted.
DEMO_COUNTIES: dict[str, str] = {
    "410402": "新华区",
    "410403": "卫东区",
    "410404": "石龙区",
    "410411": "湛河区",
    "410421": "宝丰县",
    "410422": "叶县",
    "410423": "鲁山县",
    "410425": "郏县",
    "410481": "舞钢市",
    "410482": "汝州市",
}

# GB/T 2260 province-level codes from 11 (Beijing) to 65 (Xinjiang); the gaps in the
# range (16-20, 24-30, ...) name no province.
PROVINCE_CODES: frozenset[str] = frozenset(
    f"{n}"
    for n in (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
    )
)

OWNERSHIP: dict[str, str] = {"G": "国有", "J": "集体", "Z": "待定"}
RIGHT_TYPES: dict[str, str] = {
    "A": "集体土地所有权",
    "B": "建设用地使用权（地表）",
    "S": "建设用地使用权（地上）",
    "X": "建设用地使用权（地下）",
    "C": "宅基地使用权",
    "D": "土地承包经营权（耕地）",
    "E": "林地承包经营权（林地）",
    "F": "草原承包经营权（草地）",
    "H": "海域使用权",
    "G": "无居民海岛使用权",
    "W": "使用权未确定或有争议",
    "Y": "其他土地使用权",
}
FIXTURE_TYPES: dict[str, str] = {
    "F": "房屋（构筑物）",
    "L": "森林、林木",
    "Q": "其他",
    "W": "无定着物",
}
NO_FIXTURE = "W"


@dataclass(frozen=True)
class UnitCode:
    """A parsed unit code; ``str(code)`` gives the 28 characters back."""

    county: str  # 6 digits, GB/T 2260
    district: str  # 3 digits, 地籍区
    subdistrict: str  # 3 digits, 地籍子区
    ownership_letter: str  # G / J / Z
    right_letter: str  # A B S X C D E F H G W Y
    sequence: int  # 1..99999
    fixture: str  # F / L / Q / W
    building: int  # 0..9999
    unit: int  # 0..9999

    @property
    def code(self) -> str:
        return f"{self.parcel_code}{self.fixture}{self.building:04d}{self.unit:04d}"

    @property
    def parcel_code(self) -> str:
        """The 19-character 宗地代码: the parcel without its fixture."""
        return (
            f"{self.county}{self.district}{self.subdistrict}"
            f"{self.ownership_letter}{self.right_letter}{self.sequence:05d}"
        )

    @property
    def feature_code(self) -> str:
        return self.ownership_letter + self.right_letter

    @property
    def ownership(self) -> str:
        """'国有', '集体' or '待定'."""
        return OWNERSHIP[self.ownership_letter]

    @property
    def right_type(self) -> str:
        """The kind of right the parcel feature code's second letter names."""
        return RIGHT_TYPES[self.right_letter]

    @property
    def fixture_type(self) -> str:
        return FIXTURE_TYPES[self.fixture]

    @property
    def county_name(self) -> str | None:
        """The county's name when it is one of the demo city's counties."""
        return DEMO_COUNTIES.get(self.county)

    def __str__(self) -> str:
        return self.code


def _error(problem: str, first: int, last: int | None = None) -> InputError:
    where = f"character {first}" if last is None or last == first else f"characters {first}-{last}"
    return InputError(SOURCE, problem, where=where)


def _digits(text: str, first: int, what: str) -> str:
    """The slice of ``text`` at 1-based ``first`` as long as ``what`` needs, checked."""
    if not (text.isascii() and text.isdigit()):
        raise _error(f"{what} {text!r} must be {len(text)} digits", first, first + len(text) - 1)
    return text


def _letter(char: str, position: int, what: str, allowed: dict[str, str]) -> str:
    if char not in allowed:
        hint = f" (upper-case {char.upper()!r}?)" if char.upper() in allowed else ""
        choices = ", ".join(f"{k} {v}" for k, v in allowed.items())
        raise _error(f"unknown {what} {char!r}{hint}: expected one of {choices}", position)
    return char


def parse_unit_code(text: str) -> UnitCode:
    """Parse a 28-character unit code; InputError naming the characters and the problem.

    Surrounding whitespace is dropped (codes are pasted from forms); nothing else is
    corrected, lower-case letters included.
    """
    if not isinstance(text, str):
        raise InputError(SOURCE, f"expected text, got {type(text).__name__}")
    code = text.strip()
    if len(code) != LENGTH:
        raise InputError(
            SOURCE,
            f"{code!r} has {len(code)} characters, a unit code has {LENGTH} "
            f"(19 parcel + 9 fixture)",
            where="whole code",
        )
    county = _digits(code[0:6], 1, "county code")
    if county[:2] not in PROVINCE_CODES:
        raise _error(
            f"county code {county}: {county[:2]} is not a GB/T 2260 province code (11-65)", 1, 2
        )
    district = _digits(code[6:9], 7, "cadastral district (地籍区)")
    subdistrict = _digits(code[9:12], 10, "cadastral sub-district (地籍子区)")
    owner = _letter(code[12], 13, "parcel ownership letter", OWNERSHIP)
    right = _letter(code[13], 14, "parcel right-type letter", RIGHT_TYPES)
    sequence = _digits(code[14:19], 15, "parcel sequence")
    if sequence == "00000":
        raise _error("parcel sequence 00000 is not allowed: sequences start at 00001", 15, 19)
    fixture = _letter(code[19], 20, "fixture code", FIXTURE_TYPES)
    number = _digits(code[20:28], 21, "fixture unit number")
    if fixture == NO_FIXTURE and number != "00000000":
        raise _error(
            f"fixture code W (no fixture) must be followed by 00000000, found {number}", 21, 28
        )
    return UnitCode(
        county=county,
        district=district,
        subdistrict=subdistrict,
        ownership_letter=owner,
        right_letter=right,
        sequence=int(sequence),
        fixture=fixture,
        building=int(number[:4]),
        unit=int(number[4:]),
    )


def is_valid_unit_code(text: object) -> bool:
    """True if ``text`` parses as a unit code."""
    if not isinstance(text, str):
        return False
    try:
        parse_unit_code(text)
    except InputError:
        return False
    return True


def _whole(value: int | str, what: str, digits: int, low: int = 0) -> str:
    """A whole number as zero-padded digits, refusing what does not fit."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):
        raise InputError(SOURCE, f"{what} {value!r} is not a whole number")
    number = int(text)
    if not low <= number <= 10**digits - 1:
        raise InputError(SOURCE, f"{what} {number} is outside {low}-{10**digits - 1}")
    return f"{number:0{digits}d}"


def make_unit_code(
    county: int | str,
    district: int | str,
    subdistrict: int | str,
    ownership_letter: str,
    right_letter: str,
    sequence: int,
    fixture: str = NO_FIXTURE,
    building: int = 0,
    unit: int = 0,
) -> str:
    """Build a 28-character unit code from its parts; InputError if a part does not fit.

    The result is parsed back, so it is exactly as valid as :func:`parse_unit_code` demands.
    """
    if fixture == NO_FIXTURE and (building or unit):
        raise InputError(
            SOURCE, f"fixture W (no fixture) takes no building/unit number, got {building}/{unit}"
        )
    for what, letter in (
        ("ownership letter", ownership_letter),
        ("right-type letter", right_letter),
        ("fixture code", fixture),
    ):
        if not isinstance(letter, str) or len(letter) != 1:
            raise InputError(SOURCE, f"{what} {letter!r} must be one letter")
    county_text = str(county).strip()
    if len(county_text) != 6:
        raise InputError(SOURCE, f"county code {county!r} must be 6 digits (GB/T 2260)")
    code = (
        _whole(county_text, "county code", 6)
        + _whole(district, "cadastral district", 3)
        + _whole(subdistrict, "cadastral sub-district", 3)
        + ownership_letter
        + right_letter
        + _whole(sequence, "parcel sequence", 5, low=1)
        + fixture
        + _whole(building, "building number", 4)
        + _whole(unit, "unit number", 4)
    )
    return parse_unit_code(code).code
