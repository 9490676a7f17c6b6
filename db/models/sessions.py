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
    # The last message stored or change made (a turn sets it with the message it stores).
    updated_at = fields.DatetimeField(auto_now=True)
    # Null until set, or generated from the first user message (db/services/titles.py).
    title = fields.CharField(max_length=200, null=True)
    archived = fields.BooleanField(default=False, db_default=False)
    # The message a fork was made at; a plain id (no foreign key): the fork outlives it.
    forked_from_id = fields.UUIDField(null=True)
    # The fork request's retry key and a digest of the request, as for a user message.
    fork_key = fields.CharField(max_length=200, null=True)
    fork_digest = fields.CharField(max_length=64, null=True)
    # Highest message sequence number handed out; messages are ordered by it.
    last_seq = fields.IntField(default=0)
    # Lease of the turn in progress: one reply at a time per session, across processes.
    turn_token = fields.CharField(max_length=36, null=True)
    turn_expires_at = fields.DatetimeField(null=True)

    user_id: str
    model_config_id: str

    class Meta:
        table = "chat_sessions"
        indexes = (
            ("user_id", "created_at"),
            ("user_id", "archived", "created_at"),
            ("created_at",),
            ("model_config_id",),
        )
        unique_together = (("user_id", "fork_key"),)
