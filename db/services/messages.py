"""Messages: a session's history, and a turn: store the question, ask the model, store the reply."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from db.errors import Invalid, ModelFailed, NotFound
from db.events import session_topic
from db.fields import Json
from db.identity import Caller
from db.models import ChatSession, LogLevel, Message, MessageType, ModelConfig
from db.ports import ModelError, ModelReply, ModelSpec, ReplyDelta, Runtime
from db.services import history, logs, sessions, turns
from db.services.ids import is_uuid
from db.services.model_configs import spec_of
from db.services.pagination import PageRequest
from db.services.text import NUL, has_nul

logger = logging.getLogger(__name__)
MAX_CLIENT_MESSAGE_ID_CHARS = 200


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[Message]
    total: int


@dataclass(frozen=True, slots=True)
class UserMessageStored:
    """The question is stored (or was already, for an idempotent retry: `replayed`)."""

    message: Message
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ReplyPiece:
    """A piece of the reply; `message_id` is the id the stored reply will have."""

    message_id: str
    text: str


@dataclass(frozen=True, slots=True)
class AiMessageStored:
    message: Message
    replayed: bool = False


TurnEvent = UserMessageStored | ReplyPiece | AiMessageStored


@dataclass(frozen=True, slots=True)
class TurnResult:
    user_message: Message
    ai_message: Message


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
    """
    limits = runtime.limits
    text = _checked_content(content, limits.max_message_chars)
    _check_metadata(metadata, limits.max_metadata_bytes)
    key = _checked_key(client_message_id)
    owner_id = sessions.acting_user_id(caller, user_id) if user_id is not None else None
    session = await sessions.get(caller=caller, session_id=session_id, owner_id=owner_id)
    digest = _request_digest(text, metadata)

    async with turns.exclusive(str(session.id), wait_seconds=limits.turn_wait_seconds):
        question = await _stored_question(session, key, digest)
        if question is not None:
            answer = await Message.get_or_none(reply_to_id=question.id)
            yield UserMessageStored(question, replayed=True)
            if answer is not None:
                yield AiMessageStored(answer, replayed=True)
                return
        else:
            question = await _store(
                runtime,
                session,
                type=MessageType.USER,
                content=text,
                metadata=metadata,
                client_message_id=key,
                request_digest=digest,
            )
            yield UserMessageStored(question)
        # aclosing: if our listener leaves, the answer stores its partial reply while
        # the turn is still held, not later when the generator is collected.
        async with aclosing(_answer(runtime, caller, session, question, stream=stream)) as events:
            async for event in events:
                yield event


async def _answer(
    runtime: Runtime, caller: Caller, session: ChatSession, question: Message, *, stream: bool
) -> AsyncGenerator[TurnEvent]:
    # Read fresh: an update since the session was opened must reach this very reply.
    config = await ModelConfig.get(id=session.model_config_id)
    spec = spec_of(config)
    model_turns = await history.model_input(
        session_id=str(session.id),
        up_to_seq=question.seq,
        parameters=spec.parameters,
        limits=runtime.limits,
    )
    reply_id = uuid.uuid4()
    pieces: list[str] = []
    started = time.perf_counter()
    first_piece_at: float | None = None
    reply: ModelReply | None = None
    try:
        async with runtime.models.lease(spec) as client:
            if stream:
                # aclosing: the provider's connection goes back before the lease ends.
                async with aclosing(client.stream(model_turns)) as items:
                    async for item in items:
                        if isinstance(item, ReplyDelta):
                            if first_piece_at is None:
                                first_piece_at = time.perf_counter()
                            pieces.append(item.text)
                            yield ReplyPiece(message_id=str(reply_id), text=item.text)
                        else:
                            reply = item
            else:
                reply = await client.complete(model_turns)
        if reply is None:
            raise ModelError("the model stream ended without a final reply")
    except (asyncio.CancelledError, GeneratorExit):
        # The listener went away mid-reply: keep what was said, as a chat UI's "stop" does.
        if pieces:
            partial = ModelReply(content="".join(pieces), finish_reason="cancelled")
            metadata = _reply_metadata(spec, partial, started, first_piece_at, stream)
            await asyncio.shield(
                _store(
                    runtime,
                    session,
                    type=MessageType.AI,
                    content=partial.content,
                    metadata=metadata,
                    reply_to=question,
                    id=reply_id,
                )
            )
        raise
    except ModelError as exc:
        await _report_failure(caller, session, spec.model_name, spec.provider, exc)
        raise ModelFailed(f"the AI model failed to reply: {exc}") from exc
    except Exception as exc:
        logger.exception("provider %s raised unexpectedly", spec.provider)
        await _report_failure(caller, session, spec.model_name, spec.provider, exc)
        raise ModelFailed("the AI model failed to reply") from exc

    metadata = _reply_metadata(spec, reply, started, first_piece_at, stream)
    answer = await _store(
        runtime,
        session,
        type=MessageType.AI,
        content=reply.content,
        metadata=metadata,
        reply_to=question,
        id=reply_id,
    )
    await logs.record(
        level=LogLevel.INFO,
        event="message.answered",
        message=f"{spec.model_name} ({spec.provider}) answered in {metadata['latency_ms']} ms",
        actor_id=caller.user_id,
        details={
            "session_id": str(session.id),
            "message_id": str(answer.id),
            "model_config_id": spec.config_id,
            "model_name": spec.model_name,
            "provider": spec.provider,
            "latency_ms": metadata["latency_ms"],
            "usage": metadata.get("usage"),
        },
    )
    yield AiMessageStored(answer)


async def _stored_question(session: ChatSession, key: str | None, digest: str) -> Message | None:
    if key is None:
        return None
    question = await Message.get_or_none(session_id=session.id, client_message_id=key)
    if question is not None and question.request_digest != digest:
        raise Invalid("was already used for a different message", field="client_message_id")
    return question


async def _store(runtime: Runtime, session: ChatSession, **fields: Any) -> Message:
    """Append a message with the next sequence number, then announce it."""
    async with in_transaction():
        # The UPDATE takes the row lock on PostgreSQL, so numbering is exact across processes.
        await ChatSession.filter(id=session.id).update(
            last_seq=F("last_seq") + 1, updated_at=datetime.now(UTC)
        )
        seq = await ChatSession.filter(id=session.id).first().values_list("last_seq", flat=True)
        fields["metadata"] = Json(fields.get("metadata"))
        message = await Message.create(session_id=session.id, seq=seq, **fields)
    await runtime.events.publish(
        session_topic(str(session.id)),
        {"kind": "message_added", "session_id": str(session.id), "message_id": str(message.id)},
    )
    return message


def _reply_metadata(
    spec: ModelSpec, reply: ModelReply, started: float, first_piece_at: float | None, streamed: bool
) -> dict[str, Any]:
    metadata: dict[str, Any] = dict(reply.labels)
    metadata.update(
        provider=spec.provider,
        model_name=spec.model_name,
        model_version=spec.model_version,
        model_config_id=spec.config_id,
        config_version=spec.version,
        finish_reason=reply.finish_reason,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        streamed=streamed,
    )
    if reply.usage is not None:
        metadata["usage"] = {
            "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.completion_tokens,
        }
    if first_piece_at is not None:
        metadata["time_to_first_token_ms"] = round((first_piece_at - started) * 1000, 1)
    return metadata


async def _report_failure(
    caller: Caller, session: ChatSession, model_name: str, provider: str, exc: Exception
) -> None:
    status = getattr(exc, "status", None)
    details: dict[str, Any] = {
        "session_id": str(session.id),
        "model_name": model_name,
        "provider": provider,
        "error": str(exc) if isinstance(exc, ModelError) else type(exc).__name__,
    }
    if status is not None:
        details["status"] = status
    details.update(getattr(exc, "details", {}))
    await logs.record(
        level=LogLevel.ERROR,
        event="model.failed",
        message=f"model {model_name} ({provider}) failed: {details['error']}",
        actor_id=caller.user_id,
        details=details,
    )


def _checked_content(content: Any, max_chars: int) -> str:
    if not isinstance(content, str):
        raise Invalid("must be a string", field="content")
    if not content.strip():
        raise Invalid("must not be empty", field="content")
    if NUL in content:
        raise Invalid("must not contain NUL characters", field="content")
    if len(content) > max_chars:
        raise Invalid(f"must be at most {max_chars} characters", field="content")
    return content


def _check_metadata(metadata: Any, max_bytes: int) -> None:
    try:
        size = len(orjson.dumps(metadata))
    except TypeError:
        raise Invalid("must be JSON", field="metadata") from None
    if size > max_bytes:
        raise Invalid(f"must be at most {max_bytes} bytes of JSON", field="metadata")
    if has_nul(metadata):
        raise Invalid("must not contain NUL characters", field="metadata")


def _checked_key(key: Any) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip():
        raise Invalid("must be a non-empty string", field="client_message_id")
    if NUL in key:
        raise Invalid("must not contain NUL characters", field="client_message_id")
    if len(key) > MAX_CLIENT_MESSAGE_ID_CHARS:
        raise Invalid(
            f"must be at most {MAX_CLIENT_MESSAGE_ID_CHARS} characters", field="client_message_id"
        )
    return key


def _request_digest(content: str, metadata: Any) -> str:
    canonical = orjson.dumps([content, metadata], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()
