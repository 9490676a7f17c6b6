"""Messages: a session's history, and a turn: store the question, have it answered."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson

from db.errors import Invalid, NotFound
from db.events import session_topic
from db.identity import Caller
from db.models import ChatSession, Message, MessageType
from db.ports import Limits, Runtime
from db.services import replies, reply_runs, sessions, turns
from db.services.ids import is_uuid
from db.services.message_store import append
from db.services.pagination import PageRequest
from db.services.text import json_problem, text_problem
from db.services.turn_events import (
    AiMessageStored,
    LeaseHeld,
    ReplyPiece,
    TurnEvent,
    TurnResult,
    UserMessageStored,
)

__all__ = [
    "AiMessageStored",
    "MessagePage",
    "ReplyPiece",
    "TurnEvent",
    "TurnResult",
    "UserMessageStored",
    "complete",
    "follow",
    "get",
    "list_after",
    "list_page",
    "run_turn",
    "send",
]
MAX_CLIENT_MESSAGE_ID_CHARS = 200
# Messages read at once when a follower catches up; the longest wait before a failed
# catch-up is tried again without an event.
FOLLOW_PAGE = 20
MAX_FOLLOW_RETRY_SECONDS = 5.0
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[Message]
    total: int


async def list_page(*, caller: Caller, session_id: str, page: PageRequest) -> MessagePage:
    """A page of the session's messages, oldest first, and how many there are in all."""
    session = await sessions.get(caller=caller, session_id=session_id)
    rows = await (
        Message.filter(session_id=session.id)
        .order_by("seq")
        .offset(page.offset)
        .limit(page.page_size)
    )
    # Sequence numbers run 1..last_seq without gaps, so last_seq is the count.
    return MessagePage(messages=list(rows), total=session.last_seq)


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
                        seen = row.seq
                        yield row
                    if len(rows) < FOLLOW_PAGE:
                        break
        finally:
            if next_event is not None:
                next_event.cancel()


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


async def send(
    *,
    runtime: Runtime,
    caller: Caller,
    session_id: str,
    content: Any,
    metadata: Any = None,
    user_id: str | None = None,
    client_message_id: str | None = None,
) -> TurnResult:
    """Run a whole turn without streaming and return the stored pair."""
    turn = run_turn(
        runtime=runtime,
        caller=caller,
        session_id=session_id,
        content=content,
        metadata=metadata,
        user_id=user_id,
        client_message_id=client_message_id,
        stream=False,
    )
    return await complete(turn)


async def complete(turn: AsyncGenerator[TurnEvent]) -> TurnResult:
    """Drive a turn to its end and return the stored pair."""
    user_message: Message | None = None
    ai_message: Message | None = None
    # Iterate to the end (no early return) so the turn is released before we answer.
    async with aclosing(turn) as events:
        async for event in events:
            if isinstance(event, UserMessageStored):
                user_message = event.message
            elif isinstance(event, AiMessageStored):
                ai_message = event.message
    if user_message is None or ai_message is None:
        raise RuntimeError("a turn ended without a reply")  # run_turn raises before this
    return TurnResult(user_message=user_message, ai_message=ai_message)


async def run_turn(
    *,
    runtime: Runtime,
    caller: Caller,
    session_id: str,
    content: Any,
    metadata: Any = None,
    user_id: str | None = None,
    client_message_id: str | None = None,
    stream: bool = True,
) -> AsyncGenerator[TurnEvent]:
    """Store the user message, ask the session's model over its history, store the reply.

    Yields the stored user message, reply pieces (when `stream`), then the stored reply.
    Turns of one session never overlap; a retry with the same `client_message_id`
    stores nothing twice and re-asks the model if the first attempt got no reply.
    Closing the generator leaves the turn running: only `live_replies.stop` stops it.
    """
    limits = runtime.limits
    text = _checked_content(content, limits.max_message_chars)
    _check_metadata(metadata, limits)
    key = _checked_key(client_message_id)
    owner_id = sessions.acting_user_id(caller, user_id) if user_id is not None else None
    session = await sessions.get(caller=caller, session_id=session_id, owner_id=owner_id)
    digest = _request_digest(text, metadata)
    # The turn runs as a task of its own: if our listener leaves, it still goes to its
    # end and is stored, and a listener may come back for it (`resume`).
    run = reply_runs.start(
        str(session.id), _turn(runtime, caller, session, text, metadata, key, digest, stream)
    )
    async with aclosing(run.follow()) as events:
        async for event in events:
            yield event


async def _turn(
    runtime: Runtime,
    caller: Caller,
    session: ChatSession,
    text: str,
    metadata: Any,
    key: str | None,
    digest: str,
    stream: bool,
) -> AsyncGenerator[TurnEvent | LeaseHeld]:
    limits = runtime.limits
    async with turns.exclusive(
        str(session.id),
        wait_seconds=limits.turn_wait_seconds,
        lease_seconds=limits.turn_lease_seconds,
    ) as lease:
        yield LeaseHeld(lease)  # a stop request names the turn by its lease
        question = await _stored_question(session, key, digest)
        if question is not None:
            answer = await Message.get_or_none(reply_to_id=question.id)
            yield UserMessageStored(question, replayed=True)
            if answer is not None:
                yield AiMessageStored(answer, replayed=True)
                return
        else:
            question = await append(
                runtime,
                session,
                type=MessageType.USER,
                content=text,
                metadata=metadata,
                client_message_id=key,
                request_digest=digest,
            )
            yield UserMessageStored(question)
        async with aclosing(
            replies.answer(runtime, caller, session, question, stream=stream)
        ) as events:
            async for event in events:
                yield event


async def _stored_question(session: ChatSession, key: str | None, digest: str) -> Message | None:
    if key is None:
        return None
    question = await Message.get_or_none(session_id=session.id, client_message_id=key)
    if question is not None and question.request_digest != digest:
        raise Invalid("was already used for a different message", field="client_message_id")
    return question


def _checked_content(content: Any, max_chars: int) -> str:
    if not isinstance(content, str):
        raise Invalid("must be a string", field="content")
    if not content.strip():
        raise Invalid("must not be empty", field="content")
    if len(content) > max_chars:
        raise Invalid(f"must be at most {max_chars} characters", field="content")
    if (problem := text_problem(content)) is not None:
        raise Invalid(problem, field="content")
    return content


def _check_metadata(metadata: Any, limits: Limits) -> None:
    # Depth first: it also keeps the encoder below its own nesting limit.
    if (problem := json_problem(metadata, max_depth=limits.max_json_depth)) is not None:
        raise Invalid(problem, field="metadata")
    try:
        size = len(orjson.dumps(metadata))
    except TypeError:
        raise Invalid("must be JSON", field="metadata") from None
    if size > limits.max_metadata_bytes:
        raise Invalid(
            f"must be at most {limits.max_metadata_bytes} bytes of JSON", field="metadata"
        )


def _checked_key(key: Any) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip():
        raise Invalid("must be a non-empty string", field="client_message_id")
    if len(key) > MAX_CLIENT_MESSAGE_ID_CHARS:
        raise Invalid(
            f"must be at most {MAX_CLIENT_MESSAGE_ID_CHARS} characters", field="client_message_id"
        )
    if (problem := text_problem(key)) is not None:
        raise Invalid(problem, field="client_message_id")
    return key


def _request_digest(content: str, metadata: Any) -> str:
    canonical = orjson.dumps([content, metadata], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()
