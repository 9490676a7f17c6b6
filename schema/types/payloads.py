from __future__ import annotations

from typing import Annotated

import strawberry

from schema.types.api_key import ApiKey
from schema.types.message import Message, MessageDelta
from schema.types.user import User


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


@strawberry.type(description="A key just issued: `key` is its secret, shown this once.")
class CreatedApiKey:
    key: str
    api_key: ApiKey


@strawberry.type(description="A user just created, with the secret of its first key (shown once).")
class CreatedUser:
    user: User
    key: str
    api_key: ApiKey
