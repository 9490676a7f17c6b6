from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from db import models
from schema.types.enums import LogLevel


@strawberry.type
class LogEntry:
    id: strawberry.ID
    level: LogLevel
    message: str
    created_at: datetime
    event: str = strawberry.field(description="Kind of operation, e.g. session.created.")
    actor_id: strawberry.ID | None
    details: JSON | None

    @classmethod
    def from_model(cls, row: models.LogEntry) -> LogEntry:
        return cls(
            id=strawberry.ID(str(row.id)),
            level=LogLevel(str(row.level)),
            message=row.message,
            created_at=row.created_at,
            event=row.event,
            actor_id=strawberry.ID(row.actor_id) if row.actor_id else None,
            details=row.details,
        )
