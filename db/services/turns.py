"""A turn: the question stored, the session's model asked over the history, the answer stored.

Read from the top: `run_turn` checks the request and starts the turn as a task of this
process (`reply_runs`, so a listener that leaves does not stop it); `_turn` takes the
session's lease (`leases`: one turn at a time per session, across processes), stores the
question or finds it again for a retry, and `_answer` asks the model, streams its pieces
(through the shared buffer, `reply_buffer`), stores the answer and writes the log entry;
leaving the lease's block gives the session back. Helpers follow in the order they are
used: the request's checks, storing a message, the model input, the reply's metadata.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from db.errors import Invalid, ModelFailed
from db.events import session_topic
from db.fields import Json
from db.identity import Caller
from db.models import ChatSession, LogLevel, Message, MessageType, ModelConfig
from db.ports import (
    ChatTurn,
    Limits,
    ModelError,
    ModelReply,
    ModelSpec,
    ReplyDelta,
    Runtime,
    estimate_tokens,
)
from db.services import leases, logs, reply_runs, sessions
from db.services.model_configs import spec_of
from db.services.reply_buffer import ReplyWriter
from db.services.reply_runs import SHUTTING_DOWN, STOP_REQUESTED
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
    "ReplyPiece",
    "SendRequest",
    "TurnEvent",
    "TurnResult",
    "UserMessageStored",
    "complete",
    "run_turn",
    "send",
]
MAX_CLIENT_MESSAGE_ID_CHARS = 200
# What the log entry of an answer repeats of the reply's metadata.
_LOGGED_METADATA = ("model_config_id", "model_name", "provider", "latency_ms", "usage")
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SendRequest:
    """What a client sends, as the client sent it (the turn checks it): the question,
    its metadata, a retry key, and, for an admin acting for a user, that user's id."""

    session_id: str
    content: Any
    metadata: Any = None
    user_id: str | None = None
    client_message_id: str | None = None


async def send(*, runtime: Runtime, caller: Caller, request: SendRequest) -> TurnResult:
    """Run a whole turn without streaming and return the stored pair."""
    return await complete(run_turn(runtime=runtime, caller=caller, request=request, stream=False))


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
    *, runtime: Runtime, caller: Caller, request: SendRequest, stream: bool = True
) -> AsyncGenerator[TurnEvent]:
    """Store the user message, ask the session's model over its history, store the reply.

    Yields the stored user message, reply pieces (when `stream`), then the stored reply.
    Turns of one session never overlap; a retry with the same `client_message_id`
    stores nothing twice and re-asks the model if the first attempt got no reply.
    Closing the generator leaves the turn running: only `live_replies.stop` stops it.
    """
    limits = runtime.limits
    text = _checked_content(request.content, limits.max_message_chars)
    _check_metadata(request.metadata, limits)
    key = _checked_key(request.client_message_id)
    session = await sessions.get(
        caller=caller, session_id=request.session_id, user_id=request.user_id
    )
    digest = _request_digest(text, request.metadata)
    question = _Question(text=text, metadata=request.metadata, key=key, digest=digest)
    # The turn runs as a task of its own: if our listener leaves, it still goes to its
    # end and is stored, and a listener may come back for it (`live_replies.resume`).
    run = reply_runs.start(str(session.id), _turn(runtime, caller, session, question, stream))
    async with aclosing(run.follow()) as events:
        async for event in events:
            yield event


@dataclass(frozen=True, slots=True)
class _Question:
    """The checked request: what is stored as the user message."""

    text: str
    metadata: Any
    key: str | None
    digest: str  # of text and metadata: a retry key must come back with the same question


async def _turn(
    runtime: Runtime, caller: Caller, session: ChatSession, asked: _Question, stream: bool
) -> AsyncGenerator[TurnEvent | LeaseHeld]:
    limits = runtime.limits
    async with leases.exclusive(
        str(session.id),
        wait_seconds=limits.turn_wait_seconds,
        lease_seconds=limits.turn_lease_seconds,
    ) as lease:
        yield LeaseHeld(lease)  # a stop request names the turn by its lease
        question = await _stored_question(session, asked)
        if question is not None:
            # A retry: the question is stored already, and maybe its answer too.
            yield UserMessageStored(question)
            answer = await Message.get_or_none(reply_to_id=question.id)
            if answer is not None:
                yield AiMessageStored(answer)
                return
        else:
            question = await _append(
                runtime,
                session,
                type=MessageType.USER,
                content=asked.text,
                metadata=asked.metadata,
                client_message_id=asked.key,
                request_digest=asked.digest,
            )
            yield UserMessageStored(question)
        async with aclosing(_answer(runtime, caller, session, question, stream=stream)) as events:
            async for event in events:
                yield event


async def _stored_question(session: ChatSession, asked: _Question) -> Message | None:
    if asked.key is None:
        return None
    question = await Message.get_or_none(session_id=session.id, client_message_id=asked.key)
    if question is not None and question.request_digest != asked.digest:
        raise Invalid("was already used for a different message", field="client_message_id")
    return question


async def _answer(
    runtime: Runtime, caller: Caller, session: ChatSession, question: Message, *, stream: bool
) -> AsyncGenerator[TurnEvent]:
    """Yield the reply's pieces (when `stream`, also written to the shared buffer), then
    the stored reply. Stopped on request, what was said is stored as a cancelled reply."""
    # Read fresh: an update since the session was opened must reach this very reply.
    spec = spec_of(await ModelConfig.get(id=session.model_config_id))
    model_turns = await _model_input(
        session_id=str(session.id), up_to_seq=question.seq, spec=spec, limits=runtime.limits
    )
    reply_id = uuid.uuid4()
    writer = (
        ReplyWriter(
            reply_id=str(reply_id),
            session_id=str(session.id),
            lease_seconds=runtime.limits.turn_lease_seconds,
        )
        if stream
        else _Unbuffered()
    )
    async with writer as buffer:
        pieces: list[str] = []
        length = 0
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
                                buffer.add(item.text)
                                yield ReplyPiece(
                                    message_id=str(reply_id), text=item.text, offset=length
                                )
                                length += len(item.text)
                            else:
                                reply = item
                else:
                    reply = await client.complete(model_turns)
            if reply is None:
                raise ModelError("the model stream ended without a final reply")
        except (asyncio.CancelledError, GeneratorExit) as exc:
            reason = exc.args[0] if isinstance(exc, asyncio.CancelledError) and exc.args else None
            # Stopped on request, the turn ends with what was said (even nothing) as its
            # reply; stopped by a shutdown, with what was said if anything (else a retry
            # asks again).
            if reason != STOP_REQUESTED and not pieces:
                raise
            partial = ModelReply(content="".join(pieces), finish_reason="cancelled")
            metadata = _reply_metadata(spec, partial, started, first_piece_at, stream)
            stopped = await asyncio.shield(
                _store_reply(
                    runtime, session, question, reply_id, partial.content, metadata, buffer
                )
            )
            if reason not in (STOP_REQUESTED, SHUTTING_DOWN):
                raise
            # A stop is the end of this turn, not of the task running it: listeners get
            # the stored reply like any other.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            yield AiMessageStored(stopped)
            return
        except ModelError as exc:
            await _report_failure(caller, session, spec, exc)
            raise ModelFailed(f"the AI model failed to reply: {exc}") from exc
        except Exception as exc:
            logger.exception("provider %s raised unexpectedly", spec.provider)
            await _report_failure(caller, session, spec, exc)
            raise ModelFailed("the AI model failed to reply") from exc

        metadata = _reply_metadata(spec, reply, started, first_piece_at, stream)
        answer = await _store_reply(
            runtime, session, question, reply_id, reply.content, metadata, buffer
        )
    await logs.record(
        level=LogLevel.INFO,
        event="message.answered",
        message=f"{spec.model_name} ({spec.provider}) answered in {metadata['latency_ms']} ms",
        actor_id=caller.user_id,
        details={"session_id": str(session.id), "message_id": str(answer.id)}
        | {name: metadata.get(name) for name in _LOGGED_METADATA},
    )
    yield AiMessageStored(answer)


class _Unbuffered:
    """A whole (not streamed) reply keeps nothing in the shared buffer."""

    async def __aenter__(self) -> _Unbuffered:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def add(self, text: str) -> None:
        return None

    async def stored(self) -> None:
        return None


# -- checking the request ---------------------------------------------------------------


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


# -- storing messages -------------------------------------------------------------------


async def _append(runtime: Runtime, session: ChatSession, **fields: Any) -> Message:
    """Append a message with the next sequence number, then announce it."""
    async with in_transaction():
        # The UPDATE takes the row lock on PostgreSQL, so numbering is exact across processes.
        await ChatSession.filter(id=session.id).update(
            last_seq=F("last_seq") + 1, updated_at=datetime.now(UTC)
        )
        seq = await ChatSession.filter(id=session.id).first().values_list("last_seq", flat=True)
        fields["metadata"] = Json(fields.get("metadata"))
        message = await Message.create(session_id=session.id, seq=seq, **fields)
    event = {
        "kind": "message_added",
        "session_id": str(session.id),
        "message_id": str(message.id),
        "seq": seq,
    }
    try:
        await runtime.events.publish(session_topic(str(session.id)), event)
    except Exception as exc:
        # The message is stored: failing the request now would make the client retry
        # what succeeded. Subscribers read by sequence number, so they get this message
        # with the session's next event (or when they subscribe again).
        logger.warning("could not announce message %s: %s", message.id, exc)
    return message


async def _store_reply(
    runtime: Runtime,
    session: ChatSession,
    question: Message,
    reply_id: uuid.UUID,
    content: str,
    metadata: dict[str, Any],
    buffer: ReplyWriter | _Unbuffered,
) -> Message:
    """Store the reply as a message; its buffered pieces then go."""
    message = await _append(
        runtime,
        session,
        type=MessageType.AI,
        content=content,
        metadata=metadata,
        reply_to=question,
        id=reply_id,
    )
    await buffer.stored()
    return message


# -- asking the model -------------------------------------------------------------------


async def _model_input(
    *, session_id: str, up_to_seq: int, spec: ModelSpec, limits: Limits
) -> list[ChatTurn]:
    """The newest messages up to `up_to_seq`, oldest first, within the message and token
    budget (the config's, else the server's). The newest message (the one being
    answered) is always kept, even alone over budget."""
    parameters: Mapping[str, Any] = spec.parameters
    max_messages = parameters.get("max_history_messages") or limits.max_history_messages
    max_tokens = parameters.get("max_history_tokens") or limits.max_history_tokens
    rows = (
        await Message.filter(session_id=session_id, seq__lte=up_to_seq)
        .order_by("-seq")
        .limit(max_messages)
        .values_list("type", "content")
    )
    turns: list[ChatTurn] = []
    system_prompt = parameters.get("system_prompt")
    budget = max_tokens - (estimate_tokens(system_prompt) if system_prompt else 0)
    for kind, content in rows:
        cost = estimate_tokens(content)
        if turns and cost > budget:
            break
        budget -= cost
        turns.append(
            ChatTurn(role="user" if kind == MessageType.USER else "assistant", content=content)
        )
    turns.reverse()
    if system_prompt:
        turns.insert(0, ChatTurn(role="system", content=system_prompt))
    return turns


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
    caller: Caller, session: ChatSession, spec: ModelSpec, exc: Exception
) -> None:
    details: dict[str, Any] = {
        "session_id": str(session.id),
        "model_name": spec.model_name,
        "provider": spec.provider,
        "error": str(exc) if isinstance(exc, ModelError) else type(exc).__name__,
    }
    if isinstance(exc, ModelError):
        if exc.status is not None:
            details["status"] = exc.status
        details.update(exc.details)
    await logs.record(
        level=LogLevel.ERROR,
        event="model.failed",
        message=f"model {spec.model_name} ({spec.provider}) failed: {details['error']}",
        actor_id=caller.user_id,
        details=details,
    )
