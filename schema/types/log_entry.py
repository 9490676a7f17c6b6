from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from db import models
from schema.types.enums import LogLevel
from schema.types.rows import from_row


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
        actor_id = strawberry.ID(row.actor_id) if row.actor_id else None
        return from_row(cls, row, level=LogLevel(row.level), actor_id=actor_id)
