"""rate_limits: local decisions, the store near the limit, processes sharing one store.

Two limiters on one store stand for two processes (the module's active limiter is
switched between them); a fake clock moves the windows, so nothing waits on real time.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from tortoise import connections

from db.errors import RateLimited
from db.identity import Caller
from db.models import LogEntry, Role
from db.rate_stores import MemoryStore, PostgresStore, RateStore, RedisStore
from db.services import logs, rate_limits
from db.services.rate_limits import RateLimits
from tests.conftest import BACKEND

# Flushes happen only when a test asks: the loop's interval is longer than any test.
NEVER = 60.0
ALICE = Caller(user_id=str(uuid.uuid4()), name="alice", role=Role.USER, credential="key-a")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Clock:
    def __init__(self, now: float = 6_000_000.0) -> None:  # the start of a window
        self.now = now

    def __call__(self) -> float:
        return self.now


class Counting:
    """A store that counts its calls (round trips) and can be switched off."""

    def __init__(self, store: RateStore) -> None:
        self.store = store
        self.calls = 0
        self.down = False

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("store down")

    async def add(self, deltas: Mapping[str, int], *, ttl: float) -> dict[str, int]:
        self._call()
        return await self.store.add(deltas, ttl=ttl)

    async def open_stream(
        self, user: str, stream: str, *, ttl: float, closing: Sequence[str] = ()
    ) -> int:
        self._call()
        return await self.store.open_stream(user, stream, ttl=ttl, closing=closing)

    async def renew_streams(self, streams: Mapping[str, Sequence[str]], *, ttl: float) -> None:
        self._call()
        await self.store.renew_streams(streams, ttl=ttl)

    async def close_streams(self, streams: Mapping[str, Sequence[str]]) -> None:
        self._call()
        await self.store.close_streams(streams)

    async def prune(self, *, batch: int) -> int:
        return await self.store.prune(batch=batch)

    async def aclose(self) -> None:
        return None


@asynccontextmanager
async def process(
    store: RateStore, clock: Clock, **limits: int
) -> AsyncIterator[rate_limits._Limiter]:
    """A limiter (one process's) on `store`, made active for the block."""
    settings = RateLimits(**limits, rate_limit_flush_seconds=NEVER)
    async with rate_limits.running(limits=settings, store=store, clock=clock):
        limiter = rate_limits._active
        assert limiter is not None
        yield limiter


Use = Callable[[rate_limits._Limiter], None]


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Use:
    """Make a limiter the active one (the process a call happens in)."""

    def activate(limiter: rate_limits._Limiter) -> None:
        monkeypatch.setattr(rate_limits, "_active", limiter)

    return activate


async def admitted(count: int) -> int:
    """How many of `count` requests of Alice are admitted."""
    accepted = 0
    for _ in range(count):
        try:
            await rate_limits.admit_request(ALICE)
        except RateLimited:
            continue
        accepted += 1
    return accepted


async def test_under_the_limit_no_round_trip(app: Starlette) -> None:
    store = Counting(MemoryStore())
    async with process(store, Clock(), rate_limit_per_minute=100):
        for _ in range(10):
            await rate_limits.admit_request(ALICE)
        assert store.calls == 0
        standing = rate_limits.standing(ALICE)
        assert standing is not None and standing.remaining == 90 and standing.limit == 100


async def test_over_the_limit_refused_with_retry_after(app: Starlette) -> None:
    clock = Clock()
    async with process(Counting(MemoryStore()), clock, rate_limit_per_minute=5):
        assert await admitted(5) == 5
        with pytest.raises(RateLimited) as refused:
            await rate_limits.admit_request(ALICE)
        # The window must end and the previous one weigh at most 4 hits: 60 + 12 s.
        assert refused.value.retry_after == 72
        other = Caller(user_id=ALICE.user_id, name="alice", role=Role.USER, credential="key-b")
        await rate_limits.admit_request(other)  # another key of the same user: its own count


async def test_the_previous_window_weighs_less_as_it_slides(app: Starlette) -> None:
    clock = Clock()
    async with process(MemoryStore(), clock, rate_limit_per_minute=10):
        assert await admitted(10) == 10
        clock.now += 90  # half-way through the next window: the 10 weigh 5
        assert await admitted(10) == 5
        clock.now += 60  # two windows on: nothing left of the first
        assert await admitted(3) == 3


async def test_a_refused_request_does_not_count(app: Starlette) -> None:
    clock = Clock()
    async with process(MemoryStore(), clock, rate_limit_per_minute=4):
        assert await admitted(50) == 4
        clock.now += 60 + 45  # the 4 weigh 1: 3 more fit, whatever was refused
        assert await admitted(10) == 3


async def test_two_processes_share_one_count(app: Starlette, use: Use) -> None:
    store, clock, limit = MemoryStore(), Clock(), 40
    async with (
        process(store, clock, rate_limit_per_minute=limit) as first,
        process(store, clock, rate_limit_per_minute=limit) as second,
    ):
        use(first)
        assert await admitted(8) == 8
        await rate_limits.flush(first)
        use(second)
        await rate_limits.flush(second)  # nothing to send; what the other sent is learnt below
        await rate_limits.admit_request(ALICE)
        await rate_limits.flush(second)
        standing = rate_limits.standing(ALICE)
        assert standing is not None and standing.remaining == limit - 9
        # Then both admit in turn, never flushing: the slack of each process is a quarter
        # of what was left when it last saw the total (documented in rate_limits).
        accepted = 9
        for turn in range(200):
            use(first if turn % 2 else second)
            accepted += await admitted(1)
        assert limit <= accepted <= limit + (limit - 8) // 4


async def test_reply_limit_and_refund(app: Starlette) -> None:
    async with process(MemoryStore(), Clock(), reply_rate_limit_per_minute=2):
        await rate_limits.admit_reply(ALICE)
        await rate_limits.admit_reply(ALICE)
        rate_limits.refund_reply(ALICE)  # a retry that asked no model
        await rate_limits.admit_reply(ALICE)
        with pytest.raises(RateLimited):
            await rate_limits.admit_reply(ALICE)
        await rate_limits.admit_request(ALICE)  # requests are not limited here


async def test_streams_are_counted_across_processes(app: Starlette, use: Use) -> None:
    store = MemoryStore()
    async with (
        process(store, Clock(), max_streams_per_user=2) as first,
        process(store, Clock(), max_streams_per_user=2) as second,
    ):
        use(first)
        one = await rate_limits.open_stream(ALICE)
        use(second)
        two = await rate_limits.open_stream(ALICE)
        with pytest.raises(RateLimited) as refused:
            await rate_limits.open_stream(ALICE)
        assert refused.value.retry_after == rate_limits.STREAM_RETRY_AFTER
        two.release()
        async with rate_limits.streaming(ALICE):  # given back at once in this process
            use(first)
            with pytest.raises(RateLimited):
                await rate_limits.open_stream(ALICE)
        use(first)
        one.release()
        await rate_limits.flush(second)  # the other process forgets its closed stream
        await rate_limits.flush(first)
        await rate_limits.open_stream(ALICE)
        await rate_limits.open_stream(ALICE)


async def test_a_store_that_is_down_fails_open(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    store = Counting(MemoryStore())
    store.down = True
    async with process(store, Clock(), rate_limit_per_minute=10, max_streams_per_user=1):
        assert await admitted(9) == 9  # the last ones ask the store, which is away
        await rate_limits.flush()
        slot = await rate_limits.open_stream(ALICE)
        slot.release()
        store.down = False
        await rate_limits.flush()  # what was counted meanwhile reaches the store now
        assert await admitted(5) == 1
    assert "rate limit store unavailable" in caplog.text


async def test_refusals_logged_once_a_minute_then_summarised(app: Starlette) -> None:
    clock = Clock()
    async with process(MemoryStore(), clock, rate_limit_per_minute=1) as limiter:
        assert await admitted(6) == 1
        clock.now += 60
        await rate_limits.flush(limiter)
    await logs.flush()
    entries = await LogEntry.filter(event="rate_limit.hit").order_by("created_at", "id")
    assert [entry.details["caller"] for entry in entries] == ["key-a", "key-a"]
    assert entries[1].details["count"] == 4
    assert all(entry.actor_id is not None for entry in entries)


@pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL's rate_windows")
async def test_postgres_store(app: Starlette) -> None:
    await check_store(PostgresStore(), prefix=uuid.uuid4().hex)


async def test_redis_store() -> None:
    prefix = f"cgw:test:{uuid.uuid4().hex}:"
    store = RedisStore(REDIS_URL, prefix=prefix)
    try:
        await check_store(store, prefix="")
    finally:
        await store.aclose()


async def check_store(store: RateStore, *, prefix: str) -> None:
    key, other = f"req:{prefix}a:1", f"req:{prefix}b:1"
    assert await store.add({key: 3, other: 1}, ttl=60) == {key: 3, other: 1}
    assert await store.add({key: 2, other: 0}, ttl=60) == {key: 5, other: 1}
    user = f"{prefix}user"
    assert await store.open_stream(user, "s1", ttl=30) == 1
    assert await store.open_stream(user, "s2", ttl=30) == 2
    await store.renew_streams({user: ["s1", "s2"]}, ttl=30)
    assert await store.open_stream(user, "s3", ttl=30, closing=["s1"]) == 2
    await store.close_streams({user: ["s2", "s3"]})
    assert await store.open_stream(user, "s4", ttl=30) == 1
    await store.close_streams({user: ["s4"]})
    assert await store.prune(batch=10) >= 0


# Holds each stream insert of a slow user (`slow_user`) back 50 ms in the server, after
# its statement took its snapshot and before it commits: the window in which concurrent
# opens race.
_SLOW_INSERTS = """
CREATE OR REPLACE FUNCTION test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$;
CREATE TRIGGER test_slow_insert BEFORE INSERT ON rate_windows FOR EACH ROW
WHEN (NEW.key LIKE 'stream:0000dead-%') EXECUTE FUNCTION test_slow_insert();
"""


def slow_user() -> str:
    """A user id (a UUID, as log entries want) whose stream inserts `_SLOW_INSERTS` holds."""
    return f"0000dead-{str(uuid.uuid4())[9:]}"


@pytest.fixture
async def slow_inserts(app: Starlette) -> AsyncIterator[None]:
    connection = connections.get("default")
    await connection.execute_script(_SLOW_INSERTS)
    try:
        yield
    finally:
        await connection.execute_script(
            "DROP TRIGGER test_slow_insert ON rate_windows; DROP FUNCTION test_slow_insert();"
        )


@pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL's READ COMMITTED snapshots")
async def test_concurrent_stream_opens_of_one_user_admit_exactly_the_limit(
    slow_inserts: None,
) -> None:
    """Opens at once, on several pooled connections: each sees the ones before it."""
    store = PostgresStore()
    user = slow_user()
    counts = await asyncio.gather(*(store.open_stream(user, f"s{n}", ttl=30) for n in range(8)))
    assert sorted(counts) == list(range(1, 9))

    caller = Caller(user_id=slow_user(), name="c", role=Role.USER, credential="key-c")
    async with process(store, Clock(), max_streams_per_user=3):
        results = await asyncio.gather(
            *(rate_limits.open_stream(caller) for _ in range(8)), return_exceptions=True
        )
    assert sum(isinstance(result, rate_limits.StreamSlot) for result in results) == 3
    assert sum(isinstance(result, RateLimited) for result in results) == 5


async def test_counters_are_sent_in_key_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are locked in one order by every writer, so two upserts cannot deadlock."""
    sent: list[tuple[str, list[Any]]] = []

    async def rows(self: PostgresStore, sql: str, values: list[Any]) -> list[dict[str, Any]]:
        sent.append((sql, values))
        return [{"key": key, "hits": hits} for key, hits in zip(values[0], values[1], strict=True)]

    monkeypatch.setattr(PostgresStore, "_rows", rows)
    totals = await PostgresStore().add({"req:b:1": 2, "reply:a:1": 1, "req:a:1": 3}, ttl=60)

    assert totals == {"req:b:1": 2, "reply:a:1": 1, "req:a:1": 3}
    sql, values = sent[0]
    assert values[:2] == [["reply:a:1", "req:a:1", "req:b:1"], [1, 3, 2]]
    assert "ORDER BY key" in sql
