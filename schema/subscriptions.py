"""Subscription resolvers: a reply as it is generated, and every message of a session."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from db.events import session_topic
from db.services import live_replies, messages, sessions
from db.services.turn_events import TurnEvent
from schema.context import Info
from schema.types.inputs import SendMessageInput
from schema.types.message import Message, MessageDelta
from schema.types.payloads import MessageEvent

logger = logging.getLogger(__name__)
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
        self, info: Info, message_id: strawberry.ID, after: int = 0
    ) -> AsyncGenerator[MessageEvent]:
        events = await live_replies.resume(
            caller=await info.context.caller(), message_id=str(message_id), after=after
        )
        async for shaped in _shaped(info, events):
            yield shaped

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
                    try:
                        rows = await messages.list_after(
                            caller=caller, session_id=str(session.id), after_seq=seen, limit=PAGE
                        )
                    except Exception as exc:
                        # The database is away: the subscription stays, and reads again at
                        # the next event (the broker sends one once it listens again).
                        logger.warning("messageAdded could not catch up yet: %s", exc)
                        break
                    info.context.renew_loaders()
                    for row in rows:
                        seen = row.seq
                        yield Message.from_model(row)
                    if len(rows) < PAGE:
                        break


async def _shaped(info: Info, events: AsyncGenerator[TurnEvent]) -> AsyncGenerator[MessageEvent]:
    """A turn's (or a resumed reply's) events as the schema's; leaving leaves it running."""
    async with aclosing(events) as items:
        async for event in items:
            if isinstance(event, messages.ReplyPiece):
                yield MessageDelta(
                    message_id=strawberry.ID(event.message_id),
                    delta=event.text,
                    offset=event.offset,
                )
            elif isinstance(event, messages.UserMessageStored | messages.AiMessageStored):
                info.context.renew_loaders()
                yield Message.from_model(event.message)
