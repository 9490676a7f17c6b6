"""1.1 Create a session; changing, deleting and listing sessions (conversation features)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from db.identity import Caller
from db.services import sessions
from db.services.pagination import PageRequest
from gateway.rest.requests import json_body, path_param, query, renamed
from gateway.rest.routing import Endpoint, runtime_of
from gateway.rest.schemas import (
    CreateSessionBody,
    SessionCreated,
    SessionDeleted,
    SessionList,
    SessionOut,
    SessionsQuery,
    UpdateSessionBody,
)
from gateway.rest.shapes import session_out

# The `archived` query parameter as the service's filter (None: every session).
_ARCHIVED = {"false": False, "true": True, "all": None}


async def create_session(request: Request, caller: Caller) -> dict[str, Any]:
    body = await json_body(request, CreateSessionBody)
    session = await sessions.create(
        caller=caller, user_id=body.user_id, model_config_id=body.model_config_id
    )
    return {"session_id": str(session.id)}


async def list_sessions(request: Request, caller: Caller) -> dict[str, Any]:
    params = query(request, SessionsQuery)
    page = await sessions.list_page(
        caller=caller,
        page=PageRequest(page_size=params.page_size, page_num=params.page_num),
        user_id=params.user_id,
        archived=_ARCHIVED[params.archived],
    )
    return {"sessions": [session_out(session) for session in page.sessions], "total": page.total}


async def update_session(request: Request, caller: Caller) -> dict[str, Any]:
    body = await json_body(request, UpdateSessionBody)
    with renamed({"changes": "body"}):
        session = await sessions.update(
            caller=caller, session_id=path_param(request, "session_id"), **body.changes()
        )
    return session_out(session)


async def delete_session(request: Request, caller: Caller) -> dict[str, Any]:
    deleted = await sessions.delete(
        runtime=runtime_of(request), caller=caller, session_id=path_param(request, "session_id")
    )
    return {"session_id": deleted}


ENDPOINTS = [
    Endpoint(
        "POST",
        "/sessions",
        create_session,
        summary="Create a chat session (with the default model config unless one is named)",
        body=CreateSessionBody,
        response=SessionCreated,
    ),
    Endpoint(
        "GET",
        "/sessions",
        list_sessions,
        summary="The caller's sessions, newest first (unarchived ones unless asked otherwise)",
        query=SessionsQuery,
        response=SessionList,
    ),
    Endpoint(
        "PATCH",
        "/sessions/{session_id}",
        update_session,
        summary="Set or clear the title, switch the model config, archive or unarchive",
        body=UpdateSessionBody,
        response=SessionOut,
    ),
    Endpoint(
        "DELETE",
        "/sessions/{session_id}",
        delete_session,
        summary="Delete the session and its messages (a running reply is cancelled first)",
        response=SessionDeleted,
    ),
]
