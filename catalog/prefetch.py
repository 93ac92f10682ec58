"""Run a producer of work chunks in a second thread while this one consumes them.

A bulk commit is half Python (building STAC rows) and half SQLite (inserting them, with
the GIL released). On two cores the two halves can overlap, if the consumer's SQLite
calls are few and large: a thread that leaves the GIL for a SQLite step must win it back
from the busy producer, which by default yields only every 5 ms. While a prefetch runs,
the switch interval is lowered so that a consumer's return costs microseconds.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator

_DONE = object()
_SWITCH_INTERVAL = 0.0002  # seconds; CPython's default is 0.005
_interval_users = 0
_interval_lock = threading.Lock()
_saved_interval = 0.005


@contextlib.contextmanager
def _short_switch_interval() -> Iterator[None]:
    """Lower the GIL switch interval while any prefetch runs (the setting is global)."""
    global _interval_users, _saved_interval
    with _interval_lock:
        if _interval_users == 0:
            _saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved_interval, _SWITCH_INTERVAL))
        _interval_users += 1
    try:
        yield
    finally:
        with _interval_lock:
            _interval_users -= 1
            if _interval_users == 0:
                sys.setswitchinterval(_saved_interval)


@contextlib.contextmanager
def prefetched[T](produce: Callable[[], Iterable[T]]) -> Iterator[Iterator[T]]:
    """Iterate what ``produce()`` yields, computed ahead in a helper thread.

    The producer must not touch the consumer's SQLite connection. An exception in it is
    raised in the consumer at the chunk where it happened; if the consumer stops early,
    the producer stops at its next chunk.
    """
    chunks: queue.SimpleQueue = queue.SimpleQueue()
    cancelled = threading.Event()

    def run() -> None:
        try:
            for chunk in produce():
                if cancelled.is_set():
                    return
                chunks.put(chunk)
        except BaseException as exc:  # handed to the consumer, raised there
            chunks.put(_Failure(exc))
            return
        chunks.put(_DONE)

    def consume() -> Iterator[T]:
        while (chunk := chunks.get()) is not _DONE:
            if isinstance(chunk, _Failure):
                raise chunk.exc
            yield chunk

    with _short_switch_interval():
        worker = threading.Thread(target=run, name="shikong-prefetch", daemon=True)
        worker.start()
        try:
            yield consume()
        finally:
            cancelled.set()
            worker.join()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
