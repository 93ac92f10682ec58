"""Bulk writes behind the caller's back: batches written in order on a thread of their
own, a bounded number of them waiting.

Why: a caller that reads its batches one at a time (a file, layer by layer) and writes
each in turn leaves the database idle while it reads, and itself idle while the database
finishes a batch. Here the database stores one batch while the caller reads the next,
each on its own core where there are two. (One thread only: a second one making rows
while the first writes cost more in handing Python's lock to and fro than it saved.)
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any


class BulkWriter[Job]:
    """``put(job)`` returns at once (or when ``ahead`` batches already wait); ``write(job)``
    runs on the writer's thread, in the order put, inside ``hold()`` (entered when there
    is work, left when there is none). The first failure stops the writing (later
    batches are dropped) and is raised once, by the next :meth:`put` or by
    :meth:`finish`."""

    def __init__(
        self,
        write: Callable[[Job], None],
        hold: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
        ahead: int = 8,
    ) -> None:
        self._write = write
        self._hold = hold
        self._queue: queue.Queue[tuple[Job, Callable[[], None] | None] | None] = queue.Queue(ahead)
        self._failure: BaseException | None = None
        self._told = False
        self._writer = threading.Thread(target=self._run, name="shikong-bulk-write", daemon=True)
        self._writer.start()

    def put(self, job: Job, done: Callable[[], None] | None = None) -> None:
        """Queue a batch; ``done()`` once it is written (on the writer's thread)."""
        self._tell()
        self._queue.put((job, done))

    def finish(self) -> None:
        """Wait until every batch put is written (or dropped after a failure); raise the
        failure if it was not raised yet. The writer cannot be used again."""
        self._queue.put(None)
        self._writer.join()
        self._tell()

    def _tell(self) -> None:
        if self._failure is not None and not self._told:
            self._told = True
            raise self._failure

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            try:
                with self._hold():
                    while entry is not None:
                        self._one(*entry)
                        try:
                            entry = self._queue.get_nowait()
                        except queue.Empty:
                            break
                    else:
                        return
            except BaseException as exc:  # hold() failed (the database went away)
                self._failure = self._failure or exc

    def _one(self, job: Job, done: Callable[[], None] | None) -> None:
        if self._failure is not None:  # dropped: the copy failed before it
            return
        try:
            self._write(job)
            if done is not None:
                done()
        except BaseException as exc:  # raised to the caller by put or finish
            self._failure = exc
