from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from db.fields import AnyJSONField


class LogLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogEntry(Model):
    """A system operation worth auditing; `details` holds the structured facts."""

    id = fields.BigIntField(primary_key=True)
    level = fields.CharEnumField(LogLevel, max_length=10)
    event = fields.CharField(max_length=64)
    message = fields.TextField()
    # The acting user's id, kept as text so entries outlive the user.
    actor_id = fields.CharField(max_length=36, null=True)
    details = AnyJSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "logs"
        indexes = (("created_at",), ("level", "created_at"))
