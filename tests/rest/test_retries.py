"""2.1 when the model fails, and client retries with an idempotency key."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import Account, create_session, make_account, make_config, send
from tests.providers import FlakyProvider
from tests.rest.expect import ok, refused, url

KEYS = {
    "header": lambda key: {"headers": {"Idempotency-Key": key}},
    "body": lambda key: {"client_message_id": key},
}
KEY_FIELD = {"header": "Idempotency-Key", "body": "client_message_id"}


async def _messages(client: httpx.AsyncClient, account: Account, session_id: str) -> list[Any]:
    path = url(f"/sessions/{session_id}/messages")
    data = ok(await client.get(path, headers=account.headers))
    assert data["total"] == len(data["messages"])
    messages: list[Any] = data["messages"]
    return messages


async def _flaky_session(client: httpx.AsyncClient, account: Account) -> str:
    config = await make_config(provider="flaky", model_name="flaky-model")
    return await create_session(client, account, model_config_id=str(config.id))


async def test_model_failure_is_500_and_keeps_the_question(
    client: httpx.AsyncClient, flaky: FlakyProvider
) -> None:
    alice = await make_account()
    session_id = await _flaky_session(client, alice)
    flaky.fail_next()
    message = refused(await send(client, alice, session_id, "are you there?"), 500)
    assert "AI model" in message
    stored = await _messages(client, alice, session_id)
    assert [(m["type"], m["content"]) for m in stored] == [("user", "are you there?")]
    ok(await send(client, alice, session_id, "and now?"))
    assert len(await _messages(client, alice, session_id)) == 3


@pytest.mark.parametrize("where", KEYS)
async def test_retry_after_a_model_failure_reuses_the_question(
    client: httpx.AsyncClient, flaky: FlakyProvider, where: str
) -> None:
    alice = await make_account()
    session_id = await _flaky_session(client, alice)
    flaky.fail_next()
    refused(await send(client, alice, session_id, "retry me", **KEYS[where]("k-1")), 500)
    [question] = await _messages(client, alice, session_id)
    data = ok(await send(client, alice, session_id, "retry me", **KEYS[where]("k-1")))
    assert data["user_message"]["message_id"] == question["message_id"]
    assert data["ai_message"]["content"] == "Echo: retry me"
    assert flaky.calls == 2
    stored = await _messages(client, alice, session_id)
    assert [m["message_id"] for m in stored] == [
        question["message_id"],
        data["ai_message"]["message_id"],
    ]


@pytest.mark.parametrize("where", KEYS)
async def test_repeat_after_success_returns_the_original(
    client: httpx.AsyncClient, flaky: FlakyProvider, where: str
) -> None:
    alice = await make_account()
    session_id = await _flaky_session(client, alice)
    first = ok(await send(client, alice, session_id, "once", metadata={"n": 1}, **KEYS[where]("k")))
    again = ok(await send(client, alice, session_id, "once", metadata={"n": 1}, **KEYS[where]("k")))
    assert again == first
    assert flaky.calls == 1
    assert len(await _messages(client, alice, session_id)) == 2


@pytest.mark.parametrize("where", KEYS)
@pytest.mark.parametrize(
    "change", [{"message": "another text"}, {"metadata": {"n": 2}}], ids=["message", "metadata"]
)
async def test_same_key_with_another_body_is_400(
    client: httpx.AsyncClient, where: str, change: dict[str, Any]
) -> None:
    alice = await make_account()
    session_id = await create_session(client, alice)
    ok(await send(client, alice, session_id, "original", metadata={"n": 1}, **KEYS[where]("k")))
    body: dict[str, Any] = {"message": "original", "metadata": {"n": 1}, **change}
    response = await send(
        client, alice, session_id, body.pop("message"), **body, **KEYS[where]("k")
    )
    refused(response, 400, field=KEY_FIELD[where])
    assert len(await _messages(client, alice, session_id)) == 2


async def test_header_and_body_keys_must_agree(client: httpx.AsyncClient) -> None:
    alice = await make_account()
    session_id = await create_session(client, alice)
    response = await send(
        client, alice, session_id, "hi", client_message_id="a", headers={"Idempotency-Key": "b"}
    )
    refused(response, 400, field="client_message_id")
    ok(
        await send(
            client, alice, session_id, "hi", client_message_id="a", headers={"Idempotency-Key": "a"}
        )
    )


async def test_keys_are_per_session(client: httpx.AsyncClient) -> None:
    alice = await make_account()
    first, second = await create_session(client, alice), await create_session(client, alice)
    one = ok(await send(client, alice, first, "hi", client_message_id="same"))
    two = ok(await send(client, alice, second, "hi", client_message_id="same"))
    assert one["user_message"]["message_id"] != two["user_message"]["message_id"]
