"""Subscription resolvers: a reply as it is generated, and every message of a session."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from db.errors import NotFound
from db.events import session_topic
from db.services import messages, sessions
from schema.context import Info
from schema.types.inputs import SendMessageInput
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
        turn = messages.run_turn(
            runtime=info.context.runtime,
            caller=await info.context.caller(),
            session_id=input.session_id,
            content=input.content,
            metadata=input.metadata,
            client_message_id=input.client_message_id,
            stream=True,
        )
        # aclosing: when the client leaves, the turn stores what it must before we go.
        async with aclosing(turn) as events:
            async for event in events:
                if isinstance(event, messages.ReplyPiece):
                    yield MessageDelta(message_id=strawberry.ID(event.message_id), delta=event.text)
                else:
                    info.context.renew_loaders()
                    yield Message.from_model(event.message)

    @strawberry.subscription(description="Every message stored in the session, from any door.")
    async def message_added(self, info: Info, session_id: strawberry.ID) -> AsyncGenerator[Message]:
        caller = await info.context.caller()
        session = await sessions.get(caller=caller, session_id=session_id)
        async with info.context.runtime.events.subscribe(session_topic(str(session.id))) as events:
            async for event in events:
                try:
                    row = await messages.get(caller=caller, message_id=event["message_id"])
                except NotFound:
                    continue
                info.context.renew_loaders()
                yield Message.from_model(row)
