"""Bad request bodies: every one is a 400 whose message names the bad field, and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from db.services import model_configs
from tests.factories import Account, create_session
from tests.rest.expect import ok, refused, url


@dataclass(frozen=True)
class Scene:
    alice: Account
    root: Account
    session_id: str
    config_id: str

    def target(self, route: str) -> tuple[str, str, Account]:
        """Method, path and the account that may call it."""
        return {
            "sessions": ("POST", "/sessions", self.alice),
            "messages": ("POST", f"/sessions/{self.session_id}/messages", self.alice),
            "config": ("PUT", f"/model-configs/{self.config_id}", self.root),
        }[route]

    async def logged(self, client: httpx.AsyncClient) -> int:
        total: int = ok(await client.get(url("/logs"), headers=self.root.headers))["total"]
        return total


@pytest.fixture
async def scene(client: httpx.AsyncClient, alice: Account, admin: Account) -> Scene:
    session_id = await create_session(client, alice)
    config_id = str((await model_configs.get_default()).id)
    return Scene(alice, admin, session_id, config_id)


async def _refused_without_effect(
    client: httpx.AsyncClient, scene: Scene, route: str, field: str, **request: Any
) -> str:
    method, path, account = scene.target(route)
    logged = await scene.logged(client)
    response = await client.request(method, url(path), headers=account.headers, **request)
    message = refused(response, 400, field=field)
    assert await scene.logged(client) == logged  # no session, answer or config change
    history = await client.get(
        url(f"/sessions/{scene.session_id}/messages"), headers=scene.alice.headers
    )
    assert ok(history)["total"] == 0
    return message


RAW_BODIES = {
    "empty": b"",
    "blank": b"  \r\n\t",
    "truncated": b'{"user_id": "x"',
    "single quotes": b"{'user_id': 'x'}",
    "trailing text": b'{"user_id": "x"} and more',
    "NaN": b'{"user_id": NaN}',
    "too deep": b"[" * 2000 + b"]" * 2000,
    "array": b'[{"user_id": "x"}]',
    "string": b'"hello"',
    "number": b"42",
    "null": b"null",
    "true": b"true",
}


@pytest.mark.parametrize("route", ["sessions", "messages", "config"])
@pytest.mark.parametrize("raw", RAW_BODIES)
async def test_body_that_is_not_a_json_object(
    client: httpx.AsyncClient, scene: Scene, route: str, raw: str
) -> None:
    await _refused_without_effect(client, scene, route, "body", content=RAW_BODIES[raw])


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


ME = "<alice>"
FIELD_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("sessions", {}, "user_id"),
    ("sessions", {"model_config_id": None}, "user_id"),
    ("sessions", {"user_id": 123}, "user_id"),
    ("sessions", {"user_id": None}, "user_id"),
    ("sessions", {"user_id": [ME]}, "user_id"),
    ("sessions", {"user_id": ME, "model_config_id": 5}, "model_config_id"),
    ("sessions", {"user_id": ME, "model_config_id": {"id": "x"}}, "model_config_id"),
    ("messages", {"message": "hi"}, "user_id"),
    ("messages", {"user_id": 7, "message": "hi"}, "user_id"),
    ("messages", {"user_id": ME}, "message"),
    ("messages", {"user_id": ME, "message": None}, "message"),
    ("messages", {"user_id": ME, "message": ["hi"]}, "message"),
    ("messages", {"user_id": ME, "message": 5}, "message"),
    ("messages", {"user_id": ME, "message": {"text": "hi"}}, "message"),
    ("messages", {"user_id": ME, "message": ""}, "message"),
    ("messages", {"user_id": ME, "message": " \n\t\u3000 "}, "message"),
    ("messages", {"user_id": ME, "message": "a\x00b"}, "message"),
    ("messages", {"user_id": ME, "message": "hi", "client_message_id": 7}, "client_message_id"),
    ("messages", {"user_id": ME, "message": "hi", "client_message_id": " "}, "client_message_id"),
    (
        "messages",
        {"user_id": ME, "message": "hi", "client_message_id": "k" * 201},
        "client_message_id",
    ),
    ("messages", {"user_id": ME, "message": "hi", "metadata": "m" * 20_000}, "metadata"),
    ("messages", {"user_id": ME, "message": "hi", "metadata": _nested(300)}, "metadata"),
    ("messages", {"user_id": ME, "message": "hi", "metadata": {"k\x00": 1}}, "metadata"),
    ("config", {"parameters": "temperature=1"}, "parameters"),
    ("config", {"parameters": [["temperature", 1]]}, "parameters"),
    ("config", {"parameters": {"max_history_messages": 0}}, "parameters"),
    ("config", {"parameters": {"d": _nested(300)}}, "parameters"),
    ("config", {"parameters": {"stop": ["\x00"]}}, "parameters"),
    ("config", {"model_name": 5}, "model_name"),
    ("config", {"model_name": "m" * 201}, "model_name"),
    ("config", {"model_name": "a\x00b"}, "model_name"),
    ("config", {"model_version": True}, "model_version"),
    ("config", {"provider": 1}, "provider"),
    ("config", {"provider": ""}, "provider"),
    ("config", {"base_url": 5}, "base_url"),
    ("config", {"api_key_env": ["KEY"]}, "api_key_env"),
    ("config", {"is_default": "yes"}, "is_default"),
]


def _as(user_id: str, value: Any) -> Any:
    """`value` with the ME placeholder replaced by `user_id`."""
    if value == ME:
        return user_id
    if isinstance(value, dict):
        return {key: _as(user_id, item) for key, item in value.items()}
    return value


@pytest.mark.parametrize(
    ("route", "body", "field"),
    FIELD_CASES,
    ids=[f"{route}-{field}-{n}" for n, (route, _, field) in enumerate(FIELD_CASES)],
)
async def test_bad_field(
    client: httpx.AsyncClient, scene: Scene, route: str, body: dict[str, Any], field: str
) -> None:
    payload = _as(scene.alice.user_id, body)
    await _refused_without_effect(client, scene, route, field, json=payload)
