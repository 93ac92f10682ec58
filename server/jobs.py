"""pygeoapi's TinyDB job manager, with an owner per job, progress and cancellation.

Every job records who started it (from the request's caller); listing, status, results
and dismissal see only the caller's own jobs; anyone else gets "no such job", and
anonymous callers have none. Processors get a handle to report progress (a percentage
in the job status) and to notice a cancellation (DELETE /jobs/{id} on a running job).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any

from pygeoapi.process.base import BaseProcessor, JobNotFoundError
from pygeoapi.process.manager.tinydb_ import TinyDBManager
from pygeoapi.util import JobStatus, get_current_datetime

JOB_OWNER: ContextVar[str | None] = ContextVar("shikong_job_owner", default=None)
_CANCELLED: set[str] = set()
_CANCEL_LOCK = threading.Lock()


class JobCancelled(Exception):
    """Raised inside a processor when its job was dismissed while running."""


def cancelled(job_id: str | None) -> bool:
    with _CANCEL_LOCK:
        return job_id in _CANCELLED


class ShikongJobManager(TinyDBManager):
    """Jobs in TinyDB, each visible to its owner only."""

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

    def get_jobs(self, status: JobStatus = None, limit=None, offset=None) -> dict:
        with self._db() as db:
            jobs = [j for j in db.all() if self._mine(j)]
        if status is not None:
            jobs = [j for j in jobs if j.get("status") == getattr(status, "value", status)]
        matched = len(jobs)
        jobs = jobs[offset or 0 :]
        return {"jobs": jobs[:limit] if limit else jobs, "numberMatched": matched}

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
        return super().delete_job(job_id)

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

    def report(self, job_id: str | None, percent: float, message: str) -> None:
        """Progress of a running job; raises JobCancelled once it was dismissed."""
        if job_id is None:
            return
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
