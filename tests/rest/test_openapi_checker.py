"""The checks of openapi_check.py and openapi_structure.py fail when they should."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.rest.openapi_check import (
    BASE_URL,
    OPENAPI_PATH,
    ApiDocument,
    checked_client,
    fetch_document,
)
from tests.rest.openapi_structure import OPENAPI_31_STRUCTURE

SESSION = "/api/v1/sessions/7c1e7d0e-2f36-4f8c-8d6b-0c9f1b8f6a10/messages"
GOOD_REPLY = {
    "code": 200,
    "data": {
        "user_message": {"message_id": "u", "created_time": "2026-11-24T08:52:00.123456+00:00"},
        "ai_message": {
            "message_id": "a",
            "content": "hi",
            "created_time": "2026-11-24T08:52:01.123456+00:00",
            "metadata": {"model_name": "echo"},
        },
    },
}


@pytest.fixture
async def api(client: httpx.AsyncClient) -> ApiDocument:
    return ApiDocument(await fetch_document(client))


def _response(method: str, path: str, status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request(method, BASE_URL + path))


def _without(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["ai_message"].pop(key)


async def test_a_conforming_response_passes(api: ApiDocument) -> None:
    api.check(_response("POST", SESSION, 200, GOOD_REPLY))
    error = {"code": 404, "message": "session not found", "data": None}
    api.check(_response("POST", SESSION, 404, error))


@pytest.mark.parametrize(
    "spoil",
    [
        _without("message_id"),
        _without("created_time"),
        lambda data: data["ai_message"].update(metadata="a string"),
        lambda data: data["user_message"].update(message_id=7),
        lambda data: data.pop("user_message"),
    ],
)
async def test_a_spoiled_success_fails(
    api: ApiDocument, spoil: Callable[[dict[str, Any]], None]
) -> None:
    body = copy.deepcopy(GOOD_REPLY)
    spoil(body["data"])
    with pytest.raises(ValidationError):
        api.check(_response("POST", SESSION, 200, body))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {**GOOD_REPLY, "code": 201}),  # code differs from the status
        (404, {"code": 404, "data": None}),  # no message
        (404, {"code": 404, "message": "x", "data": {"leak": 1}}),
        (418, {"code": 418, "message": "teapot", "data": None}),  # undocumented status
    ],
)
async def test_a_wrong_envelope_fails(api: ApiDocument, status: int, body: Any) -> None:
    with pytest.raises((AssertionError, ValidationError)):
        api.check(_response("POST", SESSION, status, body))


async def test_undocumented_route_answers_only_404_or_405(api: ApiDocument) -> None:
    api.check(_response("GET", "/api/v1/nope", 404, {"code": 404, "message": "x", "data": None}))
    with pytest.raises(AssertionError):
        api.check(_response("GET", "/api/v1/nope", 200, {"code": 200, "data": {}}))


async def test_the_client_checks_every_response(client: httpx.AsyncClient) -> None:
    document = await fetch_document(client)

    async def serve_document(request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def renamed_field(request: Request) -> JSONResponse:
        return JSONResponse({"code": 200, "data": {"id": "renamed from session_id"}})

    fake = Starlette(
        routes=[
            Route(OPENAPI_PATH, serve_document),
            Route("/api/v1/sessions", renamed_field, methods=["POST"]),
        ]
    )
    async with checked_client(fake) as checked:
        with pytest.raises(ValidationError, match="session_id"):
            await checked.post("/api/v1/sessions", json={})


def _drop(*path: str | int) -> Callable[[dict[str, Any]], None]:
    def spoil(document: dict[str, Any]) -> None:
        node = document
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return spoil


@pytest.mark.parametrize(
    "spoil",
    [
        lambda document: document.update(openapi="3.0.3"),
        _drop("info", "version"),
        _drop("paths", "/api/v1/sessions", "post", "responses"),
        _drop("paths", "/api/v1/sessions", "post", "responses", "200", "description"),
        _drop("paths", "/api/v1/sessions/{session_id}/messages", "get", "parameters", 0, "in"),
        lambda document: document["paths"]["/api/v1/logs"].update(fetch={"responses": {}}),
        lambda document: document.update(paths={"api/v1/logs": {}}),
    ],
)
async def test_the_structure_check_catches_a_broken_document(
    client: httpx.AsyncClient, spoil: Callable[[dict[str, Any]], None]
) -> None:
    document = await fetch_document(client)
    spoil(document)
    with pytest.raises(ValidationError):
        Draft202012Validator(OPENAPI_31_STRUCTURE).validate(document)
