"""pygeoapi's job managers, with an owner per job, progress and cancellation.

Every job records who started it (from the request's caller); listing, status, results
and dismissal see only the caller's own jobs; anyone else gets "no such job", and
anonymous callers have none. Processors get a handle to report progress (a percentage
in the job status) and to notice a cancellation (DELETE /jobs/{id} on a running job).

Jobs are kept where the catalog is (:func:`manager_config`): pygeoapi's TinyDB file in
the data directory's ``jobs/`` for the embedded store (``ShikongJobManager``), pygeoapi's
PostgreSQL manager in the catalog's database and schema for a PostgreSQL catalog
(``ShikongPostgresJobManager``), so that a job started on one node is listed, followed,
dismissed and its results read on any other.
"""

from __future__ import annotations

import contextlib
import json
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pygeoapi.formats import F_JSON, F_JSONLD, FORMAT_TYPES
from pygeoapi.process.base import BaseProcessor, JobNotFoundError, JobResultNotFoundError
from pygeoapi.process.manager.base import BaseManager
from pygeoapi.process.manager.tinydb_ import TinyDBManager
from pygeoapi.util import JobStatus, get_current_datetime

from . import job_liveness

JOB_OWNER: ContextVar[str | None] = ContextVar("shikong_job_owner", default=None)
_CANCELLED: set[str] = set()
_CANCEL_LOCK = threading.Lock()


class JobCancelled(Exception):
    """Raised inside a processor when its job was dismissed while running."""


def cancelled(job_id: str | None) -> bool:
    with _CANCEL_LOCK:
        return job_id in _CANCELLED


class OwnedJobs:
    """What both managers add to pygeoapi's: owners, progress, cancellation."""

    # pygeoapi 0.24's BaseManager.execute_process (process/manager/base.py, line 404)
    # keeps the processor of the execution under way in ``self.processor`` and reads it
    # back after add_job; one manager serves every request of a view, so two executions
    # at once swapped processors (precheck ran with planning-compliance's inputs: "unknown
    # inputs figure"). Each thread keeps its own (see server/pygeoapi_fixes.py).
    @property
    def processor(self) -> BaseProcessor | None:
        return getattr(self._executing(), "processor", None)

    @processor.setter
    def processor(self, value: BaseProcessor | None) -> None:
        self._executing().processor = value

    def _executing(self) -> threading.local:
        local = self.__dict__.get("_per_thread")
        if local is None:
            local = self.__dict__.setdefault("_per_thread", threading.local())
        return local

    def get_processor(self, process_id: str) -> BaseProcessor:
        processor = super().get_processor(process_id)
        processor.manager = self
        return processor

    def add_job(self, job_metadata: dict) -> str:
        return super().add_job({**job_metadata, "owner": JOB_OWNER.get()})

    @staticmethod
    def _mine(job: dict) -> bool:
        owner = JOB_OWNER.get()
        return owner is not None and job.get("owner") == owner

    def get_job(self, job_id: str) -> dict:
        job = super().get_job(job_id)
        if not self._mine(job):
            raise JobNotFoundError()
        return job

    def delete_job(self, job_id: str) -> bool:
        job = self.get_job(job_id)  # the owner check
        if job.get("status") in (JobStatus.accepted.value, JobStatus.running.value):
            with _CANCEL_LOCK:
                _CANCELLED.add(job_id)
            self.update_job(
                job_id,
                {
                    "status": JobStatus.dismissed.value,
                    "message": "cancelled by its owner",
                    "updated": get_current_datetime(),
                },
            )
            return True
        return self._forget(job_id)

    def _forget(self, job_id: str) -> bool:
        """Delete a finished job and its result (the manager's own deletion)."""
        return super().delete_job(job_id)  # type: ignore[misc]

    def _execute_handler_sync(self, p: BaseProcessor, job_id: str, *args: Any, **kwargs: Any):
        result = super()._execute_handler_sync(p, job_id, *args, **kwargs)
        if cancelled(job_id):  # the processor stopped on JobCancelled: keep it dismissed
            self.update_job(
                job_id,
                {
                    "status": JobStatus.dismissed.value,
                    "message": "cancelled by its owner",
                    "finished": get_current_datetime(),
                },
            )
        return result

    def _dismissed(self, job_id: str) -> bool:
        """Dismissed by a request another process answered (only a shared store knows)."""
        return False

    def report(self, job_id: str | None, percent: float, message: str) -> None:
        """Progress of a running job; raises JobCancelled once it was dismissed."""
        if job_id is None:
            return
        if self._dismissed(job_id):  # by a request another node answered
            with _CANCEL_LOCK:
                _CANCELLED.add(job_id)
        if cancelled(job_id):
            raise JobCancelled(f"job {job_id} was cancelled")
        self.update_job(
            job_id,
            {
                "status": JobStatus.running.value,  # pygeoapi says "running" only at the end
                "progress": max(5, min(94, round(percent))),
                "message": message,
                "updated": get_current_datetime(),
            },
        )


class ShikongJobManager(OwnedJobs, TinyDBManager):
    """Jobs in TinyDB (the data directory's ``jobs/``), each visible to its owner only."""

    def get_jobs(self, status: JobStatus = None, limit=None, offset=None) -> dict:
        with self._db() as db:
            jobs = [j for j in db.all() if self._mine(j)]
        if status is not None:
            jobs = [j for j in jobs if j.get("status") == getattr(status, "value", status)]
        matched = len(jobs)
        jobs = jobs[offset or 0 :]
        return {"jobs": jobs[:limit] if limit else jobs, "numberMatched": matched}


class ShikongPostgresJobManager(OwnedJobs, BaseManager):
    """Jobs in the catalog's PostgreSQL database, each visible to its owner only, from
    every node: the table and the behaviour of pygeoapi's PostgreSQL manager
    (``pygeoapi/process/manager/postgresql.py``: a ``jobs`` table of the same columns,
    asynchronous jobs), on psycopg 3 as the catalog store is (pygeoapi's needs
    SQLAlchemy with psycopg2 and GeoAlchemy, which shikong does not install), with an
    ``owner`` column; times are kept as pygeoapi writes them (text), so a status reads
    the same as from TinyDB. A finished job's result is written to this node's ``jobs/``
    as pygeoapi does and also kept in ``job_results``, where another node reads it."""

    def __init__(self, manager_def: dict) -> None:
        from shikong.catalog.stores import configured_store

        store = configured_store(manager_def["data_dir"])
        if store is None:
            raise ValueError(f"{manager_def['data_dir']}: not bound to a PostgreSQL catalog")
        super().__init__(manager_def)
        self.is_async = True
        self.id_field = "identifier"
        self.supports_subscribing = True
        self.dsn, self.schema = store.dsn, store.schema
        self._local = threading.local()
        store.ensure_tables(_JOBS_DDL + job_liveness.DDL)
        job_liveness.start_heartbeat(self.dsn, self.schema)

    def __repr__(self) -> str:
        return f"<ShikongPostgresJobManager> {self.schema}"

    def _db(self) -> psycopg.Connection[Any]:
        """This thread's autocommit connection (jobs run in threads of their own)."""
        db = getattr(self._local, "db", None)
        if db is None or db.closed:
            db = self._local.db = psycopg.connect(self.dsn, autocommit=True)
        return db

    def _rows(self, where: str, args: tuple) -> list[dict]:
        cursor = self._db().cursor(row_factory=dict_row)
        sql = f"SELECT {', '.join(JOB_COLUMNS)}, owner FROM {self.schema}.jobs WHERE {where}"
        return cursor.execute(sql, args).fetchall()

    def add_job(self, job_metadata: dict) -> str:
        values = {**job_metadata, "owner": JOB_OWNER.get(), "node": job_liveness.NODE}
        columns = [c for c in (*JOB_COLUMNS, "owner", "node") if c in values]
        self._db().execute(
            f"INSERT INTO {self.schema}.jobs ({', '.join(columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})",
            [_text(values[c]) for c in columns],
        )
        return job_metadata["identifier"]

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        """Update a job's fields; a job becoming successful has its result (the file
        pygeoapi just wrote) stored in the same commit, so that any node that sees it
        finished can read its result."""
        columns = [c for c in update_dict if c in JOB_COLUMNS]
        if not columns:
            return False
        db = self._db()
        with db.transaction():
            changed = db.execute(
                f"UPDATE {self.schema}.jobs SET {', '.join(f'{c} = %s' for c in columns)} "
                "WHERE identifier = %s",
                [*(_text(update_dict[c]) for c in columns), job_id],
            )
            location = update_dict.get("location")
            successful = _text(update_dict.get("status")) == JobStatus.successful.value
            if successful and location and Path(location).is_file():
                db.execute(
                    f"INSERT INTO {self.schema}.job_results VALUES (%s, %s, %s) "
                    "ON CONFLICT (identifier) DO NOTHING",
                    (job_id, update_dict.get("mimetype"), Path(location).read_bytes()),
                )
        return changed.rowcount == 1

    def _job(self, job_id: str) -> dict:
        rows = self._rows("identifier = %s", (job_id,))
        if not rows:
            raise JobNotFoundError()
        return rows[0]

    def _reap(self) -> None:
        """Jobs of nodes that stopped are failed before anyone reads them (job_liveness)."""
        job_liveness.reap(self._db(), self.schema, get_current_datetime())

    def get_job(self, job_id: str) -> dict:
        self._reap()
        job = self._job(job_id)
        if not self._mine(job):
            raise JobNotFoundError()
        return job

    def get_jobs(self, status: JobStatus = None, limit=None, offset=None) -> dict:
        owner = JOB_OWNER.get()
        if owner is None:
            return {"jobs": [], "numberMatched": 0}
        self._reap()
        where, args = "owner = %s", [owner]
        if status is not None:
            where, args = where + " AND status = %s", [*args, getattr(status, "value", status)]
        jobs = self._rows(where + " ORDER BY created, identifier", tuple(args))
        matched = len(jobs)
        jobs = jobs[offset or 0 :]
        return {"jobs": jobs[:limit] if limit else jobs, "numberMatched": matched}

    def _dismissed(self, job_id: str) -> bool:
        with contextlib.suppress(JobNotFoundError):
            return self._job(job_id)["status"] == JobStatus.dismissed.value
        return False

    def _forget(self, job_id: str) -> bool:
        """Delete a finished job, its result here and in the table."""
        job = self.get_job(job_id)
        with self._db().transaction():
            gone = self._db().execute(
                f"DELETE FROM {self.schema}.jobs WHERE identifier = %s", (job_id,)
            )
            self._db().execute(
                f"DELETE FROM {self.schema}.job_results WHERE identifier = %s", (job_id,)
            )
        location = job.get("location")
        if location and self.output_dir is not None:
            Path(location).unlink(missing_ok=True)
        return gone.rowcount == 1

    def get_job_result(self, job_id: str) -> tuple[Any, ...]:
        job = self.get_job(job_id)
        if job["status"] != JobStatus.successful.value:
            return (None,)
        row = (
            self._db()
            .execute(
                f"SELECT mimetype, output FROM {self.schema}.job_results WHERE identifier = %s",
                (job_id,),
            )
            .fetchone()
        )
        if row is None:
            raise JobResultNotFoundError()
        mimetype, output = row
        if mimetype in (None, FORMAT_TYPES[F_JSON], FORMAT_TYPES[F_JSONLD]):
            return mimetype, json.loads(output)
        return mimetype, bytes(output)


# pygeoapi's jobs table (process/manager/postgresql.py), times as text
JOB_COLUMNS = (
    "identifier",
    "type",
    "process_id",
    "created",
    "started",
    "finished",
    "updated",
    "status",
    "location",
    "mimetype",
    "message",
    "progress",
)
_JOBS_DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.jobs (
    identifier text PRIMARY KEY, type text NOT NULL DEFAULT 'process',
    process_id text NOT NULL, created text, started text, finished text, updated text,
    status text NOT NULL, location text, mimetype text, message text,
    progress integer NOT NULL, owner text
);
CREATE INDEX IF NOT EXISTS jobs_owner ON {s}.jobs (owner, created);
CREATE TABLE IF NOT EXISTS {s}.job_results (
    identifier text PRIMARY KEY, mimetype text, output bytea NOT NULL
);
"""


def _text(value: Any) -> Any:
    """A job field as the table keeps it (pygeoapi's enums by their value)."""
    return getattr(value, "value", value)


def manager_config(data_dir: Path, jobs: Path) -> dict[str, Any]:
    """pygeoapi's ``server.manager`` for a data directory: jobs beside its catalog (the
    DSN is not written into the config: the manager finds the store bound to the
    directory)."""
    from shikong.catalog.stores import configured_store

    if configured_store(data_dir) is not None:
        return {
            "name": f"{__name__}.ShikongPostgresJobManager",
            "connection": "the catalog's database",
            "data_dir": str(data_dir),
            "output_dir": str(jobs),
        }
    return {
        "name": f"{__name__}.ShikongJobManager",
        "connection": str(jobs / "jobs.db"),
        "output_dir": str(jobs),
    }
