"""Operation log retention: old entries go, the newest LOG_MAX_ROWS stay, a batch at a time;
and writing an entry never fails the operation that writes it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from db.models import LogEntry, LogLevel
from db.services import log_retention
from db.services.log_retention import PRUNE_LOCK_KEY, Retention
from tests.conftest import BACKEND
from tests.factories import Account, create_session

# The real time, not a fixed date: the background pruning reads the clock itself, so entries
# dated from a fixed day would all turn "old" once that day is 90 days past.
NOW = datetime.now(UTC)


async def add_entries(count: int, *, age: timedelta) -> list[int]:
    """`count` entries created `age` before NOW; their ids, oldest first."""
    ids = []
    for number in range(count):
        entry = await LogEntry.create(level=LogLevel.INFO, event="test", message=f"m{number}")
        ids.append(entry.id)
    await LogEntry.filter(id__in=ids).update(created_at=NOW - age)
    return ids


async def remaining() -> list[int]:
    return [entry.id for entry in await LogEntry.all().order_by("id").only("id")]


async def test_entries_older_than_the_retention_go(app: Starlette) -> None:
    old = await add_entries(5, age=timedelta(days=91))
    kept = await add_entries(3, age=timedelta(days=89))

    deleted = await log_retention.prune(retention=Retention(days=90), now=NOW)

    assert deleted == len(old)
    assert await remaining() == kept


async def test_the_newest_max_rows_are_kept(app: Starlette) -> None:
    ids = await add_entries(12, age=timedelta(days=1))

    deleted = await log_retention.prune(retention=Retention(max_rows=5), now=NOW)

    assert deleted == 7
    assert await remaining() == ids[-5:]


async def test_pruning_deletes_in_bounded_batches(app: Starlette) -> None:
    await add_entries(10, age=timedelta(days=100))
    recent = await add_entries(7, age=timedelta(days=1))
    retention = Retention(days=90, max_rows=4, batch_size=3, pause_seconds=0)

    counts = [count async for count in log_retention.batches(retention=retention, now=NOW)]

    # 10 old ones (3 + 3 + 3 + 1), then the 3 recent ones beyond the newest 4 (a full
    # batch, so one more statement finds nothing left).
    assert counts == [3, 3, 3, 1, 3, 0]
    assert await remaining() == recent[-4:]


async def test_nothing_to_prune_is_one_statement(app: Starlette) -> None:
    await add_entries(2, age=timedelta(days=1))

    counts = [count async for count in log_retention.batches(retention=Retention(), now=NOW)]

    assert counts == [0]


async def test_pruning_runs_in_the_background_until_stopped(app: Starlette) -> None:
    kept = await add_entries(2, age=timedelta(days=1))
    await add_entries(3, age=timedelta(days=400))

    async with log_retention.pruning(retention=Retention(days=90), every=0.01):
        for _ in range(200):
            if await remaining() == kept:
                break
            await asyncio.sleep(0.01)

    assert await remaining() == kept


@pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL's advisory locks")
async def test_one_process_prunes_at_a_time(app: Starlette, database_url: str) -> None:
    await add_entries(4, age=timedelta(days=100))
    other = await asyncpg.connect("postgresql://" + database_url.split("://", 1)[1])
    try:
        async with other.transaction():  # another process, pruning now
            await other.execute("SELECT pg_advisory_xact_lock($1)", PRUNE_LOCK_KEY)
            assert await log_retention.prune(retention=Retention(), now=NOW) == 0
        assert await log_retention.prune(retention=Retention(), now=NOW) == 4
    finally:
        await other.close()


@pytest.mark.internal_errors  # the failed write is logged, with its traceback
async def test_a_failing_log_write_does_not_fail_the_request(
    client: httpx.AsyncClient, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> LogEntry:
        raise ConnectionError("the log table is away")

    monkeypatch.setattr(LogEntry, "create", broken)

    session_id = await create_session(client, alice)  # writes session.created

    assert session_id
    assert await LogEntry.filter(event="session.created").count() == 0
