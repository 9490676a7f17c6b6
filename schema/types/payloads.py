from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from schema.types.api_key import ApiKey
from schema.types.message import Message, MessageDelta
from schema.types.user import User

if TYPE_CHECKING:
    from schema.types.session import ChatSession


@strawberry.type
class SendMessagePayload:
    user_message: Message
    ai_message: Message


@strawberry.type(description="A fork; with content, the edited message and its reply.")
class ForkSessionPayload:
    session: Annotated[ChatSession, strawberry.lazy("schema.types.session")]
    user_message: Message | None
    ai_message: Message | None


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
