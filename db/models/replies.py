from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from db.models.sessions import ChatSession


class ReplyState(StrEnum):
    RUNNING = "running"
    FAILED = "failed"


class ReplyStream(Model):
    """A streamed reply still being generated, readable by every process.

    Its id is the id the stored reply will have. The row goes when the reply is stored
    (the message then answers for it); a failed one keeps its error a while; one whose
    process died stops being renewed and expires.
    """

    id = fields.UUIDField(primary_key=True)
    session: fields.ForeignKeyRelation[ChatSession] = fields.ForeignKeyField(
        "models.ChatSession", related_name="reply_streams", on_delete=fields.CASCADE
    )
    state = fields.CharEnumField(ReplyState, max_length=10, default=ReplyState.RUNNING)
    error = fields.TextField(null=True)
    expires_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)

    session_id: str

    class Meta:
        table = "reply_streams"
        indexes = (("session_id",), ("expires_at",))


class ReplyChunk(Model):
    """Consecutive pieces of a streamed reply, written together; `start` is a character offset."""

    id = fields.BigIntField(primary_key=True)
    stream: fields.ForeignKeyRelation[ReplyStream] = fields.ForeignKeyField(
        "models.ReplyStream", related_name="chunks", on_delete=fields.CASCADE
    )
    start = fields.IntField()
    text = fields.TextField()

    stream_id: str

    class Meta:
        table = "reply_chunks"
        unique_together = (("stream_id", "start"),)
