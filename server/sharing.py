"""Access requests over HTTP, their audit entries, and the grants in force for the server.

Routes (JSON; errors in the one problem shape):

- ``POST /sharing/requests`` ``{"collection", "rights", "purpose", "until"}``: a signed-in
  department asks the layer's owner (201 with the request).
- ``GET /sharing/requests``: the caller's department's requests and, for an ``admin``,
  those for its department's layers (``?collection=`` narrows).
- ``GET /sharing/requests/{id}``: one of those (any other id is 404, as a missing one).
- ``POST /sharing/requests/{id}/decision`` ``{"decision": "approve"|"refuse",
  "rights"?, "until"?, "reason"?}``: the owner department's admin only.

Every step is an entry of the audit chain (``event``: ``sharing.requested``,
``sharing.approved``, ``sharing.refused``, ``sharing.expired``), written by
:func:`record` here for the server and the CLI alike; an entry of a request served while
a granted request covers its department and collection names that request (``grants``).
:class:`GrantsInForce` is what the server's access check reads: one row (the store's
version) per request (:meth:`GrantsInForce.per_request`: one answer for all of a request's
access checks), the approved requests reloaded only when it moves, and the end dates
compared with the clock, so a decision and an end date both act at once on every process.
"""

from __future__ import annotations

import bisect
import contextvars
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from shikong.catalog import sharing
from shikong.catalog.policy import Caller, CollectionMeta
from shikong.catalog.sharing import (
    AccessRequest,
    AlreadyDecided,
    NotAllowed,
    Sharing,
    UnknownRequest,
)
from shikong.catalog.stores import open_sharing
from shikong.spatial.errors import InputError, ShikongError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import directory
from .audit import AuditLog
from .problems import problem

if TYPE_CHECKING:
    from .app import Server

STATUS = {InputError: 400, NotAllowed: 403, UnknownRequest: 404, AlreadyDecided: 409}
REQUEST_FIELDS = {"collection", "rights", "purpose", "until"}
DECISION_FIELDS = {"decision", "rights", "until", "reason"}


def record(audit: AuditLog, event: str, found: AccessRequest, caller: Caller | None = None) -> None:
    """One step of the workflow as an audit entry: who took it and what it holds."""
    entry: dict[str, Any] = {"event": f"sharing.{event}"}
    if caller is not None:
        entry |= {
            "user": caller.user,
            "department": caller.department,
            "role": caller.role,
            "key": caller.key_id,
        }
    entry |= {
        "request": found.id,
        "collections": [found.collection],
        "requester": found.department,
        "owner": found.owner,
    }
    if event == "requested":
        entry |= {
            "rights": list(found.rights),
            "until": found.until.isoformat(),
            "purpose": found.purpose,
        }
    elif event in ("approved", "refused"):
        entry |= {"decided_at": found.decided_at, "reason": found.reason}
    if event in ("approved", "expired"):
        entry["asked"] = list(found.rights)
        entry["granted_rights"] = list(found.granted_rights or ())
        entry["granted_until"] = found.granted_until and found.granted_until.isoformat()
    audit.append(entry)


def decision_event(found: AccessRequest) -> str:
    return "approved" if found.state == "approved" else "refused"


# this request's answer of GrantsInForce.current(), shared by its threads (a holder)
_THIS_REQUEST: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "shikong_grants_of_request", default=None
)


class OneReadingPerRequest:
    """ASGI middleware of :meth:`GrantsInForce.per_request` (``state`` passed through)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = getattr(app, "state", None)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _THIS_REQUEST.set({})
        try:
            await self.app(scope, receive, send)
        finally:
            _THIS_REQUEST.reset(token)


class GrantsInForce:
    """The approved requests in force now, cheap to ask on every access check.

    ``current()`` returns a key that changes whenever the set in force may have changed
    (a decision anywhere, or an end date passing) and the requests in force. When an end
    date passes, the request is marked expired and audited once (whichever process of
    the data directory notices first).
    """

    def __init__(self, workflow: Sharing, audit: AuditLog) -> None:
        self.workflow = workflow
        self.audit = audit
        self._lock = threading.Lock()
        self._version: int | None = None
        self._approved: list[AccessRequest] = []
        self._ends: list[datetime] = []
        self._key: tuple[int, int] | None = None
        self._in_force: tuple[AccessRequest, ...] = ()

    def per_request(self, app: Any) -> OneReadingPerRequest:
        """ASGI middleware: every access check of one HTTP request reads the grants once
        (a bbox request made four reads of the store's version, a round trip each to a
        shared database), and sees one set of them from start to end."""
        return OneReadingPerRequest(app)

    def current(self) -> tuple[tuple[int, int], tuple[AccessRequest, ...]]:
        memo = _THIS_REQUEST.get()
        if memo is not None and "current" in memo:
            return memo["current"]
        found = self._current()
        if memo is not None:
            memo["current"] = found
        return found

    def _current(self) -> tuple[tuple[int, int], tuple[AccessRequest, ...]]:
        version = self.workflow.store.version()
        moment = sharing.now()
        with self._lock:
            if version != self._version:
                self._approved = self.workflow.store.approved()
                self._ends = sorted(r.ends() or moment for r in self._approved)
                self._version = version
            key = (version, bisect.bisect_right(self._ends, moment))
            if key == self._key:
                return key, self._in_force
            in_force = tuple(r for r in self._approved if r.state_at(moment) == "approved")
            lapsed = key[1] > 0
            self._key, self._in_force = key, in_force
        if lapsed:
            self.expire(moment)
        return key, in_force

    def expire(self, moment: datetime | None = None) -> list[AccessRequest]:
        """Mark and audit requests whose end date has passed (each once, in any process)."""
        gone = self.workflow.lapsed(moment)
        for found in gone:
            record(self.audit, "expired", found)
        return gone

    def annotate(self, entry: dict[str, Any]) -> None:
        """Name in an audit entry the granted requests that let its request be served."""
        department = entry.get("department")
        touched = entry.get("collections") or []
        status = entry.get("status")
        if not department or not touched or entry.get("denied") or "event" in entry:
            return
        if isinstance(status, int) and status >= 400:
            return
        _, in_force = self.current()
        used = [r.id for r in in_force if r.department == department and r.collection in touched]
        if used:
            entry["grants"] = used


async def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise InputError("body", f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InputError("body", f"give a JSON object with {', '.join(sorted(allowed))}")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InputError(
            "body", f"unknown field {unknown[0]!r}; fields: {', '.join(sorted(allowed))}"
        )
    return body


def _refusal(exc: ShikongError) -> Response:
    status = next((s for kind, s in STATUS.items() if isinstance(exc, kind)), 500)
    if status == 500:
        raise exc
    return problem(status, None, str(exc))


def _request_id(request: Request) -> int:
    text = request.path_params["request_id"]
    if not (text.isascii() and text.isdigit()):
        raise UnknownRequest(f"no access request {text}")
    return int(text)


def routes(server: Server) -> list[Route]:
    """The sharing routes over the server's workflow (``server.sharing``)."""
    from .app import context

    def workflow() -> Sharing:
        return server.grants.workflow

    def audit() -> AuditLog:
        return server.grants.audit

    async def create(request: Request) -> Response:
        ctx = context(request)
        ctx.always_audit = True
        try:
            body = await _body(request, REQUEST_FIELDS)
            found = await run_in_threadpool(
                workflow().request,
                ctx.caller,
                body.get("collection"),
                body.get("rights"),
                body.get("purpose"),
                body.get("until"),
            )
        except ShikongError as exc:
            return _refusal(exc)
        ctx.note = f"sharing request {found.id}"
        ctx.touch(found.collection)
        await run_in_threadpool(record, audit(), "requested", found, ctx.caller)
        return JSONResponse(found.as_dict(), status_code=201)

    async def listing(request: Request) -> Response:
        ctx = context(request)
        unknown = sorted(set(request.query_params) - {"collection", "f"})
        if unknown:
            return problem(400, None, f"unknown query parameter {unknown[0]!r}; give collection")
        if ctx.caller.anonymous:
            return problem(403, None, "sign in as a department to see its access requests")
        await run_in_threadpool(server.grants.current)  # records expiries that are due
        found = await run_in_threadpool(
            workflow().list, ctx.caller, request.query_params.get("collection")
        )
        moment = sharing.now()
        rows = [r.as_dict(moment) for r in found]
        return JSONResponse({"requests": rows, "numberReturned": len(rows)})

    async def one(request: Request) -> Response:
        ctx = context(request)
        try:
            found = workflow().get(ctx.caller, _request_id(request))
        except ShikongError as exc:
            return _refusal(exc)
        return JSONResponse(found.as_dict())

    async def decide(request: Request) -> Response:
        ctx = context(request)
        ctx.always_audit = True
        try:
            rid = _request_id(request)
            body = await _body(request, DECISION_FIELDS)
            found = await run_in_threadpool(
                workflow().decide,
                ctx.caller,
                rid,
                body.get("decision"),
                body.get("rights"),
                body.get("until"),
                body.get("reason"),
            )
        except ShikongError as exc:
            if isinstance(exc, NotAllowed):
                ctx.denied = True
            return _refusal(exc)
        ctx.note = f"sharing request {found.id} {found.state}"
        ctx.touch(found.collection)
        await run_in_threadpool(record, audit(), decision_event(found), found, ctx.caller)
        return JSONResponse(found.as_dict())

    return [
        *directory.routes(server),  # discovering a layer comes before asking for it
        Route("/sharing/requests", create, methods=["POST"]),
        Route("/sharing/requests", listing, methods=["GET"]),
        Route("/sharing/requests/{request_id}", one, methods=["GET"]),
        Route("/sharing/requests/{request_id}/decision", decide, methods=["POST"]),
    ]


def server_grants(
    root: Any, collections: Callable[[], Mapping[str, CollectionMeta]], audit: AuditLog
) -> GrantsInForce:
    """The grants in force of a data directory, as a server reads them."""
    return GrantsInForce(open_sharing(root, collections), audit)
