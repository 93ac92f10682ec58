"""Bulk writes behind the caller's back: each batch's rows made on one thread and
written on another, a bounded number of batches waiting.

Why: a bulk copy is Python making rows, then the database storing them. Made and
written in turn, one of the two always waits for the other (and both wait while the
caller reads its next batch). Here the database stores one batch while Python makes
the next and the caller reads on, each on its own core where there are two.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

type _Entry = tuple[Future[Any], Callable[[], None] | None]


class BulkWriter[Job, Made]:
    """``put(job)`` returns at once (or when ``ahead`` batches already wait): ``make(job)``
    runs on one thread, then ``write(made)`` on another, in the order put, inside
    ``hold()`` (entered when there is work, left when there is none). The first failure
    stops the writing (later batches are dropped) and is raised once, by the next
    :meth:`put` or by :meth:`finish`."""

    def __init__(
        self,
        make: Callable[[Job], Made],
        write: Callable[[Made], None],
        hold: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
        ahead: int = 8,
    ) -> None:
        self._make = make
        self._write = write
        self._hold = hold
        self._maker = ThreadPoolExecutor(1, thread_name_prefix="shikong-bulk-make")
        self._queue: queue.Queue[_Entry | None] = queue.Queue(ahead)
        self._failure: BaseException | None = None
        self._told = False
        self._writer = threading.Thread(target=self._run, name="shikong-bulk-write", daemon=True)
        self._writer.start()

    def put(self, job: Job, done: Callable[[], None] | None = None) -> None:
        """Queue a batch; ``done()`` once it is written (on the writer's thread)."""
        self._tell()
        self._queue.put((self._maker.submit(self._make, job), done))

    def finish(self) -> None:
        """Wait until every batch put is written (or dropped after a failure); raise the
        failure if it was not raised yet. The writer cannot be used again."""
        self._queue.put(None)
        self._writer.join()
        self._maker.shutdown()
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

    def _one(self, made: Future[Any], done: Callable[[], None] | None) -> None:
        if self._failure is not None:  # dropped: the copy failed before it
            made.cancel()
            return
        try:
            self._write(made.result())
            if done is not None:
                done()
        except BaseException as exc:  # raised to the caller by put or finish
            self._failure = exc
