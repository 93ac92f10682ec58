"""Errors raised for bad input.

Every message names the source (file or request part), the place in it and the problem,
so a user can fix the input without reading a traceback. The CLI prints them and exits 2;
the server turns them into HTTP 400 bodies.
"""

from __future__ import annotations


class ShikongError(Exception):
    """Base of every error shikong raises on purpose."""


class InputError(ShikongError):
    """A source that cannot be read as given: names the source, the place and the problem."""

    def __init__(self, source: object, problem: str, where: str | None = None) -> None:
        self.source = str(source)
        self.where = where
        self.problem = problem
        place = f" ({where})" if where else ""
        super().__init__(f"{self.source}{place}: {problem}")


class CRSError(InputError):
    """The coordinate reference system is missing, unknown or contradicts the coordinates."""


class EncodingError(InputError):
    """Text in the source cannot be decoded with the declared or any detected encoding."""


class FormatError(InputError):
    """The file is corrupt, truncated or not of the format it claims."""


class CoordinateFileError(FormatError):
    """A 坐标报盘 coordinate text file breaks the format (header, point count, rings)."""
