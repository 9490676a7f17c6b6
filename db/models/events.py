from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class EventPayload(Model):
    """An event too big for a PostgreSQL NOTIFY; listeners read it by id, then it is swept."""

    id = fields.BigIntField(primary_key=True)
    body = fields.TextField(description="the event as JSON text")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "event_payloads"
        indexes = (("created_at",),)
