"""STAC items from an NDJSON file into an empty PostgreSQL catalog, on every core
(``shikong catalog load``; :func:`load_items`).

Why processes: a bulk copy made in one process is bound by Python (parsing an item and
making its rows took ~30 µs of an item's ~50 µs of CPU, the server's work the rest), and
Python's lock keeps that to one core however many threads share it. Here the file is cut
into byte ranges at line ends; each worker process parses its range and ``COPY``s its
rows, a batch a transaction, on a connection of its own, so parsing and the server's work
spread over the cores. An item's JSON is stored as its line (``item_json`` is ``json``:
kept as written, checked by the server), not written out again.

Only into an empty catalog: its search indexes are built once at the end
(``finish_copy``), and a load that fails (a line that is not an item of a given layer,
the database gone) leaves the catalog empty again, so nothing half-loaded is ever served.
A catalog that holds items takes :meth:`PostgresCatalogStore.put_verbatim` instead,
which replaces items of the same ids.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import queue
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
from shikong.spatial.errors import InputError

from .postgres_store import PostgresCatalogStore, copy_item_rows, item_row

BATCH_LINES = 5_000  # items a transaction (each ends with a commit: a round trip)

# handed to each worker when it starts (initializer): batches done, and the stop sign
_progress: Any = None
_stop: Any = None


class BadLine(Exception):
    """A line that is not an item to load: (line number in its range, why). Plain
    arguments, so it crosses from a worker process as it is."""


class BatchRefused(Exception):
    """The database refused a worker's batch (an id twice, a value it cannot read):
    (lines of the range before the batch, the server's message with its detail)."""


@dataclass(frozen=True)
class LoadRange:
    """One worker's part of the file: bytes [start, end)."""

    dsn: str
    schema: str
    path: str
    start: int
    end: int
    version: int
    collections: frozenset[str]


def byte_ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """``parts`` ranges of about equal size covering the file, each starting at a line."""
    size = path.stat().st_size
    cuts = [0]
    with path.open("rb") as f:
        for k in range(1, parts):
            f.seek(max(size * k // parts, cuts[-1]))
            if f.tell() > 0:
                f.seek(f.tell() - 1)
                f.readline()  # to the start of the next line
            cuts.append(min(f.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def load_items(
    store: PostgresCatalogStore,
    path: Path,
    collections: list[dict[str, Any]],
    version: int,
    workers: int | None = None,
    advance: Callable[[int], None] = lambda n: None,
) -> int:
    """Every item of ``path`` (one STAC item a line, each of one of ``collections``) into
    ``store`` (a :class:`PostgresCatalogStore` holding no items), ``workers`` processes at
    a time (default: one per core); ``advance(n)`` as batches are stored. Returns the
    number of items. On any error the catalog is left empty and the error raised (an
    :class:`InputError` naming the line for a bad one)."""
    workers = max(1, workers or os.cpu_count() or 1)
    known = frozenset(c["id"] for c in collections)
    ranges = byte_ranges(path, workers)
    with store.writing(export=False):
        added = store.begin_empty_copy(collections, version)
        context = multiprocessing.get_context("spawn")
        progress, stop = context.Queue(), context.Event()
        jobs = [
            LoadRange(store.dsn, store.schema, str(path), a, b, version, known) for a, b in ranges
        ]
        try:
            with ProcessPoolExecutor(
                len(jobs), mp_context=context, initializer=_started, initargs=(progress, stop)
            ) as pool:
                futures = [pool.submit(_load_range, job) for job in jobs]
                pending = set(futures)
                reported = 0
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                    reported += _drain(progress, advance)
                    if any(f.exception() is not None for f in done):
                        stop.set()  # the others stop after their batch
                        wait(pending)
                        break
                reported += _drain(progress, advance)
            for job, future in zip(jobs, futures, strict=True):
                error = future.exception()
                if isinstance(error, BadLine):
                    line, why = error.args
                    raise InputError(path, why, f"line {_line_number(job, line)}") from None
                if isinstance(error, BatchRefused):
                    before, why = error.args
                    where = f"lines after {_line_number(job, before)}"
                    raise InputError(path, f"the database refused them: {why}", where) from None
                if error is not None:
                    raise error
            count = sum(f.result() for f in futures)
            if count > reported:  # batches whose word was still in the queue's pipe
                advance(count - reported)
            store.finish_copy(version, version, f"ndjson:{path.name}")
        except BaseException:
            store.undo_empty_copy(added)
            raise
    return count


def _drain(progress: Any, advance: Callable[[int], None]) -> int:
    """Pass on what the workers reported so far; how many items that was."""
    told = 0
    while True:
        try:
            n = progress.get_nowait()
        except queue.Empty:
            return told
        advance(n)
        told += n


def _started(progress: Any, stop: Any) -> None:
    """A worker's start: its queues, and no cyclic garbage collector (the rows are
    acyclic, reference counting frees them; a full collection walked every item held)."""
    global _progress, _stop
    _progress, _stop = progress, stop
    gc.disable()


def _load_range(job: LoadRange) -> int:
    """A worker's range, a batch a transaction; the items it stored."""
    stored = 0
    with psycopg.connect(job.dsn, autocommit=True) as db, open(job.path, "rb") as f:
        f.seek(job.start)
        position, line_in_range = job.start, 0
        while position < job.end and not (_stop is not None and _stop.is_set()):
            lines: list[bytes] = []
            while position < job.end and len(lines) < BATCH_LINES:
                line = f.readline()
                position += len(line)
                lines.append(line)
            rows, documents = [], []
            for k, line in enumerate(lines, line_in_range + 1):
                if not line.strip():
                    continue
                try:
                    item = orjson.loads(line)
                    if item.get("collection") not in job.collections:
                        raise ValueError(f"collection {item.get('collection')!r} is not given")
                    rows.append(item_row(item, job.version, job.dsn))
                except (ValueError, KeyError, TypeError, AttributeError, InputError) as exc:
                    raise BadLine(k, f"not an item to load: {_why(exc)}") from None
                documents.append((item["id"], line.rstrip(b"\r\n")))
            try:
                with db.transaction():
                    copy_item_rows(db, job.schema, rows, documents)
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
                detail = f" ({exc.diag.message_detail})" if exc.diag.message_detail else ""
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise BatchRefused(line_in_range, first + detail) from None
            line_in_range += len(lines)
            stored += len(rows)
            if _progress is not None:
                _progress.put(len(rows))
    return stored


def _why(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r}"
    if isinstance(exc, InputError):
        return exc.problem
    return str(exc) or type(exc).__name__


def _line_number(job: LoadRange, in_range: int) -> int:
    """The file's line number of a range's ``in_range``-th line (lines before counted)."""
    with open(job.path, "rb") as f:
        before = 0
        left = job.start
        while left > 0:
            chunk = f.read(min(left, 1 << 24))
            before += chunk.count(b"\n")
            left -= len(chunk)
    return before + in_range
