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
    """One message of a session; `seq` gives the exact order within the session.

    The history is the messages numbered 1..last_seq. A regenerated reply takes the place
    (`seq`) of the reply it replaces; the replaced one keeps its row, with no `seq`, as a
    variant reachable through the user message they both answer (`reply_to`).
    """

    id = fields.UUIDField(primary_key=True)
    session: fields.ForeignKeyRelation[ChatSession] = fields.ForeignKeyField(
        "models.ChatSession", related_name="messages", on_delete=fields.CASCADE
    )
    seq = fields.IntField(null=True, description="null for a replaced reply (a variant)")
    type = fields.CharEnumField(MessageType, max_length=10)
    content = fields.TextField()
    metadata = AnyJSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Idempotency: the client's key for a user message, unique within its session, and
    # a digest of the request so a reused key with another body is refused.
    client_message_id = fields.CharField(max_length=200, null=True)
    request_digest = fields.CharField(max_length=64, null=True)
    # The user message an AI message answers. Every reply to it is a variant; at most one
    # is in the history (a partial unique index, migration 4: reply_to_id WHERE seq IS
    # NOT NULL).
    reply_to: fields.ForeignKeyNullableRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="replies", null=True, on_delete=fields.SET_NULL
    )

    session_id: str
    reply_to_id: str | None

    # Every column, for statements written by hand (RETURNING, joins). Not every column
    # of the table: PostgreSQL's also holds metadata_json (migration 5), which only the
    # compiled GraphQL path reads.
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

    @property
    def position(self) -> int:
        """Its sequence number, for a message read from the history (never a variant)."""
        if self.seq is None:
            raise ValueError(f"message {self.id} is a replaced reply, not in the history")
        return self.seq

    @classmethod
    def columns_of(cls, alias: str) -> str:
        """`alias.id, alias.session_id, ...`: the select list `from_row` reads."""
        return ", ".join(f"{alias}.{name}" for name in cls.COLUMNS)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Message:
        """A message from a row of a hand-written statement holding every column."""
        return _from_row(row)

    class Meta:
        table = "messages"
        unique_together = (("session_id", "seq"), ("session_id", "client_message_id"))
        indexes = (("reply_to_id",),)


_from_row = hydrator(Message)
