from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from db.models.messages import Message
    from db.models.users import User


class Rating(StrEnum):
    UP = "up"
    DOWN = "down"


class MessageFeedback(Model):
    """One user's rating of an AI message, with an optional note; cleared by deleting it."""

    id = fields.BigIntField(primary_key=True)
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="feedback", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="feedback", on_delete=fields.CASCADE
    )
    rating = fields.CharEnumField(Rating, max_length=10)
    note = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    message_id: str
    user_id: str

    class Meta:
        table = "message_feedback"
        unique_together = (("message_id", "user_id"),)
        indexes = (("user_id",),)
