"""Where rate-limit counters are shared: PostgreSQL's `rate_windows`, Redis, or memory.

Two kinds of entries, both kept by `db.services.rate_limits`:
- window counters, "<limit>:<caller>:<window>": `add` applies many deltas at once (one
  statement, or one pipeline) and returns every key's total after them;
- open streams, one entry per stream under a user: `open_stream` adds one and counts the
  user's live ones, serialised per user so that concurrent opens (in any process) each
  see the others' entries, `renew_streams` moves their expiry on while they last,
  `close_streams` removes them. A process that dies leaves its streams to expire
  (STREAM_TTL in rate_limits) instead of holding the user's slots forever.

Every method may raise whatever its backend raises; the caller fails open.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from tortoise import connections
from tortoise.transactions import in_transaction


class RateStore(Protocol):
    """Counters every process of the deployment shares."""

    async def add(self, deltas: Mapping[str, int], *, ttl: float) -> dict[str, int]:
        """Add each delta (0 reads) and keep the key `ttl` seconds more; the totals after."""
        ...

    async def open_stream(
        self, user: str, stream: str, *, ttl: float, closing: Sequence[str] = ()
    ) -> int:
        """Register `stream` of `user`, forget `closing` ones; how many are open now."""
        ...

    async def renew_streams(self, streams: Mapping[str, Sequence[str]], *, ttl: float) -> None:
        """Keep the streams (by user) for `ttl` seconds more."""
        ...

    async def close_streams(self, streams: Mapping[str, Sequence[str]]) -> None:
        """Forget the streams (by user)."""
        ...

    async def prune(self, *, batch: int) -> int:
        """Remove up to `batch` expired entries; how many went."""
        ...

    async def aclose(self) -> None: ...


def _stream_key(user: str, stream: str) -> str:
    return f"stream:{user}:{stream}"


def _stream_prefix(user: str) -> str:
    # LIKE wildcards cannot appear in it: user ids are UUIDs (or "jwt:..." credentials).
    return f"stream:{user}:%"


# Rows are upserted (and so locked) in key order: two statements locking the same keys in
# different orders (two processes' flushes, or a flush and a near-limit check) would
# deadlock. The keys are sent sorted too, so the order does not rest on the plan alone.
_ADD_SQL = """
INSERT INTO rate_windows (key, hits, expires_at)
SELECT key, hits, $3 FROM unnest($1::varchar[], $2::bigint[]) AS d(key, hits)
ORDER BY key
ON CONFLICT (key) DO UPDATE
SET hits = rate_windows.hits + EXCLUDED.hits, expires_at = EXCLUDED.expires_at
RETURNING key, hits
"""
# Opens of one user are serialised by a transaction-scoped advisory lock on the user:
# under READ COMMITTED a statement's snapshot misses rows that concurrent, uncommitted
# opens insert, so without it N opens at once could all count themselves under the limit.
# The count runs as the next statement, after the lock is granted, so its snapshot holds
# every open committed before (the lock is held until COMMIT). The 64-bit hash keeps
# unrelated users from sharing a lock (a collision would only serialise them, harmlessly).
_LOCK_USER_SQL = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
# The data-modifying CTEs run whatever the SELECT reads; it sees the table as it was
# before them, hence the `+ 1` for the stream just added and the closing ones left out.
_OPEN_STREAM_SQL = """
WITH gone AS (DELETE FROM rate_windows WHERE key = ANY($4::varchar[])),
added AS (INSERT INTO rate_windows (key, hits, expires_at) VALUES ($1, 1, $3))
SELECT count(*) + 1 AS open FROM rate_windows
WHERE key LIKE $2 AND expires_at > now() AND key <> ALL($4::varchar[]) AND key <> $1
"""
_RENEW_SQL = "UPDATE rate_windows SET expires_at = $2 WHERE key = ANY($1::varchar[])"
_CLOSE_SQL = "DELETE FROM rate_windows WHERE key = ANY($1::varchar[])"
_PRUNE_SQL = """
DELETE FROM rate_windows WHERE key IN (
  SELECT key FROM rate_windows WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED
)
"""


class PostgresStore:
    """`rate_windows` (UNLOGGED: counters need no crash safety) on the app's connection."""

    async def _rows(self, sql: str, values: list[Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await connections.get("default").execute_query_dict(
            sql, values
        )
        return rows

    async def add(self, deltas: Mapping[str, int], *, ttl: float) -> dict[str, int]:
        if not deltas:
            return {}
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        ordered = sorted(deltas.items())  # lock order: see _ADD_SQL
        keys, hits = [key for key, _ in ordered], [delta for _, delta in ordered]
        rows = await self._rows(_ADD_SQL, [keys, hits, expires])
        return {row["key"]: int(row["hits"]) for row in rows}

    async def open_stream(
        self, user: str, stream: str, *, ttl: float, closing: Sequence[str] = ()
    ) -> int:
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        gone = [_stream_key(user, name) for name in closing]
        key = _stream_key(user, stream)
        # Four round trips on one pooled connection (BEGIN, the lock, the open, COMMIT)
        # instead of one: a stream is opened rarely and is costly anyway, and the lock is
        # held only across the open itself, never while a stream runs.
        async with in_transaction("default") as connection:
            await connection.execute_query(_LOCK_USER_SQL, [user])
            rows: list[dict[str, Any]] = await connection.execute_query_dict(
                _OPEN_STREAM_SQL, [key, _stream_prefix(user), expires, gone]
            )
        return int(rows[0]["open"])

    async def renew_streams(self, streams: Mapping[str, Sequence[str]], *, ttl: float) -> None:
        keys = [_stream_key(user, name) for user, names in streams.items() for name in names]
        if keys:
            expires = datetime.now(UTC) + timedelta(seconds=ttl)
            await connections.get("default").execute_query(_RENEW_SQL, [keys, expires])

    async def close_streams(self, streams: Mapping[str, Sequence[str]]) -> None:
        keys = [_stream_key(user, name) for user, names in streams.items() for name in names]
        if keys:
            await connections.get("default").execute_query(_CLOSE_SQL, [keys])

    async def prune(self, *, batch: int) -> int:
        count, _ = await connections.get("default").execute_query(_PRUNE_SQL, [batch])
        return int(count)

    async def aclose(self) -> None:
        return None


class RedisStore:
    """Redis: counters are keys with a TTL (INCRBY + EXPIRE), a user's streams a sorted
    set scored by expiry time. Redis expires keys itself: `prune` has nothing to do."""

    def __init__(self, url: str, *, prefix: str = "cgw:rl:") -> None:
        # Imported here: only deployments that set REDIS_URL load the client.
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._prefix = prefix

    async def add(self, deltas: Mapping[str, int], *, ttl: float) -> dict[str, int]:
        if not deltas:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, delta in deltas.items():
                pipe.incrby(self._prefix + key, delta)
                pipe.expire(self._prefix + key, max(1, round(ttl)))
            results = await pipe.execute()
        return {key: int(results[2 * index]) for index, key in enumerate(deltas)}

    async def open_stream(
        self, user: str, stream: str, *, ttl: float, closing: Sequence[str] = ()
    ) -> int:
        key = f"{self._prefix}streams:{user}"
        now = time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            if closing:
                pipe.zrem(key, *closing)
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zadd(key, {stream: now + ttl})
            pipe.expire(key, max(1, round(ttl)))
            pipe.zcard(key)
            results = await pipe.execute()
        return int(results[-1])

    async def renew_streams(self, streams: Mapping[str, Sequence[str]], *, ttl: float) -> None:
        if not streams:
            return
        expires = time.time() + ttl
        async with self._redis.pipeline(transaction=False) as pipe:
            for user, names in streams.items():
                key = f"{self._prefix}streams:{user}"
                pipe.zadd(key, dict.fromkeys(names, expires), xx=True)
                pipe.expire(key, max(1, round(ttl)))
            await pipe.execute()

    async def close_streams(self, streams: Mapping[str, Sequence[str]]) -> None:
        if not streams:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for user, names in streams.items():
                pipe.zrem(f"{self._prefix}streams:{user}", *names)
            await pipe.execute()

    async def prune(self, *, batch: int) -> int:
        return 0

    async def aclose(self) -> None:
        await self._redis.aclose()


class MemoryStore:
    """One process (SQLite): the same behaviour in dictionaries."""

    def __init__(self) -> None:
        self._hits: dict[str, tuple[int, float]] = {}
        self._streams: dict[str, dict[str, float]] = {}

    async def add(self, deltas: Mapping[str, int], *, ttl: float) -> dict[str, int]:
        expires = time.monotonic() + ttl
        totals: dict[str, int] = {}
        for key, delta in deltas.items():
            hits, _ = self._hits.get(key, (0, 0.0))
            self._hits[key] = (hits + delta, expires)
            totals[key] = hits + delta
        return totals

    async def open_stream(
        self, user: str, stream: str, *, ttl: float, closing: Sequence[str] = ()
    ) -> int:
        now = time.monotonic()
        live = self._streams.setdefault(user, {})
        for name in [*closing, *(name for name, until in live.items() if until <= now)]:
            live.pop(name, None)
        live[stream] = now + ttl
        return len(live)

    async def renew_streams(self, streams: Mapping[str, Sequence[str]], *, ttl: float) -> None:
        expires = time.monotonic() + ttl
        for user, names in streams.items():
            live = self._streams.get(user, {})
            for name in names:
                if name in live:
                    live[name] = expires

    async def close_streams(self, streams: Mapping[str, Sequence[str]]) -> None:
        for user, names in streams.items():
            live = self._streams.get(user, {})
            for name in names:
                live.pop(name, None)
            if not live:
                self._streams.pop(user, None)

    async def prune(self, *, batch: int) -> int:
        now = time.monotonic()
        expired = [key for key, (_, until) in self._hits.items() if until <= now][:batch]
        for key in expired:
            del self._hits[key]
        return len(expired)

    async def aclose(self) -> None:
        return None
