"""System operation log: writing entries and listing them for admins."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.queryset import QuerySet

from db import observing, request_context
from db.errors import Invalid
from db.identity import Caller, require_admin
from db.models import LogEntry, LogLevel
from db.services.keyset import SortKey, newest_first
from db.services.pagination import PageRequest, Slice, Window
from db.services.text import storable
from db.times import in_utc

logger = logging.getLogger("gateway.audit")
# Entries being written in the background (a reference keeps each task alive).
_pending: set[asyncio.Task[None]] = set()


async def record(
    *,
    level: LogLevel,
    event: str,
    message: str,
    actor_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Write one entry; a failure to log is reported but never fails the operation itself.

    An entry written while serving a request carries its id in `details.request_id`."""
    details = request_context.tagged(details)
    try:
        await LogEntry.create(
            level=level,
            event=event,
            # A NUL (say from a request path) would make PostgreSQL drop the whole entry.
            message=storable(message),
            actor_id=actor_id,
            details=storable(dict(details)) if details else None,
        )
        observing.observer().log_written(level=str(level))
    except Exception:
        logger.exception("could not write log entry %s: %s", event, message)


def record_internal_error(*, reference: str, where: str, exception: str) -> None:
    """Note an unexpected error in the log, in the background, the same for every door.

    The caller answers at once: when the database is what failed, waiting for this write
    would hold the answer up by as long again."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    task = loop.create_task(
        record(
            level=LogLevel.ERROR,
            event="internal.error",
            message=f"internal error {reference} {where}",
            details={"reference": reference, "exception": exception},
        )
    )
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def flush() -> None:
    """Wait for the entries written in the background (shutdown, tests)."""
    while _pending:
        await asyncio.gather(*tuple(_pending), return_exceptions=True)


def authorize_read(*, caller: Caller) -> None:
    """Only admins read the log; a door may ask before it reads their filters."""
    require_admin(caller, "read the system logs")


@dataclass(frozen=True, slots=True)
class LogPage:
    entries: list[LogEntry]
    total: int


async def list_page(
    *,
    caller: Caller,
    page: PageRequest,
    level: LogLevel | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
) -> LogPage:
    """Entries newest first, filtered by level and time (both ends inclusive)."""
    authorize_read(caller=caller)
    query = _filtered(level, start_time, end_time)
    total = await query.count()
    entries = await query.order_by("-created_at", "-id").offset(page.offset).limit(page.page_size)
    return LogPage(entries=list(entries), total=total)


async def window(
    *,
    caller: Caller,
    page: Slice,
    after: SortKey | None = None,
    level: LogLevel | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
) -> Window[LogEntry]:
    """Entries newest first after a keyset cursor, for Relay connections."""
    authorize_read(caller=caller)
    return await newest_first(_filtered(level, start_time, end_time), page=page, after=after)


async def count(
    *,
    caller: Caller,
    level: LogLevel | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
) -> int:
    authorize_read(caller=caller)
    return await _filtered(level, start_time, end_time).count()


def _filtered(
    level: LogLevel | None, start_time: datetime | None, end_time: datetime | None
) -> QuerySet[LogEntry]:
    # SQLite compares times as text, all stored in UTC: a bound with another offset must be
    # turned into UTC first (10:01+01:00 is before 10:00+00:00, not after).
    start = in_utc(start_time) if start_time is not None else None
    end = in_utc(end_time) if end_time is not None else None
    if start and end and start > end:
        raise Invalid("must not be after end_time", field="start_time")
    query = LogEntry.all()
    if level is not None:
        query = query.filter(level=level)
    if start is not None:
        query = query.filter(created_at__gte=start)
    if end is not None:
        query = query.filter(created_at__lte=end)
    return query
