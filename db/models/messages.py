from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from db.fields import AnyJSONField
from db.models.rows import hydrator

if TYPE_CHECKING:
    from db.models.sessions import ChatSession


class MessageType(StrEnum):
    USER = "user"
    AI = "ai"


class Message(Model):
    """One message of a session; `seq` gives the exact order within the session."""

    id = fields.UUIDField(primary_key=True)
    session: fields.ForeignKeyRelation[ChatSession] = fields.ForeignKeyField(
        "models.ChatSession", related_name="messages", on_delete=fields.CASCADE
    )
    seq = fields.IntField()
    type = fields.CharEnumField(MessageType, max_length=10)
    content = fields.TextField()
    metadata = AnyJSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Idempotency: the client's key for a user message, unique within its session, and
    # a digest of the request so a reused key with another body is refused.
    client_message_id = fields.CharField(max_length=200, null=True)
    request_digest = fields.CharField(max_length=64, null=True)
    # The user message an AI message answers; at most one reply per user message.
    reply_to: fields.OneToOneNullableRelation[Message] = fields.OneToOneField(
        "models.Message", related_name="reply", null=True, on_delete=fields.SET_NULL
    )

    session_id: str
    reply_to_id: str | None

    # Every column, for statements written by hand (RETURNING, joins).
    COLUMNS = (
        "id",
        "session_id",
        "seq",
        "type",
        "content",
        "metadata",
        "created_at",
        "client_message_id",
        "request_digest",
        "reply_to_id",
    )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Message:
        """A message from a row of a hand-written statement holding every column."""
        return _from_row(row)

    class Meta:
        table = "messages"
        unique_together = (("session_id", "seq"), ("session_id", "client_message_id"))


_from_row = hydrator(Message)
