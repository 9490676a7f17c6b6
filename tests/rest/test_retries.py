"""2.1 when the model fails, and client retries with an idempotency key."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from db.models import Message
from tests.factories import Account, create_session, make_config, send
from tests.providers import FlakyProvider
from tests.rest.expect import ok, refused, url

KEYS = {
    "header": lambda key: {"headers": {"Idempotency-Key": key}},
    "body": lambda key: {"client_message_id": key},
}
KEY_FIELD = {"header": "Idempotency-Key", "body": "client_message_id"}
OTHER = {"header": "body", "body": "header"}


async def _messages(client: httpx.AsyncClient, account: Account, session_id: str) -> list[Any]:
    path = url(f"/sessions/{session_id}/messages")
    data = ok(await client.get(path, headers=account.headers))
    assert data["total"] == len(data["messages"])
    messages: list[Any] = data["messages"]
    return messages


async def _stored(session_id: str) -> int:
    """Counted in the table itself, not trusted to the API's `total`."""
    return await Message.filter(session_id=session_id).count()


async def _flaky_session(client: httpx.AsyncClient, account: Account) -> str:
    config = await make_config(provider="flaky", model_name="flaky-model")
    return await create_session(client, account, model_config_id=str(config.id))


async def test_model_failure_is_500_and_keeps_the_question(
    client: httpx.AsyncClient, flaky: FlakyProvider, alice: Account
) -> None:
    session_id = await _flaky_session(client, alice)
    flaky.fail_next()
    message = refused(await send(client, alice, session_id, "are you there?"), 500)
    assert "AI model failed" in message
    stored = await _messages(client, alice, session_id)
    assert [(m["type"], m["content"]) for m in stored] == [("user", "are you there?")]
    # Without a key, sending the same text again is a new question.
    again = ok(await send(client, alice, session_id, "are you there?"))
    messages = await _messages(client, alice, session_id)
    assert [(m["type"], m["content"]) for m in messages] == [
        ("user", "are you there?"),
        ("user", "are you there?"),
        ("ai", "Echo: are you there?"),
    ]
    assert again["user_message"]["message_id"] == messages[1]["message_id"]


@pytest.mark.parametrize("where", KEYS)
async def test_retry_after_a_model_failure_reuses_the_question(
    client: httpx.AsyncClient, flaky: FlakyProvider, alice: Account, where: str
) -> None:
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
    # Answered now: one more retry replays without asking the model again.
    assert ok(await send(client, alice, session_id, "retry me", **KEYS[where]("k-1"))) == data
    assert flaky.calls == 2
    assert await _stored(session_id) == 2


@pytest.mark.parametrize("where", KEYS)
async def test_repeat_after_success_returns_the_original(
    client: httpx.AsyncClient, flaky: FlakyProvider, alice: Account, where: str
) -> None:
    session_id = await _flaky_session(client, alice)
    first = ok(await send(client, alice, session_id, "once", metadata={"n": 1}, **KEYS[where]("k")))
    again = ok(await send(client, alice, session_id, "once", metadata={"n": 1}, **KEYS[where]("k")))
    # The header and the body field are one key: the other spelling finds it too.
    other = KEYS[OTHER[where]]("k")
    spelled = ok(await send(client, alice, session_id, "once", metadata={"n": 1}, **other))
    assert again == first
    assert spelled == first
    assert flaky.calls == 1
    assert len(await _messages(client, alice, session_id)) == 2
    assert await _stored(session_id) == 2


@pytest.mark.parametrize("where", KEYS)
@pytest.mark.parametrize(
    "change",
    [{"message": "another text"}, {"metadata": {"n": 2}}, {"metadata": None}],
    ids=["message", "metadata", "no-metadata"],
)
async def test_same_key_with_another_body_is_400(
    client: httpx.AsyncClient, alice: Account, where: str, change: dict[str, Any]
) -> None:
    session_id = await create_session(client, alice)
    ok(await send(client, alice, session_id, "original", metadata={"n": 1}, **KEYS[where]("k")))
    body: dict[str, Any] = {"message": "original", "metadata": {"n": 1}, **change}
    response = await send(
        client, alice, session_id, body.pop("message"), **body, **KEYS[where]("k")
    )
    refused(response, 400, field=KEY_FIELD[where])
    assert len(await _messages(client, alice, session_id)) == 2
    assert await _stored(session_id) == 2


async def test_header_and_body_keys_must_agree(client: httpx.AsyncClient, alice: Account) -> None:
    session_id = await create_session(client, alice)
    response = await send(
        client, alice, session_id, "hi", client_message_id="a", headers={"Idempotency-Key": "b"}
    )
    refused(response, 400, field="client_message_id")
    assert await _stored(session_id) == 0
    ok(
        await send(
            client, alice, session_id, "hi", client_message_id="a", headers={"Idempotency-Key": "a"}
        )
    )


async def test_keys_are_per_session(client: httpx.AsyncClient, alice: Account) -> None:
    first, second = await create_session(client, alice), await create_session(client, alice)
    one = ok(await send(client, alice, first, "hi", client_message_id="same"))
    two = ok(await send(client, alice, second, "hi", client_message_id="same"))
    assert one["user_message"]["message_id"] != two["user_message"]["message_id"]
