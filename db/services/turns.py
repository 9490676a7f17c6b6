"""A turn: the question stored, the session's model asked over the history, the answer stored.

Read from the top: `run_turn` checks the request and starts the turn as a task of this
process (`reply_runs`, so a listener that leaves does not stop it); `_turn` takes the
session's lease (`leases`: one turn at a time per session, across processes) as it
checks the caller may use the session, stores the question (or finds it again for a
retry) and reads the history before it, all in one write when the session was free; and
`_answer` asks the model, streams its pieces (through the shared buffer, `reply_buffer`),
and stores the answer with its log entry, giving the lease back in the same write
(`turn_store`: one statement per step on PostgreSQL, one call on SQLite's thread); a
turn that ends any other way gives it back as it leaves the lease's block. Helpers
follow in the order they are used: the request's checks, storing the reply, the model
input, the reply's metadata.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing, asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from tortoise import connections

from db import observing, request_context
from db.errors import Invalid, ModelFailed, NotFound
from db.identity import Caller
from db.models import LogLevel, Message, MessageType
from db.ports import (
    ChatTurn,
    Limits,
    ModelError,
    ModelReply,
    ModelSpec,
    ReplyDelta,
    ReplyReport,
    Runtime,
    estimate_tokens,
    estimate_tokens_sql,
)
from db.services import leases, logs, rate_limits, reply_runs, sessions, turn_store
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
from db.sql import markers

__all__ = [
    "AiMessageStored",
    "RegenerateRequest",
    "ReplyPiece",
    "SendRequest",
    "TurnEvent",
    "TurnResult",
    "UserMessageStored",
    "complete",
    "regenerate",
    "run_regeneration",
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
    text = checked_content(request.content, limits.max_message_chars)
    _check_metadata(request.metadata, limits)
    key = checked_key(request.client_message_id)
    # Whether the caller may act for that user; whether the session is theirs is checked
    # as the turn takes it (in the same write).
    owner_id = (
        sessions.acting_user_id(caller, request.user_id) if request.user_id is not None else None
    )
    digest = _request_digest(text, request.metadata)
    asked = _Question(text=text, metadata=request.metadata, key=key, digest=digest)
    # Counted before anything is stored; a streamed one holds a stream while we listen.
    async with rate_limits.streaming(caller) if stream else nullcontext():
        await rate_limits.admit_reply(caller)
        # The turn runs as a task of its own: if our listener leaves, it still goes to
        # its end and is stored, and a listener may come back (`live_replies.resume`).
        session_id = request.session_id
        turn = _turn(runtime, caller, session_id, owner_id, asked, stream)
        run = reply_runs.start(session_id, turn)
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
    runtime: Runtime,
    caller: Caller,
    session_id: str,
    owner_id: str | None,
    asked: _Question,
    stream: bool,
) -> AsyncGenerator[TurnEvent | LeaseHeld]:
    limits = runtime.limits

    async def take_and_ask(token: str, expires_at: datetime) -> turn_store.Taken | None:
        return await turn_store.take(
            runtime,
            session_id=session_id,
            caller=caller,
            owner_id=owner_id,
            token=token,
            expires_at=expires_at,
            asking=turn_store.Asking(
                content=asked.text,
                metadata=asked.metadata,
                client_message_id=asked.key,
                request_digest=asked.digest,
                history_messages=limits.max_history_messages,
                history_tokens=limits.max_history_tokens,
            ),
        )

    async with _holding(runtime, caller, session_id, owner_id, take_and_ask) as held:
        yield LeaseHeld(held.lease.token)  # a stop request names the turn by its lease
        first = await held.taken()
        lease = held.lease
        spec, earlier = first.spec, None
        if first.asked is not None:  # stored as the lease was taken
            question, earlier = first.asked.question, first.asked.earlier
        else:
            question = await turn_store.store_question(
                runtime,
                session_id=session_id,
                content=asked.text,
                metadata=asked.metadata,
                client_message_id=asked.key,
                request_digest=asked.digest,
            )
        if question is None:
            # A retry: the question is stored already, and maybe its answer too.
            question = await _stored_question(session_id, asked)
            yield UserMessageStored(question)
            answer = await Message.get_or_none(reply_to_id=question.id, seq__isnull=False)
            if answer is not None:
                rate_limits.refund_reply(caller)  # no model was asked this time
                yield AiMessageStored(answer)
                return
        else:
            yield UserMessageStored(question)
        answering = _answer(runtime, caller, lease, spec, question, earlier, stream=stream)
        async with aclosing(answering) as events:
            async for event in events:
                yield event


@dataclass(slots=True)
class _Held:
    """A session's turn lease, held, and what taking it gave."""

    lease: leases.Lease
    session_id: str
    first: turn_store.Taken | None  # None: the lease was taken after waiting

    async def taken(self) -> turn_store.Taken:
        """The session's config as the take read it or, after a wait, as it is now."""
        return self.first or await turn_store.read_taken(self.session_id)


@asynccontextmanager
async def _holding(
    runtime: Runtime,
    caller: Caller,
    session_id: str,
    owner_id: str | None,
    take: Callable[[str, datetime], Awaitable[turn_store.Taken | None]],
) -> AsyncIterator[_Held]:
    """Hold the session's turn lease (one turn at a time per session, across processes):
    `take` makes the first attempt, which also checks the caller may use the session; a
    waiting turn takes the lease when the turn before it ends."""
    limits = runtime.limits
    taken: list[turn_store.Taken] = []
    if leases.held_here(session_id):
        # Another turn of this process holds the session: the first attempt (which also
        # checks the caller may use it) would only come after it. Refuse a stranger now.
        await sessions.get(caller=caller, session_id=session_id, user_id=owner_id)

    async def take_first(token: str, expires_at: datetime) -> bool:
        found = await take(token, expires_at)
        if found is None:
            # Busy, or not the caller's to use: NotFound then ends the turn here.
            await sessions.get(caller=caller, session_id=session_id, user_id=owner_id)
            return False
        taken.append(found)
        return True

    async with leases.exclusive(
        session_id,
        wait_seconds=limits.turn_wait_seconds,
        lease_seconds=limits.turn_lease_seconds,
        take_first=take_first,
    ) as lease:
        yield _Held(lease=lease, session_id=session_id, first=taken[0] if taken else None)


async def _stored_question(session_id: str, asked: _Question) -> Message:
    question = None
    if asked.key is not None:
        question = await Message.get_or_none(session_id=session_id, client_message_id=asked.key)
    if question is None:  # nothing stored, and no key in use: the session is gone
        raise NotFound("session not found")
    if question.request_digest != asked.digest:
        raise Invalid("was already used for a different message", field="client_message_id")
    return question


async def _answer(
    runtime: Runtime,
    caller: Caller,
    lease: leases.Lease,
    spec: ModelSpec,
    question: Message,
    earlier: list[tuple[str, str]] | None,
    *,
    stream: bool,
    variant: turn_store.Variant | None = None,
) -> AsyncGenerator[TurnEvent]:
    """Yield the reply's pieces (when `stream`, also written to the shared buffer), then
    the stored reply. Stopped on request, what was said is stored as a cancelled reply.
    `earlier`: the messages before the question, newest first, if already read;
    `variant`: the reply is asked again (regenerate) and replaces the latest one."""
    session_id = lease.session_id
    model_turns = await _model_input(
        session_id=session_id, question=question, earlier=earlier, spec=spec, limits=runtime.limits
    )
    reply_id = uuid.uuid4()
    writer = (
        ReplyWriter(
            reply_id=str(reply_id),
            session_id=session_id,
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
                    runtime,
                    lease,
                    question,
                    reply_id,
                    partial.content,
                    metadata,
                    buffer,
                    variant=variant,
                )
            )
            _observe(spec, "cancelled", started, first_piece_at, partial)
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
            _observe(spec, str(exc.details.get("reason") or "model_error"), started, first_piece_at)
            await _report_failure(caller, session_id, spec, exc, started)
            raise ModelFailed(f"the AI model failed to reply: {exc}") from exc
        except Exception as exc:
            logger.exception("provider %s raised unexpectedly", spec.provider)
            _observe(spec, "unexpected", started, first_piece_at)
            await _report_failure(caller, session_id, spec, exc, started)
            raise ModelFailed("the AI model failed to reply") from exc

        metadata = _reply_metadata(spec, reply, started, first_piece_at, stream)
        what = "answered again" if variant is not None else "answered"
        replaced = variant.replacing if variant is not None else None
        answered = turn_store.LogLine(
            event="message.regenerated" if variant is not None else "message.answered",
            message=f"{spec.model_name} ({spec.provider}) {what} in {metadata['latency_ms']} ms",
            actor_id=caller.user_id,
            details=request_context.tagged(
                {"session_id": session_id, "message_id": str(reply_id)}
                | ({"replaced_message_id": str(replaced.id)} if replaced is not None else {})
                | {name: metadata.get(name) for name in _LOGGED_METADATA}
            )
            or {},
        )
        answer = await _store_reply(
            runtime, lease, question, reply_id, reply.content, metadata, buffer, answered, variant
        )
        _observe(spec, "ok", started, first_piece_at, reply)
        observing.observer().log_written(level=LogLevel.INFO.value)
    yield AiMessageStored(answer)


class _Unbuffered:
    """A whole (not streamed) reply keeps nothing in the shared buffer."""

    async def __aenter__(self) -> _Unbuffered:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def add(self, text: str) -> None:
        return None

    async def stop(self) -> None:
        return None

    def stored(self) -> None:
        return None


# -- asking again -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegenerateRequest:
    """Ask again for the session's latest turn: a retry key, and, for an admin acting for
    a user, that user's id."""

    session_id: str
    user_id: str | None = None
    client_message_id: str | None = None


# A regenerate request has no body of its own to compare a reused retry key with: its
# digest only tells a regenerate's key from a sent message's.
_REGENERATE_DIGEST = hashlib.sha256(b"regenerate").hexdigest()


async def regenerate(*, runtime: Runtime, caller: Caller, request: RegenerateRequest) -> Message:
    """Ask again without streaming and return the new reply."""
    turn = run_regeneration(runtime=runtime, caller=caller, request=request, stream=False)
    return (await complete(turn)).ai_message


async def run_regeneration(
    *, runtime: Runtime, caller: Caller, request: RegenerateRequest, stream: bool = True
) -> AsyncGenerator[TurnEvent]:
    """Ask the session's model again for its latest user message.

    The new reply takes the place of the latest one in the history (its number, so the
    history's length and order stay); the one replaced stays reachable as a variant. A
    question left without a reply (its model failed) is simply answered. Yields as
    `run_turn` does: the user message answered, reply pieces (when `stream`), the stored
    reply. Serialised with the session's other turns; a retry with the same
    `client_message_id` stores nothing twice.
    """
    key = checked_key(request.client_message_id)
    owner_id = (
        sessions.acting_user_id(caller, request.user_id) if request.user_id is not None else None
    )
    async with rate_limits.streaming(caller) if stream else nullcontext():
        await rate_limits.admit_reply(caller)
        session_id = request.session_id
        turn = _regeneration(runtime, caller, session_id, owner_id, key, stream)
        run = reply_runs.start(session_id, turn)
        async with aclosing(run.follow()) as events:
            async for event in events:
                yield event


async def _regeneration(
    runtime: Runtime,
    caller: Caller,
    session_id: str,
    owner_id: str | None,
    key: str | None,
    stream: bool,
) -> AsyncGenerator[TurnEvent | LeaseHeld]:

    async def take_lease(token: str, expires_at: datetime) -> turn_store.Taken | None:
        return await turn_store.take_lease(
            session_id=session_id,
            caller=caller,
            owner_id=owner_id,
            token=token,
            expires_at=expires_at,
        )

    async with _holding(runtime, caller, session_id, owner_id, take_lease) as held:
        yield LeaseHeld(held.lease.token)
        spec = (await held.taken()).spec
        lease = held.lease
        if key is not None and (done := await _regenerated_before(session_id, key)) is not None:
            rate_limits.refund_reply(caller)  # no model is asked this time
            yield UserMessageStored(done[0])
            yield AiMessageStored(done[1])
            return
        latest = await turn_store.latest_turn(session_id)
        if latest is None:
            raise Invalid("the session has no user message to answer again", field="session_id")
        question, replacing = latest
        yield UserMessageStored(question)
        variant = turn_store.Variant(
            replacing=replacing, client_message_id=key, request_digest=_REGENERATE_DIGEST
        )
        answering = _answer(
            runtime, caller, lease, spec, question, None, stream=stream, variant=variant
        )
        async with aclosing(answering) as events:
            async for event in events:
                yield event


async def _regenerated_before(session_id: str, key: str) -> tuple[Message, Message] | None:
    """The (question, reply) a regenerate with retry key `key` stored, if one did."""
    stored = await Message.get_or_none(session_id=session_id, client_message_id=key)
    if stored is None:
        return None
    if stored.type != MessageType.AI or stored.request_digest != _REGENERATE_DIGEST:
        raise Invalid("was already used for a different message", field="client_message_id")
    question = (
        await Message.get_or_none(id=stored.reply_to_id) if stored.reply_to_id is not None else None
    )
    if question is None:
        raise NotFound("message not found")  # its question is gone with its session
    return question, stored


# -- checking the request ---------------------------------------------------------------


def checked_content(content: Any, max_chars: int) -> str:
    """A user message's text as a turn (or an edit, `forks`) accepts it."""
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


def checked_key(key: Any) -> str | None:
    """A retry key as a turn (or a fork, `forks`) accepts it."""
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


# -- storing the reply -----------------------------------------------------------------


async def _store_reply(
    runtime: Runtime,
    lease: leases.Lease,
    question: Message,
    reply_id: uuid.UUID,
    content: str,
    metadata: dict[str, Any],
    buffer: ReplyWriter | _Unbuffered,
    log: turn_store.LogLine | None = None,
    variant: turn_store.Variant | None = None,
) -> Message:
    """Store the reply as a message (`variant`: in the place of the latest reply); the
    same write gives the lease back, counts its
    usage and drops the reply's buffered pieces (the message answers for them from now on)."""
    await buffer.stop()
    used = metadata.get("usage") or {}
    usage = turn_store.UsageLine(
        model_config_id=str(metadata["model_config_id"]),
        prompt_tokens=int(used.get("prompt_tokens") or 0),
        completion_tokens=int(used.get("completion_tokens") or 0),
        latency_ms=metadata.get("latency_ms"),
    )
    message = await turn_store.store_reply(
        runtime,
        session_id=lease.session_id,
        reply_id=reply_id,
        question=question,
        content=content,
        metadata=metadata,
        lease=lease.token,
        buffered=not isinstance(buffer, _Unbuffered),
        log=log,
        usage=usage,
        variant=variant,
    )
    # Given back, or (its lease lost meanwhile) no longer this turn's to give.
    lease.given_back = True
    buffer.stored()
    return message


# -- asking the model -------------------------------------------------------------------


# The newest messages up to the question, and of those only the ones whose running token
# cost stays within the budget (the question always): the model input takes no more, so
# long messages beyond it are not read.
_HISTORY = f"""
SELECT type, content FROM (
  SELECT seq, type, content, sum({estimate_tokens_sql("content")}) OVER (ORDER BY seq DESC)
    AS running
  FROM (
    SELECT seq, type, content FROM messages WHERE session_id = {{0}} AND seq <= {{1}}
    ORDER BY seq DESC LIMIT {{2}}
  ) AS recent
) AS e WHERE running <= {{3}} OR seq = {{1}}
ORDER BY seq DESC
"""


async def _model_input(
    *,
    session_id: str,
    question: Message,
    earlier: list[tuple[str, str]] | None,
    spec: ModelSpec,
    limits: Limits,
) -> list[ChatTurn]:
    """The newest messages up to the question, oldest first, within the message and
    token budget (the config's, else the server's). The question is always kept, even
    alone over budget. `earlier` (newest first) saves reading the messages before it."""
    parameters: Mapping[str, Any] = spec.parameters
    max_messages = parameters.get("max_history_messages") or limits.max_history_messages
    max_tokens = parameters.get("max_history_tokens") or limits.max_history_tokens
    newest_first: list[tuple[str, str]]
    if earlier is not None:
        newest_first = [(str(question.type), question.content), *earlier[: max_messages - 1]]
    else:
        rows = await connections.get("default").execute_query_dict(
            _HISTORY.format(*markers(4)), [session_id, question.seq, max_messages, max_tokens]
        )
        newest_first = [(row["type"], row["content"]) for row in rows]
    turns: list[ChatTurn] = []
    system_prompt = parameters.get("system_prompt")
    budget = max_tokens - (estimate_tokens(system_prompt) if system_prompt else 0)
    for kind, content in newest_first:
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


def _observe(
    spec: ModelSpec,
    outcome: str,
    started: float,
    first_piece_at: float | None,
    reply: ModelReply | None = None,
) -> None:
    """Tell the process's observer (metrics) how a reply went."""
    usage = reply.usage if reply is not None else None
    observing.observer().reply_finished(
        ReplyReport(
            provider=spec.provider,
            config_id=spec.config_id,
            outcome=outcome,
            seconds=time.perf_counter() - started,
            first_token_seconds=None if first_piece_at is None else first_piece_at - started,
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=usage.completion_tokens if usage is not None else None,
        )
    )


async def _report_failure(
    caller: Caller, session_id: str, spec: ModelSpec, exc: Exception, started: float
) -> None:
    """Log a reply that failed, and count it as the session owner's usage."""
    try:
        await turn_store.record_failed_reply(
            session_id=session_id,
            usage=turn_store.UsageLine(
                model_config_id=spec.config_id,
                prompt_tokens=0,
                completion_tokens=0,
                latency_ms=round((time.perf_counter() - started) * 1000, 1),
                failed=True,
            ),
        )
    except Exception as problem:
        # The client is owed the model's failure, not this one's.
        logger.warning("could not count the failed reply of session %s: %s", session_id, problem)
    details: dict[str, Any] = {
        "session_id": session_id,
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
