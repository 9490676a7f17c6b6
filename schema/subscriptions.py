"""Subscription resolvers: a reply as it is generated, and every message of a session."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from db.services import live_replies, messages, turns
from db.services.turn_events import AiMessageStored, ReplyPiece, TurnEvent, UserMessageStored
from schema.context import Info
from schema.types.inputs import RegenerateReplyInput, SendMessageInput
from schema.types.message import Message, MessageDelta
from schema.types.payloads import MessageEvent


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The stored user Message, the reply's MessageDelta pieces, the stored reply."
    )
    async def send_message_stream(
        self, info: Info, input: SendMessageInput
    ) -> AsyncGenerator[MessageEvent]:
        turn = turns.run_turn(
            runtime=info.context.runtime,
            caller=await info.context.caller(),
            request=input.to_request(),
            stream=True,
        )
        async for shaped in _shaped(info, turn):
            yield shaped

    @strawberry.subscription(
        description=(
            "regenerateReply, streamed: the user Message answered again, the new reply's "
            "MessageDelta pieces, the stored reply."
        )
    )
    async def regenerate_reply_stream(
        self, info: Info, input: RegenerateReplyInput
    ) -> AsyncGenerator[MessageEvent]:
        turn = turns.run_regeneration(
            runtime=info.context.runtime,
            caller=await info.context.caller(),
            request=input.to_request(),
            stream=True,
        )
        async for shaped in _shaped(info, turn):
            yield shaped

    @strawberry.subscription(
        description=(
            "A streamed reply picked up again, through any server: its MessageDelta pieces "
            "from character `after` on, then the stored reply (at once if already stored). "
            "A dropped connection does not stop a reply; `cancelReply` does."
        )
    )
    async def reply_stream(
        self, info: Info, message_id: strawberry.ID, after: int | None = None
    ) -> AsyncGenerator[MessageEvent]:
        events = await live_replies.resume(
            caller=await info.context.caller(), message_id=str(message_id), after=after or 0
        )
        async for shaped in _shaped(info, events):
            yield shaped

    @strawberry.subscription(
        description="Every message stored in the session, from any door and any server."
    )
    async def message_added(self, info: Info, session_id: strawberry.ID) -> AsyncGenerator[Message]:
        messages_added = messages.follow(
            runtime=info.context.runtime,
            caller=await info.context.caller(),
            session_id=session_id,
        )
        async with aclosing(messages_added) as rows:
            async for row in rows:
                info.context.renew_loaders()
                yield Message.from_model(row)


async def _shaped(info: Info, events: AsyncGenerator[TurnEvent]) -> AsyncGenerator[MessageEvent]:
    """A turn's (or a resumed reply's) events as the schema's; leaving leaves it running."""
    async with aclosing(events) as items:
        async for event in items:
            if isinstance(event, ReplyPiece):
                yield MessageDelta(
                    message_id=strawberry.ID(event.message_id),
                    delta=event.text,
                    offset=event.offset,
                    end=event.offset + len(event.text),
                )
            elif isinstance(event, UserMessageStored | AiMessageStored):
                info.context.renew_loaders()
                yield Message.from_model(event.message)
