"""Per-caller rate limits: a token bucket per caller, in one process or shared by nodes.

``rate`` requests a second, bursts up to ``burst`` (the policy's ``limits``). Where the
buckets live decides what "per caller" means across a deployment:

- one process (the embedded default): :class:`LocalBuckets`, in memory;
- several nodes: the buckets must be shared, or each node grants the whole rate and N
  nodes let a caller through N times as fast. ``SHIKONG_RATE_LIMITS=redis://host:6379/0``
  keeps them in Redis (:class:`RedisBuckets`, one atomic script per request); without it,
  a data directory whose catalog is in PostgreSQL keeps them there
  (:class:`PostgresBuckets`, one function call per request). Both take the time from
  the shared server, so the nodes' clocks do not matter.

A shared store that cannot be reached lets requests through (logged once a minute):
the limit protects the service, and failing closed would turn a Redis outage into a
platform outage.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shikong.catalog.postgres_store import PostgresCatalogStore

LOGGER = logging.getLogger(__name__)
ENV = "SHIKONG_RATE_LIMITS"
COMPLAINT_SECONDS = 60.0


class Buckets(Protocol):
    def wait_needed(self, who: str) -> float:
        """0 if the request may go now, else the seconds until it could."""
        ...


class LocalBuckets:
    """The buckets of one process, in memory (the oldest callers forgotten past a bound)."""

    def __init__(self, rate: float, burst: int, max_callers: int = 100_000) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_callers

    def wait_needed(self, who: str) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - stamp) * self.rate)
            if tokens >= 1:
                self._buckets[who] = (tokens - 1, now)
                self._buckets.move_to_end(who)
                if len(self._buckets) > self._max:
                    self._buckets.popitem(last=False)
                return 0.0
            self._buckets[who] = (tokens, now)
            return (1 - tokens) / self.rate


class _Shared:
    """What both shared stores do on failure: let the request through, complain rarely."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._complained = 0.0

    def _take(self, who: str) -> float:
        raise NotImplementedError

    def wait_needed(self, who: str) -> float:
        try:
            return max(0.0, float(self._take(who)))
        except Exception as exc:  # unreachable store: the service stays up
            if time.monotonic() - self._complained > COMPLAINT_SECONDS:
                self._complained = time.monotonic()
                LOGGER.warning("rate limits not enforced: %s: %s", type(self).__name__, exc)
            return 0.0


# KEYS[1] the caller's bucket; ARGV rate, burst. The time is Redis's own (TIME).
_REDIS_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(held[1]) or burst
local stamp = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisBuckets(_Shared):
    """Buckets in Redis under ``shikong/rate/<caller>``, one atomic script per request;
    each expires once it would be full again (nothing to clean up)."""

    def __init__(self, url: str, rate: float, burst: int) -> None:
        import redis

        super().__init__(rate, burst)
        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script = self.client.register_script(_REDIS_TAKE)

    def _take(self, who: str) -> float:
        return float(self._script(keys=[f"shikong/rate/{who}"], args=[self.rate, self.burst]))


_PG_DDL = """
CREATE UNLOGGED TABLE IF NOT EXISTS {s}.rate_buckets (
    who text PRIMARY KEY, tokens double precision NOT NULL, stamp double precision NOT NULL);
CREATE OR REPLACE FUNCTION {s}.rate_take(caller text, rate double precision, burst integer)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    now_s double precision := extract(epoch FROM clock_timestamp());
    have double precision;
    wait double precision := 0;
BEGIN
    SELECT least(burst, b.tokens + greatest(0, now_s - b.stamp) * rate) INTO have
        FROM {s}.rate_buckets b WHERE b.who = caller FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO {s}.rate_buckets VALUES (caller, burst - 1, now_s)
            ON CONFLICT (who) DO NOTHING;
        IF FOUND THEN RETURN 0; END IF;
        SELECT least(burst, b.tokens + greatest(0, now_s - b.stamp) * rate) INTO have
            FROM {s}.rate_buckets b WHERE b.who = caller FOR UPDATE;
    END IF;
    IF have >= 1 THEN have := have - 1; ELSE wait := (1 - have) / rate; END IF;
    UPDATE {s}.rate_buckets SET tokens = have, stamp = now_s WHERE who = caller;
    RETURN wait;
END $$;
"""


class PostgresBuckets(_Shared):
    """Buckets in an unlogged table of the catalog's schema (they are worth nothing after
    a crash), taken by one server-side function call per request."""

    def __init__(self, store: PostgresCatalogStore, rate: float, burst: int) -> None:
        super().__init__(rate, burst)
        self._store = store
        store.ensure_tables(_PG_DDL)

    def _take(self, who: str) -> float:
        row = (
            self._store._db()
            .execute(
                f"SELECT {self._store.schema}.rate_take(%s, %s, %s)",
                (who, float(self.rate), int(self.burst)),
            )
            .fetchone()
        )
        return float(row[0])


def buckets_for(data_dir: str | Path, rate: float, burst: int) -> Any:
    """The buckets a server of this data directory uses (see the module docstring)."""
    url = os.environ.get(ENV, "").strip()
    if url:
        return RedisBuckets(url, rate, burst)
    from shikong.catalog.stores import configured_store

    store = configured_store(data_dir)
    if store is not None:
        return PostgresBuckets(store, rate, burst)
    return LocalBuckets(rate, burst)
