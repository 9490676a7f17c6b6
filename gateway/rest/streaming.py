"""Server-sent events for 2.1 when the client sends `Accept: text/event-stream`.

A documented extension: without that header the route answers exactly as the original
design. Events, each `data` a JSON object:
  user_message  {message_id, created_time}                      the question is stored
  delta         {message_id, delta, offset}                     a piece of the reply
  ai_message    {message_id, content, created_time, metadata}   the reply is stored
  done          {code: 200, data: <the non-streamed answer>}    last event on success
  error         {code, message}                                 last event on failure
Errors found before the first event (authentication, bad input, unknown session) are
ordinary envelope responses with their status.

A dropped connection does not stop the reply. Each `delta` carries `id:`, the number of
characters of the reply received so far; `GET .../messages/{message_id}/stream` with
`Last-Event-ID: <that number>` (through any server process) sends the rest as it comes,
then `ai_message` and `done`; a reply already stored comes back as `ai_message` at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from db.errors import Invalid, ServiceError
from db.services.turn_events import ReplyPiece, TurnEvent, UserMessageStored
from gateway.rest.envelope import status_of
from gateway.rest.shapes import ai_message_out, user_message_out

MEDIA_TYPE = "text/event-stream"
LAST_EVENT_ID = "Last-Event-ID"
EVENT_NAMES = ("user_message", "delta", "ai_message", "done", "error")
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def wants_stream(accept: str | None) -> bool:
    return bool(accept) and MEDIA_TYPE in (accept or "").lower()


def _frame(event: str, data: Any, *, event_id: int | None = None) -> bytes:
    head = b"" if event_id is None else b"id: " + str(event_id).encode() + b"\n"
    return head + b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def last_event_id(value: str | None) -> int:
    """How many characters of the reply a reconnecting client has (`Last-Event-ID`)."""
    if value is None or not value.strip():
        return 0
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        raise Invalid("must be the id of a delta event: a whole number", field=LAST_EVENT_ID)
    return int(value)


async def _frames(first: TurnEvent | None, rest: AsyncGenerator[TurnEvent]) -> AsyncIterator[bytes]:
    answer: dict[str, Any] = {}
    try:
        event: TurnEvent | None = first if first is not None else await anext(rest, None)
        while event is not None:
            if isinstance(event, UserMessageStored):
                answer["user_message"] = user_message_out(event.message)
                yield _frame("user_message", answer["user_message"])
            elif isinstance(event, ReplyPiece):
                data = {"message_id": event.message_id, "delta": event.text, "offset": event.offset}
                yield _frame("delta", data, event_id=event.offset + len(event.text))
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
    """Start the turn (or the resumed reply); errors before its first event propagate as
    ordinary responses."""
    try:
        first = await anext(turn)
    except BaseException:
        await turn.aclose()
        raise
    return StreamingResponse(_frames(first, turn), media_type=MEDIA_TYPE, headers=_HEADERS)


def resumed_stream(events: AsyncGenerator[TurnEvent]) -> StreamingResponse:
    """A reply picked up again: the answer starts at once, however long the next piece
    takes (its checks were made before)."""
    return StreamingResponse(_frames(None, events), media_type=MEDIA_TYPE, headers=_HEADERS)
