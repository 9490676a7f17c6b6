from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from db import models
from db.errors import NotFound
from schema.context import Info
from schema.types.enums import MessageType

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

        session = await info.context.loaders.sessions.load(str(self.row.session_id))
        if session is None:
            raise NotFound("session not found")
        return ChatSession.from_model(session)

    @classmethod
    def from_model(cls, row: models.Message) -> Message:
        return cls(
            id=strawberry.ID(str(row.id)),
            type=MessageType(str(row.type)),
            content=row.content,
            metadata=row.metadata,
            created_at=row.created_at,
            row=row,
        )


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
