"""Jobs whose node died: failed, not "running" for ever (jobs in PostgreSQL, many nodes).

A job runs in a thread of the server process that accepted it. When that process is
killed (a node lost, a worker restarted), nothing is left to finish the job or mark it,
and every node would report it as running for ever. Each process therefore names
itself (:data:`NODE`), stamps the jobs it starts with that name and keeps a heartbeat
row in ``{schema}.job_nodes`` (every quarter of :func:`timeout`). Whenever jobs are read,
running or accepted jobs of a process with no heartbeat for :func:`timeout` seconds
(``SHIKONG_JOB_NODE_TIMEOUT``, default 60) are marked failed, with a message saying so.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import psycopg

LOGGER = logging.getLogger(__name__)
NODE = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
DEFAULT_TIMEOUT = 60.0

DDL = """
ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS node text;
CREATE INDEX IF NOT EXISTS jobs_unfinished ON {s}.jobs (status)
    WHERE status IN ('accepted', 'running');
CREATE TABLE IF NOT EXISTS {s}.job_nodes (node text PRIMARY KEY, seen timestamptz NOT NULL);
"""

_started: set[tuple[str, str]] = set()
_guard = threading.Lock()


def timeout() -> float:
    """Seconds without a heartbeat after which a node's running jobs are failed."""
    raw = os.environ.get("SHIKONG_JOB_NODE_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        LOGGER.warning("SHIKONG_JOB_NODE_TIMEOUT=%r is not a number: %s s", raw, DEFAULT_TIMEOUT)
        return DEFAULT_TIMEOUT
    return max(value, 1.0)


def beat(db: psycopg.Connection[Any], schema: str) -> None:
    """This process is alive (and rows of nodes gone for a day are dropped)."""
    db.execute(
        f"INSERT INTO {schema}.job_nodes VALUES (%s, now()) "
        "ON CONFLICT (node) DO UPDATE SET seen = now()",
        (NODE,),
    )
    db.execute(f"DELETE FROM {schema}.job_nodes WHERE seen < now() - interval '1 day'")


def start_heartbeat(dsn: str, schema: str) -> None:
    """Once per process and database: a daemon thread keeping this node's row fresh."""
    with _guard:
        if (dsn, schema) in _started:
            return
        _started.add((dsn, schema))
    every = timeout() / 4
    ready = threading.Event()

    def run() -> None:
        db = None
        while True:
            try:
                if db is None or db.closed:
                    db = psycopg.connect(dsn, autocommit=True)
                beat(db, schema)
            except psycopg.Error as exc:  # the database away for a while: try again
                LOGGER.warning("job heartbeat: %s", exc)
                db = None
            ready.set()
            time.sleep(every)

    threading.Thread(target=run, name="shikong-job-heartbeat", daemon=True).start()
    ready.wait(5)  # the first beat is in before this node's first job


def reap(db: psycopg.Connection[Any], schema: str, now_text: str) -> int:
    """Fail the accepted or running jobs of nodes silent for :func:`timeout` seconds;
    how many were failed."""
    limit = timeout()
    changed = db.execute(
        f"UPDATE {schema}.jobs j SET status = 'failed', finished = %s, updated = %s, "
        "message = %s WHERE status IN ('accepted', 'running') AND node IS NOT NULL "
        "AND node <> %s AND NOT EXISTS (SELECT 1 FROM "
        f"{schema}.job_nodes n WHERE n.node = j.node "
        "AND n.seen > now() - make_interval(secs => %s))",
        (
            now_text,
            now_text,
            f"the server process running this job stopped (no heartbeat for {limit:g} s); "
            "start the job again",
            NODE,
            limit,
        ),
    )
    if changed.rowcount:
        LOGGER.warning("%d job(s) of stopped nodes marked failed", changed.rowcount)
    return changed.rowcount
