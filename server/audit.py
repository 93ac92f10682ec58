"""The audit log: JSON lines chained by hash, so an edited or deleted line shows.

Each entry carries ``prev`` (the previous entry's hash) and ``hash`` = SHA-256 of
``prev`` + the entry's canonical JSON without ``hash``. :func:`verify` recomputes the
chain and names the first line that does not fit. Appends are serialised by a lock file
(several server processes may share one data directory) and flushed per line; the file
is fsynced at most once a second, so a power cut can lose the last second of entries
but can never leave a chain that verifies wrongly.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

AUDIT_FILE = Path("audit") / "audit.jsonl"
GENESIS = "0" * 64
FSYNC_SECONDS = 1.0


def _hash(prev: str, entry: dict[str, Any]) -> str:
    body = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev.encode() + body).hexdigest()


class AuditLog:
    """Appends entries to ``<data>/audit/audit.jsonl``."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / AUDIT_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._last_sync = 0.0

    def _tail_hash(self, fh) -> str:
        """The hash of the last complete line (the chain's head)."""
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return GENESIS
        back = min(size, 8192)
        while True:
            fh.seek(size - back)
            chunk = fh.read(back)
            lines = chunk.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or back == size:
                return orjson.loads(lines[-1])["hash"]
            back = min(size, back * 4)

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Chain and write one entry; returns it with ``prev`` and ``hash``."""
        entry = {"time": _now(), **entry}
        with self._lock, open(self.path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                prev = self._tail_hash(fh)
                entry["prev"] = prev
                entry["hash"] = _hash(prev, entry)
                fh.write(orjson.dumps(entry) + b"\n")
                fh.flush()
                if time.monotonic() - self._last_sync > FSYNC_SECONDS:
                    os.fsync(fh.fileno())
                    self._last_sync = time.monotonic()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return entry


@dataclass
class Verdict:
    entries: int
    ok: bool
    line: int | None = None
    reason: str | None = None


def verify(path: str | Path) -> Verdict:
    """Check every line's hash and link; the first break is reported with its line."""
    prev = GENESIS
    n = 0
    path = Path(path)
    if not path.exists():
        return Verdict(0, True)
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                entry = orjson.loads(raw)
                claimed = entry.pop("hash")
            except (orjson.JSONDecodeError, KeyError, AttributeError):
                return Verdict(n - 1, False, n, "line is not an audit entry (JSON with a hash)")
            if entry.get("prev") != prev:
                return Verdict(
                    n - 1, False, n, "link to the previous line is broken (line removed or moved?)"
                )
            if _hash(prev, entry) != claimed:
                return Verdict(n - 1, False, n, "content does not match its hash (line edited?)")
            prev = claimed
    return Verdict(n, True)


def entries(path: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                yield orjson.loads(raw)


def query(
    path: str | Path,
    *,
    user: str | None = None,
    department: str | None = None,
    collection: str | None = None,
    since: str | None = None,
    until: str | None = None,
    status: int | None = None,
    denied: bool | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Entries matching every given filter, oldest first (times as ISO strings compare)."""
    out = []
    for e in entries(path):
        if user is not None and e.get("user") != user:
            continue
        if department is not None and e.get("department") != department:
            continue
        if collection is not None and collection not in (e.get("collections") or []):
            continue
        if since is not None and e["time"] < since:
            continue
        if until is not None and e["time"] > until:
            continue
        if status is not None and e.get("status") != status:
            continue
        if denied is not None and bool(e.get("denied")) != denied:
            continue
        out.append(e)
    return out[-limit:] if limit else out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
