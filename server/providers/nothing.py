"""The answer to a well-formed query that selects nothing: a 404 that says why."""

from __future__ import annotations

from http import HTTPStatus

from pygeoapi.provider.base import ProviderGenericError


class NothingMatched(ProviderGenericError):
    """A well-formed query that selects no sensor or no reading: 404 with the reason.

    pygeoapi's ProviderNoDataError answers 204, whose body HTTP forbids, so the caller
    never learns why nothing came back. EDR's query responses list 404 for a request
    whose parameters select nothing; the body says what was searched and what is near.
    """

    ogc_exception_code = "NotFound"
    http_status_code = HTTPStatus.NOT_FOUND
    default_msg = "the query selects no data"
