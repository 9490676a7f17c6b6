from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from db import models
from schema.context import Info
from schema.loaders import load_one
from schema.types.enums import MessageType
from schema.types.feedback import Feedback
from schema.types.rows import from_row

if TYPE_CHECKING:
    from schema.types.session import ChatSession


@strawberry.type
class Message:
    id: strawberry.ID = strawberry.field(description="The REST message_id.")
    type: MessageType
    content: str
    metadata: JSON | None
    created_at: datetime
    row: strawberry.Private[models.Message]

    @strawberry.field
    async def session(
        self, info: Info
    ) -> Annotated[ChatSession, strawberry.lazy("schema.types.session")]:
        from schema.types.session import ChatSession

        loader = info.context.loaders.sessions
        key = str(self.row.session_id)
        return ChatSession.from_model(await load_one(loader, key, missing="session not found"))

    @strawberry.field(description="AI messages only: the caller's own rating (null if none).")
    async def feedback(self, info: Info) -> Feedback | None:
        found = await info.context.loaders.feedback.load(str(self.row.id))
        return Feedback.from_model(found) if found is not None else None

    @strawberry.field(description="For an AI message: the user message it answers.")
    async def reply_to(self, info: Info) -> Message | None:
        if self.row.reply_to_id is None:
            return None
        found = await info.context.loaders.messages.load(str(self.row.reply_to_id))
        return Message.from_model(found) if found is not None else None

    @strawberry.field(
        description=(
            "For an AI message: every reply to the same user message, oldest first, itself "
            "included (regenerating keeps the replaced replies here); empty for a user message."
        )
    )
    async def variants(self, info: Info) -> list[Message]:
        found = await info.context.loaders.variants.load(str(self.row.id))
        return [Message.from_model(row) for row in found]

    @classmethod
    def from_model(cls, row: models.Message) -> Message:
        return from_row(cls, row, type=MessageType(row.type), row=row)


@strawberry.type(description="A piece of a reply as the model produces it.")
class MessageDelta:
    message_id: strawberry.ID = strawberry.field(description="Id the stored reply will have.")
    delta: str
    offset: int = strawberry.field(
        description=(
            "Where `delta` starts in the reply, in characters (Unicode code points, not "
            "JavaScript's UTF-16 units)."
        )
    )
    end: int = strawberry.field(
        description=(
            "Where `delta` ends: after a lost connection, `replyStream(messageId, after: "
            "end)` of the last delta received goes on from there."
        )
    )
