from __future__ import annotations

from typing import Annotated

import strawberry

from schema.types.message import Message, MessageDelta


@strawberry.type
class SendMessagePayload:
    user_message: Message
    ai_message: Message


MessageEvent = Annotated[
    Message | MessageDelta,
    strawberry.union(
        "MessageEvent",
        description="One send: the stored user Message, MessageDelta pieces, the stored reply.",
    ),
]
