"""Usage statistics (服务统计) from the audit log: per layer × department × UTC day.

The audit log already holds, for every request it records, who asked (department), which
layers it touched, how many features it returned (``count``), the bytes sent, the status
and whether it was refused: requests touching shared or restricted layers, and every
refusal. Public reads are not audited; the server counts them per layer and day instead
(:mod:`public_reads`), and they join the figures as rows of ``department: null`` (the
public, whoever asked: a public read carries no department of its own).

``GET /stats?since=&until=&collection=&department=`` answers auditors (every layer) and
admins (the layers of their own department); anyone else gets the 404 of a missing
resource, as for ``/audit``. ``shikong stats`` prints the same figures from the shell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .audit import BadTime, parse_time
from .audit import query as audit_query
from .problems import problem

if TYPE_CHECKING:
    from .app import Server

SCOPE = (
    "requests recorded in the audit log (every request touching a shared or restricted "
    "layer, and every refusal) and reads of public layers, counted per layer and day "
    "without a department (department null). collection null: refusals and audited "
    "requests that named no layer (e.g. a refused credential, /audit, /stats)."
)
FIGURES = ("requests", "features", "bytes", "refusals")
PARAMETERS = ("since", "until", "collection", "department")
ROLES = ("auditor", "admin")


def aggregate(
    entries: Iterable[dict[str, Any]],
    collection: str | None = None,
    shown: Callable[[str | None], bool] | None = None,
) -> list[dict[str, Any]]:
    """Rows of (collection, department, day) with requests, features, bytes, refusals.

    A request touching two layers counts once for each. ``collection`` keeps only that
    layer's rows; ``shown`` (layer id or None → bool) keeps the layers a caller may see.
    Entries that are events (access-request decisions), not requests, are skipped.
    """
    rows: dict[tuple[str | None, str | None, str], dict[str, Any]] = {}
    for e in entries:
        if not isinstance(e, dict) or "event" in e or "method" not in e:
            continue
        layers = list(e.get("collections") or []) or [None]
        day = str(e.get("time", ""))[:10]
        for layer in layers:
            if collection is not None and layer != collection:
                continue
            if shown is not None and not shown(layer):
                continue
            key = (layer, e.get("department"), day)
            row = rows.get(key)
            if row is None:
                row = rows[key] = {
                    "collection": layer,
                    "department": e.get("department"),
                    "day": day,
                    **dict.fromkeys(FIGURES, 0),
                }
            row["requests"] += 1
            row["features"] += _whole(e.get("count"))
            row["bytes"] += _whole(e.get("bytes"))
            row["refusals"] += 1 if e.get("denied") else 0
    return sorted(
        rows.values(), key=lambda r: (r["day"], r["collection"] or "", r["department"] or "")
    )


def _with_public(
    rows: list[dict[str, Any]],
    reads: list[dict[str, Any]],
    collection: str | None,
    shown: Callable[[str | None], bool] | None,
) -> list[dict[str, Any]]:
    """The audited rows and the public reads' rows (department null), merged by key."""
    merged = {(r["collection"], r["department"], r["day"]): dict(r) for r in rows}
    for read in reads:
        layer = read["collection"]
        if (collection is not None and layer != collection) or (shown and not shown(layer)):
            continue
        row = merged.setdefault(
            (layer, None, read["day"]),
            {"collection": layer, "department": None, "day": read["day"],
             **dict.fromkeys(FIGURES, 0)},
        )  # fmt: skip
        for figure in ("requests", "features", "bytes"):
            row[figure] += int(read[figure])
    return sorted(
        merged.values(), key=lambda r: (r["day"], r["collection"] or "", r["department"] or "")
    )


def _whole(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage(
    log: str | Path,
    *,
    since: str | None = None,
    until: str | None = None,
    collection: str | None = None,
    department: str | None = None,
    shown: Callable[[str | None], bool] | None = None,
    public: Callable[[str | None, str | None], list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The statistics answer (``scope``, ``filters``, ``rows``, ``totals``) of one log,
    with the public reads ``public(first_day, last_day)`` gives (whole UTC days).

    ``since``/``until``: RFC 3339 date-times or dates (a date ``until`` includes its
    day), read by the platform's one datetime parser; anything else raises
    :class:`shikong.server.audit.BadTime`.
    """
    entries = audit_query(
        log, department=department, collection=collection, since=since, until=until
    )
    rows = aggregate(entries, collection, shown)
    if public is not None and department is None:  # public reads carry no department
        first = parse_time(since, "since")[:10] if since else None
        last = parse_time(until, "until", end=True)[:10] if until else None
        rows = _with_public(rows, public(first, last), collection, shown)
    totals = {f: sum(r[f] for r in rows) for f in FIGURES}
    filters = {
        "since": since,
        "until": until,
        "collection": collection,
        "department": department,
    }
    return {"scope": SCOPE, "filters": filters, "rows": rows, "totals": totals}


def routes(server: Server) -> list[Route]:
    """``GET /stats`` over the server's audit log."""

    async def stats(request: Request) -> Response:
        from .app import context  # app imports this module

        ctx = context(request)
        caller = ctx.caller
        if caller.anonymous or caller.role not in ROLES:
            ctx.denied = True
            return problem(404, "NotFound", f"no resource at {request.url.path}")
        ctx.always_audit = True
        q = request.query_params
        unknown = sorted(set(q) - set(PARAMETERS) - {"f"})
        if unknown:
            return problem(
                400,
                "InvalidParameterValue",
                f"unknown query parameter {unknown[0]!r} for /stats; "
                f"known: {', '.join(PARAMETERS)}",
            )
        shown = None
        if caller.role == "admin":
            metas = server.publisher.snapshot.metas

            def shown(layer: str | None) -> bool:
                meta = metas.get(layer) if layer is not None else None
                return meta is not None and meta.department == caller.department

        try:
            body = await run_in_threadpool(
                usage,
                server.catalog.paths.audit_log,
                since=q.get("since"),
                until=q.get("until"),
                collection=q.get("collection"),
                department=q.get("department"),
                shown=shown,
                public=server.public_reads.rows,
            )
        except BadTime as exc:
            return problem(400, "InvalidParameterValue", str(exc))
        return JSONResponse(body)

    return [Route("/stats", stats)]
