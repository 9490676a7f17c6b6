"""System operation log: writing entries and listing them for admins."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from db.errors import Forbidden, Invalid
from db.identity import Caller
from db.models import LogEntry, LogLevel
from db.services.pagination import PageRequest

logger = logging.getLogger("gateway.audit")


async def record(
    *,
    level: LogLevel,
    event: str,
    message: str,
    actor_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Write one entry; a failure to log is reported but never fails the operation itself."""
    try:
        await LogEntry.create(
            level=level,
            event=event,
            message=message,
            actor_id=actor_id,
            details=dict(details) if details else None,
        )
    except Exception:
        logger.exception("could not write log entry %s: %s", event, message)


@dataclass(frozen=True, slots=True)
class LogPage:
    entries: list[LogEntry]
    total: int


def require_admin(caller: Caller, action: str) -> None:
    """Refuse `action` to anyone but an admin."""
    if not caller.is_admin:
        raise Forbidden(f"only admins may {action}")


async def list_page(
    *,
    caller: Caller,
    page: PageRequest,
    level: LogLevel | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
) -> LogPage:
    """Entries newest first, filtered by level and time (both ends inclusive)."""
    require_admin(caller, "read the system logs")
    if start_time and end_time and start_time > end_time:
        raise Invalid("must not be after end_time", field="start_time")
    query = LogEntry.all()
    if level is not None:
        query = query.filter(level=level)
    if start_time is not None:
        query = query.filter(created_at__gte=start_time)
    if end_time is not None:
        query = query.filter(created_at__lte=end_time)
    total = await query.count()
    entries = await query.order_by("-created_at", "-id").offset(page.offset).limit(page.page_size)
    return LogPage(entries=list(entries), total=total)
