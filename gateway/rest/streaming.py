"""Server-sent events for 2.1 when the client sends `Accept: text/event-stream`.

A documented extension: without that header the route answers exactly as the original
design. Events, each `data` a JSON object:
  user_message  {message_id, created_time}                      the question is stored
  delta         {message_id, delta}                             a piece of the reply
  ai_message    {message_id, content, created_time, metadata}   the reply is stored
  done          {code: 200, data: <the non-streamed answer>}    last event on success
  error         {code, message}                                 last event on failure
Errors found before the first event (authentication, bad input, unknown session) are
ordinary envelope responses with their status.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from db.errors import ServiceError
from db.models import Message
from db.services.messages import ReplyPiece, TurnEvent, UserMessageStored
from gateway.rest.envelope import status_of
from gateway.rest.shapes import message_out

MEDIA_TYPE = "text/event-stream"
EVENT_NAMES = ("user_message", "delta", "ai_message", "done", "error")


def wants_stream(accept: str | None) -> bool:
    return bool(accept) and MEDIA_TYPE in (accept or "").lower()


def _frame(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def user_message_out(message: Message) -> dict[str, Any]:
    shaped = message_out(message)
    return {"message_id": shaped["message_id"], "created_time": shaped["created_time"]}


def ai_message_out(message: Message) -> dict[str, Any]:
    shaped = message_out(message)
    del shaped["type"]
    return shaped


async def _frames(first: TurnEvent, rest: AsyncGenerator[TurnEvent]) -> AsyncIterator[bytes]:
    answer: dict[str, Any] = {}
    try:
        event: TurnEvent | None = first
        while event is not None:
            if isinstance(event, UserMessageStored):
                answer["user_message"] = user_message_out(event.message)
                yield _frame("user_message", answer["user_message"])
            elif isinstance(event, ReplyPiece):
                yield _frame("delta", {"message_id": event.message_id, "delta": event.text})
            else:
                answer["ai_message"] = ai_message_out(event.message)
                yield _frame("ai_message", answer["ai_message"])
            event = await anext(rest, None)
        yield _frame("done", {"code": 200, "data": answer})
    except ServiceError as exc:
        yield _frame("error", {"code": status_of(exc), "message": str(exc)})
    finally:
        await rest.aclose()


async def event_stream(turn: AsyncGenerator[TurnEvent]) -> StreamingResponse:
    """Start the turn; errors before its first event propagate as ordinary responses."""
    try:
        first = await anext(turn)
    except BaseException:
        await turn.aclose()
        raise
    return StreamingResponse(
        _frames(first, turn),
        media_type=MEDIA_TYPE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
