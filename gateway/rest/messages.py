"""1.2 Session history, 2.1 send a message; picking up or stopping a running reply."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from db.errors import Invalid
from db.identity import Caller
from db.services import live_replies, messages, turns
from db.services.pagination import PageRequest
from gateway.rest import streaming
from gateway.rest.requests import json_body, path_param, query, renamed
from gateway.rest.routing import Endpoint, runtime_of
from gateway.rest.schemas import (
    CancelResult,
    MessageHistory,
    PageQuery,
    RegenerateBody,
    RegenerateResult,
    SendMessageBody,
    SendResult,
    text_schema,
)
from gateway.rest.shapes import ai_message_out, message_out, user_message_out

IDEMPOTENCY_HEADER = "Idempotency-Key"


async def list_messages(request: Request, caller: Caller) -> dict[str, Any]:
    params = query(request, PageQuery)
    page = await messages.list_page(
        caller=caller,
        session_id=path_param(request, "session_id"),
        page=PageRequest(page_size=params.page_size, page_num=params.page_num),
    )
    return {"messages": [message_out(message) for message in page.messages], "total": page.total}


async def send_message(request: Request, caller: Caller) -> dict[str, Any] | Response:
    body = await json_body(request, SendMessageBody)
    header_key = request.headers.get(IDEMPOTENCY_HEADER)
    if header_key is not None and body.client_message_id not in (None, header_key):
        raise Invalid(f"differs from the {IDEMPOTENCY_HEADER} header", field="client_message_id")
    key_name = IDEMPOTENCY_HEADER if header_key is not None else "client_message_id"
    stream = streaming.wants_stream(request.headers.get("accept"))
    question = turns.SendRequest(
        session_id=path_param(request, "session_id"),
        user_id=body.user_id,
        content=body.message,
        metadata=body.metadata,
        client_message_id=header_key if header_key is not None else body.client_message_id,
    )
    turn = turns.run_turn(
        runtime=runtime_of(request), caller=caller, request=question, stream=stream
    )
    with renamed({"content": "message", "client_message_id": key_name}):
        if stream:
            return await streaming.event_stream(turn)
        result = await turns.complete(turn)
    return {
        "user_message": user_message_out(result.user_message),
        "ai_message": ai_message_out(result.ai_message),
    }


async def regenerate_reply(request: Request, caller: Caller) -> dict[str, Any] | Response:
    body = await json_body(request, RegenerateBody)
    stream = streaming.wants_stream(request.headers.get("accept"))
    asked = turns.RegenerateRequest(
        session_id=path_param(request, "session_id"),
        user_id=body.user_id,
        client_message_id=request.headers.get(IDEMPOTENCY_HEADER),
    )
    turn = turns.run_regeneration(
        runtime=runtime_of(request), caller=caller, request=asked, stream=stream
    )
    with renamed({"client_message_id": IDEMPOTENCY_HEADER}):
        if stream:
            return await streaming.event_stream(turn)
        result = await turns.complete(turn)
    return {"ai_message": ai_message_out(result.ai_message)}


async def resume_reply(request: Request, caller: Caller) -> Response:
    after = streaming.last_event_id(request.headers.get(streaming.LAST_EVENT_ID))
    events = await live_replies.resume(
        caller=caller,
        message_id=path_param(request, "message_id"),
        session_id=path_param(request, "session_id"),
        after=after,
    )
    return streaming.resumed_stream(events)


async def cancel_reply(request: Request, caller: Caller) -> dict[str, Any]:
    cancelled = await live_replies.stop(
        runtime=runtime_of(request), caller=caller, session_id=path_param(request, "session_id")
    )
    return {"cancelled": cancelled}


_IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Retry key: a repeat with the same key and body returns the original result and "
        "stores nothing new; after a model failure it re-asks the model."
    ),
    "schema": {
        "type": "string",
        **text_schema(turns.MAX_CLIENT_MESSAGE_ID_CHARS, not_blank=True),
    },
}

_REGENERATE_IDEMPOTENCY_PARAMETER = {
    **_IDEMPOTENCY_PARAMETER,
    "description": "Retry key: a repeat returns the reply it made and stores nothing new.",
}

_EVENT_STREAM = {
    streaming.MEDIA_TYPE: {"schema": {"type": "string", "description": streaming.__doc__}}
}
_LAST_EVENT_ID_PARAMETER = {
    "name": streaming.LAST_EVENT_ID,
    "in": "header",
    "required": False,
    "description": "The id of the last delta event received: the characters already had.",
    "schema": {"type": "string", "pattern": "^[0-9]{1,10}$"},
}

ENDPOINTS = [
    Endpoint(
        "GET",
        "/sessions/{session_id}/messages",
        list_messages,
        summary="A page of the session's messages, oldest first",
        query=PageQuery,
        response=MessageHistory,
    ),
    Endpoint(
        "POST",
        "/sessions/{session_id}/messages",
        send_message,
        summary="Send a user message and get the AI reply",
        body=SendMessageBody,
        response=SendResult,
        header_parameters=(_IDEMPOTENCY_PARAMETER,),
        alternative_content=_EVENT_STREAM,
    ),
    Endpoint(
        "GET",
        "/sessions/{session_id}/messages/{message_id}/stream",
        resume_reply,
        summary="Pick a streamed reply up again from Last-Event-ID (server-sent events)",
        response=None,
        header_parameters=(_LAST_EVENT_ID_PARAMETER,),
        alternative_content=_EVENT_STREAM,
    ),
    Endpoint(
        "POST",
        "/sessions/{session_id}/regenerate",
        regenerate_reply,
        summary=(
            "Ask the model again for the latest user message; the new reply takes the "
            "latest reply's place in the history"
        ),
        body=RegenerateBody,
        response=RegenerateResult,
        header_parameters=(_REGENERATE_IDEMPOTENCY_PARAMETER,),
        alternative_content=_EVENT_STREAM,
    ),
    Endpoint(
        "POST",
        "/sessions/{session_id}/cancel",
        cancel_reply,
        summary="Stop the reply being generated for the session; what was said is stored",
        response=CancelResult,
    ),
]
