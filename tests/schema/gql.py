"""Posting GraphQL documents over HTTP, and reading the answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from tests.factories import Account

Headers = dict[str, str]
T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    """One GraphQL response body."""

    data: Any
    errors: list[dict[str, Any]]

    @property
    def codes(self) -> list[str]:
        return [error.get("extensions", {}).get("code") for error in self.errors]

    def error(self) -> dict[str, Any]:
        """The only error of the answer."""
        assert len(self.errors) == 1, self.errors
        return self.errors[0]


def headers_of(who: Account | Headers | None) -> Headers:
    if who is None:
        return {}
    if isinstance(who, Account):
        return who.headers
    return who


async def post(
    client: httpx.AsyncClient,
    query: str,
    who: Account | Headers | None = None,
    variables: dict[str, Any] | None = None,
    *,
    url: str = "/graphql",
) -> Answer:
    """POST a document as a GraphQL client does; the transport answers 200 or 400."""
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    response = await client.post(url, json=body, headers=headers_of(who))
    assert response.status_code in (200, 400), response.text
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    return Answer(data=payload.get("data"), errors=list(payload.get("errors") or []))


async def ok(
    client: httpx.AsyncClient,
    query: str,
    who: Account | Headers | None = None,
    variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The data of an answer that must carry no error."""
    answer = await post(client, query, who, variables)
    assert not answer.errors, answer.errors
    data: dict[str, Any] = answer.data
    return data


async def fails(
    client: httpx.AsyncClient,
    query: str,
    who: Account | Headers | None = None,
    variables: dict[str, Any] | None = None,
    *,
    code: str,
) -> dict[str, Any]:
    """The one error of an answer that must fail with `code`; returns that error."""
    answer = await post(client, query, who, variables)
    error = answer.error()
    assert error["extensions"]["code"] == code, error
    if answer.data is not None:
        assert all(value is None for value in answer.data.values()), answer.data
    return error


CREATE_SESSION = """
mutation($input: CreateSessionInput) {
  createSession(input: $input) { id createdAt messageCount user { id name } modelConfig { id } }
}"""
SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) {
    userMessage { id type content metadata createdAt session { id } }
    aiMessage { id type content metadata createdAt session { id messageCount } }
  }
}"""


async def new_session(
    client: httpx.AsyncClient, who: Account, model_config_id: str | None = None
) -> str:
    variables = {"input": {"modelConfigId": model_config_id}} if model_config_id else None
    data = await ok(client, CREATE_SESSION, who, variables)
    session_id: str = data["createSession"]["id"]
    return session_id


async def send_gql(
    client: httpx.AsyncClient, who: Account, session_id: str, content: str, **extra: Any
) -> dict[str, Any]:
    """sendMessage through GraphQL; the payload (userMessage, aiMessage)."""
    data = await ok(
        client, SEND, who, {"input": {"sessionId": session_id, "content": content, **extra}}
    )
    payload: dict[str, Any] = data["sendMessage"]
    return payload


WAIT_SECONDS = 10.0


async def eventually(probe: Callable[[], Awaitable[T]]) -> T:
    """The first truthy result of `probe`, polled for at most WAIT_SECONDS."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            value = await probe()
            if value:
                return value
            await asyncio.sleep(0.02)
