"""The one shape of every error answer, and the one error type that carries it.

Every 4xx and 5xx the server writes itself is ``{"code", "type", "description"}`` (the
OGC API exception shape pygeoapi also answers with), built here: by :func:`problem` for
a Starlette handler, by :func:`problem_body` for the raw ASGI gate. Code deep in a handler
raises :class:`Problem` (status, OGC code, description), as pygeoapi's providers raise
``ProviderGenericError``; the app's exception handler renders it. A library error
(:class:`shikong.spatial.errors.InputError`) is the caller's input that cannot be used:
:func:`from_error` makes it a 400. An expected refusal is logged as one INFO line.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import orjson
from shikong.spatial.errors import InputError, ShikongError
from starlette.responses import Response

LOGGER = logging.getLogger("shikong.server.refused")
# The OGC code for each status we answer (OGC API Common / pygeoapi's choices).
CODES = {
    400: "InvalidParameterValue",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    500: "NoApplicableCode",
}


class Problem(Exception):
    """An answer that is an error: its HTTP status, OGC code and what went wrong."""

    def __init__(
        self,
        status: int,
        description: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = int(status)
        self.code = code or CODES.get(self.status, HTTPStatus(self.status).phrase)
        self.description = description
        self.headers = headers or {}


def from_error(exc: ShikongError) -> Problem:
    """A library error as the answer it deserves: bad input is the caller's 400."""
    if isinstance(exc, InputError):
        return Problem(400, str(exc))
    return Problem(500, "internal error (logged)")


def problem_body(status: int, code: str, description: str) -> bytes:
    """The JSON body of an error answer (for the raw ASGI gate, too)."""
    return orjson.dumps({"code": code, "type": code, "description": description})


def problem(
    status: int,
    code: str | None,
    description: str,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
) -> Response:
    """An error answer; a 4xx is logged as one INFO line (no traceback)."""
    code = code or CODES.get(status, HTTPStatus(status).phrase)
    if status < 500:
        LOGGER.info("%d %s: %s", status, code, description)
    response = Response(
        problem_body(status, code, description),
        status_code=status,
        media_type="application/json",
    )
    pairs = headers.items() if isinstance(headers, dict) else headers or []
    for name, value in pairs:
        response.headers.append(name, value)
    return response


def render(exc: Problem) -> Response:
    return problem(exc.status, exc.code, exc.description, exc.headers)
