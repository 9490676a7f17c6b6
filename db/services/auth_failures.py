"""Authentication failures and permission denials: counted in memory, written to the log
as periodic summaries.

A request without valid credentials never writes to the database: a flood of bad keys
would otherwise become a flood of inserts anyone can cause. The log still records every
failure, as one entry per reason, source and interval that says how many there were.
Permission denials (a known caller asking for what only admins may do) are counted the
same way, as `auth.denied` entries with the caller as actor: a user's script stuck on a
forbidden call writes one entry a minute, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime

from db.models import LogLevel
from db.services import logs

logger = logging.getLogger("gateway.audit")

# Distinct (reason, source, actor) groups kept between two summaries; beyond that,
# failures are still counted, under one catch-all source.
MAX_GROUPS = 200
OTHER_SOURCES = "(other sources)"


@dataclass(slots=True)
class _Tally:
    count: int
    first_at: datetime
    last_at: datetime


FAILED = "auth.failed"
DENIED = "auth.denied"
_Group = tuple[str, str, str, str | None]  # event, reason, source, actor
_pending: dict[_Group, _Tally] = {}


def note(*, reason: str, source: str, actor_id: str | None = None, event: str = FAILED) -> None:
    """Count one failure (or, with `event=DENIED`, one denial); nothing is written until
    the next `flush()`."""
    now = datetime.now(UTC)
    group = (event, reason, source, actor_id)
    if group not in _pending and len(_pending) >= MAX_GROUPS:
        group = (event, reason, OTHER_SOURCES, None)
    tally = _pending.get(group)
    if tally is None:
        _pending[group] = _Tally(count=1, first_at=now, last_at=now)
    else:
        tally.count += 1
        tally.last_at = now
    logger.debug("%s: %s (%s)", event, reason, source)


async def flush() -> int:
    """Write one summary entry per group counted since the last flush; how many were written."""
    written = 0
    while _pending:  # one at a time: failures counted meanwhile wait for the next flush
        group, tally = _pending.popitem()
        try:
            await _write(group, tally)
        except BaseException:  # cancelled at shutdown mid-write: keep the count for the last flush
            _merge(group, tally)
            raise
        written += 1
    return written


def _merge(group: _Group, tally: _Tally) -> None:
    known = _pending.get(group)
    if known is None:
        _pending[group] = tally
    else:
        known.count += tally.count
        known.first_at = min(known.first_at, tally.first_at)
        known.last_at = max(known.last_at, tally.last_at)


async def _write(group: _Group, tally: _Tally) -> None:
    event, reason, source, actor_id = group
    times = "once" if tally.count == 1 else f"{tally.count} times"
    what = "permission denied" if event == DENIED else "authentication failed"
    await logs.record(
        level=LogLevel.WARNING,
        event=event,
        message=f"{what}: {reason} ({times}, {source})",
        actor_id=actor_id,
        details={
            "reason": reason,
            "source": source,
            "count": tally.count,
            "first_at": tally.first_at.isoformat(),
            "last_at": tally.last_at.isoformat(),
        },
    )


@asynccontextmanager
async def reporting(*, every: float) -> AsyncIterator[None]:
    """Flush every `every` seconds while the context is open, and once more as it closes."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            await flush()

    task = asyncio.create_task(loop(), name="auth-failure-summaries")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await flush()
