"""Subscription resolvers: a reply as it is generated, and every message of a session."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from db.events import session_topic
from db.services import live_replies, messages, sessions
from schema.context import Info
from schema.types.inputs import SendMessageInput
from schema.types.message import Message, MessageDelta
from schema.types.payloads import MessageEvent

# Messages read at once when a subscriber catches up.
PAGE = 100


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
                    yield _delta(event)
                else:
                    info.context.renew_loaders()
                    yield Message.from_model(event.message)

    @strawberry.subscription(
        description=(
            "A streamed reply picked up again, through any server: its MessageDelta pieces "
            "from character `after` on, then the stored reply (at once if already stored). "
            "A dropped connection does not stop a reply; `cancelReply` does."
        )
    )
    async def reply_stream(
        self, info: Info, message_id: strawberry.ID, after: int = 0
    ) -> AsyncGenerator[MessageEvent]:
        events = await live_replies.resume(
            caller=await info.context.caller(), message_id=str(message_id), after=after
        )
        async with aclosing(events) as items:
            async for event in items:
                if isinstance(event, messages.ReplyPiece):
                    yield _delta(event)
                else:
                    info.context.renew_loaders()
                    yield Message.from_model(event.message)

    @strawberry.subscription(
        description="Every message stored in the session, from any door and any server."
    )
    async def message_added(self, info: Info, session_id: strawberry.ID) -> AsyncGenerator[Message]:
        caller = await info.context.caller()
        session = await sessions.get(caller=caller, session_id=session_id)
        async with info.context.runtime.events.subscribe(session_topic(str(session.id))) as events:
            # Read after joining, so no message falls between the two. Events only wake
            # us: what to send is read by sequence number, so events missed while a
            # broker reconnected, or arriving out of order, lose and repeat nothing.
            seen = (await sessions.get(caller=caller, session_id=str(session.id))).last_seq
            async for event in events:
                if event.get("kind") == "message_added" and event.get("seq", seen + 1) <= seen:
                    continue
                while True:
                    rows = await messages.list_after(
                        caller=caller, session_id=str(session.id), after_seq=seen, limit=PAGE
                    )
                    info.context.renew_loaders()
                    for row in rows:
                        seen = row.seq
                        yield Message.from_model(row)
                    if len(rows) < PAGE:
                        break


def _delta(piece: messages.ReplyPiece) -> MessageDelta:
    return MessageDelta(
        message_id=strawberry.ID(piece.message_id), delta=piece.text, offset=piece.offset
    )
