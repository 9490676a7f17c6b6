from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from db.models.model_configs import ModelConfig
    from db.models.users import User


class ChatSession(Model):
    """A conversation of one user with one model config."""

    id = fields.UUIDField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    model_config: fields.ForeignKeyRelation[ModelConfig] = fields.ForeignKeyField(
        "models.ModelConfig", related_name="sessions", on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    # Highest message sequence number handed out; messages are ordered by it.
    last_seq = fields.IntField(default=0)
    # Lease of the turn in progress: one reply at a time per session, across processes.
    turn_token = fields.CharField(max_length=36, null=True)
    turn_expires_at = fields.DatetimeField(null=True)

    user_id: str
    model_config_id: str

    class Meta:
        table = "chat_sessions"
        indexes = (("user_id", "created_at"), ("created_at",), ("model_config_id",))
