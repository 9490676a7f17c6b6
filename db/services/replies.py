"""Asking the session's model for a reply and storing it, whole or streamed."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from db.errors import ModelFailed
from db.identity import Caller
from db.models import ChatSession, LogLevel, Message, MessageType, ModelConfig
from db.ports import ModelError, ModelReply, ModelSpec, ReplyDelta, Runtime
from db.services import history, logs
from db.services.message_store import append
from db.services.model_configs import spec_of
from db.services.reply_buffer import ReplyWriter
from db.services.reply_runs import SHUTTING_DOWN, STOP_REQUESTED
from db.services.turn_events import AiMessageStored, ReplyPiece, TurnEvent

logger = logging.getLogger(__name__)


async def answer(
    runtime: Runtime, caller: Caller, session: ChatSession, question: Message, *, stream: bool
) -> AsyncGenerator[TurnEvent]:
    """Yield the reply's pieces (when `stream`, also written to the shared buffer), then
    the stored reply. Stopped on request, what was said is stored as a cancelled reply."""
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
                _store(runtime, session, question, reply_id, partial.content, metadata, buffer)
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
            await _report_failure(caller, session, spec.model_name, spec.provider, exc)
            raise ModelFailed(f"the AI model failed to reply: {exc}") from exc
        except Exception as exc:
            logger.exception("provider %s raised unexpectedly", spec.provider)
            await _report_failure(caller, session, spec.model_name, spec.provider, exc)
            raise ModelFailed("the AI model failed to reply") from exc

        metadata = _reply_metadata(spec, reply, started, first_piece_at, stream)
        answer = await _store(runtime, session, question, reply_id, reply.content, metadata, buffer)
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


async def _store(
    runtime: Runtime,
    session: ChatSession,
    question: Message,
    reply_id: uuid.UUID,
    content: str,
    metadata: dict[str, Any],
    buffer: ReplyWriter | _Unbuffered,
) -> Message:
    """Store the reply as a message; its buffered pieces then go."""
    message = await append(
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
