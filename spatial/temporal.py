"""The one parser of ``datetime`` values: OGC API and STAC instants and intervals.

Every ``datetime`` the platform reads (Features, STAC search, EDR, alerts, the audit
query, the library's ``as_of``/``search``) goes through :func:`parse_datetime`, so a
value means the same everywhere. Two modes:

- **strict** (STAC item search, which follows RFC 3339 section 5.6): each end is a
  date-time with a time and an offset (``2021-06-30T00:00:00Z``); ``..`` or an empty
  string opens one end; an interval open at both ends is refused.
- **lenient** (OGC API Features and EDR, the library, the CLI): also a bare date, and a
  date-time without an offset, which is read as UTC. ``../..`` means all of time.

A bare date means that whole day in UTC, from 00:00 to the last microsecond before the
next midnight, both as an instant (``2021-06-30``) and as an interval end
(``2021-01-01/2021-06-30`` includes 30 June). An interval's ends are inclusive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from .errors import InputError

DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"([Zz]|[+-]\d{2}:?\d{2})?"
)
RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)
OPEN = ("", "..")
LAST_MICROSECOND = timedelta(days=1) - timedelta(microseconds=1)


@dataclass(frozen=True)
class TimeWindow:
    """An instant or an interval, ends inclusive, aware UTC; None where open."""

    start: datetime | None
    end: datetime | None

    @property
    def is_instant(self) -> bool:
        return self.start is not None and self.start == self.end

    def timestamps(self) -> tuple[float | None, float | None]:
        """The ends as POSIX seconds (what the catalog index stores)."""
        return (
            self.start.timestamp() if self.start is not None else None,
            self.end.timestamp() if self.end is not None else None,
        )

    def contains(self, moment: datetime) -> bool:
        return (self.start is None or self.start <= moment) and (
            self.end is None or moment <= self.end
        )


def _offset(text: str | None) -> timedelta | None:
    if text is None:
        return None
    if text in ("Z", "z"):
        return timedelta(0)
    sign = 1 if text[0] == "+" else -1
    digits = text[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))


def _moment(text: str, name: str, strict: bool) -> tuple[datetime, bool]:
    """One end as an aware UTC datetime, and whether it was a bare date."""
    value = text.strip()
    if not strict and DATE.fullmatch(value):
        try:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC), True
        except ValueError as exc:
            raise InputError(name, f"{text!r} is not a date: {exc}") from None
    match = (RFC3339 if strict else DATE_TIME).fullmatch(value)
    if match is None:
        example = "2021-06-30T00:00:00Z" if strict else "2021-06-30 or 2021-06-30T08:00:00+08:00"
        raise InputError(name, f"{text!r} is not an RFC 3339 date-time such as {example}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        naive = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
        )
        shift = _offset(offset)
    except (ValueError, OverflowError) as exc:
        raise InputError(name, f"{text!r} is not a valid date-time: {exc}") from None
    if shift is not None and abs(shift) >= timedelta(hours=24):
        raise InputError(name, f"{text!r} has an offset of a day or more")
    return (naive - (shift or timedelta(0))).replace(tzinfo=UTC), False


def parse_datetime(value: object, *, strict: bool = False, name: str = "datetime") -> TimeWindow:
    """An OGC/STAC ``datetime`` value (see the module docstring for the two modes)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
        return TimeWindow(moment, moment)
    if isinstance(value, date):
        start = datetime.combine(value, datetime.min.time(), UTC)
        return TimeWindow(start, start + LAST_MICROSECOND)
    if not isinstance(value, str) or not value.strip():
        raise InputError(name, f"{value!r} is not an instant or an interval start/end")
    parts = value.strip().split("/")
    if len(parts) == 1:
        moment, bare = _moment(parts[0], name, strict)
        return TimeWindow(moment, moment + LAST_MICROSECOND if bare else moment)
    if len(parts) != 2:
        raise InputError(name, f"{value!r} is not an instant or an interval start/end")
    start = end = None
    if parts[0].strip() not in OPEN:
        start, _ = _moment(parts[0], name, strict)
    if parts[1].strip() not in OPEN:
        end, bare = _moment(parts[1], name, strict)
        if bare:
            end += LAST_MICROSECOND
    if strict and start is None and end is None:
        raise InputError(name, f"{value!r} is open at both ends: give at least one")
    if start is not None and end is not None and start > end:
        raise InputError(name, f"{value!r}: the interval starts after it ends")
    return TimeWindow(start, end)


def parse_instant(value: str | date | datetime, name: str = "date") -> datetime:
    """One date or date-time as an aware UTC datetime; a bare date means its UTC midnight,
    the start of its day (what a layer version's validity starts at)."""
    if isinstance(value, str) and "/" in value:
        raise InputError(name, f"{value!r} is one date or date-time, not an interval")
    window = parse_datetime(value if isinstance(value, date) else str(value), name=name)
    assert window.start is not None  # an instant always has its start
    return window.start


def rfc3339(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z (STAC's form); a naive datetime is read as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
