"""1.1 Create a session."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from db.identity import Caller
from db.services import sessions
from gateway.rest.requests import json_body
from gateway.rest.routing import Endpoint
from gateway.rest.schemas import CreateSessionBody, SessionCreated


async def create_session(request: Request, caller: Caller) -> dict[str, Any]:
    body = await json_body(request, CreateSessionBody)
    session = await sessions.create(
        caller=caller, user_id=body.user_id, model_config_id=body.model_config_id
    )
    return {"session_id": str(session.id)}


ENDPOINTS = [
    Endpoint(
        "POST",
        "/sessions",
        create_session,
        summary="Create a chat session (with the default model config unless one is named)",
        body=CreateSessionBody,
        response=SessionCreated,
    ),
]
