"""The gate every HTTP request passes: identity, limits, and the audit entry afterwards.

A pure ASGI middleware (no per-request task or copy of the response): it resolves the
caller from ``X-API-Key``, a bearer token or Basic auth (a bad credential is 401 with a
``WWW-Authenticate`` challenge, never the public),
applies the per-caller rate limit and the body-size limits, hands the handlers a
:class:`RequestContext` (``request.state.shikong``) to note what they touched, and after
the response appends an audit entry when the request touched shared or restricted data
or was refused. What is logged holds no personal value: the audit log masks them
(:mod:`audit_mask`); JSON bodies of searches and process executions are logged (masked)
when small, like the query string of a GET.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from shikong.catalog.policy import Caller, Limits

from .audit import AuditLog
from .audit import now as audit_time
from .audit_queue import AuditQueue
from .identity import Authenticator, AuthError
from .problems import problem_body
from .rate_limits import Buckets, LocalBuckets
from .signin_hint import hinted
from .workbench.session import UNSAFE_METHODS

COLLECTION_PATH = re.compile(r"^/(?:stac/)?collections/([^/]+)(?:/items/([^/]+))?")
AUDITED_CLASSES = ("shared", "restricted")
REFUSALS = (401, 403, 413, 429)
LOGGED_BODIES = re.compile(r"^/(?:stac/search|processes/[^/]+/execution)$")
MAX_LOGGED_BODY = 4096  # bytes; a larger body is logged by its size (and digest)
CSRF_REFUSAL = (
    "a request signed in by the session cookie must carry the page's CSRF token "
    "(X-CSRF-Token header or csrf_token form field); cross-site requests are refused"
)


@dataclass
class RequestContext:
    """What a request is and touched: filled by the gate and by handlers, read by audit."""

    caller: Caller
    arrived: str = field(default_factory=audit_time)  # the audit entry's time
    collections: list[str] = field(default_factory=list)
    items: list[str] | None = None
    count: int | None = None
    process: str | None = None
    input_digest: str | None = None
    denied: bool = False
    always_audit: bool = False
    note: str | None = None

    def touch(self, *collections: str) -> None:
        for c in collections:
            if c not in self.collections:
                self.collections.append(c)


def _json(status: int, code: str, description: str, headers: dict[str, str] | None = None):
    """A refusal of the gate, in the one problem shape (problems.problem_body)."""
    body = problem_body(status, code, description)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    return status, raw, body


# Sent only with a 401 (a credential was given and refused): anonymous requests are the
# public and never challenged, and a hidden collection stays a 404, as if absent. Clients
# that wait for a challenge before sending credentials (GDAL_HTTP_AUTH=ANY) therefore reach
# only public data; they must send Basic preemptively (GDAL_HTTP_AUTH=BASIC, QGIS's Basic).
CHALLENGES = ('Basic realm="shikong", charset="UTF-8"', 'Bearer realm="shikong"')


def _unauthorized(description: str):
    """401 with one WWW-Authenticate line per scheme (RFC 9110 11.6.1; some clients parse
    only the first challenge of a line)."""
    status, raw, body = _json(401, "Unauthorized", description)
    raw += [(b"www-authenticate", c.encode()) for c in CHALLENGES]
    return status, raw, body


class Guard:
    """ASGI middleware: authenticate, limit, serve, audit."""

    def __init__(
        self,
        app: Any,
        auth: Authenticator,
        audit: AuditLog,
        limits: Limits,
        classify: Callable[[str], str | None],
        hidden: Callable[[Caller, str], bool],
        buckets: Buckets | None = None,
    ) -> None:
        """``buckets``: where the rate limits are kept (default: this process's memory;
        :func:`rate_limits.buckets_for` picks the shared ones of a deployment)."""
        self.app = app
        self.auth = auth
        self.audit = audit
        self.audit_queue = AuditQueue(audit)  # lines written off the event loop
        self.on_refusal: Callable[[int], None] | None = None  # counts the gate's refusals
        # counts answered reads the log does not record (public layers: public_reads.py)
        self.on_unaudited: Callable[[list[str], int, int], None] | None = None
        self.limits = limits
        self.classify = classify  # collection id → classification (None if unknown)
        self.hidden = hidden  # (caller, collection id) → exists but the caller may not see it
        self.rate = buckets or LocalBuckets(limits.rate_per_second, limits.rate_burst)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        client = (scope.get("client") or ("?", 0))[0]
        try:
            caller, session = self.auth.identify(headers)
        except AuthError as exc:
            ctx = RequestContext(Caller(), denied=True, note=str(exc))
            await self._refuse(scope, send, ctx, _unauthorized(str(exc)))
            return
        ctx = RequestContext(caller)
        who = caller.key_id or (f"user:{caller.label}" if not caller.anonymous else f"ip:{client}")
        wait = self.rate.wait_needed(who)
        if wait:
            ctx.denied = True
            await self._refuse(
                scope,
                send,
                ctx,
                _json(
                    429,
                    "TooManyRequests",
                    f"rate limit of {self.limits.rate_per_second:g} requests/s "
                    f"(burst {self.limits.rate_burst}) exceeded; retry in {wait:.1f} s",
                    {"retry-after": str(max(1, round(wait)))},
                ),
            )
            return
        body: bytes | None = None
        match = COLLECTION_PATH.match(path)
        if match:
            ctx.touch(match.group(1))
            if match.group(2):
                ctx.items = [match.group(2)]
            if self.hidden(caller, match.group(1)):
                ctx.denied = True
        if scope["method"] in ("POST", "PUT", "PATCH"):
            limit = (
                self.limits.max_readings_body_bytes
                if path == "/readings"
                else self.limits.max_body_bytes
            )
            body, too_big = await _read_body(receive, headers, limit)
            if too_big:
                await self._refuse(
                    scope,
                    send,
                    ctx,
                    _json(413, "PayloadTooLarge", f"request body over the limit of {limit} bytes"),
                )
                return
            receive = _replay(body, receive)
        unsafe = session is not None and scope["method"] in UNSAFE_METHODS
        if unsafe and not session.csrf_ok(headers, body):  # cookie writes carry the token
            ctx.denied, ctx.note = True, "CSRF token missing or wrong"
            await self._refuse(scope, send, ctx, _json(403, "Forbidden", CSRF_REFUSAL))
            return
        scope.setdefault("state", {})["shikong"] = ctx
        status, sent = 500, 0
        held: dict | None = None  # an anonymous 404's start, held until its body is known
        parts: list[bytes] = []

        async def counting_send(message: dict) -> None:
            nonlocal status, sent, held
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 404 and caller.anonymous:
                    held = message
                    return
            elif message["type"] == "http.response.body":
                if held is not None:
                    parts.append(message.get("body", b""))
                    if message.get("more_body"):
                        return
                    start, held = held, None
                    message = await _with_signin_hint(start, b"".join(parts), send)
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            await self._record(scope, ctx, status, sent, body)

    async def _refuse(self, scope: dict, send: Callable, ctx: RequestContext, reply) -> None:
        status, headers, body = reply
        if self.on_refusal is not None:
            self.on_refusal(status)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        await self._record(scope, ctx, status, len(body))

    async def _record(
        self, scope: dict, ctx: RequestContext, status: int, sent: int, body: bytes | None = None
    ) -> None:
        sensitive = [c for c in ctx.collections if self.classify(c) in AUDITED_CLASSES]
        if not (sensitive or ctx.denied or ctx.always_audit or status in REFUSALS):
            if self.on_unaudited is not None and ctx.collections and status < 400:
                self.on_unaudited(list(ctx.collections), ctx.count or 0, sent)
            return
        entry: dict[str, Any] = {  # the time it arrived: before its answer, as clients see
            "time": ctx.arrived,
            "user": ctx.caller.user,
            "department": ctx.caller.department,
            "role": ctx.caller.role,
            "key": ctx.caller.key_id,
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1") or None,
            "collections": ctx.collections,
            "status": status,
            "bytes": sent,
        }
        if ctx.items is not None:
            entry["items"] = ctx.items
        if ctx.count is not None:
            entry["count"] = ctx.count
        if ctx.process:
            entry["process"] = ctx.process
            entry["input_digest"] = ctx.input_digest
        if ctx.denied or status in REFUSALS:
            entry["denied"] = True
        if ctx.note:
            entry["note"] = ctx.note
        if body and LOGGED_BODIES.match(scope["path"]):
            entry.update(_logged_body(body))
        await self.audit_queue.append(entry)  # masks personal values before hashing


def _logged_body(body: bytes) -> dict[str, Any]:
    """A small JSON body as itself (the log masks it), anything else by its size."""
    if len(body) <= MAX_LOGGED_BODY:
        try:
            return {"body": orjson.loads(body)}
        except orjson.JSONDecodeError:
            pass
    return {"body_bytes": len(body)}


async def _read_body(receive: Callable, headers: dict[str, str], limit: int) -> tuple[bytes, bool]:
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return b"", True
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks), False


def _replay(body: bytes, original: Callable) -> Callable:
    """A receive that gives the buffered body once, then waits on the real channel."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


async def _with_signin_hint(start: dict, body: bytes, send: Callable) -> dict:
    """Send an anonymous 404's start with the hinted body's length; return its body
    message (see :mod:`signin_hint`)."""
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    content_type = next(
        (v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), ""
    )
    new_body = hinted(body, content_type)
    headers.append((b"content-length", str(len(new_body)).encode()))
    await send({**start, "headers": headers})
    return {"type": "http.response.body", "body": new_body}
