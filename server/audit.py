"""The audit log: JSON lines chained by hash, anchored by a head kept beside the file.

Each entry carries ``prev`` (the previous entry's hash) and ``hash`` = SHA-256 of
``prev`` + the entry's canonical JSON without ``hash``, so an edited, removed or moved
line breaks the chain there. A chain alone cannot show a cut *tail*, so every append
also rewrites ``audit/head.json`` (entry count and last hash: one fixed-size record,
written in place) under the same lock, and :func:`verify` compares the file with it.
Appends are serialised by an exclusive ``flock`` on the log (several worker processes
share one data directory) and flushed per line; the log is fsynced at most once a
second, so a power cut can lose the last second of entries, which verify then reports
as missing rather than vouching for them.

Personal values are masked before an entry is hashed (:mod:`audit_mask`), and a process
input digest is an HMAC under the data directory's own key (``audit/digest.key``): a bare
SHA-256 of ``{"id_number": …}`` is reversed by trying every birth date.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson
from shikong.catalog.policy import RIGHTS
from shikong.catalog.storage import DataDir

from .audit_mask import Redactor

if TYPE_CHECKING:
    from shikong.catalog.policy import CollectionMeta, Policy

AUDIT_FILE = DataDir(Path(".")).audit_log  # relative to a data directory
HEAD_NAME = "head.json"
HEAD_SIZE = 256  # bytes: the head is rewritten in place, always whole
KEY_NAME = "digest.key"
GENESIS = "0" * 64
FSYNC_SECONDS = 1.0
ANCHOR_EVENT = "head-recreated"


def _hash(prev: str, entry: dict[str, Any]) -> str:
    body = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev.encode() + body).hexdigest()


def head_path(log: str | Path) -> Path:
    return Path(log).with_name(HEAD_NAME)


def read_head(log: str | Path) -> dict[str, Any] | None:
    """The head (``entries``, ``hash``) beside a log, or None if there is none."""
    try:
        fd = os.open(head_path(log), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        head = orjson.loads(os.read(fd, 1 << 16))
    except orjson.JSONDecodeError:
        return {}
    finally:
        os.close(fd)
    return head if isinstance(head, dict) else {}


@dataclass
class _Tail:
    size: int
    hash: str | None = None  # None: empty, or the last line is not an entry
    prev: str | None = None
    newline: bool = True  # the file ends with a complete line


def _tail(fh: BinaryIO) -> _Tail:
    """The last line of the log: its hash and link, read backwards from the end."""
    size = fh.seek(0, os.SEEK_END)
    if size == 0:
        return _Tail(0)
    back = min(size, 8192)
    while True:
        fh.seek(size - back)
        chunk = fh.read(back)
        lines = chunk.rstrip(b"\n").split(b"\n")
        if len(lines) > 1 or back == size:
            break
        back = min(size, back * 4)
    tail = _Tail(size, newline=chunk.endswith(b"\n"))
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
        last = orjson.loads(lines[-1])
        tail.hash, tail.prev = last.get("hash"), last.get("prev")
    return tail


def _count(fh: BinaryIO) -> int:
    fh.seek(0)
    return sum(1 for raw in fh if raw.strip())


def _walk(fh: BinaryIO, mark: int) -> tuple[int, str | None, bool, str | None]:
    """(entries, last hash, whether the chain holds, hash of entry ``mark``)."""
    fh.seek(0)
    prev, n, at_mark = GENESIS, 0, None
    for raw in fh:
        n += 1
        try:
            entry = orjson.loads(raw)
            claimed = entry.pop("hash")
        except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError):
            return n, None, False, at_mark
        if entry.get("prev") != prev or _hash(prev, entry) != claimed:
            return n, None, False, at_mark
        prev = claimed
        if n == mark:
            at_mark = claimed
    return n, prev, True, at_mark


class AuditLog:
    """Appends entries to ``<data>/audit/audit.jsonl`` and keeps its head."""

    def __init__(
        self, data_dir: str | Path, personal: Mapping[str, Mapping[str, str]] | None = None
    ) -> None:
        """``personal``: the policy's personal fields per collection (default: the data
        directory's policy)."""
        if personal is None:
            from shikong.catalog.policy import Policy

            personal = Policy.load(data_dir).personal_data
        self.path = Path(data_dir) / AUDIT_FILE
        self.head = head_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.redactor = Redactor(personal)
        self._lock = threading.Lock()
        self._last_sync = 0.0
        self._key: bytes | None = None
        self.annotate: Callable[[dict[str, Any]], None] | None = None  # adds to an entry
        from .audit_pg import chain_of

        self._chain = chain_of(data_dir)  # the database's chain when the catalog is there

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Mask, chain and write one entry, then move the head; returns the entry."""
        return self.append_many([entry])[0]

    def append_many(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Mask, chain and write entries in order under one lock, then move the head once.

        One lock, one look at the tail and head, one write and one head update for the
        lot: what lets the server's busy workers keep an audit line per request
        (:mod:`audit_queue` gathers them)."""
        prepared = [self._prepare(entry) for entry in entries]
        if not prepared:
            return prepared
        if self._chain is not None:
            self._chain.append(prepared, self._link)
            return prepared
        with self._lock, open(self.path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                prev, count = self._position(fh)
                lines = []
                for entry in prepared:
                    if entry.get("input_digest"):
                        entry["input_digest"] = self._keyed(entry["input_digest"])
                    entry["prev"] = prev
                    entry["hash"] = prev = _hash(prev, entry)
                    lines.append(orjson.dumps(entry) + b"\n")
                fh.write(b"".join(lines))
                fh.flush()
                if time.monotonic() - self._last_sync > FSYNC_SECONDS:
                    os.fsync(fh.fileno())
                    self._last_sync = time.monotonic()
                self._write_head(count + len(prepared), prev, prepared[-1]["time"])
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return prepared

    def _link(self, prev: str, entry: dict[str, Any]) -> str:
        """Chain one entry after ``prev`` (its digest keyed first); its hash."""
        if entry.get("input_digest"):
            entry["input_digest"] = self._keyed(entry["input_digest"])
        entry["prev"] = prev
        entry["hash"] = _hash(prev, entry)
        return entry["hash"]

    def _prepare(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Annotated and masked, before the lock: ``annotate`` may append entries itself."""
        if self.annotate is not None:
            self.annotate(entry)
        return self.redactor.entry({"time": now(), **entry})

    def _position(self, fh: BinaryIO) -> tuple[str, int]:
        """(hash to link to, entries before the new one), under the lock.

        Normally the head's. A file the head does not describe is not repaired: the new
        line links to the head, so :func:`verify` names the break, except for lines
        chained on the head's entry that a crash left unrecorded (adopted). With
        no head (deleted, or a log older than heads) the file's own tail is taken, and a
        chained ``head-recreated`` entry records that, for verify to report for good.
        """
        tail = _tail(fh)
        if not tail.newline:
            fh.write(b"\n")  # a cut mid-line stays a bad line of its own
        head = read_head(self.path)
        if head is None or not head.get("hash"):
            count = _count(fh) if tail.size else 0
            prev = tail.hash or GENESIS
            if count:
                event = {
                    "time": now(),
                    "event": ANCHOR_EVENT,
                    "note": f"audit/{HEAD_NAME} was missing or unreadable; a new head now "
                    f"anchors the {count} lines before this one",
                    "prev": prev,
                }
                event["hash"] = _hash(prev, event)
                fh.write(orjson.dumps(event) + b"\n")
                prev, count = event["hash"], count + 1
            return prev, count
        prev, count = str(head["hash"]), int(head.get("entries", 0))
        if tail.hash == prev or (tail.size == 0 and count == 0):
            return prev, count
        if tail.hash and tail.prev == prev:
            return tail.hash, count + 1
        # rare: the file runs past its head (a crash left the head behind) or was cut
        walked, last, intact, at_head = _walk(fh, count)
        if intact and walked > count and at_head == prev:
            return str(last), walked
        return prev, count

    def _write_head(self, entries: int, last: str, when: str) -> None:
        """Overwrite the head in place: one record of fixed size in one write (a rename
        per append costs a flush on ext4, ~1.5 ms, in the request path)."""
        record = orjson.dumps({"entries": entries, "hash": last, "time": when})
        fd = os.open(self.head, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, record.ljust(HEAD_SIZE - 1) + b"\n", 0)
            if os.fstat(fd).st_size != HEAD_SIZE:
                os.ftruncate(fd, HEAD_SIZE)  # new, or overwritten by something longer
        finally:
            os.close(fd)

    def _keyed(self, digest: str) -> str:
        """HMAC-SHA256 of a request digest under this data directory's audit key."""
        if self._key is None and self._chain is not None:
            self._key = self._chain.digest_key()
        if self._key is None:
            key_file = self.path.with_name(KEY_NAME)
            try:
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                self._key = key_file.read_bytes()
            else:
                self._key = secrets.token_bytes(32)
                with os.fdopen(fd, "wb") as out:
                    out.write(self._key)
        return "hmac-sha256:" + hmac.new(self._key, digest.encode(), "sha256").hexdigest()


@dataclass
class Verdict:
    """What :func:`verify` found: ``line`` is the first bad line (None when the whole
    file is fine but the head is missing or does not match it)."""

    entries: int
    ok: bool
    line: int | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)


def verify(path: str | Path) -> Verdict:
    """Check every line's hash and link, then the log against its head.

    The file size and the head are read together under a shared lock (a database
    chain: one snapshot), so appends that land while the chain is walked are neither a
    false alarm nor a blind spot.
    """
    path = Path(path)
    chain = _database_chain(path)
    if chain is not None:
        with chain.snapshot() as (lines, head):
            walked = _walk_lines(lines)
        return walked if isinstance(walked, Verdict) else _against_head(*walked, head)
    if not path.exists():
        head = read_head(path)
        if head:
            return Verdict(
                0, False, 1, f"the log file is missing, but its head records "
                f"{head.get('entries')} entries (file deleted)",
            )  # fmt: skip
        return Verdict(0, True)
    with open(path, "rb") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH)
        try:
            size = fh.seek(0, os.SEEK_END)
            head = read_head(path)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
        fh.seek(0)
        walked = _walk_lines(_upto(fh, size))
    return walked if isinstance(walked, Verdict) else _against_head(*walked, head)


def _upto(fh: BinaryIO, size: int) -> Iterator[bytes]:
    """The file's lines within its first ``size`` bytes (those after: the next verify)."""
    read = 0
    for raw in fh:
        if read >= size:
            break
        read += len(raw)
        yield raw


def _walk_lines(lines: Iterator[bytes]) -> Verdict | tuple[int, str, list[str]]:
    """Walk the chain: the first broken line's verdict, or (entries, last hash, warnings)."""
    prev, n, warnings = GENESIS, 0, []
    for raw in lines:
        n += 1
        try:
            entry = orjson.loads(raw)
            claimed = entry.pop("hash")
        except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError):
            return Verdict(n - 1, False, n, "line is not an audit entry (JSON with a hash)")
        if entry.get("prev") != prev:
            return Verdict(
                n - 1, False, n, "link to the previous line is broken (line removed or moved?)"
            )
        if _hash(prev, entry) != claimed:
            return Verdict(n - 1, False, n, "content does not match its hash (line edited?)")
        if entry.get("event") == ANCHOR_EVENT:
            warnings.append(
                f"line {n} ({entry.get('time')}): the head was missing and was recreated "
                f"over the {n - 1} lines before it; lines cut before then would not show"
            )
        prev = claimed
    return n, prev, warnings


def _database_chain(path: Path) -> Any:
    """The PostgreSQL chain of the data directory owning ``<data>/audit/audit.jsonl``
    when its catalog is in PostgreSQL, else None (the file is the log)."""
    from .audit_pg import chain_of

    return chain_of(path.parents[1]) if len(path.parents) > 1 else None


def _against_head(n: int, last: str, warnings: list[str], head: dict[str, Any] | None) -> Verdict:
    where = f"audit/{HEAD_NAME}"
    if head is None:
        if n == 0:
            return Verdict(0, True, warnings=warnings)
        return Verdict(
            n, False, None, f"{where} is missing (deleted?): the chain of {n} entries holds, "
            "but lines cut from its end would not show",
            warnings,
        )  # fmt: skip
    try:
        recorded, head_hash = int(head["entries"]), str(head["hash"])
    except (KeyError, TypeError, ValueError):
        return Verdict(n, False, None, f"{where} is not a head (entries and hash)", warnings)
    if recorded > n:
        cut = recorded - n
        return Verdict(
            n, False, n + 1, f"the log ends after {n} entries but {where} records {recorded}: "
            f"the last {cut} line{'s were' if cut > 1 else ' was'} removed (the file was "
            "cut, or a power cut lost them before they reached the disk)",
            warnings,
        )  # fmt: skip
    if recorded < n:
        extra = n - recorded
        return Verdict(
            recorded, False, recorded + 1, f"{extra} line{'s' if extra > 1 else ''} after "
            f"the {recorded} entries {where} records (written outside the server?)",
            warnings,
        )  # fmt: skip
    if last != head_hash:
        return Verdict(
            n, False, n, f"the last entry is not the one {where} records (log replaced?)",
            warnings,
        )  # fmt: skip
    return Verdict(n, True, warnings=warnings)


def entries(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every entry of the log, oldest first (a bad line skipped: verify reports it)."""
    path = Path(path)
    chain = _database_chain(path)
    if chain is not None:
        with chain.snapshot() as (lines, _):
            for raw in lines:
                with contextlib.suppress(orjson.JSONDecodeError):
                    yield orjson.loads(raw)
        return
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                with contextlib.suppress(orjson.JSONDecodeError):
                    yield orjson.loads(raw)  # a bad line is verify's to report


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
    redactor: Redactor | None = None,
) -> list[dict[str, Any]]:
    """Entries matching every given filter, oldest first.

    ``since``/``until`` are RFC 3339 date-times or dates (a date ``until`` includes its
    day); anything else raises :class:`BadTime`. Entries pass ``redactor`` on the way
    out, so a log written before masking shows no more than one written after.
    """
    since = parse_time(since, "since") if since else None
    until = parse_time(until, "until", end=True) if until else None
    out = []
    for e in entries(path):
        if not isinstance(e, dict):
            continue
        if user is not None and e.get("user") != user:
            continue
        if department is not None and e.get("department") != department:
            continue
        if collection is not None and collection not in (e.get("collections") or []):
            continue
        when = str(e.get("time", ""))
        if since is not None and when < since:
            continue
        if until is not None and when > until:
            continue
        if status is not None and e.get("status") != status:
            continue
        if denied is not None and bool(e.get("denied")) != denied:
            continue
        out.append(e)
    out = out[-limit:] if limit else out
    return [redactor.entry(e) for e in out] if redactor else out


class BadTime(ValueError):
    """A ``since``/``until`` that is not an RFC 3339 date-time or date; names which."""


def parse_time(value: str, name: str, *, end: bool = False) -> str:
    """An RFC 3339 date-time (offset required) or a full date, read by the platform's one
    datetime parser, as the log writes times (UTC, microseconds, ``Z``) so they compare
    as text. A date is its first moment, or with ``end`` its last."""
    from shikong.spatial.errors import InputError
    from shikong.spatial.temporal import DATE, parse_datetime

    text = value.strip()
    if "/" in text:
        raise BadTime(f"{name}: {value!r} is an interval; give one date-time or date")
    try:
        window = parse_datetime(text, strict=not DATE.fullmatch(text), name=name)
    except InputError as exc:
        raise BadTime(f"{exc} (or a date such as 2021-06-30)") from None
    moment = window.end if end else window.start
    assert moment is not None  # one instant: both ends are set
    return _format(moment)


def now() -> str:
    """The audit log's form of this moment (UTC, microseconds): an entry's ``time``."""
    return _format(datetime.now(UTC))


def _format(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def could_read(
    path: str | Path,
    collection: CollectionMeta,
    day: str,
    policy: Policy,
    departments: list[str],
) -> list[dict[str, Any]]:
    """Who could read a collection on a day, and on what grounds, one row per ground.

    Grounds: ``owner``; ``classification`` (public: anyone; shared: every signed-in
    department); ``policy`` (a grant of the policy file, as the file reads now: it keeps
    no history); ``request`` (an approved access request in force at some moment of that
    day, from the chain's ``sharing.approved`` entries: decided by the day's end, its end
    date not before the day). ``day`` is a date or an RFC 3339 date-time (:class:`BadTime`).
    """
    from shikong.catalog.sharing import end_of

    start = datetime.fromisoformat(parse_time(day, "on"))
    end = datetime.fromisoformat(parse_time(day, "on", end=True))
    cls, owner = collection.classification, collection.department
    rows: list[dict[str, Any]] = [{"department": owner, "grounds": "owner", "rights": list(RIGHTS)}]
    if cls in ("public", "shared"):
        who = "anyone" if cls == "public" else "every signed-in department"
        rows.append({"department": who, "grounds": f"classification {cls}", "rights": ["read"]})
    for g in policy.grants:
        for department in departments:
            if department != owner and g.covers(collection, department, "read"):
                rights = [r for r in RIGHTS if r in g.rights or r == "read"]
                rows.append({"department": department, "grounds": "policy", "rights": rights})
    for e in entries(path):
        if not isinstance(e, dict) or e.get("event") != "sharing.approved":
            continue
        if collection.id not in (e.get("collections") or []):
            continue
        try:
            decided = datetime.fromisoformat(str(e.get("decided_at") or e["time"]))
            ends = end_of(date.fromisoformat(str(e["granted_until"])))
        except (KeyError, ValueError):
            continue
        if decided <= end and ends > start:
            rows.append(
                {
                    "department": e.get("requester"),
                    "grounds": f"request {e.get('request')}",
                    "rights": list(e.get("granted_rights") or []),
                    "decided_by": f"{e.get('department')}/{e.get('user')}",
                    "decided_at": e.get("decided_at"),
                    "until": e.get("granted_until"),
                }
            )
    return rows
