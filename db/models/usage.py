from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class UsageRecord(Model):
    """One reply asked of a model, counted as it ends (stored, cancelled or failed).

    Ids are plain columns, not foreign keys: usage outlives the session, its messages
    and the config it counts (what was used stays used). A report reads these rows by
    time through its indexes, never the messages.
    """

    id = fields.BigIntField(primary_key=True)
    created_at = fields.DatetimeField()
    # The session's owner (whoever sent for them), the config asked and the session.
    user_id = fields.UUIDField()
    model_config_id = fields.UUIDField()
    session_id = fields.UUIDField(null=True)
    message_id = fields.UUIDField(null=True, description="the stored reply; null if it failed")
    failed = fields.BooleanField(default=False)
    prompt_tokens = fields.IntField(default=0)
    completion_tokens = fields.IntField(default=0)
    latency_ms = fields.FloatField(null=True)

    class Meta:
        table = "usage_records"
        indexes = (("created_at",), ("user_id", "created_at"), ("model_config_id", "created_at"))
