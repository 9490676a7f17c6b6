"""Operation log retention: entries older than a number of days, or beyond the newest
`max_rows`, are deleted in the background, a small batch per statement."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from db.sql import markers

logger = logging.getLogger(__name__)
# pg_try_advisory_xact_lock key: one process prunes at a time ("cgw-logs" in ASCII).
PRUNE_LOCK_KEY = 0x6367772D6C6F6773


@dataclass(frozen=True, slots=True)
class Retention:
    """How long entries stay and how many at most; the size and pace of deletions."""

    days: int = 90
    max_rows: int = 1_000_000
    # Small statements hold locks briefly, so writers of new entries never wait long.
    batch_size: int = 1_000
    pause_seconds: float = 0.05


async def prune(*, retention: Retention, now: datetime | None = None) -> int:
    """Delete what the retention rule drops, batch by batch; returns the rows deleted."""
    return sum([count async for count in batches(retention=retention, now=now)])


async def batches(*, retention: Retention, now: datetime | None = None) -> AsyncIterator[int]:
    """Prune one batch (one DELETE statement) at a time, yielding the rows each deleted."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention.days)
    async for count in _delete_while(retention, "created_at < {0}", cutoff):
        yield count
    boundary = await _max_rows_boundary(retention.max_rows)
    if boundary is not None:
        async for count in _delete_while(retention, "id <= {0}", boundary):
            yield count


async def _max_rows_boundary(max_rows: int) -> int | None:
    """The id of the newest entry past the newest `max_rows` (ids grow with time)."""
    (marker,) = markers(1)
    sql = f"SELECT id FROM logs ORDER BY id DESC LIMIT 1 OFFSET {marker}"
    rows = await connections.get("default").execute_query_dict(sql, [max_rows])
    return int(rows[0]["id"]) if rows else None


async def _delete_while(retention: Retention, condition: str, bound: object) -> AsyncIterator[int]:
    """Delete the rows matching `condition` (oldest first), one batch per transaction."""
    (marker, limit) = markers(2)
    where = condition.format(marker)
    batch = f"SELECT id FROM logs WHERE {where} ORDER BY id LIMIT {limit}"
    delete = f"DELETE FROM logs WHERE id IN ({batch})"
    while True:
        async with in_transaction("default") as connection:
            if connection.capabilities.dialect == "postgres" and not await _lock(connection):
                return  # another process is pruning: it will finish the job
            count, _ = await connection.execute_query(delete, [bound, retention.batch_size])
        yield count
        if count < retention.batch_size:
            return
        await asyncio.sleep(retention.pause_seconds)


async def _lock(connection: BaseDBAsyncClient) -> bool:
    """The prune lock for this transaction (released when it ends), if free."""
    rows = await connection.execute_query_dict(
        "SELECT pg_try_advisory_xact_lock($1) AS locked", [PRUNE_LOCK_KEY]
    )
    return bool(rows[0]["locked"])


@asynccontextmanager
async def pruning(*, retention: Retention, every: float) -> AsyncIterator[None]:
    """Prune every `every` seconds while the context is open (the first round after
    `every` too: a start-up is busy enough); a failed round is logged and tried again."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                deleted = await prune(retention=retention)
            except Exception:
                logger.warning("could not prune the operation log", exc_info=True)
            else:
                if deleted:
                    logger.info("pruned %d operation log entries", deleted)

    task = asyncio.create_task(loop(), name="log-retention")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
