"""Messages: reading a session's history, and following it as it grows.

Messages are written by a turn only (`turns`)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise import connections

from db.errors import NotFound
from db.events import session_topic
from db.identity import Caller
from db.models import Message
from db.ports import Runtime
from db.services import sessions
from db.services.ids import is_uuid
from db.services.pagination import PageRequest
from db.sql import markers

# Messages read at once when a follower catches up; the longest wait before a failed
# catch-up is tried again without an event.
FOLLOW_PAGE = 20
MAX_FOLLOW_RETRY_SECONDS = 5.0
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[Message]
    total: int


# The session (if the caller may see it: an admin, or its user) with the messages
# numbered `low`..`high`. Sequence numbers run 1..last_seq without gaps, so page N of a
# history is a range of them: an index range scan, as cheap deep in a long session as
# on its first page, where OFFSET would read and skip every message before the page.
_PAGE = f"""
SELECT s.last_seq AS session_last_seq, {Message.columns_of("m")}
FROM chat_sessions AS s
LEFT JOIN messages AS m ON m.session_id = s.id AND m.seq >= {{3}} AND m.seq <= {{4}}
WHERE s.id = {{0}} AND ({{1}} OR s.user_id = {{2}})
ORDER BY m.seq
"""


async def list_page(*, caller: Caller, session_id: str, page: PageRequest) -> MessagePage:
    """A page of the session's messages, oldest first, and how many there are in all:
    one statement (the ownership check included)."""
    if not is_uuid(session_id):
        raise NotFound("session not found")
    low = page.offset + 1
    values = [session_id, caller.is_admin, caller.user_id, low, low + page.page_size - 1]
    rows = await connections.get("default").execute_query_dict(_PAGE.format(*markers(5)), values)
    if not rows:
        raise NotFound("session not found")
    found = [Message.from_row(row) for row in rows if row["id"] is not None]
    return MessagePage(messages=found, total=rows[0]["session_last_seq"])


async def list_after(
    *, caller: Caller, session_id: str, after_seq: int, limit: int = 100
) -> list[Message]:
    """The session's messages numbered above `after_seq`, oldest first (at most `limit`)."""
    session = await sessions.get(caller=caller, session_id=session_id)
    rows = (
        await Message.filter(session_id=session.id, seq__gt=after_seq).order_by("seq").limit(limit)
    )
    return list(rows)


async def follow(*, runtime: Runtime, caller: Caller, session_id: str) -> AsyncGenerator[Message]:
    """Every message stored in the session from now on, by any door and any process, in
    order, each once.

    Events only wake the follower: what to yield is read by sequence number, so an event
    missed (a broker reconnecting) or out of order loses and repeats nothing. A read that
    fails (the database is away) is tried again at the next event, or after a backoff.
    """
    session = await sessions.get(caller=caller, session_id=session_id)
    sid = str(session.id)
    async with runtime.events.subscribe(session_topic(sid)) as events:
        # Read after joining, so no message falls between the two.
        seen = (await sessions.get(caller=caller, session_id=sid)).last_seq
        next_event: asyncio.Future[dict[str, Any]] | None = None
        # Ids of the last messages yielded: a regenerated reply caught up by number is
        # not yielded again when its own event comes.
        recent: deque[str] = deque(maxlen=FOLLOW_PAGE * 2)
        retry_in: float | None = None
        try:
            while True:
                if next_event is None:
                    next_event = asyncio.ensure_future(anext(events))
                # The pending read survives a timeout: cancelling it would end the stream.
                done, _ = await asyncio.wait({next_event}, timeout=retry_in)
                if next_event in done:
                    try:
                        event = next_event.result()
                    except StopAsyncIteration:
                        return
                    next_event = None
                    if event.get("kind") == "message_added" and event.get("seq", seen + 1) <= seen:
                        if event.get("replaces") and event.get("message_id") not in recent:
                            # A regenerated reply takes a number already passed: read it
                            # by id (missed, it is not caught up: the history moved on).
                            variant = await _replacing(sid, event.get("message_id"))
                            if variant is not None:
                                recent.append(str(variant.id))
                                yield variant
                        continue
                while True:
                    try:
                        rows = await list_after(
                            caller=caller, session_id=sid, after_seq=seen, limit=FOLLOW_PAGE
                        )
                    except Exception as exc:
                        retry_in = min((retry_in or 0.25) * 2, MAX_FOLLOW_RETRY_SECONDS)
                        logger.warning("could not catch up session %s yet: %s", sid, exc)
                        break
                    retry_in = None
                    for row in rows:
                        seen = row.position
                        recent.append(str(row.id))
                        yield row
                    if len(rows) < FOLLOW_PAGE:
                        break
        finally:
            if next_event is not None:
                next_event.cancel()


async def _replacing(session_id: str, message_id: Any) -> Message | None:
    if not isinstance(message_id, str) or not is_uuid(message_id):
        return None
    try:
        return await Message.get_or_none(id=message_id, session_id=session_id)
    except Exception as exc:
        logger.warning("could not read regenerated reply %s yet: %s", message_id, exc)
        return None


async def get(*, caller: Caller, message_id: str) -> Message:
    """A message of a session the caller may see."""
    message = None
    if is_uuid(message_id):
        message = await Message.filter(
            sessions.visible_to(caller, via="session__"), id=message_id
        ).first()
    if message is None:
        raise NotFound("message not found")
    return message


async def get_many(*, caller: Caller, message_ids: Sequence[str]) -> list[Message]:
    """The messages of `message_ids` in sessions the caller may see (others are left out)."""
    wanted = [m for m in message_ids if is_uuid(m)]
    return list(await Message.filter(sessions.visible_to(caller, via="session__"), id__in=wanted))
