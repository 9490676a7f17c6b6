"""A running reply seen from any process: pick it up again, or stop it.

A listener that lost its connection comes back with the reply's id and how many
characters it already has. Through the process generating the reply it follows the run
itself; through any other process it reads the shared buffer (`reply_buffer`); a reply
already stored replays as its message.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from datetime import UTC, datetime

from db.errors import Invalid, NotFound
from db.identity import Caller
from db.models import ChatSession, LogLevel, Message
from db.ports import Runtime
from db.services import logs, rate_limits, reply_buffer, reply_runs, sessions
from db.services.ids import is_uuid
from db.services.turn_events import AiMessageStored, ReplyPiece, TurnEvent


async def resume(
    *, caller: Caller, message_id: str, after: int = 0, session_id: str | None = None
) -> AsyncGenerator[ReplyPiece | AiMessageStored]:
    """The reply's pieces from character `after` on, live, then the stored reply.

    Awaiting checks the request (`Invalid`, `NotFound`: `session_id`, when given, must be
    the reply's session); the generator returned may raise `ModelFailed` if the reply
    failed or was lost with its process.
    """
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise Invalid("must be a whole number, 0 or more", field="after")
    if not is_uuid(message_id):
        raise NotFound("reply not found")
    run = reply_runs.find(message_id)
    owner = run.session_id if run is not None else await reply_buffer.session_of(message_id)
    if owner is None or (session_id is not None and session_id != owner):
        raise NotFound("reply not found")
    await sessions.get(caller=caller, session_id=owner)  # NotFound unless the caller may see it
    slot = await rate_limits.open_stream(caller)
    if run is not None:
        events: AsyncGenerator[TurnEvent | Message] = run.follow()
    else:
        events = reply_buffer.read(message_id, after=after)
    following = _from(events, after, slot)
    # A listener that never starts it (a client gone before the answer began) still
    # gives the stream back.
    rate_limits.release_with(following, slot)
    return following


async def _from(
    events: AsyncGenerator[TurnEvent | Message], after: int, slot: rate_limits.StreamSlot
) -> AsyncGenerator[ReplyPiece | AiMessageStored]:
    async with aclosing(events) as items, _released(slot):
        async for item in items:
            if isinstance(item, ReplyPiece):
                end = item.offset + len(item.text)
                if end > after:
                    start = max(after, item.offset)
                    text = item.text[start - item.offset :]
                    yield ReplyPiece(message_id=item.message_id, text=text, offset=start)
            elif isinstance(item, AiMessageStored):
                yield item
            elif isinstance(item, Message):
                yield AiMessageStored(item)


@asynccontextmanager
async def _released(slot: rate_limits.StreamSlot) -> AsyncIterator[None]:
    try:
        yield
    finally:
        slot.release()


async def stop(*, runtime: Runtime, caller: Caller, session_id: str) -> bool:
    """Stop the reply being generated for the session, by whichever process; what was
    said so far is stored as a cancelled reply. False if no turn was running."""
    session = await sessions.get(caller=caller, session_id=session_id)
    lease = (
        await ChatSession.filter(
            id=session.id, turn_token__isnull=False, turn_expires_at__gt=datetime.now(UTC)
        )
        .first()
        .values_list("turn_token", flat=True)
    )
    if lease is None:
        return False
    # Named by its lease: a send queued behind it, or the turn after it, goes on.
    await reply_runs.request_stop(runtime.events, session_id=str(session.id), lease=str(lease))
    await logs.record(
        level=LogLevel.INFO,
        event="reply.cancelled",
        message=f"reply in session {session.id} stopped by {caller.name}",
        actor_id=caller.user_id,
        details={"session_id": str(session.id)},
    )
    return True
